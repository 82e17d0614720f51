"""References for SGMV: the float64 ground truth, and the two ways to run it without a custom kernel.

- ``fp64_apply``: every segment in float64 (inputs upcast exactly); the correctness reference.
- ``torch_loop_*``: a Python loop of per-segment ``torch.matmul`` (cuBLAS); one pair of GEMMs
  per segment, so its launches grow with the number of adapters in the batch.
- ``bmm_*``: BGMV as a gathered batched matmul: each row gathers its slot's A and B
  (``index_select``) and one ``torch.bmm`` does all rows; it moves T copies of the weights and
  computes at the largest rank, so it needs slot buffers zero-padded past each rank.

Ranks and scales may be Python lists (capturable: no host sync) or tensors (read with ``tolist``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .ops import SegmentInfo
from .segments import SegmentLayout


def _host_list(values: torch.Tensor | Sequence) -> list:
    return values.tolist() if isinstance(values, torch.Tensor) else list(values)


def _rows(row_index: tuple[int, ...] | None, start: int, length: int, device) -> slice | torch.Tensor:
    if row_index is None:
        return slice(start, start + length)
    return torch.tensor(row_index[start:start + length], dtype=torch.int64, device=device)


def _segments(seg: SegmentInfo) -> SegmentLayout:
    if seg.host is None:
        raise ValueError("the torch references need the host layout (SegmentInfo.host)")
    return seg.host


def fp64_apply(x: torch.Tensor, y: torch.Tensor, a_stack: torch.Tensor, b_stack: torch.Tensor, seg: SegmentInfo,
               ranks: torch.Tensor | Sequence[int], scales: torch.Tensor | Sequence[float]
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 ``(y + delta, v)``: the updated y and the shrink output v (zero past each rank)."""
    rk, sc = _host_list(ranks), _host_list(scales)
    layout = _segments(seg)
    out = y.double().clone()
    v = torch.zeros((x.shape[0], a_stack.shape[1]), dtype=torch.float64, device=x.device)
    for start, length, slot in zip(*layout, strict=True):
        if length == 0 or slot < 0:
            continue
        r = rk[slot]
        rows = _rows(seg.host_row_index, start, length, x.device)
        vs = x[rows].double() @ a_stack[slot, :r].double().T
        v[rows, :r] = vs
        out[rows] += (vs @ b_stack[slot, :r].double()) * sc[slot]
    return out, v


def torch_loop_shrink(x: torch.Tensor, a_stack: torch.Tensor, seg: SegmentInfo,
                      ranks: torch.Tensor | Sequence[int], v: torch.Tensor) -> torch.Tensor:
    """Per-segment ``v[rows, :r] = x[rows] @ A[s, :r].T`` (cuBLAS, in x's dtype, stored to v)."""
    rk = _host_list(ranks)
    layout = _segments(seg)
    for start, length, slot in zip(*layout, strict=True):
        if length == 0 or slot < 0:
            continue
        rows = _rows(seg.host_row_index, start, length, x.device)
        r = rk[slot]
        v[rows, :r] = torch.matmul(x[rows], a_stack[slot, :r].T).to(v.dtype)
    return v


def torch_loop_expand(v: torch.Tensor, b_stack: torch.Tensor, seg: SegmentInfo, ranks: torch.Tensor | Sequence[int],
                      scales: torch.Tensor | Sequence[float], y: torch.Tensor) -> torch.Tensor:
    """Per-segment ``y[rows] += (v[rows, :r] @ B[s, :r]) * scale`` (cuBLAS)."""
    rk, sc = _host_list(ranks), _host_list(scales)
    layout = _segments(seg)
    for start, length, slot in zip(*layout, strict=True):
        if length == 0 or slot < 0:
            continue
        rows = _rows(seg.host_row_index, start, length, y.device)
        r = rk[slot]
        y[rows] += torch.matmul(v[rows, :r].to(y.dtype), b_stack[slot, :r]) * sc[slot]
    return y


def torch_loop_apply(x: torch.Tensor, y: torch.Tensor, a_stack: torch.Tensor, b_stack: torch.Tensor,
                     seg: SegmentInfo, ranks: torch.Tensor | Sequence[int],
                     scales: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """Per-segment ``y[rows] += (x[rows] @ A[s, :r].T) @ B[s, :r] * scale`` (two cuBLAS GEMMs each)."""
    rk, sc = _host_list(ranks), _host_list(scales)
    layout = _segments(seg)
    for start, length, slot in zip(*layout, strict=True):
        if length == 0 or slot < 0:
            continue
        rows = _rows(seg.host_row_index, start, length, x.device)
        r = rk[slot]
        vs = torch.matmul(x[rows], a_stack[slot, :r].T)
        if isinstance(rows, slice):
            y[rows].add_(torch.matmul(vs, b_stack[slot, :r]), alpha=sc[slot])
        else:
            y[rows] += torch.matmul(vs, b_stack[slot, :r]) * sc[slot]
    return y


def _row_gather(seg: SegmentInfo, scales: torch.Tensor | Sequence[float], device) -> tuple[torch.Tensor, torch.Tensor]:
    if seg.row_slots is None:
        raise ValueError("the bmm reference needs SegmentInfo.row_slots")
    slots = seg.row_slots.clamp(min=0)
    sc = scales if isinstance(scales, torch.Tensor) else torch.tensor(list(scales), dtype=torch.float32, device=device)
    row_scale = torch.where(seg.row_slots >= 0, sc.to(device)[slots], 0.0)
    return slots, row_scale


def bmm_shrink(x: torch.Tensor, a_stack: torch.Tensor, seg: SegmentInfo, max_rank: int) -> torch.Tensor:
    """Gathered ``[T, r] = bmm(A[slot_t, :r], x_t)`` at rank ``max_rank`` (zero-padded slots), x's dtype."""
    slots = seg.row_slots.clamp(min=0) if seg.row_slots is not None else None
    if slots is None:
        raise ValueError("the bmm reference needs SegmentInfo.row_slots")
    a_rows = a_stack[:, :max_rank].index_select(0, slots)  # [T, r, h_in]
    return torch.bmm(a_rows, x.unsqueeze(2)).squeeze(2)


def bmm_apply(x: torch.Tensor, y: torch.Tensor, a_stack: torch.Tensor, b_stack: torch.Tensor, seg: SegmentInfo,
              ranks: torch.Tensor | Sequence[int], scales: torch.Tensor | Sequence[float],
              max_rank: int | None = None) -> torch.Tensor:
    """BGMV: ``y[t] += (x[t] @ A[slot_t].T) @ B[slot_t] * scale`` by two batched matmuls over gathered weights."""
    r = max_rank if max_rank is not None else a_stack.shape[1]
    slots, row_scale = _row_gather(seg, scales, x.device)
    a_rows = a_stack[:, :r].index_select(0, slots)  # [T, r, h_in]
    v = torch.bmm(a_rows, x.unsqueeze(2))  # [T, r, 1]
    b_rows = b_stack[:, :r].index_select(0, slots)  # [T, r, h_out]
    d = torch.bmm(v.transpose(1, 2), b_rows).squeeze(1)  # [T, h_out]
    y.add_(d * row_scale[:, None].to(d.dtype))
    return y
