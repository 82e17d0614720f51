"""gpu/decode_speed_pick.py: which decode-attention configuration gpu/decode_speed.sh takes on to
the whole-step bench (hand-made bench rows; no GPU)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "gpu"))

import decode_speed_pick as dsp  # noqa: E402

HEAD = "batch,context,splits,tile,warps,stages,head_fast,us,gb_per_s,pct_roofline,rel_err"
# bench_decode_attention.py's CSV while it also swept the several-heads kernel (before its removal)
OLD_HEAD = "batch,context,splits,tile,warps,stages,head_fast,heads,us,gb_per_s,pct_roofline,rel_err"
OLD_CSV = ROOT / "gpu/results/decode-speed-h200-30a9ee2/attention/decode_attention.csv"


def row(b, splits, tile, warps, stages, us, head_fast=0):
    return dict(zip(HEAD.split(","), map(str, (b, 128, splits, tile, warps, stages, head_fast,
                                                us, 0, 0, 1e-4)), strict=True))


def old_row(b, splits, tile, warps, stages, heads, us):
    return dict(zip(OLD_HEAD.split(","), map(str, (b, 128, splits, tile, warps, stages, 0, heads,
                                                    us, 0, 0, 1e-4)), strict=True))


def test_the_engine_splits_follow_attention_decode_splits(monkeypatch):
    assert [dsp.engine_splits(b) for b in (1, 8, 16, 32, 64)] == [8, 2, 1, 1, 1]
    A = pytest.importorskip("gpu.engine.attention")
    # the engine's rule since one warp a program (DECODE_TARGET_PROGRAMS 768, DECODE_MAX_SPLITS 16)
    assert [A.decode_splits(b, 32) for b in (1, 2, 4, 8, 12, 16, 24, 32, 64)] == [16, 16, 8, 4, 2, 2, 1, 1, 1]
    # the tool's rule is the engine's of the STAGES loop
    monkeypatch.setattr(A, "DECODE_TARGET_PROGRAMS", dsp.TARGET_PROGRAMS)
    monkeypatch.setattr(A, "DECODE_MAX_SPLITS", dsp.MAX_SPLITS)
    assert [A.decode_splits(b, 32) for b in (1, 8, 16, 32, 64)] == [8, 2, 1, 1, 1]
    # the STAGES loop's configuration before the engine took the hand-pipelined loop (DECODE_PREFETCH)
    assert A.DECODE_PREFETCH and A.DECODE_STAGES == dsp.DEFAULT[2]


def test_the_configuration_best_over_the_cases_is_printed():
    rows = [row(1, 8, 64, 4, 2, 6.0), row(32, 1, 64, 4, 2, 29.0),  # the default
            row(1, 8, 16, 4, 2, 6.6), row(32, 1, 16, 4, 2, 20.0),  # 10 % slower at 1, 31 % faster at 32
            row(1, 4, 16, 4, 2, 1.0), row(32, 1, 32, 8, 3, 1.0),  # not the engine's splits / not in every case
            row(1, 8, 16, 4, 2, 1.0, head_fast=1)]  # the head-fastest launch order
    cfg, why = dsp.pick(rows)
    assert cfg == "16,4,2" and "0.89" in why
    assert dsp.pick(rows[:2] + [row(1, 8, 16, 4, 2, 6.0), row(32, 1, 16, 4, 2, 28.5)])[0] is None  # 0.99
    assert dsp.pick(rows[2:4]) == (None, "the engine default was not timed")


def test_an_older_csv_s_several_heads_rows_are_left_out():
    default = [old_row(1, 8, 64, 4, 2, 1, 6.0), old_row(32, 1, 64, 4, 2, 1, 29.0)]
    several = [old_row(1, 8, 16, 4, 2, 4, 3.0), old_row(32, 1, 16, 4, 2, 4, 15.0)]  # twice as fast, 4 heads
    cfg, why = dsp.pick(default + several)
    assert cfg is None and why.startswith("best (64, 4, 2) at 1.000")
    one = [old_row(1, 8, 32, 4, 2, 1, 5.0), old_row(32, 1, 32, 4, 2, 1, 25.0)]  # one head a program: read
    assert dsp.pick(default + several + one)[0] == "32,4,2"


@pytest.mark.skipif(not OLD_CSV.exists(), reason="the 30a9ee2 sweep is not in this checkout")
def test_the_committed_30a9ee2_sweep_keeps_the_default():
    import csv

    with OLD_CSV.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert any(r["heads"] != "1" and r["us"] for r in rows)  # the several-heads rows are there to skip
    assert dsp.pick(rows) == (None, "best (64, 4, 2) at 1.000 of the default's time over 1x128, 8x128, "
                                    "16x128, 32x128")


def test_the_command_prints_only_the_configuration(tmp_path):
    f = tmp_path / "decode_attention.csv"
    lines = [HEAD, "1,128,8,64,4,2,0,6.0,,,", "32,128,1,64,4,2,0,29.0,,,", "1,128,8,16,4,2,0,5.0,,,",
             "32,128,1,16,4,2,0,20.0,,,", "32,128,1,32,4,2,0,,,,error CompilationError"]
    f.write_text("\n".join(lines) + "\n")
    cmd = [sys.executable, str(ROOT / "gpu/decode_speed_pick.py"), str(f)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "16,4,2\n"
    r = subprocess.run(cmd[:-1] + [str(tmp_path / "missing.csv")], capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == "" and "missing.csv" in r.stderr
    f.write_text("\n".join(lines[:2] + ["32,128,1,64,x,2,0,29.0,,,"]) + "\n")
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == "" and "line 3" in r.stderr and str(f) in r.stderr
    f.write_text("\n".join([OLD_HEAD, "1,128,8,64,4,2,0,1,6.0,,,", "32,128,1,64,4,2,0,y,29.0,,,"]) + "\n")
    r = subprocess.run(cmd, capture_output=True, text=True)  # an older CSV's heads column must parse too
    assert r.returncode == 1 and r.stdout == "" and "line 3" in r.stderr


def test_rows_of_the_hand_pipelined_loop_are_left_out():
    head = "batch,context,splits,tile,warps,stages,head_fast,prefetch,us,gb_per_s,pct_roofline,rel_err"

    def new_row(b, splits, tile, warps, stages, us, prefetch):
        return dict(zip(head.split(","), map(str, (b, 129, splits, tile, warps, stages, 0, prefetch, us, 0, 0, 1e-4)),
                        strict=True))

    default = [new_row(1, 8, 64, 4, 2, 6.0, 0), new_row(32, 1, 64, 4, 2, 29.0, 0)]
    prefetch = [new_row(1, 8, 32, 4, 1, 3.0, 1), new_row(32, 1, 32, 4, 1, 15.0, 1)]
    assert dsp.pick(default + prefetch)[0] is None  # twice as fast, but --decode-attention cannot pick it
    assert dsp.pick(default + [new_row(1, 8, 32, 4, 1, 3.0, 0), new_row(32, 1, 32, 4, 1, 15.0, 0)])[0] == "32,4,1"
