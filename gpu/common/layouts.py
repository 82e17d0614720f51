"""The contexts of `step_decode_varied`'s batches (gpu/profile_steps.py), without torch, so that the
scripts that study the table (scripts/decode_tail_forms.py) rebuild the very batches measured."""

from __future__ import annotations

import math
import random

VARIED_LAYOUTS = ("spread", "one_long", "two_level", "scattered", "shuffled", "live_like")


def varied_contexts(n: int, layout: str) -> list[int]:
    """Per-sequence contexts of a `step_decode_varied` batch: ``spread``, evenly from 256 to 1792
    (mean 1024); ``one_long``, all 256 but one of 4096; ``two_level``, a quarter (at least one) at
    2048 and the rest at 384, a few long among many short as in a live engine's batches (the
    5d28821 runs' graph-32 batches: mean context about 600, longest about 2,000, an excess the
    other two layouts, 768 and about 3,800, bracket but do not hold); ``scattered``, all 1024 (the
    grid's row, with the blocks scattered as below); ``shuffled``, spread's contexts in a seeded
    random order (the launch order of the (sequence, head) programs follows the batch's order, and
    spread puts its longest last); ``live_like``, a seeded log-normal draw (median 450 tokens,
    clipped to 64-2048, the shape of the d04 runs' busy graph-32 batches: mean about 600, longest
    about 2,000), in the order drawn."""
    if layout in ("shuffled", "live_like"):
        rng = random.Random(1000 + n)
        if layout == "shuffled":
            out = varied_contexts(n, "spread")
            rng.shuffle(out)
            return out
        return [min(2048, max(64, round(rng.lognormvariate(math.log(450), 0.8)))) for _ in range(n)]
    if layout == "spread":
        return [256 + round(1536 * i / max(n - 1, 1)) for i in range(n)]
    if layout == "one_long":
        return [256] * (n - 1) + [4096]
    if layout == "two_level":
        long = max(1, n // 4)
        return [384] * (n - long) + [2048] * long
    if layout == "scattered":
        return [1024] * n
    raise ValueError(f"unknown layout {layout!r}")
