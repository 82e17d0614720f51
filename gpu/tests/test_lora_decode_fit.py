"""scripts/lora_decode_fit.py: on two made-up profiles of one smooth truth plus noise, the line
fitted on A predicts B's decode cells better than A's own cells; bad rows are named."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

pytest.importorskip("numpy")

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("lora_decode_fit", ROOT / "scripts/lora_decode_fit.py")
ldf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ldf)


def _profile(d: Path, seed: int) -> Path:
    rnd = random.Random(seed)
    lines = ["kernel,tokens,segments,rank,median_us,p10_us,p90_us,reps"]
    for t in (1, 8, 32, 128, 512):
        for s in (1, 2, 4, 8):
            for r in (8, 16, 32, 64):
                truth = 1000 + 2 * t + 10 * s + 0.01 * t * r
                lines.append(f"sgmv,{t},{s},{r},{truth * (1 + rnd.gauss(0, 0.15)):.3f},0,0,10")
    d.mkdir()
    (d / "lora_step.csv").write_text("\n".join(lines) + "\n")
    return d


def test_the_fit_beats_the_cells_on_noise(tmp_path, capsys):
    a, b = _profile(tmp_path / "a", 1), _profile(tmp_path / "b", 2)
    n, grid, fit = ldf.compare(ldf.cells(a), ldf.cells(b), "sgmv")
    assert n == 4 * 4 * 4  # tokens up to 128 only
    assert fit < grid
    assert ldf.main([str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "| a | b | sgmv | 64 |" in out and "| b | a | sgmv | 64 |" in out


def test_a_bad_row_is_named(tmp_path):
    d = _profile(tmp_path / "a", 1)
    text = (d / "lora_step.csv").read_text().replace("sgmv,8,2,16,", "sgmv,8,2,x,", 1)
    (d / "lora_step.csv").write_text(text)
    with pytest.raises(SystemExit, match=r"lora_step.csv:\d+: bad row"):
        ldf.cells(d)
