"""Attention over the paged KV cache.

- Decode (one query token per sequence): a Triton kernel that walks each sequence's block
  table with an online softmax; its launch depends only on tensor shapes, so it is captured in
  the decode CUDA graphs. ``paged_decode_torch`` is the reference it is checked against.
- Prefill (a chunk of ``n`` query tokens starting at ``start_pos``): FlashAttention-2 (through
  torch's op; SDPA off CUDA), over the fresh keys/values when the chunk starts at position 0,
  else over the keys/values gathered from the sequence's pages.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

try:
    import triton
    import triton.language as tl

    HAVE_TRITON = True
except ImportError:  # CPU-only environments
    HAVE_TRITON = False

# Tests set this (with TRITON_INTERPRET=1) to run the Triton kernels on CPU tensors.
FORCE_TRITON = False


if HAVE_TRITON:

    @triton.jit
    def _softmax_step(k, q, valid, m_i, l_i):
        """One context tile of the online softmax: the scores of q against the tile's keys ``k``
        (tokens outside ``valid`` masked off), the running max and sum updated. Returns the tile's
        weights ``p``, the factor ``alpha`` that rescales what was summed before, the new max and
        the new sum; the caller adds ``p @ v`` to its accumulator scaled by ``alpha``."""
        s = tl.sum(k * q[None, :], axis=1)
        s = tl.where(valid, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=0))
        p = tl.exp(s - m_new)
        alpha = tl.exp(m_i - m_new)
        return p, alpha, m_new, l_i * alpha + tl.sum(p, axis=0)

    @triton.jit
    def _paged_decode_kernel(
        q_ptr, k_ptr, v_ptr, bt_ptr, ctx_ptr, o_ptr, m_ptr, l_ptr, acc_ptr,
        scale,
        stride_qt, stride_qh,
        stride_kb, stride_ks, stride_kh,
        stride_bt,
        stride_ot, stride_oh,
        cos_ptr, sin_ptr, stride_cos, slot_ptr,
        NUM_HEADS: tl.constexpr, SPLITS: tl.constexpr, STAGES: tl.constexpr,
        GROUP: tl.constexpr, BLOCK_SIZE: tl.constexpr, HEAD_DIM: tl.constexpr, TILE: tl.constexpr,
        HEAD_FAST: tl.constexpr, PDL: tl.constexpr = False, PREFETCH: tl.constexpr = False,
        ROPE: tl.constexpr = False, LATE_TRIGGER: tl.constexpr = False, PREWAIT: tl.constexpr = False,
    ):
        """One program per (sequence, head, split): the online softmax over its share of the
        context. With one split it writes the output; with more, the unnormalised partials (max,
        sum, weighted values) for the reduce kernel. ``HEAD_FAST``: the grid is (head, sequence,
        split), so programs launched together read the heads of the same tokens (neighbouring
        256-byte pieces of one cache row) rather than one head of many sequences. ``PDL``: launched
        with launch_pdl (gpu/kernels/skinny_gemm.py, "Dependent launch"); it lets the next kernel
        launch right after its ``gdc_wait``, or with ``LATE_TRIGGER`` once its loop is done
        (DECODE_LATE_TRIGGER).

        ``PREFETCH``: the loop is pipelined by hand instead of by ``STAGES``: K and V of the next
        tile are loaded, and the block-table entries of the one after it, before the current
        tile is computed, so a program waits for memory about once rather than twice a tile (the
        V load otherwise waits behind the softmax of K, and each tile behind the one before). The
        context length and the first block-table entries are read before ``gdc_wait`` (the host
        writes them before the step; only q and the cache come from the kernel before).

        ``ROPE`` (with PREFETCH; ``paged_decode_rope``): ``q_ptr`` is the qkv projection's output
        ``[B, (H + 2 KVH) D]`` (row stride ``stride_qt``, ``stride_qh`` = D), and the kernel does
        what ``rope_and_cache`` would before it: the rotary embedding of q and of the new token's
        key at position context - 1 (``cos_ptr``/``sin_ptr`` tables), and the new key and value
        written to the cache at ``slot_ptr[seq]`` by one program of each (sequence, KV head). The
        loop reads the cache up to the new token only; the split that holds the new token adds it
        last, from registers, so no program reads a cache row another program writes.

        ``PREWAIT`` (with PDL and ROPE; DECODE_PREWAIT_TILE): the first tile's K and V are loaded
        before ``gdc_wait`` too. With the rotary embedding inside, the loop reads only cache rows
        written by earlier steps (the new token's row is this kernel's own), never by the qkv GEMM
        before it, which writes only qkv; and every kernel before that GEMM has completed once the
        GEMM lets this one launch (it does so after its own wait)."""
        if HEAD_FAST:
            head = tl.program_id(0)
            seq = tl.program_id(1)
        else:
            seq = tl.program_id(0)
            head = tl.program_id(1)
        sp = tl.program_id(2)
        kv_head = head // GROUP
        d = tl.arange(0, HEAD_DIM)
        if PREFETCH:
            ctx = tl.load(ctx_ptr + seq)
            per = tl.cdiv(tl.cdiv(ctx, SPLITS), TILE) * TILE
            lo = sp * per
            hi = tl.minimum(lo + per, ctx)
            if ROPE:  # the cache holds the context before the new token; the new one comes from qkv
                hc = tl.minimum(hi, ctx - 1)
            else:
                hc = hi
            ar = tl.arange(0, TILE)
            t = lo + ar
            valid = t < hc
            blk = tl.load(bt_ptr + seq * stride_bt + t // BLOCK_SIZE, mask=valid, other=0).to(tl.int64)
            t2 = t + TILE
            blk_nx = tl.load(bt_ptr + seq * stride_bt + t2 // BLOCK_SIZE, mask=t2 < hc, other=0).to(tl.int64)
            offs = blk * stride_kb + (t % BLOCK_SIZE) * stride_ks + kv_head * stride_kh
            if PREWAIT:  # the first tile in flight while the kernel before still runs
                k_nx = tl.load(k_ptr + offs[:, None] + d[None, :], mask=valid[:, None], other=0.0)
                v_nx = tl.load(v_ptr + offs[:, None] + d[None, :], mask=valid[:, None], other=0.0)
            if PDL:
                tl.extra.cuda.gdc_wait()
                if not LATE_TRIGGER:
                    tl.extra.cuda.gdc_launch_dependents()
            if not PREWAIT:
                k_nx = tl.load(k_ptr + offs[:, None] + d[None, :], mask=valid[:, None], other=0.0)
                v_nx = tl.load(v_ptr + offs[:, None] + d[None, :], mask=valid[:, None], other=0.0)
        else:
            if PDL:
                tl.extra.cuda.gdc_wait()
                if not LATE_TRIGGER:
                    tl.extra.cuda.gdc_launch_dependents()
            ctx = tl.load(ctx_ptr + seq)
            per = tl.cdiv(tl.cdiv(ctx, SPLITS), TILE) * TILE
            lo = sp * per
            hi = tl.minimum(lo + per, ctx)
        if ROPE:
            pos = ctx - 1
            c = tl.load(cos_ptr + pos * stride_cos + d).to(tl.float32)
            sn = tl.load(sin_ptr + pos * stride_cos + d).to(tl.float32)
            rot = (d + HEAD_DIM // 2) % HEAD_DIM
            sign = tl.where(d < HEAD_DIM // 2, -1.0, 1.0)
            row = q_ptr + seq * stride_qt
            qx = tl.load(row + head * stride_qh + d).to(tl.float32)
            qr = tl.load(row + head * stride_qh + rot).to(tl.float32)
            q = (qx * c + sign * (qr * sn)).to(q_ptr.dtype.element_ty).to(tl.float32) * scale
            kx = tl.load(row + (NUM_HEADS + kv_head) * stride_qh + d).to(tl.float32)
            kr = tl.load(row + (NUM_HEADS + kv_head) * stride_qh + rot).to(tl.float32)
            k_new = (kx * c + sign * (kr * sn)).to(k_ptr.dtype.element_ty)
            v_new = tl.load(row + (NUM_HEADS + NUM_HEADS // GROUP + kv_head) * stride_qh + d)
            if (head % GROUP == 0) & (sp == 0):  # one writer per (sequence, KV head)
                slot = tl.load(slot_ptr + seq).to(tl.int64)
                tl.store(k_ptr + slot * stride_ks + kv_head * stride_kh + d, k_new)
                tl.store(v_ptr + slot * stride_ks + kv_head * stride_kh + d, v_new.to(v_ptr.dtype.element_ty))
        else:
            q = tl.load(q_ptr + seq * stride_qt + head * stride_qh + d).to(tl.float32) * scale
        m_i = tl.max(tl.full([TILE], float("-inf"), tl.float32), axis=0)
        l_i = tl.sum(tl.zeros([TILE], tl.float32), axis=0)
        acc = tl.zeros([HEAD_DIM], tl.float32)
        if PREFETCH:
            for start in tl.range(lo, hc, TILE, num_stages=1):
                k = k_nx.to(tl.float32)
                v = v_nx.to(tl.float32)
                valid = start + ar < hc
                # The next tile's K and V (addresses from the entries read last iteration), then
                # the entries of the tile after it; all masked off past the end.
                tn = start + TILE + ar
                offs = blk_nx * stride_kb + (tn % BLOCK_SIZE) * stride_ks + kv_head * stride_kh
                k_nx = tl.load(k_ptr + offs[:, None] + d[None, :], mask=(tn < hc)[:, None], other=0.0)
                v_nx = tl.load(v_ptr + offs[:, None] + d[None, :], mask=(tn < hc)[:, None], other=0.0)
                tnn = tn + TILE
                blk_nx = tl.load(bt_ptr + seq * stride_bt + tnn // BLOCK_SIZE, mask=tnn < hc, other=0).to(tl.int64)
                p, alpha, m_i, l_i = _softmax_step(k, q, valid, m_i, l_i)
                acc = acc * alpha + tl.sum(p[:, None] * v, axis=0)
            if ROPE:  # the new token, in the split that holds it
                own = (pos >= lo) & (pos < hi)
                s_new = tl.sum(k_new.to(tl.float32) * q, axis=0)
                m_new = tl.maximum(m_i, s_new)
                p_new = tl.exp(s_new - m_new)
                alpha = tl.exp(m_i - m_new)
                acc = tl.where(own, acc * alpha + p_new * v_new.to(tl.float32), acc)
                l_i = tl.where(own, l_i * alpha + p_new, l_i)
                m_i = tl.where(own, m_new, m_i)
        else:
            for start in tl.range(lo, hi, TILE, num_stages=STAGES):
                t = start + tl.arange(0, TILE)
                valid = t < hi
                blk = tl.load(bt_ptr + seq * stride_bt + t // BLOCK_SIZE, mask=valid, other=0).to(tl.int64)
                base = blk * stride_kb + (t % BLOCK_SIZE) * stride_ks + kv_head * stride_kh
                offs = base[:, None] + d[None, :]
                k = tl.load(k_ptr + offs, mask=valid[:, None], other=0.0).to(tl.float32)
                p, alpha, m_i, l_i = _softmax_step(k, q, valid, m_i, l_i)
                v = tl.load(v_ptr + offs, mask=valid[:, None], other=0.0).to(tl.float32)
                acc = acc * alpha + tl.sum(p[:, None] * v, axis=0)
        if PDL:
            if LATE_TRIGGER:
                tl.extra.cuda.gdc_launch_dependents()
        if SPLITS == 1:
            out = acc / l_i
            tl.store(o_ptr + seq * stride_ot + head * stride_oh + d, out.to(o_ptr.dtype.element_ty))
        else:
            idx = (seq * NUM_HEADS + head) * SPLITS + sp
            tl.store(m_ptr + idx, m_i)
            tl.store(l_ptr + idx, l_i)
            tl.store(acc_ptr + idx * HEAD_DIM + d, acc)

    @triton.jit
    def _paged_decode_reduce_kernel(
        m_ptr, l_ptr, acc_ptr, o_ptr, stride_ot, stride_oh,
        NUM_HEADS: tl.constexpr, SPLITS: tl.constexpr, HEAD_DIM: tl.constexpr, PDL: tl.constexpr = False,
    ):
        """Combines a (sequence, head)'s splits; an empty split has max -inf and weighs 0."""
        if PDL:
            tl.extra.cuda.gdc_wait()
            tl.extra.cuda.gdc_launch_dependents()
        seq = tl.program_id(0)
        head = tl.program_id(1)
        base = (seq * NUM_HEADS + head) * SPLITS
        sp = tl.arange(0, SPLITS)
        d = tl.arange(0, HEAD_DIM)
        m = tl.load(m_ptr + base + sp)
        mx = tl.max(m, axis=0)
        w = tl.exp(m - mx)
        den = tl.sum(w * tl.load(l_ptr + base + sp), axis=0)
        acc = tl.load(acc_ptr + (base + sp)[:, None] * HEAD_DIM + d[None, :])
        out = tl.sum(w[:, None] * acc, axis=0) / den
        tl.store(o_ptr + seq * stride_ot + head * stride_oh + d, out.to(o_ptr.dtype.element_ty))


