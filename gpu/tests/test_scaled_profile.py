"""scripts/scaled_profile.py: the named tables' timing columns scaled, the rest copied as is, and
nothing written when a table is missing or a value is bad."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import scaled_profile as sp  # noqa: E402


def _profile(tmp: Path) -> Path:
    p = tmp / "prof"
    p.mkdir()
    (p / "step_tokens.csv").write_text("tokens,median_us,p10_us,p90_us,reps\n16,100.000,90.000,110.000,8\n")
    (p / "step_decode.csv").write_text("seqs,context_tokens,median_us\n1,128,50.0\n")
    (p / "meta.json").write_text("{}\n")
    return p


def test_scales_only_the_named_tables(tmp_path):
    src = _profile(tmp_path)
    sp.scale(src, 0.5, tmp_path / "out", ["step_tokens"])
    assert (tmp_path / "out/step_tokens.csv").read_text() == \
        "tokens,median_us,p10_us,p90_us,reps\n16,50.000,45.000,55.000,8\n"
    assert (tmp_path / "out/step_decode.csv").read_text() == (src / "step_decode.csv").read_text()


def test_missing_table_or_bad_value_writes_nothing(tmp_path):
    src = _profile(tmp_path)
    with pytest.raises(SystemExit, match="no such table"):
        sp.scale(src, 0.9, tmp_path / "out", ["step_mixed"])
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.tmp").exists()
    (src / "step_tokens.csv").write_text("tokens,median_us\n16,fast\n")
    with pytest.raises(SystemExit, match=r"step_tokens.csv:2: column median_us"):
        sp.scale(src, 0.9, tmp_path / "out", ["step_tokens"])
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.tmp").exists()
