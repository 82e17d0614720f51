"""Triton kernels of Dop's search space: every sketch of ``space.py``, parameterised by its details.

Each candidate computes exactly the operator of ``gpu/kernels`` (same layouts, same segment
metadata ``SegmentInfo``, same rounding points as SGMV's dot path):

    y[rows of s] += (x[rows] @ A[slot_s, :r]^T) @ B[slot_s, :r] * scale[slot_s]

with ``a_stack [S, R, h_in]`` and ``b_stack [S, R, h_out]`` rank-major (B^T, as in gpu/kernels),
rows past a slot's rank masked (never read), slot -1 and empty segments skipped, an optional
``row_index`` for unsorted batches. Launches depend only on shapes and ``seg.max_seg_len`` (a
Python int), never on the segment data, so each candidate can be captured in a CUDA graph.

Kernels (``space.py`` explains the sketches):

- ``dop_shrink_kernel``: v (+)= x @ A^T per (K slice, row item); split mode none (store), atomic
  (fp32 atomics into a zeroed v) or two-phase (partial sums into a workspace ``ws [split, T, BR]``,
  summed by ``dop_reduce_kernel``).
- ``dop_expand_kernel``: y += v @ B * scale per (n-tile, row item); the B tile is loaded once per
  program and reused for every m-tile the program walks (adapter-major when ``order="adapter"``).
- ``dop_fused_kernel``: per (n-split, row item): the rank-r intermediate of the item's rows is
  computed over all of h_in and kept in registers, then expanded over the program's share of the
  n-tiles (``n_split`` programs share h_out and each recomputes the shrink of its rows).

Slices (horizontal fusion, ``dop_apply_sliced``): projections that read the same input (q, k and
v of one layer) run as one shrink and one expand. The shrink's K programs are repeated per slice
(slice ``j`` reads ``A[j]`` and writes columns ``j*R ..`` of v); the expand walks the n-tiles of the
slices' concatenated output ``y [T, H]`` and B ``[S, R, H]``, each tile inside one slice (slice
widths a multiple of ``block_n``) and reading that slice's columns of v. One slice is the plain
operator (``N_SLICES=1`` compiles exactly the kernels above).

Grid: 3-D, (n / K / n-split, m-group, row item) or, with ``item_fast``, (m-group, row item,
n / K / n-split). Row items: ``TILES=False`` is the segment tiling (item = segment slot; the
segment's m-tiles are shared by ``m_groups`` programs, each striding by ``m_groups`` tiles);
``TILES=True`` numbers the m-tiles of the whole batch and each program finds its segment by a
prefix sum of the per-segment tile counts (no idle programs for short or empty segments; items
past the last tile exit at once). ``math="dot"`` uses
``tl.dot`` (v rounded to the weights' dtype before the expand GEMM, as SGMV); ``math="gemv"``
multiplies and sums in fp32 on the CUDA cores (1-4 rows per tile, no padding to 16 rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from gpu.kernels.ops import SegmentInfo

from .space import Candidate, block_r, cdiv, k_per_split, m_items, next_pow2

SPLIT_MODES = {"none": 0, "atomic": 1, "two_phase": 2}


@triton.jit
def _pids(ITEM_FAST: tl.constexpr):
    """(program along n / K / n-split, m-group, row item) from the 3-D grid (see ``_grid``)."""
    if ITEM_FAST:
        pid_m = tl.program_id(0)
        pid_item = tl.program_id(1)
        pid_d = tl.program_id(2)
        m_groups = tl.num_programs(0)
        n_d = tl.num_programs(2)
    else:
        pid_d = tl.program_id(0)
        pid_m = tl.program_id(1)
        pid_item = tl.program_id(2)
        m_groups = tl.num_programs(1)
        n_d = tl.num_programs(0)
    return pid_d, n_d, pid_m, m_groups, pid_item


@triton.jit
def _locate(pid_item, pid_m, m_groups, seg_starts_ptr, seg_lens_ptr, seg_slots_ptr, num_segments,
            BLOCK_M: tl.constexpr, BLOCK_S: tl.constexpr, TILES: tl.constexpr):
    """Row item -> (first row of its segment, slot, rows of the segment (0: nothing to do), first
    m offset, end of the m range, m stride). Segment tiling: the item is the segment slot and
    ``pid_m`` the m-group; tiles tiling: the item is the m-tile's number in the batch."""
    if TILES:
        offs_s = tl.arange(0, BLOCK_S)
        s_mask = offs_s < num_segments
        lens = tl.load(seg_lens_ptr + offs_s, mask=s_mask, other=0)
        slots = tl.load(seg_slots_ptr + offs_s, mask=s_mask, other=-1)
        tiles = tl.where(slots >= 0, (lens + BLOCK_M - 1) // BLOCK_M, 0)
        cum = tl.cumsum(tiles, 0)  # inclusive prefix sum of m-tiles per segment
        seg = tl.sum((cum <= pid_item).to(tl.int32), 0)
        before = tl.sum(tl.where(offs_s < seg, tiles, 0), 0)
        valid = pid_item < tl.sum(tiles, 0)
        seg = tl.minimum(seg, num_segments - 1)
        m_lo = (pid_item - before) * BLOCK_M
        m_step = BLOCK_M
    else:
        seg = pid_item
        valid = seg < num_segments
        m_lo = pid_m * BLOCK_M
        m_step = m_groups * BLOCK_M
    seg_start = tl.load(seg_starts_ptr + seg)
    seg_len = tl.load(seg_lens_ptr + seg)
    slot = tl.load(seg_slots_ptr + seg)
    n_rows = tl.where((slot >= 0) & valid, seg_len, 0)
    if TILES:
        m_hi = tl.minimum(n_rows, m_lo + BLOCK_M)
    else:
        m_hi = n_rows
    return seg_start, slot, n_rows, m_lo, m_hi, m_step


@triton.jit
def _rows(row_index_ptr, seg_start, offs_m, m_mask, HAS_ROW_INDEX: tl.constexpr):
    if HAS_ROW_INDEX:
        rows = tl.load(row_index_ptr + seg_start + offs_m, mask=m_mask, other=0).to(tl.int64)
    else:
        rows = (seg_start + offs_m).to(tl.int64)
    return rows


@triton.jit
def _shrink_tile(x_ptr, a_base, rows, m_mask, offs_r, r_mask, k_begin, k_end, h_in,
                 stride_xm, stride_xk, stride_ar, stride_ak,
                 BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_R: tl.constexpr, USE_DOT: tl.constexpr):
    """fp32 [BLOCK_M, BLOCK_R] = x[rows, k_begin:k_end] @ A[:, k_begin:k_end]^T."""
    offs_k = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_R), dtype=tl.float32)
    for k0 in range(k_begin, k_end, BLOCK_K):
        kk = k0 + offs_k
        k_mask = kk < h_in
        xt = tl.load(x_ptr + rows[:, None] * stride_xm + kk[None, :] * stride_xk,
                     mask=m_mask[:, None] & k_mask[None, :], other=0.0)
        at = tl.load(a_base + offs_r[None, :] * stride_ar + kk[:, None] * stride_ak,
                     mask=r_mask[None, :] & k_mask[:, None], other=0.0)
        if USE_DOT:
            acc += tl.dot(xt, at)
        else:
            acc += tl.sum(xt.to(tl.float32)[:, :, None] * at.to(tl.float32)[None, :, :], axis=1)
    return acc


