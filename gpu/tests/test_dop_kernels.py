"""Dop's Triton kernels against the float64 reference on the CPU (TRITON_INTERPRET=1, tiny shapes),
and the measurer's check / search plumbing with a fake timer. Skipped without torch and Triton."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("triton")

if os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available():
    pytest.skip("needs a GPU or TRITON_INTERPRET=1 before Triton is imported", allow_module_level=True)


from conftest import patch_triton_interpreter_scalars  # noqa: E402

from gpu.dop.space import Candidate, all_sketches, normalize  # noqa: E402
from gpu.kernels.ops import SegmentInfo  # noqa: E402
from gpu.kernels.reference import fp64_apply  # noqa: E402
from gpu.kernels.segments import build_segments, pad_layout, sort_permutation  # noqa: E402

DEVICE = "cuda" if os.environ.get("TRITON_INTERPRET") != "1" else "cpu"


@pytest.fixture(autouse=True)
def _interpreter_scalars(monkeypatch):
    if DEVICE == "cpu":
        patch_triton_interpreter_scalars(monkeypatch)
    yield


def _sketches() -> list[Candidate]:
    out: dict[str, Candidate] = {}
    for tiling, order, split, fuse, mth in all_sketches():
        bm = 16 if mth == "dot" else 1 + (split == "none")  # gemv: 1- and 2-row tiles
        c = normalize(Candidate(tiling, order, split, fuse, mth, bm, 32, 32,
                                2 if split != "none" else 1, 2, 4, 2, 4, 2, int(order == "token")))
        out.setdefault(c.key(), c)
    return list(out.values())


def _case(unsorted: bool, seed: int):
    g = torch.Generator().manual_seed(seed)
    h_in, h_out, R = 64, 96, 16
    ranks_l = [16, 8, 12]
    S = len(ranks_l)
    a = torch.randn(S, R, h_in, generator=g).half()
    b = torch.randn(S, R, h_out, generator=g).half()
    for s, r in enumerate(ranks_l):  # rows past a slot's rank must never be read
        a[s, r:] = float("nan")
        b[s, r:] = float("nan")
    slots = [2] * 3 + [0] + [-1] * 2 + [1] * 5 + [0] * 2
    row_index = None
    if unsorted:
        perm = torch.randperm(len(slots), generator=g).tolist()
        shuffled = [slots[p] for p in perm]
        row_index, _ = sort_permutation(shuffled)
        layout = build_segments([shuffled[p] for p in row_index])
    else:
        layout = build_segments(slots)
    T = len(slots) + 2  # rows past the last segment are left alone
    seg = SegmentInfo.from_layout(pad_layout(layout, layout.num_segments + 2), DEVICE, tokens=T,
                                  row_index=row_index + [T - 2, T - 1] if row_index else None)
    x = torch.randn(T, h_in, generator=g).half()
    y = torch.randn(T, h_out, generator=g).half()
    ranks = torch.tensor(ranks_l, dtype=torch.int32)
    scales = torch.tensor([0.5, 2.0, 1.0])
    return [t.to(DEVICE) for t in (x, y, a, b, ranks, scales)] + [seg]


@pytest.mark.parametrize("unsorted", [False, True])
def test_every_sketch_matches_fp64(unsorted: bool) -> None:
    from gpu.dop.kernels import dop_apply

    x, y, a, b, ranks, scales, seg = _case(unsorted, 7 + unsorted)
    ref, _ = fp64_apply(x, y, a, b, seg, ranks, scales)
    untouched = (seg.row_slots < 0).cpu()
    for c in _sketches():
        out = dop_apply(x, y.clone(), a, b, seg, ranks, scales, c).cpu()
        assert torch.isfinite(out).all(), c.key()
        err = float((out.double() - ref.cpu()).norm() / ref.norm())
        assert err < 2e-3, (c.key(), err)
        assert torch.equal(out[untouched], y.cpu()[untouched]), c.key()


def test_measurer_checks_and_rejects(monkeypatch) -> None:
    """GpuMeasurer on a tiny model shape: a right candidate passes the fp64 check and is 'timed'
    (fake timer on the CPU), a broken one (scale ignored) is rejected with its error."""
    from gpu.common.timing import Timing
    from gpu.dop import kernels, measure
    from gpu.dop.space import Scenario, sgmv_like
    from gpu.kernels import shapes

    monkeypatch.setitem(shapes.MODELS, "tiny", shapes.ModelShape("tiny", 64, 96))
    monkeypatch.setattr(measure, "ROTATION_BYTES", 1 << 16)
    m = measure.GpuMeasurer(device=DEVICE)
    monkeypatch.setattr(m, "_time", lambda calls: (
        [c() for c in calls], Timing("graph", 1.0, 0.9, 1.1, 20, len(calls)))[1])
    s = Scenario("tiny", "qkvo", 16, "skewed", "decode", 16)
    c = sgmv_like(s)
    out = m.measure(c, s)
    assert out.ok and out.us == 1.0 and out.rel_err < 2e-3
    real = kernels.dop_apply
    monkeypatch.setattr(measure, "dop_apply", lambda x, y, a, b, seg, rk, sc, cand, scratch=None: real(
        x, y, a, b, seg, rk, torch.ones_like(sc), cand, scratch))
    bad = m.measure(c, s)
    assert not bad.ok and "relative error" in bad.reason


def test_search_with_the_measurer_on_a_tiny_shape(monkeypatch) -> None:
    """The search end to end through GpuMeasurer (fake timer): baselines, seeds, a generation."""
    import json

    from gpu.common.timing import Timing
    from gpu.dop import measure
    from gpu.dop.search import Search, SearchConfig, layout_entry, new_state, timed
    from gpu.dop.space import Scenario
    from gpu.dop.table import build_table
    from gpu.kernels import shapes

    monkeypatch.setitem(shapes.MODELS, "tiny", shapes.ModelShape("tiny", 64, 96))
    monkeypatch.setattr(measure, "ROTATION_BYTES", 1 << 16)
    m = measure.GpuMeasurer(device=DEVICE)
    ticks = iter(range(1, 10_000))
    monkeypatch.setattr(m, "_time", lambda calls: (
        [c() for c in calls], Timing("graph", float(next(ticks)), 0.0, 0.0, 20, len(calls)))[1])
    state = new_state()
    s = Scenario("tiny", "qkvo", 16, "uniform", "decode", 4)
    search = Search(state, m, SearchConfig(timed_per_scenario=4, init_timed=3, per_generation=1),
                    deadline=1e18, save=lambda st: json.dumps(st), log=lambda _: None, session=1)
    assert search.run_scenario(s)
    e = layout_entry(state, s)
    assert e["baselines"]["sgmv_rel_err"] < 2e-3 and "bmm_us" in e["baselines"]
    assert len(timed(e["measurements"])) == 4
    assert "tiny/qkvo/fp16/r16/decode4/uniform" in build_table(state)["entries"]