# Split the context of each (sequence, head) over this many programs in decode attention so that
# the grid fills the GPU at small batches ("flash-decoding"): the smallest power of two that gives
# at least DECODE_TARGET_PROGRAMS programs, at most DECODE_MAX_SPLITS. It depends only on the
# batch and head counts, so a captured CUDA graph keeps one choice for every context length.
# The kernel's context tile (doubled for head dims of 64 or less), warps and software pipeline
# stages (STAGES: the loop Triton pipelines, used only without DECODE_PREFETCH below). With the
# loop Triton pipelines, tile 64, 4 warps, 2 stages was the best or within a few percent of it at
# every batch and context where the kernel, not its launch, takes the time (gpu/bench_decode_attention.py
# on the H200, gpu/results/decode_attention/; e.g. batch 64 x 4096 tokens: 87 % of the copy
# bandwidth, against 52 % for tile 32 / 1 stage); more than 8 splits never helped. With the loop
# pipelined by hand (DECODE_PREFETCH), 32-token tiles and 2 warps at the engine's split counts
# (`--family prefetch`, gpu/results/attention-prefetch-h200-ae82297/, us a call in a graph of 32):
# 4.97 against 6.57 at batch 1 x 129 tokens of context, 15.6 against 21.0 at 16 x 129, 28.0
# against 38.9 at 32 x 129 (16-token tiles: 25.7), 12.2 against 13.8 at 1 x 1,024, 74.3 against
# 84.1 at 16 x 1,024, 160.0 against 173.7 at 32 x 1,024; the best of the sweep or near it in each.
# That sweep tried 2, 4 and 8 warps. One warp a program (`--family wave` and `--family one-warp`,
# gpu/results/attention-one-warp-h200-0e30e11/) is faster again: a program then needs no reduction
# across warps, and takes about half the registers of two warps' tile, so all 1,024 programs of 32
# sequences fit the GPU at once (two warps at 32-token tiles: 213 registers a thread, 4
# programs an SM; one warp: 255 and 32 bytes spilled, 8 programs an SM; `python3 gpu/ptx_report.py
# --attention`, Triton 3.9 on the CPU machine). It wants twice the
# programs at small batches, so the target went from 512 to 1,024 and the cap from 8 to 16
# splits. Against the two-warp default before, us a call in a graph of 32:
# 32 x 129 tokens 21.5 against 27.9, 32 x 4,096 475 against 604 (110 % of the copy bandwidth, which
# a copy's writes hold back), 64 x 129 39.8 against 46.9, 8 x 4,096 127 against 147 (4 splits), 1 x
# 4,096 26.1 against 33.2 (16 splits); 1 x 129 5.5 against 5.0 is the one case it loses. 16-token
# tiles are within a few percent of 32 everywhere at one warp, but slower in the step with the
# rotary embedding inside the kernel at 64 x 2,048 (22.2 against 19.3 ms).
# Target 768, not 1,024: the same split counts at 1, 2, 4, 8, 16 and from 32 sequences, and one
# fewer doubling at graph sizes 12 (2 splits, not 4) and 24 (1, not 2), whose 1,024 target asked
# for more programs than fit the GPU at once. At one warp (gpu/results/balanced-gemm-h200-23ad912/
# attention/, us a call in a graph of 32, 32-token tiles): 24 x 129 tokens 18.3 against 21.7 at 2
# splits, 24 x 1,024 99.9 against 109.4, 24 x 4,096 383.6 against 418.4; 12 x 129 13.0 against
# 13.8 at 4 splits, 12 x 1,024 55.6 against 58.9, 12 x 4,096 201.8 against 210.0.
DECODE_TARGET_PROGRAMS = 768
DECODE_MAX_SPLITS = 16
DECODE_TILE = 32
DECODE_WARPS = 1
DECODE_STAGES = 2
# Launch order of the (sequence, head) programs: False = sequence fastest, True = head fastest.
# Timed on the H200 (gpu/results/decode-speed-h200-30a9ee2/ and
# gpu/results/decode_attention-h200-9e806b3/): head fastest is within 1 % of sequence fastest at
# every batch, so the default stays sequence fastest. A program over several neighbouring heads
# (2, 4 or 8, reading 512-2,048 contiguous bytes of each token's cache row) was tried too: 13-26 %
# slower than one head a program at batch 1-32 (gpu/results/decode-speed-h200-30a9ee2/); removed.
DECODE_HEAD_FAST = False
# The kernel's loop pipelined by hand (``_paged_decode_kernel``'s PREFETCH: the next tile's K and V
# in flight while the current one is computed) instead of by Triton's STAGES. The engine's step
# without LoRA on the H200 (gpu/results/attention-prefetch-h200-ae82297/, one start, alternating
# with the default of 64-token tiles, 4 warps, 2 stages): 4.504 against 4.661-4.678 ms at batch 16,
# 4.954 against 5.263 at 32, 4.332 against 4.428-4.437 at 8.
DECODE_PREFETCH = True
# Under PDL, the decode kernel lets the kernel after it (o_proj's GEMM, or the reduce of the splits)
# launch once each program's loop is done (True) instead of right after its gdc_wait (False). Early,
# the next GEMM's programs (one an SM, 100 KB of shared memory or more) sit resident through the whole
# of attention, and at long contexts attention ran slower beside them (32 x 1,025 in the graph: 160
# us a layer against 125 without PDL, gpu/results/wide-route-h200-1386b0a/). Timed on the H200
# (gpu/results/late-trigger-h200-045628f/): no faster anywhere, 3-5 % slower at 8 sequences (4.405
# against 4.212 ms at 128 + 1 tokens), and PDL in the passes of 17-32 rows still 6-11 % slower from
# 1,024 + 1 tokens with it. Off.
DECODE_LATE_TRIGGER = False
# In a pass under PDL, whether the decode kernel is itself launched with PDL (True), so that it
# starts while the qkv GEMM before it still runs and waits in its gdc_wait, or launched plainly
# (False), after that GEMM has finished, while still letting the kernel after it launch early. With
# PDL in the passes of 17-32 rows the step was 7-12 % slower from 1,024 + 1 tokens, and neither
# o_proj's early launch (DECODE_LATE_TRIGGER) nor the GEMMs explain it; the early launch of attention
# itself is what is left. Timed on the H200 (gpu/results/attention-launch-h200-3d399df/): launched
# plainly, it costs 3-5 % at 8-16 sequences and 128 + 1 tokens (8: 4.491 against 4.267 ms) and gains
# 2-7 % at 2,048 + 1 (12: 7.146 against 7.679); the wide passes' PDL then costs 1.1-2.3 % at 32
# sequences instead of 6-11 %. True stays.
DECODE_PDL_LAUNCH = True
# In a pass under PDL with the rotary embedding inside the decode kernel (paged_decode_rope), whether
# each program loads its first context tile before its gdc_wait, so that the tile is in flight while
# the qkv GEMM before it still runs (the kernel's PREWAIT: safe there, as its docstring says; without
# the rope inside, the kernel before writes the new token's cache row, so never). At 128 + 1 tokens
# a program of 32 sequences reads four tiles, and the first one's wait is on the critical path.
# Timed on the H200 (gpu/results/prewait-h200-16aba57/): 1.2 % faster at 8 x 129 tokens (4.165
# against 4.215 ms), within the rounds' spread (under 1 %) everywhere else. Off.
DECODE_PREWAIT_TILE = False
# Batches of at least DECODE_LARGE_BATCH sequences take DECODE_TILE_LARGE-token tiles (None: DECODE_TILE).
# 16-token tiles are faster at short contexts (32 x 129 tokens: 25.7 us a call against 28.0 for 32,
# the sweep above; the step 4.924 against 4.958 ms, gpu/results/b32-speed-h200-f8bc290/) but slower
# at long ones: the profile of 95210c1, which took them from 32 sequences, prices 40-128 sequences
# at 2,048-4,096 tokens 6-31 % over 84cab04's (64 x 4,096: 42.7 against 37.3 ms), where 1-16
# sequences, which kept 32-token tiles, came out 3-9 % under it. A graph serves every context, so None.
DECODE_LARGE_BATCH = 32
DECODE_TILE_LARGE: int | None = None
# Tried and removed after a1b64b8: the tile's two products on tensor cores (``tl.dot``, q repeated on
# 16 rows). Slower at one warp (16-token tiles, 32 x 129: 22.8 against 20.9 us a call), a little
# faster at two (32-token tiles: 27.1 against 28.1); gpu/results/attention-wave-h200-a1b64b8/.
# Tried and removed after f8bc290: the decode kernel asking L2 for o_proj's weight while it runs,
# with its cache loads evict-first or not. On the H200 it made every step slower (batch 32: 5.163 ms
# against 4.958, 5.161 with evict-first; the decode kernel 1,063 against 912 us a step;
# gpu/results/b32-speed-h200-f8bc290/), and o_proj's GEMM no faster.


