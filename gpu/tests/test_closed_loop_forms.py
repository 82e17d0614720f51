"""scripts/closed_loop_forms.py: the forms fitted by least squares on hand-made steps (no GPU, no twin)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import closed_loop_forms as clf  # noqa: E402


def _rows(graph_seqs: int, pairs):
    return [{"prefill_tokens": "0", "decode_sequences": str(graph_seqs), "live_s": str(live / 1e6),
             "predicted_us": str(price), "decode_floor_us": "500", "lora_us": "100", "host_us": "50",
             "decode_work_us": str(work), "decode_tail_us": str(tail), "decode_context_tokens": str(ctx),
             "decode_max_context": str(mx)} for live, price, work, tail, ctx, mx in pairs]


def test_forms_recover_a_known_attention_law():
    # measured attention = 1.2 x work + 0.5 x (tail - work): work+excess fits it exactly, scale cannot
    pairs = []
    for work, tail in ((100, 150), (200, 260), (300, 500), (400, 420), (250, 600)):
        att = 1.2 * work + 0.5 * max(0, tail - work)
        pairs.append((650 + att, 650 + max(work, tail), work, tail, work * 10, tail))
    steps = clf.decode_steps(_rows(24, pairs), [8, 16, 24, 32])
    assert {s["graph"] for s in steps} == {24} and all(s["kept"] == 650 for s in steps)
    coef = clf.fit("work+excess", steps)
    assert np.allclose(coef, [1.2, 0.5])
    assert all(abs(clf.priced("work+excess", coef, s) - s["live"]) < 1e-6 for s in steps)
    scale = clf.fit("scale", steps)
    assert max(abs(clf.priced("scale", scale, s) - s["live"]) for s in steps) > 1.0


def test_steps_with_prefill_are_left_out_and_unknown_forms_refused():
    rows = _rows(8, [(1000, 900, 100, 100, 800, 100)])
    rows[0]["prefill_tokens"] = "64"
    assert clf.decode_steps(rows, [8]) == []
    with pytest.raises(ValueError):
        clf.features("cubic", {})


def test_per_size_factor_interpolates_inside_a_graph_only():
    sizes = [8, 16, 24]
    cal = []
    for n, ratio in ((12, 1.10), (16, 0.90), (20, 1.05)):
        cal += [{"graph": clf.step_errors.graph_of(n, sizes), "sequences": n, "live": ratio * 1000.0,
                 "price": 1000.0}] * 20
    cal += [{"graph": 8, "sequences": 6, "live": 1030.0, "price": 1000.0}] * 5  # too few at size 6
    f = clf.per_size_factor(cal, sizes)
    assert abs(f(14) - 1.00) < 1e-9  # halfway between 12 (1.10) and 16 (0.90)
    assert abs(f(10) - 1.10) < 1e-9  # below the sampled sizes of graph 16: the nearest
    assert abs(f(17) - 1.05) < 1e-9  # graph 24: only 20 sampled, not 16 across the edge
    assert abs(f(6) - 1.03) < 1e-9  # graph 8: no size with 20 steps, the graph's median
    assert f(30) == 1.0  # no graph of 30 in the loop
