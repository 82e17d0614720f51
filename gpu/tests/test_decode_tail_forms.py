"""scripts/decode_tail_forms.py: its fits and schedules on hand-made rows (CPU; no twin binary)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("decode_tail_forms", ROOT / "scripts/decode_tail_forms.py")
dtf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dtf)


def row(n: int, layout: str, tau: float, splits: int = 1) -> dict:
    cs = dtf.contexts(n, layout)
    mean = sum(cs) / n
    return {"n": n, "g": n, "S": splits, "cs": cs, "mean": mean, "layout": layout, "off": 1000.0,
            "y": 1000.0 + tau * (max(cs) - mean) / splits}


def test_layouts_are_the_profilers() -> None:
    from gpu.common import layouts

    assert dtf.contexts is layouts.varied_contexts


def test_exact_tails_give_zero_leave_one_out() -> None:
    data = [row(16, "spread", 1.6), row(16, "one_long", 1.6), row(32, "two_level", 1.6),
            row(8, "spread", 2.5, 2), row(8, "one_long", 2.5, 2), row(12, "two_level", 2.5, 2)]
    rms, worst = dtf.loo(data, lambda d: (max(d["cs"]) - d["mean"]) / d["S"], lambda d: d["S"] > 1)
    assert rms == pytest.approx(0, abs=1e-12) and worst == pytest.approx(0, abs=1e-12)
    # one tau for both kinds of graph cannot fit two slopes
    rms1, _ = dtf.loo(data, lambda d: (max(d["cs"]) - d["mean"]) / d["S"], lambda d: 0)
    assert rms1 > 0.01


def test_schedules() -> None:
    assert dtf.splits(1, 512, 8) == 8 and dtf.splits(12, 512, 8) == 2 and dtf.splits(16, 512, 8) == 1
    # one wave: the longest program sets the end, so the tail is the excess
    d = row(4, "one_long", 1.0)
    assert dtf.list_schedule(d, k=4 * dtf.HEADS, c0=0) == pytest.approx(max(d["cs"]) - round(d["mean"]))
    assert dtf.waves(d, k=1e9) == pytest.approx(max(d["cs"]) - d["mean"])
    # equal contexts: no tail in either form
    e = row(8, "scattered", 1.0)
    assert dtf.list_schedule(e, k=64, c0=10) == 0 and dtf.waves(e, k=64) == 0