def pdl_args(pdl: bool) -> dict:
    """A Triton launch's arguments for programmatic dependent launch (the kernel's PDL and
    ``launch_pdl``), or none."""
    return {"PDL": True, "launch_pdl": True} if pdl else {}


def decode_splits(batch: int, heads: int) -> int:
    s = 1
    while batch * heads * s < DECODE_TARGET_PROGRAMS and s < DECODE_MAX_SPLITS:
        s *= 2
    return s


def paged_decode_triton(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                        block_tables: torch.Tensor, context_lens: torch.Tensor,
                        out: torch.Tensor | None = None, splits: int | None = None,
                        tile: int | None = None, warps: int | None = None, stages: int | None = None,
                        head_fast: bool | None = None, pdl: bool = False,
                        prefetch: bool | None = None, rope: tuple | None = None) -> torch.Tensor:
    """q ``[B, H, D]``; caches ``[blocks, bs, KVH, D]``; block_tables ``[B, max_blocks]`` int32;
    context_lens ``[B]`` int32 (>= 1, the new token included). Returns ``[B, H, D]``.
    ``splits`` (a power of two; default ``decode_splits(B, H)``): programs per (sequence, head);
    ``tile``, ``warps``, ``stages``: the kernel's tile of context tokens, warps and pipeline
    stages, and ``head_fast`` the launch order (defaults: DECODE_TILE, DECODE_WARPS,
    DECODE_STAGES, DECODE_HEAD_FAST; gpu/bench_decode_attention.py measures the alternatives).
    ``pdl``: both launches with programmatic dependent launch (gpu/kernels/skinny_gemm.py,
    "Dependent launch"); the decode kernel's own launch only where DECODE_PDL_LAUNCH is set (else
    it is compiled for PDL, so that it lets the reduce or the GEMM after it launch early, and
    launched plainly: its ``gdc_wait`` then has no grid to wait for). ``prefetch`` (default
    DECODE_PREFETCH): the loop pipelined by hand (the kernel's PREFETCH; ``stages`` is then
    unused). ``rope``: see ``paged_decode_rope``, which passes it."""
    b, h, d = q.shape
    bs, kvh = k_cache.shape[1], k_cache.shape[2]
    rope_args = (q, q, 0, q)  # unused without ROPE
    if rope is not None:  # q is qkv [B, H + 2 KVH, D]
        cos, sin, slot_mapping, h = rope
        rope_args = (cos, sin, cos.stride(0), slot_mapping)
        if prefetch is False:
            raise ValueError("paged_decode_rope: the rotary embedding runs in the hand-pipelined loop only")
        prefetch = True
    if out is None:
        out = torch.empty((b, h, d), dtype=q.dtype, device=q.device)
    if tile is None:
        tile = DECODE_TILE_LARGE if DECODE_TILE_LARGE is not None and b >= DECODE_LARGE_BATCH else DECODE_TILE
        tile = tile if d > 64 else 2 * tile
    splits = decode_splits(b, h) if splits is None else splits
    warps = DECODE_WARPS if warps is None else warps
    stages = DECODE_STAGES if stages is None else stages
    head_fast = DECODE_HEAD_FAST if head_fast is None else head_fast
    prefetch = DECODE_PREFETCH if prefetch is None else prefetch
    if splits == 1:
        m = lsum = acc = out  # unused
    else:
        m = torch.empty((b, h, splits), dtype=torch.float32, device=q.device)
        lsum = torch.empty_like(m)
        acc = torch.empty((b, h, splits, d), dtype=torch.float32, device=q.device)
    launch = pdl_args(pdl)
    if pdl and not DECODE_PDL_LAUNCH:  # compiled for PDL (it lets the next kernel launch), launched plainly
        launch = {"PDL": True}
    _paged_decode_kernel[(h, b, splits) if head_fast else (b, h, splits)](
        q, k_cache, v_cache, block_tables, context_lens, out, m, lsum, acc,
        1.0 / math.sqrt(d),
        q.stride(0), q.stride(1),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        block_tables.stride(0),
        out.stride(0), out.stride(1),
        *rope_args,
        NUM_HEADS=h, SPLITS=splits, STAGES=stages, GROUP=h // kvh, BLOCK_SIZE=bs, HEAD_DIM=d,
        TILE=tile, HEAD_FAST=head_fast, PREFETCH=prefetch, ROPE=rope is not None, num_warps=warps,
        LATE_TRIGGER=bool(pdl and DECODE_LATE_TRIGGER),
        PREWAIT=bool(pdl and DECODE_PREWAIT_TILE and rope is not None and DECODE_PDL_LAUNCH), **launch)
    if splits > 1:
        _paged_decode_reduce_kernel[(b, h)](m, lsum, acc, out, out.stride(0), out.stride(1),
                                            NUM_HEADS=h, SPLITS=splits, HEAD_DIM=d, num_warps=4, **pdl_args(pdl))
    return out


