"""gpu/decode_speed_pick.py: which decode-attention configuration gpu/decode_speed.sh takes on to
the whole-step bench (hand-made bench results; no GPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "gpu"))

import decode_speed_pick as dsp  # noqa: E402


def _best(us: float, default_us: float = 29.0, **kw) -> dict:
    b = {"us": us, "default_us": default_us, "splits": 1, "tile": 16, "warps": 4, "stages": 2, "head_fast": False,
         "heads": 4}
    b.update(kw)
    return {"32x128": b}


def test_a_faster_configuration_is_printed_for_bench_engine():
    assert dsp.pick(_best(20.0)) == ("4,16,4,2", "faster")
    assert dsp.pick(_best(20.0, heads=1, tile=64))[0] == "1,64,4,2"


def test_within_the_margin_head_fast_or_missing_gives_nothing():
    assert dsp.pick(_best(28.5))[0] is None  # 1.7 % faster: within the spread
    assert dsp.pick(_best(20.0, head_fast=True))[0] is None
    assert dsp.pick({"1x128": {}}) == (None, "no 32x128 case")


def test_the_command_prints_only_the_configuration(tmp_path):
    f = tmp_path / "decode_attention.json"
    f.write_text(json.dumps({"best": _best(20.0)}))
    r = subprocess.run([sys.executable, str(ROOT / "gpu/decode_speed_pick.py"), str(f)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "4,16,4,2\n" and "faster" in r.stderr
    f.write_text("{}")
    r = subprocess.run([sys.executable, str(ROOT / "gpu/decode_speed_pick.py"), str(f)], capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == "" and "best" in r.stderr