@triton.jit
def dop_shrink_kernel(
    x_ptr, a_ptr, v_ptr, ws_ptr,
    seg_starts_ptr, seg_lens_ptr, seg_slots_ptr, ranks_ptr, row_index_ptr,
    num_segments, h_in, k_per_split,
    stride_xm, stride_xk,
    stride_as, stride_ar, stride_ak,
    stride_vm, stride_vr,
    stride_wk, stride_wm,
    stride_aj, v_slice,
    BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_S: tl.constexpr,
    TILES: tl.constexpr, ITEM_FAST: tl.constexpr, SPLIT_MODE: tl.constexpr, USE_DOT: tl.constexpr,
    HAS_ROW_INDEX: tl.constexpr, N_SLICES: tl.constexpr,
):
    """v[rows, :rank] (+)= x[rows, K slice] @ A[slot, :rank, K slice]^T (or into ws[slice]).
    With slices, program ``d`` along the first grid axis is (slice ``d // n_k``, K slice ``d % n_k``);
    slice ``j`` reads ``A + j * stride_aj`` and writes v's columns from ``j * v_slice`` (ws's from
    ``j * BLOCK_R``)."""
    pid_d, n_d, pid_m, m_groups, pid_item = _pids(ITEM_FAST)
    if N_SLICES > 1:
        n_k = n_d // N_SLICES
        sl = pid_d // n_k
        pid_k = pid_d - sl * n_k
    else:
        sl = 0
        pid_k = pid_d
    seg_start, slot, n_rows, m_lo, m_hi, m_step = _locate(
        pid_item, pid_m, m_groups, seg_starts_ptr, seg_lens_ptr, seg_slots_ptr, num_segments, BLOCK_M, BLOCK_S, TILES)
    safe_slot = tl.maximum(slot, 0)
    rank = tl.load(ranks_ptr + safe_slot)
    offs_r = tl.arange(0, BLOCK_R)
    r_mask = offs_r < rank
    k_begin = pid_k * k_per_split
    k_end = tl.minimum(k_begin + k_per_split, h_in)
    a_base = a_ptr + safe_slot.to(tl.int64) * stride_as + sl * stride_aj
    v_col = sl * v_slice + offs_r
    for m0 in range(m_lo, m_hi, m_step):
        offs_m = m0 + tl.arange(0, BLOCK_M)
        m_mask = offs_m < m_hi
        rows = _rows(row_index_ptr, seg_start, offs_m, m_mask, HAS_ROW_INDEX)
        acc = _shrink_tile(x_ptr, a_base, rows, m_mask, offs_r, r_mask, k_begin, k_end, h_in,
                           stride_xm, stride_xk, stride_ar, stride_ak, BLOCK_M, BLOCK_K, BLOCK_R, USE_DOT)
        mask = m_mask[:, None] & r_mask[None, :]
        if SPLIT_MODE == 2:
            tl.store(ws_ptr + pid_k * stride_wk + rows[:, None] * stride_wm + (sl * BLOCK_R + offs_r)[None, :], acc,
                     mask=mask)
        elif SPLIT_MODE == 1:
            tl.atomic_add(v_ptr + rows[:, None] * stride_vm + v_col[None, :] * stride_vr, acc, mask=mask,
                          sem="relaxed")
        else:
            tl.store(v_ptr + rows[:, None] * stride_vm + v_col[None, :] * stride_vr, acc, mask=mask)


