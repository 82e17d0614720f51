"""Fewest bytes and flops of a LoRA operator, and its roofline time. Torch-free.

Bytes count each input read once and each output written once: x [T, h_in] and the A rows of the
adapters present (``r * h_in`` each) for shrink, plus v in fp32 ([T, r], written by shrink and read
by expand); B rows (``r * h_out``) and y read and written for expand. ``apply`` (shrink + expand)
excludes v, an intermediate. Flops: ``2 * rows * r * h`` per half. Rows of segments without an
adapter, and empty segments, count nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

OPS: tuple[str, ...] = ("apply", "shrink", "expand")
V_BYTES = 4


def _pairs(seg_lens: Sequence[int], seg_ranks: Sequence[int]) -> list[tuple[int, int]]:
    if len(seg_lens) != len(seg_ranks):
        raise ValueError(f"{len(seg_lens)} segment lengths but {len(seg_ranks)} ranks")
    return [(n, r) for n, r in zip(seg_lens, seg_ranks, strict=True) if n > 0 and r > 0]


def op_bytes(op: str, seg_lens: Sequence[int], seg_ranks: Sequence[int], h_in: int, h_out: int,
             elem_bytes: int = 2) -> int:
    """Fewest bytes ``op`` moves through device memory (each distinct segment's weights once)."""
    pairs = _pairs(seg_lens, seg_ranks)
    rows = sum(n for n, _ in pairs)
    a = sum(r * h_in for _, r in pairs) * elem_bytes
    b = sum(r * h_out for _, r in pairs) * elem_bytes
    v = sum(n * r for n, r in pairs) * V_BYTES
    x = rows * h_in * elem_bytes
    y = 2 * rows * h_out * elem_bytes
    if op == "shrink":
        return x + a + v
    if op == "expand":
        return v + b + y
    if op == "apply":
        return x + a + b + y
    raise ValueError(f"unknown op {op!r}; expected one of {OPS}")


def op_flops(op: str, seg_lens: Sequence[int], seg_ranks: Sequence[int], h_in: int, h_out: int) -> int:
    """Multiply-add flops (2 per MAC) of ``op``."""
    pairs = _pairs(seg_lens, seg_ranks)
    shrink = sum(2 * n * r * h_in for n, r in pairs)
    expand = sum(2 * n * r * h_out for n, r in pairs)
    return {"shrink": shrink, "expand": expand, "apply": shrink + expand}[op]


def roofline_us(nbytes: int, flops: int, bytes_per_s: float, flops_per_s: float) -> float:
    """Roofline time in microseconds: max(bytes / bandwidth, flops / tensor peak)."""
    return max(nbytes / bytes_per_s, flops / flops_per_s) * 1e6
