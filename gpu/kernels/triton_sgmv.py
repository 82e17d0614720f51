"""Triton kernels of SGMV (Punica's Segmented Gather Matrix-Vector multiplication).

Layouts (rank-major, the layout of PEFT's ``lora_A.weight`` for A):

- ``a_stack [num_slots, max_rank, h_in]``: slot ``s`` holds its adapter's A (r x h_in) in rows 0..r-1.
- ``b_stack [num_slots, max_rank, h_out]``: slot ``s`` holds B^T of PEFT's ``lora_B.weight`` (r x h_out).

Both keep the rank as the outer dimension, so the rows a slot really uses are contiguous runs of
h_in or h_out elements: a rank-8 adapter in a rank-128 buffer costs 8 rows of traffic, not a
strided 8-of-128 gather. Rows past a slot's rank are masked, never read (no zero padding needed).

``v [T, >= max_rank]`` is fp32: the shrink's split-K partial sums meet there by atomic adds.

Each program reads its segment's (start, length, slot) from device tensors and loops over the
segment's m-tiles, so a launch depends only on bounds fixed per captured graph. Empty segments and
slot -1 give zero-trip loops. See ``config.py`` for the tiling choices.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def sgmv_shrink_kernel(
    x_ptr, a_ptr, v_ptr,
    seg_starts_ptr, seg_lens_ptr, seg_slots_ptr, ranks_ptr, row_index_ptr,
    h_in, k_per_split,
    stride_xm, stride_xk,
    stride_as, stride_ar, stride_ak,
    stride_vm, stride_vr,
    BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_R: tl.constexpr,
    USE_ATOMIC: tl.constexpr, HAS_ROW_INDEX: tl.constexpr,
):
    """v[rows of seg, :rank] (+)= x[rows, k-slice] @ A[slot, :rank, k-slice]^T."""
    pid_k = tl.program_id(0)
    pid_m = tl.program_id(1)
    seg = tl.program_id(2)
    m_step = tl.num_programs(1) * BLOCK_M

    seg_start = tl.load(seg_starts_ptr + seg)
    seg_len = tl.load(seg_lens_ptr + seg)
    slot = tl.load(seg_slots_ptr + seg)
    has_adapter = slot >= 0
    rank = tl.load(ranks_ptr + tl.maximum(slot, 0))
    n_rows = tl.where(has_adapter, seg_len, 0)

    offs_r = tl.arange(0, BLOCK_R)
    offs_k = tl.arange(0, BLOCK_K)
    r_mask = offs_r < rank
    k_begin = pid_k * k_per_split
    k_end = tl.minimum(k_begin + k_per_split, h_in)
    a_base = a_ptr + tl.maximum(slot, 0).to(tl.int64) * stride_as

    for m0 in range(pid_m * BLOCK_M, n_rows, m_step):
        offs_m = m0 + tl.arange(0, BLOCK_M)
        m_mask = offs_m < n_rows
        if HAS_ROW_INDEX:
            rows = tl.load(row_index_ptr + seg_start + offs_m, mask=m_mask, other=0).to(tl.int64)
        else:
            rows = (seg_start + offs_m).to(tl.int64)
        acc = tl.zeros((BLOCK_M, BLOCK_R), dtype=tl.float32)
        for k0 in range(k_begin, k_end, BLOCK_K):
            kk = k0 + offs_k
            k_mask = kk < h_in
            xt = tl.load(x_ptr + rows[:, None] * stride_xm + kk[None, :] * stride_xk,
                         mask=m_mask[:, None] & k_mask[None, :], other=0.0)
            at = tl.load(a_base + offs_r[None, :] * stride_ar + kk[:, None] * stride_ak,
                         mask=r_mask[None, :] & k_mask[:, None], other=0.0)
            acc += tl.dot(xt, at)
        v_ptrs = v_ptr + rows[:, None] * stride_vm + offs_r[None, :] * stride_vr
        v_mask = m_mask[:, None] & r_mask[None, :]
        if USE_ATOMIC:
            tl.atomic_add(v_ptrs, acc, mask=v_mask, sem="relaxed")
        else:
            tl.store(v_ptrs, acc, mask=v_mask)


@triton.jit
def sgmv_expand_kernel(
    v_ptr, b_ptr, y_ptr,
    seg_starts_ptr, seg_lens_ptr, seg_slots_ptr, ranks_ptr, scales_ptr, row_index_ptr,
    h_out,
    stride_vm, stride_vr,
    stride_bs, stride_br, stride_bn,
    stride_ym, stride_yn,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr,
    HAS_ROW_INDEX: tl.constexpr,
):
    """y[rows of seg, n-tile] += (v[rows, :rank] @ B[slot, :rank, n-tile]) * scale[slot]."""
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    seg = tl.program_id(2)
    m_step = tl.num_programs(1) * BLOCK_M

    seg_start = tl.load(seg_starts_ptr + seg)
    seg_len = tl.load(seg_lens_ptr + seg)
    slot = tl.load(seg_slots_ptr + seg)
    has_adapter = slot >= 0
    safe_slot = tl.maximum(slot, 0)
    rank = tl.load(ranks_ptr + safe_slot)
    scale = tl.load(scales_ptr + safe_slot).to(tl.float32)
    n_rows = tl.where(has_adapter, seg_len, 0)

    offs_r = tl.arange(0, BLOCK_R)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    r_mask = offs_r < rank
    n_mask = offs_n < h_out
    b_base = b_ptr + safe_slot.to(tl.int64) * stride_bs

    for m0 in range(pid_m * BLOCK_M, n_rows, m_step):
        offs_m = m0 + tl.arange(0, BLOCK_M)
        m_mask = offs_m < n_rows
        if HAS_ROW_INDEX:
            rows = tl.load(row_index_ptr + seg_start + offs_m, mask=m_mask, other=0).to(tl.int64)
        else:
            rows = (seg_start + offs_m).to(tl.int64)
        bt = tl.load(b_base + offs_r[:, None] * stride_br + offs_n[None, :] * stride_bn,
                     mask=r_mask[:, None] & n_mask[None, :], other=0.0)
        vt = tl.load(v_ptr + rows[:, None] * stride_vm + offs_r[None, :] * stride_vr,
                     mask=m_mask[:, None] & r_mask[None, :], other=0.0)
        acc = tl.dot(vt.to(bt.dtype), bt)
        y_ptrs = y_ptr + rows[:, None] * stride_ym + offs_n[None, :] * stride_yn
        y_mask = m_mask[:, None] & n_mask[None, :]
        yt = tl.load(y_ptrs, mask=y_mask, other=0.0)
        out = yt.to(tl.float32) + acc * scale
        tl.store(y_ptrs, out.to(yt.dtype), mask=y_mask)
