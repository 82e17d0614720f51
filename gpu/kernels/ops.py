"""SGMV operators on torch tensors: segment info on the device, shrink, expand, and ``lora_apply``.

Capture-safe: the launch is decided from tensor shapes and the Python-int bounds carried by
``SegmentInfo`` (``max_seg_len``), never from tensor contents; nothing syncs with the host. To
replay one CUDA graph over changing batches, allocate a ``SegmentInfo`` with ``pad_layout`` to a
fixed number of segment slots and ``max_seg_len = tokens``, capture, then ``update`` it in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .config import ExpandConfig, ShrinkConfig, expand_config, shrink_config
from .segments import NO_ADAPTER, SegmentLayout


@dataclass
class SegmentInfo:
    """Segment metadata of one batch on the device (int32 tensors of equal length).

    ``row_index`` (optional, int32 [tokens]): sorted position -> row of x / y, for batches that
    are not grouped by slot (``segments.sort_permutation``). ``max_seg_len`` bounds every segment's
    length (a Python int, fixed per captured graph; the token count is always a valid bound).
    ``row_slots`` (int64 [tokens], slot per row of x / y, -1 for none) and ``host`` (the layout on
    the host) serve the torch references only.
    """

    seg_starts: torch.Tensor
    seg_lens: torch.Tensor
    seg_slots: torch.Tensor
    max_seg_len: int
    row_index: torch.Tensor | None = None
    row_slots: torch.Tensor | None = None
    host: SegmentLayout | None = None
    host_row_index: tuple[int, ...] | None = None

    @property
    def max_segments(self) -> int:
        """Number of segment slots (padding included): the grid's segment dimension."""
        return int(self.seg_lens.shape[0])

    @staticmethod
    def from_layout(layout: SegmentLayout, device: torch.device | str, *, tokens: int | None = None,
                    row_index: Sequence[int] | None = None, max_seg_len: int | None = None) -> SegmentInfo:
        """Copy a host layout to the device (non-capturable: it allocates and copies)."""
        n = tokens if tokens is not None else layout.num_rows
        sorted_slots = layout.row_slots(n)
        row_slots = [NO_ADAPTER] * n
        for p, s in enumerate(sorted_slots):
            row_slots[row_index[p] if row_index is not None else p] = s

        def i32(values: Sequence[int]) -> torch.Tensor:
            return torch.tensor(list(values), dtype=torch.int32, device=device)

        return SegmentInfo(
            seg_starts=i32(layout.seg_starts), seg_lens=i32(layout.seg_lens), seg_slots=i32(layout.seg_slots),
            max_seg_len=max_seg_len if max_seg_len is not None else max(1, layout.max_seg_len),
            row_index=i32(row_index) if row_index is not None else None,
            row_slots=torch.tensor(row_slots, dtype=torch.int64, device=device),
            host=layout, host_row_index=tuple(row_index) if row_index is not None else None,
        )

    def update(self, other: SegmentInfo) -> None:
        """Copy ``other``'s device metadata into these tensors (same shapes), for graph replay."""
        self.seg_starts.copy_(other.seg_starts, non_blocking=True)
        self.seg_lens.copy_(other.seg_lens, non_blocking=True)
        self.seg_slots.copy_(other.seg_slots, non_blocking=True)
        if self.row_index is not None and other.row_index is not None:
            self.row_index.copy_(other.row_index, non_blocking=True)
        if self.row_slots is not None and other.row_slots is not None:
            self.row_slots.copy_(other.row_slots, non_blocking=True)
        self.host, self.host_row_index = other.host, other.host_row_index


def _check(x: torch.Tensor, stack: torch.Tensor, name: str) -> None:
    if x.dim() != 2 or stack.dim() != 3:
        raise ValueError(f"{name}: expected a 2-D activation and a 3-D slot stack, got {x.shape} and {stack.shape}")
    if x.dtype != stack.dtype:
        raise ValueError(f"{name}: activation dtype {x.dtype} differs from slot stack dtype {stack.dtype}")


def _row_index_arg(seg: SegmentInfo) -> torch.Tensor:
    return seg.row_index if seg.row_index is not None else seg.seg_starts


