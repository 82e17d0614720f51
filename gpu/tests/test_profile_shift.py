"""scripts/profile_shift.py: per-profile shifts from the group, on hand-made tables (no torch)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import profile_shift  # noqa: E402


def write(d: Path, rows: list[tuple[int, int, float]]) -> Path:
    d.mkdir()
    (d / "step_decode.csv").write_text("seqs,context_tokens,median_us,p10_us,p90_us,reps\n" + "".join(
        f"{s},{c},{m},{m},{m},5\n" for s, c, m in rows))
    return d


def test_a_profile_uniformly_dearer_shows_as_a_shift(tmp_path, capsys):
    a = write(tmp_path / "a", [(1, 128, 1000.0), (8, 128, 2000.0), (8, 512, 3000.0)])
    b = write(tmp_path / "b", [(1, 128, 1000.0 * math.e ** 0.02), (8, 128, 2000.0 * math.e ** 0.02),
                               (8, 512, 3000.0 * math.e ** 0.02), (16, 128, 9.0)])  # extra cell ignored
    tables = [profile_shift.cells(x / "step_decode.csv") for x in (a, b)]
    s, sd, n = profile_shift.shifts(tables)
    assert n == 3
    assert abs(s[0] + 0.01) < 1e-12 and abs(s[1] - 0.01) < 1e-12  # each 1 % from the middle
    assert abs(sd - math.sqrt(6 * 0.01 ** 2 / 3)) < 1e-12
    assert profile_shift.main([str(a), str(b), "--tables", "step_decode"]) == 0
    assert "| step_decode | 3 | -1.0 % | +1.0 % |" in capsys.readouterr().out


def test_a_missing_table_is_an_error(tmp_path, capsys):
    a = write(tmp_path / "a", [(1, 128, 1000.0)])
    b = write(tmp_path / "b", [(1, 128, 1000.0)])
    assert profile_shift.main([str(a), str(b), "--tables", "step_tokens"]) == 1
    assert "step_tokens.csv: no such table" in capsys.readouterr().err


def test_a_bad_median_names_file_line_and_column(tmp_path):
    d = tmp_path / "a"
    d.mkdir()
    (d / "step_decode.csv").write_text("seqs,context_tokens,median_us,p10_us,p90_us,reps\n"
                                       "1,128,1000,1,1,5\n8,128,abc,1,1,5\n")
    with pytest.raises(SystemExit, match=r"step_decode.csv:3: median_us: expected a positive number, got 'abc'"):
        profile_shift.cells(d / "step_decode.csv")