def paged_decode_rope(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, slot_mapping: torch.Tensor,
                      k_cache: torch.Tensor, v_cache: torch.Tensor, block_tables: torch.Tensor,
                      context_lens: torch.Tensor, heads: int, **kw) -> torch.Tensor:
    """``rope_and_cache`` then ``paged_decode_triton``, in one kernel, for a pass of decode rows
    only (row i at position context_lens[i] - 1): qkv ``[B, (H + 2 KVH) D]`` as the projection
    wrote it (rows contiguous), ``cos``/``sin`` the rotary tables, ``slot_mapping`` ``[B]`` the
    new tokens' cache slots, ``heads`` = H. Returns the attention ``[B, H, D]``; the new keys and
    values are in the cache afterwards. The loop is the hand-pipelined one; ``kw`` as
    ``paged_decode_triton``'s."""
    b = qkv.shape[0]
    kvh, d = k_cache.shape[2], k_cache.shape[3]
    if qkv.dim() != 2 or qkv.shape[1] != (heads + 2 * kvh) * d or qkv.stride(1) != 1:
        raise ValueError(f"paged_decode_rope: qkv must be [B, (H + 2 KVH) D] = [{b}, {(heads + 2 * kvh) * d}] "
                         f"with contiguous rows, got {tuple(qkv.shape)} strides {qkv.stride()}")
    if heads % kvh:
        raise ValueError(f"paged_decode_rope: {heads} query heads over {kvh} KV heads")
    q3 = qkv.as_strided((b, heads + 2 * kvh, d), (qkv.stride(0), d, 1))  # rows of heads, as they lie
    return paged_decode_triton(q3, k_cache, v_cache, block_tables, context_lens,
                               rope=(cos, sin, slot_mapping, heads), **kw)