def sgmv_shrink(x: torch.Tensor, a_stack: torch.Tensor, seg: SegmentInfo, ranks: torch.Tensor,
                v: torch.Tensor, *, config: ShrinkConfig | None = None) -> torch.Tensor:
    """``v[i, :r] = x[i] @ a_stack[s, :r].T`` for every row i of segment s (r = ranks[s]).

    x [T, h_in] fp16/bf16 (any strides); a_stack [S, R, h_in]; ranks int32 [S]; v fp32 [T, >= R].
    Columns of v past a row's rank are left as they were (zeroed when split-K is used).
    """
    _check(x, a_stack, "sgmv_shrink")
    if v.dtype != torch.float32:
        raise ValueError(f"sgmv_shrink: v must be float32, got {v.dtype}")
    tokens, h_in = x.shape
    cfg = config or shrink_config(tokens, h_in, a_stack.shape[1], seg.max_segments, seg.max_seg_len)
    from .triton_sgmv import sgmv_shrink_kernel

    use_atomic = cfg.split_k > 1
    if use_atomic:
        v.zero_()
    sgmv_shrink_kernel[cfg.grid(seg.max_segments)](
        x, a_stack, v,
        seg.seg_starts, seg.seg_lens, seg.seg_slots, ranks, _row_index_arg(seg),
        h_in, cfg.k_per_split,
        x.stride(0), x.stride(1),
        a_stack.stride(0), a_stack.stride(1), a_stack.stride(2),
        v.stride(0), v.stride(1),
        BLOCK_M=cfg.block_m, BLOCK_K=cfg.block_k, BLOCK_R=cfg.block_r,
        USE_ATOMIC=use_atomic, HAS_ROW_INDEX=seg.row_index is not None,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )
    return v


def sgmv_expand(v: torch.Tensor, b_stack: torch.Tensor, seg: SegmentInfo, ranks: torch.Tensor,
                scales: torch.Tensor, y: torch.Tensor, *, config: ExpandConfig | None = None) -> torch.Tensor:
    """``y[i] += (v[i, :r] @ b_stack[s, :r]) * scales[s]`` for every row i of segment s, in place.

    v fp32 [T, >= R]; b_stack [S, R, h_out]; scales fp32 [S]; y [T, h_out] (any strides, b's dtype).
    """
    _check(y, b_stack, "sgmv_expand")
    tokens, h_out = y.shape
    cfg = config or expand_config(tokens, h_out, b_stack.shape[1], seg.max_segments, seg.max_seg_len)
    from .triton_sgmv import sgmv_expand_kernel

    sgmv_expand_kernel[cfg.grid(h_out, seg.max_segments)](
        v, b_stack, y,
        seg.seg_starts, seg.seg_lens, seg.seg_slots, ranks, scales, _row_index_arg(seg),
        h_out,
        v.stride(0), v.stride(1),
        b_stack.stride(0), b_stack.stride(1), b_stack.stride(2),
        y.stride(0), y.stride(1),
        BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_R=cfg.block_r,
        HAS_ROW_INDEX=seg.row_index is not None,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )
    return y


def lora_apply(x: torch.Tensor, y: torch.Tensor, a_stack: torch.Tensor, b_stack: torch.Tensor,
               seg: SegmentInfo, ranks: torch.Tensor | Sequence[int], scales: torch.Tensor | Sequence[float],
               *, kind: str = "sgmv", v: torch.Tensor | None = None) -> torch.Tensor:
    """``y[i] += (x[i] @ A[s, :r].T) @ B[s, :r] * scale[s]`` for row i of segment s; returns y.

    ``kind``: ``"sgmv"`` (the Triton kernels; ranks / scales as device tensors), ``"torch"`` (a loop
    of per-segment cuBLAS matmuls; needs ``seg.host``), ``"bmm"`` (gathered batched matmul, BGMV;
    needs ``seg.row_slots`` and zero padding past each slot's rank). The references accept Python
    lists for ranks and scales, which keeps them capturable.
    """
    if kind == "sgmv":
        if v is None:
            v = torch.empty((x.shape[0], a_stack.shape[1]), dtype=torch.float32, device=x.device)
        sgmv_shrink(x, a_stack, seg, ranks, v)  # type: ignore[arg-type]
        return sgmv_expand(v, b_stack, seg, ranks, scales, y)  # type: ignore[arg-type]
    from . import reference

    if kind == "torch":
        return reference.torch_loop_apply(x, y, a_stack, b_stack, seg, ranks, scales)
    if kind == "bmm":
        return reference.bmm_apply(x, y, a_stack, b_stack, seg, ranks, scales)
    raise ValueError(f"unknown kind {kind!r}; expected 'sgmv', 'torch' or 'bmm'")
