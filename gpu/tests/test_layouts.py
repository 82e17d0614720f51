"""step_decode_varied's batch contexts (gpu/common/layouts.py; no torch)."""

from __future__ import annotations

import pytest

from gpu.common import layouts as lay


def test_layouts() -> None:
    assert lay.varied_contexts(16, "spread")[0] == 256 and lay.varied_contexts(16, "spread")[-1] == 1792
    assert sum(lay.varied_contexts(64, "spread")) / 64 == pytest.approx(1024, abs=1)
    assert lay.varied_contexts(40, "one_long") == [256] * 39 + [4096]
    assert lay.varied_contexts(8, "scattered") == [1024] * 8
    assert lay.varied_contexts(32, "two_level") == [384] * 24 + [2048] * 8
    assert lay.varied_contexts(4, "two_level") == [384] * 3 + [2048]  # at least one long sequence
    two = lay.varied_contexts(32, "two_level")
    assert max(two) - sum(two) / 32 == pytest.approx(1248)  # between spread's 768 and one_long's 3,800
    # every layout at the sizes the profiler measures (profile_steps.VARIED_SIZES), skewed but scattered
    for n in (4, 8, 12, 16, 32, 40, 64, 128):
        for layout in lay.VARIED_LAYOUTS:
            ctx = lay.varied_contexts(n, layout)
            assert len(ctx) == n and min(ctx) > 0
            assert (max(ctx) > sum(ctx) / n) == (layout != "scattered")
    # shuffled: spread's contexts in another order, the same every time
    for n in (8, 32):
        sh = lay.varied_contexts(n, "shuffled")
        assert sorted(sh) == lay.varied_contexts(n, "spread") and sh != lay.varied_contexts(n, "spread")
        assert sh == lay.varied_contexts(n, "shuffled")
    # live_like: seeded, within 64-2048, mean and longest near the d04 runs' busy batches
    live = lay.varied_contexts(32, "live_like")
    assert live == lay.varied_contexts(32, "live_like") and 64 <= min(live) and max(live) <= 2048
    assert 400 < sum(live) / 32 < 800 and max(live) > 1500
    with pytest.raises(ValueError, match="layout"):
        lay.varied_contexts(8, "nope")