def paged_decode_torch(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                       block_tables: torch.Tensor, context_lens: torch.Tensor) -> torch.Tensor:
    """Reference for ``paged_decode_triton`` (a loop over sequences; not for speed)."""
    b, h, d = q.shape
    bs, kvh = k_cache.shape[1], k_cache.shape[2]
    outs = []
    for i in range(b):
        n = int(context_lens[i])
        nb = -(-n // bs)
        idx = block_tables[i, :nb].long()
        k = k_cache[idx].reshape(-1, kvh, d)[:n].float()
        v = v_cache[idx].reshape(-1, kvh, d)[:n].float()
        k = k.repeat_interleave(h // kvh, dim=1)
        v = v.repeat_interleave(h // kvh, dim=1)
        s = torch.einsum("hd,nhd->hn", q[i].float(), k) / math.sqrt(d)
        p = torch.softmax(s, dim=-1)
        outs.append(torch.einsum("hn,nhd->hd", p, v))
    return torch.stack(outs).to(q.dtype)


def paged_decode(q, k_cache, v_cache, block_tables, context_lens, out=None, pdl=False):
    """Decode attention: the Triton kernel on CUDA (``pdl``: launched with programmatic dependent
    launch), the reference elsewhere."""
    if HAVE_TRITON and (q.is_cuda or FORCE_TRITON):
        return paged_decode_triton(q, k_cache, v_cache, block_tables, context_lens, out, pdl=pdl)
    res = paged_decode_torch(q, k_cache, v_cache, block_tables, context_lens)
    if out is not None:
        out.copy_(res)
        return out
    return res


def prefill_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, start_pos: int) -> torch.Tensor:
    """Causal attention of a chunk. q ``[n, H, D]`` holds positions ``start_pos .. start_pos +
    n - 1``; k, v ``[start_pos + n, KVH, D]`` hold positions ``0 .. start_pos + n - 1``.
    Returns ``[n, H, D]``.

    On CUDA in fp16/bf16 this calls FlashAttention-2 directly: its causal mask is aligned to the
    lower right (query ``i`` sees keys ``0 .. start_pos + i``), which is the continuation chunk's
    mask as well as the first chunk's, so no mask is built. It also keeps SDPA's dispatcher out:
    on torch 2.11 / H200 the dispatcher picks cuDNN attention, which builds an execution plan for
    every new ``(n, start_pos + n)`` shape -- 60-70 ms each, and a live engine meets a new shape
    nearly every step (gpu/diag_mixed.py; docs/validation.md)."""
    n, h, d = q.shape
    total, kvh = k.shape[0], k.shape[1]
    if kvh != h:
        k = k.repeat_interleave(h // kvh, dim=1)
        v = v.repeat_interleave(h // kvh, dim=1)
    qt, kt, vt = q.transpose(0, 1)[None], k.transpose(0, 1)[None], v.transpose(0, 1)[None]
    if q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) and d % 8 == 0 and d <= 256:
        o = torch.ops.aten._scaled_dot_product_flash_attention(qt, kt, vt, 0.0, is_causal=True)[0]
    elif start_pos == 0:
        o = F.scaled_dot_product_attention(qt, kt, vt, is_causal=True)
    else:
        qpos = torch.arange(start_pos, start_pos + n, device=q.device)[:, None]
        kpos = torch.arange(total, device=q.device)[None, :]
        o = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=kpos <= qpos)
    return o[0].transpose(0, 1)


if HAVE_TRITON:

    @triton.jit
    def _rope_cache_kernel(
        qkv_ptr, pos_ptr, cos_ptr, sin_ptr, slot_ptr, q_ptr, k_ptr, kc_ptr, vc_ptr,
        stride_qkv, stride_cos, stride_q, stride_k, stride_cs,
        H: tl.constexpr, KVH: tl.constexpr, D: tl.constexpr, PDL: tl.constexpr = False,
    ):
        if PDL:  # launched with launch_pdl (gpu/kernels/skinny_gemm.py, "Dependent launch")
            tl.extra.cuda.gdc_wait()
            tl.extra.cuda.gdc_launch_dependents()
        t = tl.program_id(0)
        h = tl.program_id(1)  # 0 .. H-1: query heads; H .. H+KVH-1: key/value heads
        half: tl.constexpr = D // 2
        i = tl.arange(0, half)
        pos = tl.load(pos_ptr + t)
        c = tl.load(cos_ptr + pos * stride_cos + i).to(tl.float32)
        s = tl.load(sin_ptr + pos * stride_cos + i).to(tl.float32)
        src = qkv_ptr + t * stride_qkv + h * D
        x1 = tl.load(src + i).to(tl.float32)
        x2 = tl.load(src + half + i).to(tl.float32)
        o1 = x1 * c - x2 * s
        o2 = x2 * c + x1 * s
        if h < H:
            dst = q_ptr + t * stride_q + h * D
            tl.store(dst + i, o1.to(q_ptr.dtype.element_ty))
            tl.store(dst + half + i, o2.to(q_ptr.dtype.element_ty))
        else:
            kh = h - H
            slot = tl.load(slot_ptr + t).to(tl.int64)
            kd = k_ptr + t * stride_k + kh * D
            tl.store(kd + i, o1.to(k_ptr.dtype.element_ty))
            tl.store(kd + half + i, o2.to(k_ptr.dtype.element_ty))
            cd = kc_ptr + slot * stride_cs + kh * D
            tl.store(cd + i, o1.to(kc_ptr.dtype.element_ty))
            tl.store(cd + half + i, o2.to(kc_ptr.dtype.element_ty))
            j = tl.arange(0, D)
            v = tl.load(qkv_ptr + t * stride_qkv + (H + KVH) * D + kh * D + j)
            tl.store(vc_ptr + slot * stride_cs + kh * D + j, v)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rot * sin


def rope_and_cache(qkv: torch.Tensor, positions: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                   slot_mapping: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                   h: int, kvh: int, d: int, pdl: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rotary embedding of q and k (Hugging Face's half-split convention) and the KV-cache write
    of k and v at ``slot_mapping``, in one kernel on CUDA (``pdl``: launched with programmatic
    dependent launch). ``qkv [T, (H + 2 KVH) D]``; caches ``[blocks, bs, KVH, D]``. Returns q
    ``[T, H, D]``, k ``[T, KVH, D]`` (rotated) and v (a view)."""
    t = qkv.shape[0]
    v = qkv[:, (h + kvh) * d:].view(t, kvh, d)
    if HAVE_TRITON and (qkv.is_cuda or FORCE_TRITON):
        q = torch.empty((t, h, d), dtype=qkv.dtype, device=qkv.device)
        k = torch.empty((t, kvh, d), dtype=qkv.dtype, device=qkv.device)
        _rope_cache_kernel[(t, h + kvh)](
            qkv, positions, cos, sin, slot_mapping, q, k, k_cache, v_cache,
            qkv.stride(0), cos.stride(0), q.stride(0), k.stride(0), k_cache.stride(1),
            H=h, KVH=kvh, D=d, num_warps=1 if d <= 64 else 2, **pdl_args(pdl),
        )
        return q, k, v
    c = cos[positions][:, None, :]
    s = sin[positions][:, None, :]
    q = _rotate(qkv[:, :h * d].view(t, h, d), c, s)
    k = _rotate(qkv[:, h * d:(h + kvh) * d].view(t, kvh, d), c, s)
    k_cache.view(-1, kvh, d).index_copy_(0, slot_mapping, k)
    v_cache.view(-1, kvh, d).index_copy_(0, slot_mapping, v)
    return q, k, v


# ---------------------------------------------------------------- tiled attention over the pages
# Eager steps (prefill chunks, mixed steps) that fit a token graph (gpu/engine/executor.py) run
# their attention as two launches of one kernel over *tiles*: a tile is up to BLOCK_M consecutive
# query rows of one sequence (a decode row is a tile of one), and its keys are the sequence's
# positions 0 .. the row's own position, read from the paged cache (the step's own keys and
# values are written there by ``rope_and_cache`` first). The tile table lives in device tensors
# of a fixed length, unused entries have length 0 and exit at once, so the launch depends only on
# shapes and a CUDA graph replays it for any mix of chunks. Decode rows go through tiles of 16
# query rows (the least ``tl.dot`` takes), prefill chunks through tiles of 128.
#
# Tile shapes, warps and pipeline stages from ``gpu/bench_tiles.py`` on the H200 at 9e806b3
# (gpu/results/tiles-h200-9e806b3, every configuration float64-checked): for prefill, 128-row
# tiles over 128-key tiles with 8 warps and 3 stages took 0.89x the time of the earlier 64 x 64,
# 4 warps, 2 stages, as a geometric mean over a 512- and a 2048-token prompt, a 512-token chunk
# after 1536 cached and eight 256-token chunks (0.76, 0.85, 0.92 and 1.07x; FlashAttention-2 is
# still faster on whole prompts: 184 against 275 us at 2048); for decode rows, 128-key tiles with
# 3 stages took 0.89x (284 against 320 us, 64 rows over 1024 tokens). Float32 (the engine's exact
# check) keeps 64-key tiles, 4 warps and 1 stage: its tiles need twice the shared memory.
PREFILL_TILE_M = 128
DECODE_TILE_M = 16
TILE_N = 64
PREFILL_CONFIG = (128, 8, 3)  # block_n, warps, stages
DECODE_CONFIG = (128, 4, 3)
FLOAT32_CONFIG = (64, 4, 1)


def tile_config(block_m: int, dtype: torch.dtype) -> tuple[int, int, int]:
    """The engine's (block_n, warps, stages) for tiles of ``block_m`` rows of ``dtype``."""
    if dtype == torch.float32:
        return FLOAT32_CONFIG
    return DECODE_CONFIG if block_m == DECODE_TILE_M else PREFILL_CONFIG

if HAVE_TRITON:

    @triton.jit
    def _paged_tiles_kernel(
        q_ptr, k_ptr, v_ptr, o_ptr, pos_ptr, bt_ptr, tseq_ptr, trow_ptr, tlen_ptr,
        scale,
        stride_qt, stride_qh,
        stride_kb, stride_ks, stride_kh,
        stride_bt,
        stride_ot, stride_oh,
        GROUP: tl.constexpr, BLOCK_SIZE: tl.constexpr, HEAD_DIM: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, IEEE: tl.constexpr,
    ):
        """One program per (tile, head): FlashAttention-2's online softmax over the tile's causal
        keys, gathered page by page. Query row ``i`` of the tile sees keys ``0 .. pos[i]``.
        ``IEEE``: float32 products in full precision (``tl.dot`` rounds float32 operands to TF32
        otherwise, a relative error of about 5e-4 that fails the float32 engine check)."""
        tile = tl.program_id(0)
        head = tl.program_id(1)
        n = tl.load(tlen_ptr + tile)
        if n > 0:
            seq = tl.load(tseq_ptr + tile).to(tl.int64)
            row0 = tl.load(trow_ptr + tile).to(tl.int64)
            mm = tl.arange(0, BLOCK_M)
            rv = mm < n
            rows = row0 + mm
            pos = tl.load(pos_ptr + rows, mask=rv, other=0)
            d = tl.arange(0, HEAD_DIM)
            q = tl.load(q_ptr + rows[:, None] * stride_qt + head * stride_qh + d[None, :], mask=rv[:, None], other=0.0)
            kv_head = head // GROUP
            hi = tl.max(tl.where(rv, pos, 0), axis=0) + 1
            m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
            l_i = tl.zeros([BLOCK_M], tl.float32)
            acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
            for start in range(0, hi, BLOCK_N):
                t = start + tl.arange(0, BLOCK_N)
                valid = t < hi
                blk = tl.load(bt_ptr + seq * stride_bt + t // BLOCK_SIZE, mask=valid, other=0).to(tl.int64)
                off = blk * stride_kb + (t % BLOCK_SIZE) * stride_ks + kv_head * stride_kh
                kt = tl.load(k_ptr + off[None, :] + d[:, None], mask=valid[None, :], other=0.0)
                if IEEE:
                    s = tl.dot(q, kt, input_precision="ieee") * scale
                else:
                    s = tl.dot(q, kt) * scale
                s = tl.where((t[None, :] <= pos[:, None]) & valid[None, :], s, float("-inf"))
                m_new = tl.maximum(m_i, tl.max(s, axis=1))  # key 0 is always visible: finite
                p = tl.exp(s - m_new[:, None])
                alpha = tl.exp(m_i - m_new)
                l_i = l_i * alpha + tl.sum(p, axis=1)
                v = tl.load(v_ptr + off[:, None] + d[None, :], mask=valid[:, None], other=0.0)
                if IEEE:
                    acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision="ieee")
                else:
                    acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
                m_i = m_new
            out = acc / l_i[:, None]
            tl.store(o_ptr + rows[:, None] * stride_ot + head * stride_oh + d[None, :],
                     out.to(o_ptr.dtype.element_ty), mask=rv[:, None])


def paged_tiles_torch(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, positions: torch.Tensor,
                      block_tables: torch.Tensor, tile_seq: torch.Tensor, tile_row: torch.Tensor,
                      tile_len: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Reference for ``paged_tiles_triton`` in float64 (a host loop over the tiles; not for speed)."""
    h, d = q.shape[1], q.shape[2]
    bs, kvh = k_cache.shape[1], k_cache.shape[2]
    for s, r0, n in zip(tile_seq.tolist(), tile_row.tolist(), tile_len.tolist(), strict=True):
        if n <= 0:
            continue
        pos = positions[r0:r0 + n].long()
        hi = int(pos.max()) + 1
        nb = -(-hi // bs)
        idx = block_tables[s, :nb].long()
        k = k_cache[idx].reshape(-1, kvh, d)[:hi].double().repeat_interleave(h // kvh, dim=1)
        v = v_cache[idx].reshape(-1, kvh, d)[:hi].double().repeat_interleave(h // kvh, dim=1)
        sc = torch.einsum("nhd,khd->hnk", q[r0:r0 + n].double(), k) / math.sqrt(d)
        sc = sc.masked_fill(torch.arange(hi, device=pos.device)[None, None, :] > pos[None, :, None], float("-inf"))
        out[r0:r0 + n] = torch.einsum("hnk,khd->nhd", torch.softmax(sc, dim=-1), v).to(out.dtype)
    return out


def paged_tiles_triton(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, positions: torch.Tensor,
                       block_tables: torch.Tensor, tile_seq: torch.Tensor, tile_row: torch.Tensor,
                       tile_len: torch.Tensor, out: torch.Tensor, block_m: int, block_n: int = TILE_N,
                       warps: int = 4, stages: int = 2) -> torch.Tensor:
    """q ``[T, H, D]``; caches ``[blocks, bs, KVH, D]``; positions ``[T]`` int64; block_tables
    ``[S, max_blocks]`` int32; tile_seq / tile_row / tile_len ``[NT]`` int32 (the tile's row of
    block_tables, first query row, rows; 0 rows: unused). Writes the tiles' rows of ``out``.
    ``block_n``, ``warps``, ``stages``: the key tile, warps and pipeline stages (the engine's
    defaults; gpu/bench_tiles.py measures the alternatives)."""
    h, d = q.shape[1], q.shape[2]
    bs, kvh = k_cache.shape[1], k_cache.shape[2]
    nt = tile_len.shape[0]
    if nt == 0:
        return out
    _paged_tiles_kernel[(nt, h)](
        q, k_cache, v_cache, out, positions, block_tables, tile_seq, tile_row, tile_len,
        1.0 / math.sqrt(d),
        q.stride(0), q.stride(1),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        block_tables.stride(0),
        out.stride(0), out.stride(1),
        GROUP=h // kvh, BLOCK_SIZE=bs, HEAD_DIM=d, BLOCK_M=block_m, BLOCK_N=block_n,
        IEEE=q.dtype == torch.float32, num_warps=warps, num_stages=stages,
    )
    return out


def paged_tiles(q, k_cache, v_cache, positions, block_tables, tile_seq, tile_row, tile_len, out, block_m):
    """Tiled attention: the Triton kernel on CUDA, the reference elsewhere."""
    if HAVE_TRITON and (q.is_cuda or FORCE_TRITON):
        return paged_tiles_triton(q, k_cache, v_cache, positions, block_tables, tile_seq, tile_row, tile_len, out,
                                  block_m, *tile_config(block_m, q.dtype))
    return paged_tiles_torch(q, k_cache, v_cache, positions, block_tables, tile_seq, tile_row, tile_len, out)


def tile_rows(chunks: list[tuple[int, int, int]], block_m: int) -> list[tuple[int, int, int]]:
    """Cuts ``(seq, first_row, rows)`` chunks into tiles of at most ``block_m`` rows."""
    tiles = []
    for s, r0, n in chunks:
        for a in range(0, n, block_m):
            tiles.append((s, r0 + a, min(block_m, n - a)))
    return tiles


def max_prefill_tiles(tokens: int, seqs: int) -> int:
    """How many prefill tiles a step of ``tokens`` rows in at most ``seqs`` chunks can need."""
    return tokens // PREFILL_TILE_M + min(tokens, seqs)