@triton.jit
def dop_reduce_kernel(ws_ptr, v_ptr, n_elems, split, stride_wk, stride_vm, stride_vr, v_cols,
                      BLOCK_R: tl.constexpr, BLOCK: tl.constexpr, N_SLICES: tl.constexpr):
    """Two-phase split-K, second phase: v[t, j * v_cols + c] = sum over K slices of
    ws[K slice, t, j * BLOCK_R + c] (j the projection slice, c < v_cols)."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    row = offs // (N_SLICES * BLOCK_R)
    wcol = offs % (N_SLICES * BLOCK_R)
    sl = wcol // BLOCK_R
    col = wcol % BLOCK_R
    mask = (offs < n_elems) & (col < v_cols)
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for k in range(0, split):
        acc += tl.load(ws_ptr + k * stride_wk + offs, mask=mask, other=0.0)
    tl.store(v_ptr + row.to(tl.int64) * stride_vm + (sl * v_cols + col) * stride_vr, acc, mask=mask)


@triton.jit
def _expand_tile(vt, bt, USE_DOT: tl.constexpr):
    """fp32 [BLOCK_M, BLOCK_N] = v [BLOCK_M, BLOCK_R] @ B tile [BLOCK_R, BLOCK_N]."""
    if USE_DOT:
        out = tl.dot(vt.to(bt.dtype), bt)
    else:
        out = tl.sum(vt.to(tl.float32)[:, :, None] * bt.to(tl.float32)[None, :, :], axis=1)
    return out


@triton.jit
def dop_expand_kernel(
    v_ptr, b_ptr, y_ptr,
    seg_starts_ptr, seg_lens_ptr, seg_slots_ptr, ranks_ptr, scales_ptr, row_index_ptr,
    num_segments, h_out,
    stride_vm, stride_vr,
    stride_bs, stride_br, stride_bn,
    stride_ym, stride_yn,
    bound1, bound2, v_slice,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_S: tl.constexpr,
    TILES: tl.constexpr, ITEM_FAST: tl.constexpr, USE_DOT: tl.constexpr, HAS_ROW_INDEX: tl.constexpr,
    N_SLICES: tl.constexpr,
):
    """y[rows, n-tile] += (v[rows, :rank] @ B[slot, :rank, n-tile]) * scale[slot]. With slices, the
    n-tile at column n0 belongs to slice (n0 >= bound1) + (n0 >= bound2) and reads v's columns from
    that slice times ``v_slice``."""
    pid_n, _, pid_m, m_groups, pid_item = _pids(ITEM_FAST)
    if N_SLICES > 1:
        n0 = pid_n * BLOCK_N
        v_off = ((n0 >= bound1).to(tl.int32) + (n0 >= bound2).to(tl.int32)) * v_slice
    else:
        v_off = 0
    seg_start, slot, n_rows, m_lo, m_hi, m_step = _locate(
        pid_item, pid_m, m_groups, seg_starts_ptr, seg_lens_ptr, seg_slots_ptr, num_segments, BLOCK_M, BLOCK_S, TILES)
    safe_slot = tl.maximum(slot, 0)
    rank = tl.where(n_rows > 0, tl.load(ranks_ptr + safe_slot), 0)  # idle programs read no B
    scale = tl.load(scales_ptr + safe_slot).to(tl.float32)
    offs_r = tl.arange(0, BLOCK_R)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    r_mask = offs_r < rank
    n_mask = offs_n < h_out
    bt = tl.load(b_ptr + safe_slot.to(tl.int64) * stride_bs + offs_r[:, None] * stride_br + offs_n[None, :] * stride_bn,
                 mask=r_mask[:, None] & n_mask[None, :], other=0.0)
    for m0 in range(m_lo, m_hi, m_step):
        offs_m = m0 + tl.arange(0, BLOCK_M)
        m_mask = offs_m < m_hi
        rows = _rows(row_index_ptr, seg_start, offs_m, m_mask, HAS_ROW_INDEX)
        vt = tl.load(v_ptr + rows[:, None] * stride_vm + (v_off + offs_r)[None, :] * stride_vr,
                     mask=m_mask[:, None] & r_mask[None, :], other=0.0)
        acc = _expand_tile(vt, bt, USE_DOT)
        y_ptrs = y_ptr + rows[:, None] * stride_ym + offs_n[None, :] * stride_yn
        y_mask = m_mask[:, None] & n_mask[None, :]
        yt = tl.load(y_ptrs, mask=y_mask, other=0.0)
        tl.store(y_ptrs, (yt.to(tl.float32) + acc * scale).to(yt.dtype), mask=y_mask)


@triton.jit
def dop_fused_kernel(
    x_ptr, a_ptr, b_ptr, y_ptr,
    seg_starts_ptr, seg_lens_ptr, seg_slots_ptr, ranks_ptr, scales_ptr, row_index_ptr,
    num_segments, h_in, h_out,
    stride_xm, stride_xk,
    stride_as, stride_ar, stride_ak,
    stride_bs, stride_br, stride_bn,
    stride_ym, stride_yn,
    BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr,
    BLOCK_S: tl.constexpr, TILES: tl.constexpr, ITEM_FAST: tl.constexpr, USE_DOT: tl.constexpr,
    HAS_ROW_INDEX: tl.constexpr,
):
    """Shrink and expand in one kernel: v stays in registers; program (n-split j, row item) adds
    the update of n-tiles j, j + n_split, ... of its rows."""
    pid_ns, n_split, pid_m, m_groups, pid_item = _pids(ITEM_FAST)
    seg_start, slot, n_rows, m_lo, m_hi, m_step = _locate(
        pid_item, pid_m, m_groups, seg_starts_ptr, seg_lens_ptr, seg_slots_ptr, num_segments, BLOCK_M, BLOCK_S, TILES)
    safe_slot = tl.maximum(slot, 0)
    rank = tl.load(ranks_ptr + safe_slot)
    scale = tl.load(scales_ptr + safe_slot).to(tl.float32)
    offs_r = tl.arange(0, BLOCK_R)
    r_mask = offs_r < rank
    a_base = a_ptr + safe_slot.to(tl.int64) * stride_as
    b_base = b_ptr + safe_slot.to(tl.int64) * stride_bs
    for m0 in range(m_lo, m_hi, m_step):
        offs_m = m0 + tl.arange(0, BLOCK_M)
        m_mask = offs_m < m_hi
        rows = _rows(row_index_ptr, seg_start, offs_m, m_mask, HAS_ROW_INDEX)
        v = _shrink_tile(x_ptr, a_base, rows, m_mask, offs_r, r_mask, 0, h_in, h_in,
                         stride_xm, stride_xk, stride_ar, stride_ak, BLOCK_M, BLOCK_K, BLOCK_R, USE_DOT)
        if USE_DOT:
            v = v.to(b_ptr.dtype.element_ty)
        for n0 in range(pid_ns * BLOCK_N, h_out, n_split * BLOCK_N):
            offs_n = n0 + tl.arange(0, BLOCK_N)
            n_mask = offs_n < h_out
            bt = tl.load(b_base + offs_r[:, None] * stride_br + offs_n[None, :] * stride_bn,
                         mask=r_mask[:, None] & n_mask[None, :], other=0.0)
            acc = _expand_tile(v, bt, USE_DOT)
            y_ptrs = y_ptr + rows[:, None] * stride_ym + offs_n[None, :] * stride_yn
            y_mask = m_mask[:, None] & n_mask[None, :]
            yt = tl.load(y_ptrs, mask=y_mask, other=0.0)
            tl.store(y_ptrs, (yt.to(tl.float32) + acc * scale).to(yt.dtype), mask=y_mask)


# -- launcher -------------------------------------------------------------------------------------

@dataclass
class Scratch:
    """Buffers a candidate needs besides x, y and the slot stacks: v (fp32 [T, slices x R]) for
    separate kernels, and the two-phase workspace (fp32 [split, T, slices x BR])."""

    v: torch.Tensor | None
    ws: torch.Tensor | None


def make_workspace(c: Candidate, tokens: int, h_in: int, rank: int, device, slices: int = 1) -> torch.Tensor | None:
    """The two-phase split-K workspace of candidate ``c`` (fp32 [split, T, slices x BR]), None for
    the other sketches."""
    if c.fuse == "fused" or c.split != "two_phase":
        return None
    _, sk = k_per_split(c, h_in)
    return torch.empty((sk, tokens, slices * block_r(c, rank)), dtype=torch.float32, device=device)


def make_scratch(c: Candidate, tokens: int, h_in: int, max_rank: int, device, slices: int = 1) -> Scratch:
    """Allocate the scratch of candidate ``c`` for a batch of ``tokens`` rows (outside timed regions)."""
    if c.fuse == "fused":
        return Scratch(None, None)
    v = torch.empty((tokens, slices * max_rank), dtype=torch.float32, device=device)
    return Scratch(v, make_workspace(c, tokens, h_in, max_rank, device, slices))


def _grid(c: Candidate, dim: int, items: int, m_groups: int) -> tuple[int, int, int]:
    """3-D grid: (n / K / n-split programs, m-groups, row items), or (m-groups, row items, n / K /
    n-split) when ``item_fast`` (consecutive programs walk the rows of one weight tile)."""
    items = items // m_groups  # segment slots (segment tiling) or m-tiles (tiles tiling, m_groups 1)
    return (m_groups, items, dim) if c.item_fast else (dim, m_groups, items)


def dop_apply(x: torch.Tensor, y: torch.Tensor, a_stack: torch.Tensor, b_stack: torch.Tensor, seg: SegmentInfo,
              ranks: torch.Tensor, scales: torch.Tensor, c: Candidate, scratch: Scratch | None = None) -> torch.Tensor:
    """``y[i] += (x[i] @ A[s, :r].T) @ B[s, :r] * scale[s]`` for row i of segment s, by candidate ``c``.

    Same arguments as ``gpu.kernels.lora_apply(kind="sgmv")`` (ranks int32 and scales fp32 device
    tensors), plus the candidate and its scratch (``make_scratch``; allocated here if None)."""
    return _launch(x, y, a_stack.unsqueeze(0), b_stack, seg, ranks, scales, c, scratch, ())


def slices_fit(c: Candidate, bounds: tuple[int, ...], h_out: int) -> bool:
    """Whether candidate ``c`` can run the slices that start at columns ``bounds`` of an output of
    ``h_out`` columns in one launch: separate kernels, at most three slices, every n-tile inside one."""
    return (c.fuse == "separate" and len(bounds) <= 2 and all(0 < b < h_out for b in bounds)
            and list(bounds) == sorted(bounds) and all(b % c.block_n == 0 for b in bounds))


def dop_apply_sliced(x: torch.Tensor, y: torch.Tensor, a_slices: torch.Tensor, b_cat: torch.Tensor,
                     seg: SegmentInfo, ranks: torch.Tensor, scales: torch.Tensor, c: Candidate,
                     bounds: tuple[int, ...], scratch: Scratch | None = None) -> torch.Tensor:
    """Horizontal fusion of projections that share the input x: for each slice j,
    ``y[i, cols of j] += (x[i] @ A[j, s, :r].T) @ B[s, :r, cols of j] * scale[s]``, one shrink and
    one expand for all of them.

    ``a_slices [n, S, R, h_in]`` (n = len(bounds) + 1, at most 3), ``b_cat [S, R, H]`` and ``y [T, H]``
    with the slices side by side, slice j + 1 starting at column ``bounds[j]``. Needs
    ``slices_fit(c, bounds, H)``; the scratch holds n x R columns of v (``make_scratch(...,
    slices=n)``). Equal to n calls of ``dop_apply`` on the column slices, to the rounding of v."""
    if a_slices.dim() != 4 or a_slices.shape[0] != len(bounds) + 1:
        raise ValueError(f"dop_apply_sliced: a_slices {tuple(a_slices.shape)} does not hold {len(bounds) + 1} slices")
    if not slices_fit(c, bounds, y.shape[1]):
        raise ValueError(f"dop_apply_sliced: candidate {c.key()} cannot run slices at {bounds} of {y.shape[1]} columns")
    return _launch(x, y, a_slices, b_cat, seg, ranks, scales, c, scratch, tuple(bounds))


def _launch(x, y, a4, b_stack, seg, ranks, scales, c: Candidate, scratch: Scratch | None, bounds: tuple[int, ...]):
    tokens, h_in = x.shape
    h_out = y.shape[1]
    n_sl = a4.shape[0]
    R = a4.shape[2]
    if scratch is None:
        scratch = make_scratch(c, tokens, h_in, R, x.device, slices=n_sl)
    br = block_r(c, R)
    S = seg.max_segments
    items, m_groups = m_items(c, S, tokens, seg.max_seg_len)
    bs = max(16, next_pow2(S))
    row_index = seg.row_index if seg.row_index is not None else seg.seg_starts
    common = dict(BLOCK_M=c.block_m, BLOCK_R=br, BLOCK_S=bs, TILES=c.tiling == "tiles", ITEM_FAST=bool(c.item_fast),
                  USE_DOT=c.math == "dot", HAS_ROW_INDEX=seg.row_index is not None)
    if c.fuse == "fused":
        a_stack = a4[0]
        dop_fused_kernel[_grid(c, c.n_split, items, m_groups)](
            x, a_stack, b_stack, y,
            seg.seg_starts, seg.seg_lens, seg.seg_slots, ranks, scales, row_index,
            S, h_in, h_out,
            x.stride(0), x.stride(1),
            a_stack.stride(0), a_stack.stride(1), a_stack.stride(2),
            b_stack.stride(0), b_stack.stride(1), b_stack.stride(2),
            y.stride(0), y.stride(1),
            BLOCK_K=c.block_k, BLOCK_N=c.block_n, **common,
            num_warps=c.warps_s, num_stages=c.stages_s,
        )
        return y
    v, ws = scratch.v, scratch.ws
    kps, sk = k_per_split(c, h_in)
    mode = SPLIT_MODES[c.split] if sk > 1 else 0
    if mode == 1:
        v.zero_()
    ws_arg = ws if ws is not None else v
    v_slice = R if n_sl > 1 else 0
    dop_shrink_kernel[_grid(c, sk * n_sl, items, m_groups)](
        x, a4, v, ws_arg,
        seg.seg_starts, seg.seg_lens, seg.seg_slots, ranks, row_index,
        S, h_in, kps,
        x.stride(0), x.stride(1),
        a4.stride(1), a4.stride(2), a4.stride(3),
        v.stride(0), v.stride(1),
        ws_arg.stride(0), ws_arg.stride(1),
        a4.stride(0) if n_sl > 1 else 0, v_slice,
        BLOCK_K=c.block_k, SPLIT_MODE=mode, N_SLICES=n_sl, **common,
        num_warps=c.warps_s, num_stages=c.stages_s,
    )
    if mode == 2:
        n = tokens * br * n_sl
        v_cols = R if n_sl > 1 else v.shape[1]
        dop_reduce_kernel[(cdiv(n, 1024),)](ws, v, n, sk, ws.stride(0), v.stride(0), v.stride(1), v_cols,
                                            BLOCK_R=br, BLOCK=1024, N_SLICES=n_sl, num_warps=4)
    b1 = bounds[0] if len(bounds) > 0 else h_out
    b2 = bounds[1] if len(bounds) > 1 else h_out
    dop_expand_kernel[_grid(c, cdiv(h_out, c.block_n), items, m_groups)](
        v, b_stack, y,
        seg.seg_starts, seg.seg_lens, seg.seg_slots, ranks, scales, row_index,
        S, h_out,
        v.stride(0), v.stride(1),
        b_stack.stride(0), b_stack.stride(1), b_stack.stride(2),
        y.stride(0), y.stride(1),
        b1, b2, v_slice,
        BLOCK_N=c.block_n, N_SLICES=n_sl, **common,
        num_warps=c.warps_e, num_stages=c.stages_e,
    )
    return y
