"""A weight-streaming skinny GEMM in Triton: y [M, N] = x [M, K] @ W [N, K]^T for small M (1..64).

The decode step's weight GEMMs read far more weight than they compute on (x is 1..64 rows, W is
[N, K] = up to [32000, 4096] fp16), so the kernel is built to stream W from HBM once, in coalesced
tiles, with enough bytes in flight to cover the memory latency, and nothing else:

Layouts:

- ``x [M, K]`` fp16 (or bf16), any strides; read as [BLOCK_M, BLOCK_K] tiles (tiny, L2-resident:
  every N tile reads all of x again).
- ``W [N, K]``, nn.Linear's weight layout, rows contiguous along K: read as [BLOCK_N, BLOCK_K]
  tiles whose rows are runs of BLOCK_K contiguous elements (coalesced 16-byte loads), and fed to
  ``tl.dot`` as the transposed view ``tl.trans(w_tile)`` -- no copy of W in another layout.
- ``y [M, N]``, x's dtype; fp32 accumulation.
- split-K (``SPLIT_K > 1``) only: ``partials [SPLIT_K, M, N]`` fp32 and ``counts [cdiv(N, BLOCK_N)]``
  int32, zero between launches (see below). ``SkinnyWorkspace`` holds both; the wrapper caches one
  per (device, M, N, SPLIT_K, BLOCK_N).

Choices:

- Grid (cdiv(N, BLOCK_N), SPLIT_K): one program per N tile and K slice; every program loops over
  its K slice in BLOCK_K steps, so ``num_stages`` loads of W tiles are in flight per program
  (Triton's software pipeline). M never tiles: all rows are one BLOCK_M = max(16, next_pow2(M))
  tile (``tl.dot`` needs 16), rows >= M masked (loaded as 0, never stored); so W is read exactly
  once whatever M is.
- N and K tails are masked (11008 = 43 x 256, 32000 = 250 x 128: Llama's N and K are multiples of
  16, not of every block). Every program makes the same number of K steps, k_per_split / BLOCK_K
  (K / SPLIT_K rounded up to whole steps, passed as an argument, so the loop bound does not depend
  on the program id); steps past K are masked and load nothing. When SPLIT_K x BLOCK_K divides K
  (EVEN_K: K = 4096 for split x block up to 4096; K = 11008 = 43 x 256 only without a split) the K
  masks are left out. (Under TRITON_INTERPRET=1 a loop bound read from an argument needs the tests'
  ``patch_triton_interpreter_scalars`` with NumPy >= 2.4.)
- Shared memory (compiled for sm_90, fp16): W and x stages of (BLOCK_N + BLOCK_M) x BLOCK_K x 2
  bytes, num_stages - 1 of them while BLOCK_M <= 32 (mma.sync), num_stages at BLOCK_M = 64 (Triton
  takes wgmma there): 64 x 256 tiles in 4 stages take 120 KB at M <= 16 but 256 KB, more than a
  Hopper program may have, at M > 32 -- such a launch fails with Triton's OutOfResources.
- M is not specialized (``do_not_specialize``), so M = 1, 8, 16 share one compiled kernel per
  BLOCK_M instead of one per divisibility class of M; nor is ``programs`` (below).
- Balanced (config suffix ``_bal``, one K slice): the grid is one program per SM and program p
  takes W's rows [p N / P, (p + 1) N / P) in one N tile of the next power of two over its share,
  the rows past it masked. Tiles of a fixed BLOCK_N leave SMs idle or doubly loaded (qkv's 12,288
  rows are 96 tiles of 128 or 192 of 64 for 132 SMs, 73 % or 145 % of a wave); here every SM
  streams the same bytes (qkv: 93-94 rows a program, 128-row tiles; gate_up 166-167 in 256; o and
  down 31-32 in 64). The K step is halved while the stages would pass BALANCED_SMEM. Compiled for
  sm_90 (``python3 gpu/ptx_report.py --config tsk_n64_k128_w4_s4_sk1_ab_bal --rows 32 --n N``,
  Triton 3.9 on the CPU machine) the tiles take 96-160 KB of shared memory and 74-136 registers,
  no spills. On the H200 (``gpu/balanced_gemm.sh``, gpu/results/balanced-gemm-h200-23ad912/) it
  was no faster than the plain transposed kernel at 32 rows, and slower in the decode step; the
  engine does not use it.
- TMA (config suffix ``_tma``; ``skinny_gemm_tma_kernel``): the same tiling, but x and W tiles
  come through host-made tensor descriptors (Hopper's bulk tensor copies into shared memory, with
  Triton's pipeline over them) instead of per-thread pointer loads: no address arithmetic or
  masks in the loop (the copy engine zero-fills rows past M or N and columns past K), and every
  stage's bytes in flight at once. Needs x and W contiguous along K with 16-byte aligned rows, and
  a device with TMA (compute capability 9.0); elsewhere ``skinny_gemm`` refuses the config. No
  PDL prefetch, no balanced launch.
- Split-K: N = 4096 (o, down) gives only 64 tiles of 64 rows for 132 SMs; cutting K into SPLIT_K
  slices multiplies the programs. The slices meet inside the same launch, with no memset and no
  cast kernel: each program stores its fp32 partial to ``partials[pid_k]``, then (after a barrier,
  so that all its threads' stores are issued) increments its N tile's counter with an ``acq_rel``
  atomic at GPU scope -- the CUTLASS semaphore pattern (bar.sync, then one thread's release). The
  program that sees SPLIT_K - 1 is the last of its tile: its acquire orders it after every other
  slice's release, so it reads all SPLIT_K partials (``.cg`` loads, past L1), sums them in the
  fixed order 0..SPLIT_K-1 (the result does not depend on which slice came last), stores fp16 y
  and resets the counter to 0, so the next launch -- a CUDA graph replay too -- starts from zero.
  One launch at a time per workspace: two streams running the same (M, N) at once would share the
  cached partials and counters (the benchmark and the engine's decode step run on one stream).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

BALANCED_SMEM = 200 * 1024  # bytes of W and x stages a balanced program may take (a Hopper SM has 228 KB)
MAX_M = 64  # rows the kernel is meant for: BLOCK_M = 64 at most; larger batches belong to cuBLAS
_DTYPES = (torch.float16, torch.bfloat16)
_NAME = re.compile(r"tsk_n(\d+)_k(\d+)_w(\d+)_s(\d+)_sk(\d+)(_ab)?(_tma)?(_bal)?")


def unavailable_reason(device: torch.device | str) -> str | None:
    """Why the kernel cannot run on tensors of ``device`` in this process, or None: it runs on CUDA,
    and on the CPU only under Triton's interpreter (TRITON_INTERPRET=1 before Triton was imported)."""
    if torch.device(device).type == "cuda":
        return None
    from triton.runtime.interpreter import InterpretedFunction

    if isinstance(skinny_gemm_kernel, InterpretedFunction):
        return None
    return f"Triton runs on CUDA tensors, or on {torch.device(device).type} under TRITON_INTERPRET=1 only"


# --- Dependent launch (Hopper's programmatic dependent launch, PDL) ------------------------------
#
# In a decode step every weight GEMM waits for the small kernel before it (a norm, SiLU, the
# attention), and reads W, which no kernel of the step writes. Launched with ``launch_pdl``, a
# kernel may start while the one before it still runs: it must call ``gdc_wait`` before it touches
# anything that kernel writes or reads (``griddepcontrol.wait``: returns once the kernel before has
# completed and its memory is visible; the kernel before completes only after its own wait, so every
# earlier kernel of the stream has completed too). A kernel that calls ``gdc_launch_dependents``
# lets the next one be launched as soon as all its programs have called it. The skinny GEMM with
# ``PDL`` asks L2 for the first PREFETCH_K elements of each of its W rows before its wait
# (``cp.async.bulk.prefetch.L2``, one instruction a row: only a hint, it writes nothing, so even a
# W written by the kernel before -- a dLoRA merge -- reads right: L2 is where writes land), so the
# W stream starts while the kernel before runs; the small kernels wait at once and let the next
# GEMM launch. Kernels launched without it are ordered as always (a PDL kernel after one that never
# calls gdc_launch_dependents launches when that one ends). Triton's interpreter runs no inline
# assembly: PDL is for CUDA only (``pdl_supported``).


@triton.jit
def l2_prefetch_rows(w_ptr, offs_n, N, stride_wn, k_begin, K, PREFETCH_K: tl.constexpr):
    """Ask L2 for W[n, k_begin : k_begin + PREFETCH_K] (clipped to K) of the rows ``offs_n`` (rows
    past N clipped to N - 1): one bulk prefetch a row, of whole 16-byte pieces (the caller checks
    that rows start 16-byte aligned)."""
    rows = tl.minimum(offs_n, N - 1).to(tl.int64)
    nbytes = (tl.minimum(PREFETCH_K, tl.maximum(K - k_begin, 0)) * 2) // 16 * 16  # fp16 / bf16
    sizes = tl.full(offs_n.shape, 0, tl.int32) + nbytes
    ptrs = (w_ptr + rows * stride_wn + k_begin).to(tl.int64)  # the address, for the "l" operand
    tl.inline_asm_elementwise(
        "{ .reg .pred p; setp.ne.u32 p, $2, 0; @p cp.async.bulk.prefetch.L2.global [$1], $2; mov.u32 $0, 0; }",
        "=r,l,r", [ptrs, sizes], dtype=tl.int32, is_pure=False, pack=1)


@triton.jit(do_not_specialize=["M", "programs"])
def skinny_gemm_kernel(
    x_ptr, w_ptr, y_ptr, part_ptr, count_ptr,
    M, N, K, k_per_split, programs,
    stride_xm, stride_xk,
    stride_wn, stride_wk,
    stride_ym, stride_yn,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    SPLIT_K: tl.constexpr, EVEN_K: tl.constexpr, SWAP_AB: tl.constexpr = False,
    PDL: tl.constexpr = False, PREFETCH_K: tl.constexpr = 0, BALANCED: tl.constexpr = False,
):
    """y[:, n-tile] = x @ W[n-tile, :]^T; with SPLIT_K > 1, the K slice's partial, summed by the
    tile's last program. ``PDL`` (launched with ``launch_pdl``; "Dependent launch" below): the first
    PREFETCH_K elements of each of the tile's W rows are asked into L2 before waiting for the kernel
    before to finish. ``BALANCED`` (one K slice): ``programs`` programs share W's N rows evenly,
    program p taking rows [p N / programs, (p + 1) N / programs) in a BLOCK_N tile whose rows past
    its share are masked (no memory traffic), so every program streams the same bytes: launched
    with as many programs as SMs, no SM waits on a tile another SM's second program still reads."""
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    offs_m = tl.arange(0, BLOCK_M)
    if BALANCED:
        n_lo = (pid_n * N) // programs
        offs_n = n_lo + tl.arange(0, BLOCK_N)
        n_mask = offs_n < ((pid_n + 1) * N) // programs
    else:
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        n_mask = offs_n < N
    offs_k = tl.arange(0, BLOCK_K)
    m_mask = offs_m < M
    k_begin = pid_k * k_per_split
    if PDL:
        if PREFETCH_K > 0:  # W does not depend on the kernel before: stream it into L2 meanwhile
            l2_prefetch_rows(w_ptr, offs_n, N, stride_wn, k_begin, K, PREFETCH_K)
        tl.extra.cuda.gdc_wait()  # x, y, the partials: only once the kernel before has finished
        tl.extra.cuda.gdc_launch_dependents()

    x_ptrs = x_ptr + offs_m[:, None] * stride_xm + (k_begin + offs_k)[None, :] * stride_xk
    w_ptrs = w_ptr + offs_n[:, None].to(tl.int64) * stride_wn + (k_begin + offs_k)[None, :] * stride_wk
    if SWAP_AB:  # y^T = W x^T: the W tile is the product's row side (wgmma's 64-row side at BLOCK_N >= 64)
        acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, k_per_split, BLOCK_K):  # the same trip count in every program
        if EVEN_K:  # the slices tile K exactly: no K masks
            xt = tl.load(x_ptrs, mask=m_mask[:, None], other=0.0)
            wt = tl.load(w_ptrs, mask=n_mask[:, None], other=0.0)
        else:  # K's tail, and steps of the last slices past K, are masked (no memory traffic)
            k_mask = (k_begin + k0 + offs_k) < K
            xt = tl.load(x_ptrs, mask=m_mask[:, None] & k_mask[None, :], other=0.0)
            wt = tl.load(w_ptrs, mask=n_mask[:, None] & k_mask[None, :], other=0.0)
        if SWAP_AB:
            acc = tl.dot(wt, tl.trans(xt), acc)
        else:
            acc = tl.dot(xt, tl.trans(wt), acc)
        x_ptrs += BLOCK_K * stride_xk
        w_ptrs += BLOCK_K * stride_wk
    if SWAP_AB:
        acc = tl.trans(acc)  # [BLOCK_M, BLOCK_N] again, for the same epilogue

    store_tile(acc, y_ptr, part_ptr, count_ptr, offs_m, offs_n, m_mask, n_mask, M, N, pid_n, pid_k,
               stride_ym, stride_yn, BLOCK_M, BLOCK_N, SPLIT_K)


@triton.jit
def store_tile(acc, y_ptr, part_ptr, count_ptr, offs_m, offs_n, m_mask, n_mask, M, N, pid_n, pid_k,
               stride_ym, stride_yn, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, SPLIT_K: tl.constexpr):
    """The [BLOCK_M, BLOCK_N] fp32 tile ``acc`` into y (y's dtype); with SPLIT_K > 1, as the K
    slice's partial, summed into y by the tile's last program (skinny_gemm_kernel, TMA kernel)."""
    mn_mask = m_mask[:, None] & n_mask[None, :]
    y_ptrs = y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :] * stride_yn
    if SPLIT_K == 1:
        tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=mn_mask)
    else:
        # partials [SPLIT_K, M, N], contiguous: element (s, m, n) at (s M + m) N + n
        mn_offs = offs_m[:, None] * N + offs_n[None, :]
        tl.store(part_ptr + pid_k * M * N + mn_offs, acc, mask=mn_mask)
        tl.debug_barrier()  # all threads' partial stores issued before the one thread's release
        arrived = tl.atomic_add(count_ptr + pid_n, 1, sem="acq_rel", scope="gpu")
        if arrived == SPLIT_K - 1:  # the last slice of this tile: every partial is visible
            total = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
            for s in tl.static_range(SPLIT_K):  # fixed order: the sum does not depend on who came last
                total += tl.load(part_ptr + s * M * N + mn_offs, mask=mn_mask, other=0.0, cache_modifier=".cg")
            tl.store(y_ptrs, total.to(y_ptr.dtype.element_ty), mask=mn_mask)
            tl.atomic_xchg(count_ptr + pid_n, 0, sem="relaxed", scope="gpu")  # ready for the next launch


@triton.jit(do_not_specialize=["M"])
def skinny_gemm_tma_kernel(
    x_desc, w_desc, y_ptr, part_ptr, count_ptr,
    M, N, K, k_per_split,
    stride_ym, stride_yn,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    SPLIT_K: tl.constexpr, SWAP_AB: tl.constexpr = False, PDL: tl.constexpr = False,
):
    """``skinny_gemm_kernel`` with x and W read through tensor descriptors (TMA): x_desc over x [M, K]
    in [BLOCK_M, BLOCK_K] boxes, w_desc over W [N, K] in [BLOCK_N, BLOCK_K] boxes. Boxes past M, N
    or K come back zero-filled, so the loop has no masks; the epilogue is the plain kernel's."""
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    offs_m = tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    k_begin = pid_k * k_per_split
    if PDL:
        tl.extra.cuda.gdc_wait()
        tl.extra.cuda.gdc_launch_dependents()
    if SWAP_AB:
        acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, k_per_split, BLOCK_K):  # the same trip count in every program
        k = k_begin + k0
        xt = x_desc.load([0, k])
        wt = w_desc.load([pid_n * BLOCK_N, k])
        if SWAP_AB:
            acc = tl.dot(wt, tl.trans(xt), acc)
        else:
            acc = tl.dot(xt, tl.trans(wt), acc)
    if SWAP_AB:
        acc = tl.trans(acc)

    store_tile(acc, y_ptr, part_ptr, count_ptr, offs_m, offs_n, offs_m < M, offs_n < N, M, N, pid_n, pid_k,
               stride_ym, stride_yn, BLOCK_M, BLOCK_N, SPLIT_K)


@dataclass(frozen=True)
class SkinnyConfig:
    """Compile-time tiling of ``skinny_gemm_kernel``: N tile rows, K step, warps, pipeline stages
    and K slices (1: no split), and whether the product is computed transposed (``swap_ab``: y^T =
    W x^T, the W tile as the MMA's row side; name suffix ``_ab``), and whether the programs share
    W's rows evenly (``balanced``, one program an SM, the kernel's BALANCED; name suffix ``_bal``:
    ``block_n`` is then the least tile, widened to hold a program's share, ``balanced_tiling``), and
    whether the tiles come through TMA (``tma``, ``skinny_gemm_tma_kernel``; name suffix ``_tma``,
    after ``_ab``). BLOCK_M is not part of it: it follows M."""

    block_n: int = 64
    block_k: int = 256
    num_warps: int = 4
    num_stages: int = 4
    split_k: int = 1
    swap_ab: bool = False
    balanced: bool = False
    tma: bool = False

    def __post_init__(self) -> None:
        for field, v in (("block_n", self.block_n), ("block_k", self.block_k)):
            if v < 16 or v & (v - 1):
                raise ValueError(f"{field} must be a power of two >= 16 (tl.dot), got {v}")
        if self.num_warps not in (1, 2, 4, 8, 16):
            raise ValueError(f"num_warps must be a power of two up to 16, got {self.num_warps}")
        if self.num_stages < 1 or self.split_k < 1:
            raise ValueError(f"num_stages and split_k must be >= 1, got {self.num_stages}, {self.split_k}")
        if self.balanced and self.split_k != 1:
            raise ValueError(f"balanced programs take all of K: split_k must be 1, got {self.split_k}")
        if self.balanced and self.tma:
            raise ValueError("a balanced launch has no TMA variant (_tma and _bal together)")

    @property
    def name(self) -> str:
        """``tsk_n{block_n}_k{block_k}_w{num_warps}_s{num_stages}_sk{split_k}``, ``_ab`` after it with
        swap_ab, then ``_tma`` with tma, then ``_bal`` with balanced."""
        return (f"tsk_n{self.block_n}_k{self.block_k}_w{self.num_warps}_s{self.num_stages}_sk{self.split_k}"
                + ("_ab" if self.swap_ab else "") + ("_tma" if self.tma else "") + ("_bal" if self.balanced else ""))

    @classmethod
    def from_name(cls, name: str) -> SkinnyConfig:
        """The config ``name`` was made from (inverse of ``name``); ValueError if it is not one."""
        match = _NAME.fullmatch(name)
        if match is None:
            raise ValueError(f"not a skinny GEMM config name: {name!r} (like tsk_n64_k256_w4_s4_sk1)")
        *ints, ab, tma, bal = match.groups()
        return cls(*(int(v) for v in ints), swap_ab=ab is not None, balanced=bal is not None, tma=tma is not None)

    def balanced_tiling(self, n: int, programs: int) -> tuple[int, int]:
        """(BLOCK_N, BLOCK_K) of a balanced launch over ``programs`` programs: the N tile the next
        power of two that holds a program's share of ``n`` rows (``block_n`` at least), and the K
        step halved (down to 32) while the pipeline's W and x stages would pass BALANCED_SMEM."""
        bn = max(self.block_n, triton.next_power_of_2(triton.cdiv(n, programs)))
        bk = self.block_k
        while bk > 32 and (bn + MAX_M) * bk * 2 * self.num_stages > BALANCED_SMEM:
            bk //= 2
        return bn, bk

    def k_per_split(self, k: int) -> int:
        """K elements per slice: K / split_k rounded up to whole BLOCK_K steps (so slices start on
        block boundaries; the last slices may be shorter or, for tiny K, empty)."""
        return triton.cdiv(triton.cdiv(k, self.split_k), self.block_k) * self.block_k

    def even_k(self, k: int) -> bool:
        """Whether the slices tile K exactly (K a multiple of split_k x block_k): no K masks then."""
        return k % (self.split_k * self.block_k) == 0


def block_m(m: int) -> int:
    """The one M tile: max(16, next power of two of M)."""
    return max(16, triton.next_power_of_2(m))


@dataclass(frozen=True)
class SkinnyWorkspace:
    """Split-K buffers: fp32 partials [split_k, M, N] and int32 counters [n_tiles], zero between launches."""

    partials: torch.Tensor
    counts: torch.Tensor

    @classmethod
    def make(cls, m: int, n: int, cfg: SkinnyConfig, device: torch.device | str) -> SkinnyWorkspace:
        return cls(torch.empty((cfg.split_k, m, n), dtype=torch.float32, device=device),
                   torch.zeros(triton.cdiv(n, cfg.block_n), dtype=torch.int32, device=device))

    def fits(self, m: int, n: int, cfg: SkinnyConfig) -> bool:
        return (tuple(self.partials.shape) == (cfg.split_k, m, n) and self.partials.dtype == torch.float32
                and self.partials.is_contiguous() and self.counts.dtype == torch.int32
                and self.counts.numel() >= triton.cdiv(n, cfg.block_n))


_WORKSPACES: dict[tuple, SkinnyWorkspace] = {}


def cached_workspace(m: int, n: int, cfg: SkinnyConfig, device: torch.device) -> SkinnyWorkspace:
    """The workspace for (device, M, N, split_k, block_n), made on first use and kept. Made while a
    CUDA graph is being captured, its counters would be zeroed only by the captured memset (never
    before an eager call), so that is refused: call once before capturing."""
    key = (str(device), m, n, cfg.split_k, cfg.block_n)
    ws = _WORKSPACES.get(key)
    if ws is None:
        if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
            raise RuntimeError(f"skinny_gemm: no split-K workspace for M={m}, N={n}, {cfg.name} yet; "
                               "run it once before CUDA graph capture")
        ws = _WORKSPACES[key] = SkinnyWorkspace.make(m, n, cfg, device)
    return ws


def pdl_supported(device: torch.device | str) -> bool:
    """Whether kernels on ``device`` can be launched with PDL: CUDA, compute capability 9.0 or more."""
    device = torch.device(device)
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 9


@functools.cache
def sm_count(device: torch.device) -> int:
    """Streaming multiprocessors of a CUDA ``device`` (a balanced launch's programs); 8 elsewhere
    (Triton's interpreter, for the tests)."""
    if device.type != "cuda":
        return 8
    return torch.cuda.get_device_properties(device).multi_processor_count


def skinny_gemm(x: torch.Tensor, w: torch.Tensor, cfg: SkinnyConfig, out: torch.Tensor | None = None,
                workspace: SkinnyWorkspace | None = None, pdl: bool = False, prefetch_k: int = 0,
                programs: int | None = None) -> torch.Tensor:
    """``x [M, K] @ w[N, K]^T`` -> [M, N] in x's dtype (fp16 or bf16), fp32 accumulation, one launch.

    ``out``: an [M, N] tensor of x's dtype to write (else a new one). ``workspace``: split-K buffers
    (else the cached ones for this shape). ``pdl``: launched with programmatic dependent launch
    ("Dependent launch" above; ValueError where ``pdl_supported`` is false), the first
    ``prefetch_k`` elements of each W row of a program's slice asked into L2 before its wait (0:
    none; left out where W's rows do not start 16-byte aligned). ``programs``: a balanced config's
    programs (default: one an SM, ``sm_count``). ValueError for shapes, dtypes or devices that do
    not fit.
    """
    if x.dim() != 2 or w.dim() != 2:
        raise ValueError(f"skinny_gemm: x and w must be 2-D, got x {tuple(x.shape)}, w {tuple(w.shape)}")
    m, k = x.shape
    n, kw = w.shape
    if kw != k:
        raise ValueError(f"skinny_gemm: x [M, K] and w [N, K] disagree on K: x {tuple(x.shape)}, w {tuple(w.shape)}")
    if not 1 <= m <= MAX_M:
        raise ValueError(f"skinny_gemm: M={m} rows, expected 1..{MAX_M}")
    if n < 1 or k < 1:
        raise ValueError(f"skinny_gemm: empty product, N={n}, K={k}")
    if x.dtype not in _DTYPES or w.dtype != x.dtype:
        raise ValueError(f"skinny_gemm: x and w must both be float16 or bfloat16, got {x.dtype}, {w.dtype}")
    if x.device != w.device:
        raise ValueError(f"skinny_gemm: x on {x.device}, w on {w.device}")
    if prefetch_k < 0:
        raise ValueError(f"skinny_gemm: prefetch_k must be >= 0, got {prefetch_k}")
    if out is None:
        out = torch.empty((m, n), dtype=x.dtype, device=x.device)
    elif tuple(out.shape) != (m, n) or out.dtype != x.dtype or out.device != x.device:
        raise ValueError(f"skinny_gemm: out must be [{m}, {n}] {x.dtype} on {x.device}, "
                         f"got {tuple(out.shape)} {out.dtype} on {out.device}")
    if cfg.split_k > 1:
        if workspace is None:
            workspace = cached_workspace(m, n, cfg, x.device)
        elif not workspace.fits(m, n, cfg) or workspace.partials.device != x.device:
            raise ValueError(f"skinny_gemm: workspace does not fit M={m}, N={n}, {cfg.name}")
        part, counts = workspace.partials, workspace.counts
    else:
        part, counts = out, out  # never read: SPLIT_K == 1 compiles the epilogue out
    extra = {}
    if pdl:
        if not pdl_supported(x.device):
            raise ValueError(f"skinny_gemm: pdl needs a CUDA device of compute capability 9.0 or more, got {x.device}")
        aligned = w.stride(1) == 1 and (w.stride(0) * w.element_size()) % 16 == 0 and w.data_ptr() % 16 == 0
        extra = {"PDL": True, "PREFETCH_K": prefetch_k if aligned else 0, "launch_pdl": True}
    if cfg.tma:  # no L2 prefetch in the TMA kernel
        extra.pop("PREFETCH_K", None)
        return _skinny_gemm_tma(x, w, cfg, out, part, counts, extra)
    if cfg.balanced:
        programs = sm_count(x.device) if programs is None else programs
        if programs < 1:
            raise ValueError(f"skinny_gemm: a balanced launch needs programs >= 1, got {programs}")
        bn, bk = cfg.balanced_tiling(n, programs)
        grid = (programs, 1)
        k_per_split, even_k = triton.cdiv(k, bk) * bk, k % bk == 0
    else:
        bn, bk = cfg.block_n, cfg.block_k
        grid = (triton.cdiv(n, cfg.block_n), cfg.split_k)
        k_per_split, even_k, programs = cfg.k_per_split(k), cfg.even_k(k), 1  # programs: unread
    skinny_gemm_kernel[grid](
        x, w, out, part, counts,
        m, n, k, k_per_split, programs,
        x.stride(0), x.stride(1), w.stride(0), w.stride(1), out.stride(0), out.stride(1),
        BLOCK_M=block_m(m), BLOCK_N=bn, BLOCK_K=bk, SPLIT_K=cfg.split_k,
        EVEN_K=even_k, SWAP_AB=cfg.swap_ab, BALANCED=cfg.balanced, num_warps=cfg.num_warps,
        num_stages=cfg.num_stages, **extra,
    )
    return out


def tma_unavailable_reason(x: torch.Tensor, w: torch.Tensor) -> str | None:
    """Why x and W cannot be read through tensor descriptors (None: they can): rows contiguous along
    K, 16-byte aligned rows and base addresses, and on CUDA compute capability 9.0 or more."""
    for name, t in (("x", x), ("w", w)):
        if t.stride(1) != 1 or (t.stride(0) * t.element_size()) % 16 or t.data_ptr() % 16:
            return f"{name} {tuple(t.shape)} strides {t.stride()}: rows must be contiguous and 16-byte aligned"
    if x.device.type == "cuda" and torch.cuda.get_device_capability(x.device)[0] < 9:
        return f"{x.device} has no TMA (compute capability 9.0 or more)"
    return None


def _skinny_gemm_tma(x: torch.Tensor, w: torch.Tensor, cfg: SkinnyConfig, out: torch.Tensor,
                     part: torch.Tensor, counts: torch.Tensor, extra: dict) -> torch.Tensor:
    """``skinny_gemm`` for a ``_tma`` config (checked there, PDL's launch options in ``extra``):
    descriptors over x and W, one launch."""
    from triton.tools.tensor_descriptor import TensorDescriptor

    why = tma_unavailable_reason(x, w)
    if why is not None:
        raise ValueError(f"skinny_gemm: {cfg.name} reads through TMA: {why}")
    m, k = x.shape
    n = w.shape[0]
    bm = block_m(m)
    x_desc = TensorDescriptor(x, list(x.shape), list(x.stride()), [bm, cfg.block_k])
    w_desc = TensorDescriptor(w, list(w.shape), list(w.stride()), [cfg.block_n, cfg.block_k])
    grid = (triton.cdiv(n, cfg.block_n), cfg.split_k)
    skinny_gemm_tma_kernel[grid](
        x_desc, w_desc, out, part, counts,
        m, n, k, cfg.k_per_split(k), out.stride(0), out.stride(1),
        BLOCK_M=bm, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k, SPLIT_K=cfg.split_k,
        SWAP_AB=cfg.swap_ab, num_warps=cfg.num_warps, num_stages=cfg.num_stages, **extra,
    )
    return out


# --- Prologues: the decode step's small kernels folded into the GEMM that reads their output ----
#
# The engine's layer runs add_rms_norm (x += d, then RMSNorm(x) * g) before qkv and gate_up, and
# silu(gate) * up before down: three small kernels a layer, about 0.27 ms of a decode step on the
# H200 (docs/engine.md). With the GEMM our own, each can be computed where the GEMM loads its x
# tiles instead:
#
# - PRO_NORM: the tile of x (+ d) is scaled by g and fed to the dot; each row's sum of squares is
#   accumulated over the same K loop, and the row's 1 / rms multiplies the accumulator at the end
#   (the norm is linear per row, so scaling after the dot is the same product). The programs of the
#   first N tile also write x + d to ``res`` (a separate tensor: other programs still read x) and,
#   when asked, the normalized h to ``h`` in a second pass over K (the LoRA kernels read h).
# - PRO_SILU: x is gate_up [M, 2 K]; the tile is silu(gate) * up of its columns, as silu_mul
#   computes it (silu rounded to x's dtype, then the product), so no [M, K] intermediate exists
#   unless asked for (``h``, for a LoRA on down_proj).
#
# No split-K (the engine's configuration has none) and no swap_ab with a prologue.
PRO_NORM = 1
PRO_SILU = 2


@triton.jit(do_not_specialize=["M"])
def skinny_prologue_kernel(
    x_ptr, d_ptr, g_ptr, res_ptr, h_ptr, w_ptr, y_ptr,
    M, N, K, eps,
    stride_xm, stride_dm, stride_resm, stride_hm, stride_wn, stride_ym,
    PRO: tl.constexpr, HAS_D: tl.constexpr, WRITE_H: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, EVEN_K: tl.constexpr,
):
    """y[:, n-tile] = prologue(x) @ W[n-tile, :]^T (rows of x, W and y contiguous along K / N)."""
    pid_n = tl.program_id(0)
    offs_m = tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    m_mask = offs_m < M
    n_mask = offs_n < N
    first = pid_n == 0
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    ss = tl.zeros((BLOCK_M,), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + offs_k
        if EVEN_K:
            k_mask = offs_k < BLOCK_K  # all true: K is a multiple of BLOCK_K
        else:
            k_mask = ks < K
        mk = m_mask[:, None] & k_mask[None, :]
        xt = tl.load(x_ptr + offs_m[:, None] * stride_xm + ks[None, :], mask=mk, other=0.0)
        if PRO == 1:
            if HAS_D:
                dt = tl.load(d_ptr + offs_m[:, None] * stride_dm + ks[None, :], mask=mk, other=0.0)
                xt = (xt.to(tl.float32) + dt.to(tl.float32)).to(x_ptr.dtype.element_ty)
                tl.store(res_ptr + offs_m[:, None] * stride_resm + ks[None, :], xt, mask=mk & first)
            xf = xt.to(tl.float32)
            ss += tl.sum(xf * xf, axis=1)
            gt = tl.load(g_ptr + ks, mask=k_mask, other=0.0).to(tl.float32)
            op = (xf * gt[None, :]).to(x_ptr.dtype.element_ty)
        else:
            ut = tl.load(x_ptr + offs_m[:, None] * stride_xm + K + ks[None, :], mask=mk, other=0.0)
            gf = xt.to(tl.float32)
            s = (gf / (1.0 + tl.exp(-gf))).to(x_ptr.dtype.element_ty).to(tl.float32)
            op = (s * ut.to(tl.float32)).to(x_ptr.dtype.element_ty)
            if WRITE_H:
                tl.store(h_ptr + offs_m[:, None] * stride_hm + ks[None, :], op, mask=mk & first)
        wt = tl.load(w_ptr + offs_n[:, None].to(tl.int64) * stride_wn + ks[None, :],
                     mask=n_mask[:, None] & k_mask[None, :], other=0.0)
        acc = tl.dot(op, tl.trans(wt), acc)
    if PRO == 1:
        r = tl.rsqrt(ss / K + eps)
        acc = acc * r[:, None]
        if WRITE_H:
            if first:  # a second pass over K for h itself, as add_rms_norm rounds it
                tl.debug_barrier()  # this program's res stores, by all its threads, before they are read
                for k0 in range(0, K, BLOCK_K):
                    ks = k0 + offs_k
                    k_mask = ks < K
                    mk = m_mask[:, None] & k_mask[None, :]
                    if HAS_D:
                        xt = tl.load(res_ptr + offs_m[:, None] * stride_resm + ks[None, :], mask=mk, other=0.0)
                    else:
                        xt = tl.load(x_ptr + offs_m[:, None] * stride_xm + ks[None, :], mask=mk, other=0.0)
                    yn = (xt.to(tl.float32) * r[:, None]).to(h_ptr.dtype.element_ty).to(tl.float32)
                    gt = tl.load(g_ptr + ks, mask=k_mask, other=0.0).to(tl.float32)
                    tl.store(h_ptr + offs_m[:, None] * stride_hm + ks[None, :],
                             (yn * gt[None, :]).to(h_ptr.dtype.element_ty), mask=mk)
    y_ptrs = y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :]
    tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=m_mask[:, None] & n_mask[None, :])


def _check_prologue(x: torch.Tensor, w: torch.Tensor, k: int, cfg: SkinnyConfig, what: str,
                    epilogue: bool = False) -> int:
    """M of a prologue GEMM's x, after the checks skinny_gemm makes (ValueError naming ``what``).
    Prologues take neither split-K nor swap_ab; epilogues take both, but not TMA or a balanced launch."""
    if not epilogue and (cfg.split_k != 1 or cfg.swap_ab):
        raise ValueError(f"{what}: a prologue runs without split-K or swap_ab, got {cfg.name}")
    if cfg.tma or cfg.balanced:
        raise ValueError(f"{what}: no TMA or balanced launch here, got {cfg.name}")
    if x.dim() != 2 or w.dim() != 2 or x.stride(-1) != 1 or w.stride(-1) != 1:
        raise ValueError(f"{what}: x and w must be 2-D with contiguous rows, "
                         f"got x {tuple(x.shape)}, w {tuple(w.shape)}")
    m = x.shape[0]
    if w.shape[1] != k:
        raise ValueError(f"{what}: w [N, K] must have K={k}, got {tuple(w.shape)}")
    if not 1 <= m <= MAX_M:
        raise ValueError(f"{what}: M={m} rows, expected 1..{MAX_M}")
    if x.dtype != torch.float16 or w.dtype != torch.float16:
        raise ValueError(f"{what}: x and w must be float16, got {x.dtype}, {w.dtype}")
    return m


def norm_gemm(x: torch.Tensor, d: torch.Tensor | None, g: torch.Tensor, eps: float, w: torch.Tensor,
              cfg: SkinnyConfig, want_h: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(y, res, h)``: res = x + d (x itself when d is None; x is not written), h = RMSNorm(res) * g
    (only with ``want_h``, else None) and y = h @ w^T -- what ``add_rms_norm`` then ``F.linear``
    compute, in one launch. x, d [M, K] fp16 with contiguous rows, g [K], w [N, K]."""
    m = _check_prologue(x, w, x.shape[1], cfg, "norm_gemm")
    k, n = x.shape[1], w.shape[0]
    if d is not None and tuple(d.shape) != tuple(x.shape):
        raise ValueError(f"norm_gemm: d {tuple(d.shape)} must be x's shape {tuple(x.shape)}")
    if tuple(g.shape) != (k,):
        raise ValueError(f"norm_gemm: g must be [{k}], got {tuple(g.shape)}")
    y = torch.empty((m, n), dtype=x.dtype, device=x.device)
    res = torch.empty_like(x) if d is not None else x
    h = torch.empty_like(x) if want_h else y
    skinny_prologue_kernel[(triton.cdiv(n, cfg.block_n),)](
        x, d if d is not None else x, g, res, h, w, y,
        m, n, k, eps,
        x.stride(0), (d if d is not None else x).stride(0), res.stride(0), h.stride(0), w.stride(0), y.stride(0),
        PRO=PRO_NORM, HAS_D=d is not None, WRITE_H=want_h,
        BLOCK_M=block_m(m), BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k, EVEN_K=k % cfg.block_k == 0,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )
    return y, res, (h if want_h else None)


def silu_gemm(gu: torch.Tensor, w: torch.Tensor, cfg: SkinnyConfig, want_h: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(y, a)``: a = silu(gu[:, :K]) * gu[:, K:] (only with ``want_h``, else None) and y = a @ w^T
    -- what ``silu_mul`` then ``F.linear`` compute, in one launch. gu [M, 2 K], w [N, K]."""
    if gu.dim() != 2 or gu.shape[1] % 2:
        raise ValueError(f"silu_gemm: gu must be [M, 2 K], got {tuple(gu.shape)}")
    k = gu.shape[1] // 2
    m = _check_prologue(gu, w, k, cfg, "silu_gemm")
    n = w.shape[0]
    y = torch.empty((m, n), dtype=gu.dtype, device=gu.device)
    a = torch.empty((m, k), dtype=gu.dtype, device=gu.device) if want_h else y
    skinny_prologue_kernel[(triton.cdiv(n, cfg.block_n),)](
        gu, gu, gu, gu, a, w, y,
        m, n, k, 0.0,
        gu.stride(0), gu.stride(0), gu.stride(0), a.stride(0), w.stride(0), y.stride(0),
        PRO=PRO_SILU, HAS_D=False, WRITE_H=want_h,
        BLOCK_M=block_m(m), BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k, EVEN_K=k % cfg.block_k == 0,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )
    return y, (a if want_h else None)


# --- Epilogues: the decode step's small kernels folded into the GEMMs around them --------------
#
# The prologues above fold add_rms_norm into the GEMM that reads its output, and pay for it in
# every N tile. The norm can instead be split between the GEMM before it and the GEMM after it,
# each doing only per-tile work in its epilogue (RMSNorm(r) * g @ W^T = diag(1 / rms(r)) (r * g) W^T,
# the norm being one scale per row):
#
# - RESID (o_proj and down_proj, whose output is added to the residual r): the epilogue rounds its
#   tile to x's dtype as the unfused GEMM would, adds it to r's tile in place (r += y, each tile
#   owned by one program), writes hg = r * g (g: the next norm's weight) and stores the tile's part
#   of each row's sum of squares of r as row ``pid_n`` of ``ss_out`` ([N tiles, M] parts), or with
#   SS_ATOMIC adds it into one vector with an fp32 atomic. y itself is not written: without LoRA
#   nothing else reads it.
# - ROW_SCALE (qkv, gate_up, lm_head, which read the norm's output): the GEMM is the plain one over
#   hg, and the epilogue multiplies each row by 1 / rms = rsqrt(ss[m] / K + eps), ss[m] the sum of
#   the parts in a fixed order. The atomics add in whatever order the tiles finish: batch 32's
#   logits moved by about 1.3e-3 from one run to the next (gpu/results/model-13b-h200-8c64e5e/).
#   Stored parts give the same bits each run, but batch 32's step takes about 1 % longer
#   (gpu/results/ss-atomic-ab-h200-3dd5a38/); the engine keeps the atomics by default
#   (gpu/engine/model.py EPILOGUE_SS_ATOMIC).
# - GLU (gate_up, with ROW_SCALE): each program reads the gate tile and the up tile of the same
#   columns (rows n and n + n_up of W) into two accumulators and writes silu(gate) * up, rounded as
#   silu_mul rounds it, so neither gate_up's [M, 2 N] output nor the silu_mul launch exists.
#
# So a layer runs five weight GEMMs and no add_rms_norm or silu_mul; the step's first norm comes
# from ``norm_prep`` (hg and ss of the embeddings), its last one is lm_head's ROW_SCALE.
# The configuration may compute the product transposed (``_ab``) and split K (the tile's last
# program sums the partials and runs the epilogue alone), for batches of 17-32 rows
# (gpu/engine/model.py WIDE_EPILOGUES), where N = 4,096 gives o_proj and down_proj 64 tiles only.


@triton.jit(do_not_specialize=["M"])
def skinny_epilogue_kernel(
    x_ptr, w_ptr, y_ptr, ss_in_ptr, res_ptr, g_ptr, hg_ptr, ss_out_ptr, part_ptr, count_ptr,
    M, N, K, n_up, eps, k_per_split, n_ss_in,
    stride_xm, stride_wn, stride_ym, stride_resm, stride_hgm, stride_ss_in, stride_ss_out,
    ROW_SCALE: tl.constexpr, GLU: tl.constexpr, RESID: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, EVEN_K: tl.constexpr,
    SPLIT_K: tl.constexpr = 1, SWAP_AB: tl.constexpr = False, SS_IN_BLOCK: tl.constexpr = 1,
    SS_ATOMIC: tl.constexpr = False,
):
    """The skinny GEMM's loop (rows of x and W contiguous along K), then the epilogue(s) asked for.
    With SPLIT_K > 1 each program computes its K slice's partial(s) (GLU: gate and up), stores them
    to ``part_ptr`` (fp32 [SPLIT_K, 1 or 2, M, N]) and the tile's last program (the counter of
    ``skinny_gemm_kernel``) sums them in slice order and runs the epilogue alone. SWAP_AB: the
    product computed transposed (W's tile as the MMA's row side), as in skinny_gemm_kernel.
    ROW_SCALE reads the ``n_ss_in`` parts of the row sums of squares ([n_ss_in, M], row stride
    ``stride_ss_in``; SS_IN_BLOCK a power of two at least n_ss_in) and sums them in one fixed order;
    RESID stores its tile's part as row pid_n of ss_out (row stride ``stride_ss_out``), or with
    SS_ATOMIC adds it into row 0 with an fp32 atomic (the order the tiles finish in: not the same bits
    each run)."""
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    offs_m = tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    m_mask = offs_m < M
    n_mask = offs_n < N
    k_begin = pid_k * k_per_split
    x_ptrs = x_ptr + offs_m[:, None] * stride_xm + (k_begin + offs_k)[None, :]
    w_ptrs = w_ptr + offs_n[:, None].to(tl.int64) * stride_wn + (k_begin + offs_k)[None, :]
    u_ptrs = w_ptrs + n_up * stride_wn  # GLU: the up rows of the same columns (n_up * K < 2^31)
    if SWAP_AB:
        acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
        acc_u = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        acc_u = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, k_per_split, BLOCK_K):  # the same trip count in every program
        if EVEN_K:
            xt = tl.load(x_ptrs, mask=m_mask[:, None], other=0.0)
            wt = tl.load(w_ptrs, mask=n_mask[:, None], other=0.0)
            if GLU:
                ut = tl.load(u_ptrs, mask=n_mask[:, None], other=0.0)
        else:
            k_mask = (k_begin + k0 + offs_k) < K
            xt = tl.load(x_ptrs, mask=m_mask[:, None] & k_mask[None, :], other=0.0)
            wt = tl.load(w_ptrs, mask=n_mask[:, None] & k_mask[None, :], other=0.0)
            if GLU:
                ut = tl.load(u_ptrs, mask=n_mask[:, None] & k_mask[None, :], other=0.0)
        if SWAP_AB:
            acc = tl.dot(wt, tl.trans(xt), acc)
        else:
            acc = tl.dot(xt, tl.trans(wt), acc)
        if GLU:
            if SWAP_AB:
                acc_u = tl.dot(ut, tl.trans(xt), acc_u)
            else:
                acc_u = tl.dot(xt, tl.trans(ut), acc_u)
            u_ptrs += BLOCK_K
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    if SWAP_AB:
        acc = tl.trans(acc)
        acc_u = tl.trans(acc_u)  # unused without GLU, but of the shape the epilogue gives it
    mn_mask = m_mask[:, None] & n_mask[None, :]
    last = True
    if SPLIT_K > 1:
        # partials [SPLIT_K, NP, M, N], contiguous (NP = 2 with GLU: gate, then up)
        NP: tl.constexpr = 2 if GLU else 1
        mn_offs = offs_m[:, None] * N + offs_n[None, :]
        tl.store(part_ptr + (pid_k * NP) * M * N + mn_offs, acc, mask=mn_mask)
        if GLU:
            tl.store(part_ptr + (pid_k * NP + 1) * M * N + mn_offs, acc_u, mask=mn_mask)
        tl.debug_barrier()  # all threads' partial stores issued before the one thread's release
        arrived = tl.atomic_add(count_ptr + pid_n, 1, sem="acq_rel", scope="gpu")
        last = arrived == SPLIT_K - 1
        if last:  # every partial is visible: sum them in slice order, reset the counter
            acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
            acc_u = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
            for sl in tl.static_range(SPLIT_K):
                acc += tl.load(part_ptr + (sl * NP) * M * N + mn_offs, mask=mn_mask, other=0.0,
                               cache_modifier=".cg")
                if GLU:
                    acc_u += tl.load(part_ptr + (sl * NP + 1) * M * N + mn_offs, mask=mn_mask, other=0.0,
                                     cache_modifier=".cg")
            tl.atomic_xchg(count_ptr + pid_n, 0, sem="relaxed", scope="gpu")
    if last:
        dt = x_ptr.dtype.element_ty
        if ROW_SCALE:
            offs_p = tl.arange(0, SS_IN_BLOCK)
            parts = tl.load(ss_in_ptr + offs_p[:, None] * stride_ss_in + offs_m[None, :],
                            mask=(offs_p < n_ss_in)[:, None] & m_mask[None, :], other=0.0)
            ss = tl.sum(parts, axis=0)  # one reduction tree for a given SS_IN_BLOCK: the same bits each run
            r = tl.rsqrt(ss / K + eps)
            acc = acc * r[:, None]
            if GLU:
                acc_u = acc_u * r[:, None]
        if GLU:  # as the unfused pass rounds: gate and up to dt, silu to dt, then the product
            gf = acc.to(dt).to(tl.float32)
            s = (gf / (1.0 + tl.exp(-gf))).to(dt).to(tl.float32)
            acc = s * acc_u.to(dt).to(tl.float32)
        if RESID:
            r_ptrs = res_ptr + offs_m[:, None] * stride_resm + offs_n[None, :]
            old = tl.load(r_ptrs, mask=mn_mask, other=0.0)
            new = (old.to(tl.float32) + acc.to(dt).to(tl.float32)).to(dt)
            tl.store(r_ptrs, new, mask=mn_mask)
            nf = new.to(tl.float32)
            if SS_ATOMIC:
                tl.atomic_add(ss_out_ptr + offs_m, tl.sum(nf * nf, axis=1), mask=m_mask, sem="relaxed")
            else:
                tl.store(ss_out_ptr + pid_n * stride_ss_out + offs_m, tl.sum(nf * nf, axis=1), mask=m_mask)
            gv = tl.load(g_ptr + offs_n, mask=n_mask, other=0.0).to(tl.float32)
            tl.store(hg_ptr + offs_m[:, None] * stride_hgm + offs_n[None, :], (nf * gv[None, :]).to(dt),
                     mask=mn_mask)
        else:
            tl.store(y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :], acc.to(dt), mask=mn_mask)


@triton.jit
def norm_prep_kernel(x_ptr, g_ptr, hg_ptr, ss_ptr, N, stride_xm, stride_hgm, BLOCK: tl.constexpr):
    """One row: ss = sum of x^2 (fp32), hg = x * g (x's dtype)."""
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    m = cols < N
    xf = tl.load(x_ptr + row * stride_xm + cols, mask=m, other=0.0).to(tl.float32)
    gv = tl.load(g_ptr + cols, mask=m, other=0.0).to(tl.float32)
    tl.store(ss_ptr + row, tl.sum(xf * xf, axis=0))
    tl.store(hg_ptr + row * stride_hgm + cols, (xf * gv).to(hg_ptr.dtype.element_ty), mask=m)


def _check_rows(what: str, **tensors: torch.Tensor) -> None:
    """ValueError naming ``what`` unless every tensor is 2-D fp16 with contiguous rows."""
    for name, t in tensors.items():
        if t.dim() != 2 or t.stride(-1) != 1 or t.dtype != torch.float16:
            raise ValueError(f"{what}: {name} must be a 2-D float16 tensor with contiguous rows, "
                             f"got {tuple(t.shape)} {t.dtype} strides {t.stride()}")


def _check_ss(what: str, name: str, ss: torch.Tensor, m: int) -> None:
    if ss.dim() != 1 or ss.shape[0] < m or ss.dtype != torch.float32 or ss.stride(0) != 1:
        raise ValueError(f"{what}: {name} must be a contiguous float32 vector of at least {m}, "
                         f"got {tuple(ss.shape)} {ss.dtype}")


def _check_ss_parts(what: str, name: str, ss: torch.Tensor, m: int, parts: int | None = None) -> torch.Tensor:
    """ss as [P, >= m] parts of the row sums of squares (a vector is one part): float32, each part's
    entries contiguous; ``parts``: at least that many rows."""
    if ss.dim() == 1:
        ss = ss.unsqueeze(0)
    if (ss.dim() != 2 or ss.shape[1] < m or ss.shape[0] < (parts or 1) or ss.dtype != torch.float32
            or ss.stride(1) != 1):
        need = f"[{parts} or more, {m} or more]" if parts else f"a vector of {m} or more, or [P, {m} or more]"
        raise ValueError(f"{what}: {name} must be float32 {need} with contiguous rows, "
                         f"got {tuple(ss.shape)} {ss.dtype} strides {ss.stride()}")
    return ss


def ss_parts(n: int, cfg: SkinnyConfig) -> int:
    """How many parts of the row sums of squares ``residual_gemm`` stores for N output columns: one
    an N tile."""
    return triton.cdiv(n, cfg.block_n)


def _check_epilogue(x: torch.Tensor, w: torch.Tensor, cfg: SkinnyConfig, what: str) -> tuple[int, int]:
    """(M, K) of an epilogue GEMM's x, after the prologues' checks (ValueError naming ``what``)."""
    m = _check_prologue(x, w, x.shape[-1], cfg, what, epilogue=True)
    if x.device != w.device:
        raise ValueError(f"{what}: x on {x.device}, w on {w.device}")
    return m, x.shape[1]


def norm_prep(x: torch.Tensor, g: torch.Tensor, hg: torch.Tensor, ss: torch.Tensor) -> None:
    """``hg = x * g`` and ``ss[:M]`` = each row's sum of squares of x: the first norm of a step
    whose others come from ``residual_gemm``. x, hg [M, K] fp16, g [K], ss an fp32 vector (one part,
    for ``scaled_gemm``)."""
    _check_rows("norm_prep", x=x, hg=hg)
    m, k = x.shape
    if tuple(hg.shape) != (m, k) or tuple(g.shape) != (k,):
        raise ValueError(f"norm_prep: hg must be [{m}, {k}] and g [{k}], got {tuple(hg.shape)}, {tuple(g.shape)}")
    _check_ss("norm_prep", "ss", ss, m)
    block = triton.next_power_of_2(k)
    norm_prep_kernel[(m,)](x, g, hg, ss, k, x.stride(0), hg.stride(0), BLOCK=block,
                           num_warps=8 if block >= 4096 else 4)


def scaled_gemm(hg: torch.Tensor, w: torch.Tensor, cfg: SkinnyConfig, ss: torch.Tensor, eps: float,
                glu: bool = False) -> torch.Tensor:
    """``RMSNorm(r) * g @ w^T`` from ``hg = r * g`` and ss = r's row sums of squares, as parts [P, M]
    summed in a fixed order (what residual_gemm returns) or one vector (what norm_prep wrote): [M, N]
    in hg's dtype. With ``glu``, w is [2 N, K] (gate rows, then up rows) and the result is
    silu(gate) * up, [M, N]: what silu_mul of the product gives."""
    what = "scaled_gemm"
    m, k = _check_epilogue(hg, w, cfg, what)
    ss = _check_ss_parts(what, "ss", ss, m)
    n = w.shape[0]
    if glu:
        if n % 2:
            raise ValueError(f"{what}: with glu, w must be [2 N, K] (gate, then up), got {tuple(w.shape)}")
        n //= 2
    y = torch.empty((m, n), dtype=hg.dtype, device=hg.device)
    part, counts = _epilogue_workspace(m, n, cfg, glu, hg.device, y)
    skinny_epilogue_kernel[(triton.cdiv(n, cfg.block_n), cfg.split_k)](
        hg, w, y, ss, y, ss, y, ss, part, counts,
        m, n, k, n if glu else 0, eps, cfg.k_per_split(k), ss.shape[0],
        hg.stride(0), w.stride(0), y.stride(0), 0, 0, ss.stride(0), 0,
        ROW_SCALE=True, GLU=glu, RESID=False,
        BLOCK_M=block_m(m), BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k, EVEN_K=cfg.even_k(k),
        SPLIT_K=cfg.split_k, SWAP_AB=cfg.swap_ab, SS_IN_BLOCK=triton.next_power_of_2(ss.shape[0]),
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )
    return y


def _epilogue_workspace(m: int, n: int, cfg: SkinnyConfig, glu: bool, device: torch.device,
                        dummy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(partials, counters) of a split-K epilogue GEMM: the cached workspace of [split_k x 2, M, N]
    partials with GLU (gate and up), [split_k, M, N] without; (dummy, dummy) without split-K."""
    if cfg.split_k == 1:
        return dummy, dummy
    ws = cached_workspace(m, 2 * n if glu else n, cfg, device)  # [split_k, M, 2 N] holds [split_k, 2, M, N]
    return ws.partials, ws.counts


def residual_gemm(x: torch.Tensor, w: torch.Tensor, cfg: SkinnyConfig, res: torch.Tensor, g: torch.Tensor,
                  hg: torch.Tensor, ss_out: torch.Tensor, ss_atomic: bool = False) -> torch.Tensor:
    """``res += x @ w^T`` in place (the product rounded to res's dtype first, as F.linear's output
    would be), then ``hg = res * g`` and res's row sums of squares as parts: row t of ``ss_out``
    ([ss_parts(N, cfg) or more, M or more] fp32) gets N tile t's part, stored, not added. Returns
    the parts written (``ss_out[:ss_parts(N, cfg)]``), what scaled_gemm takes. With ``ss_atomic``
    every tile adds its part into ``ss_out[0]`` with an fp32 atomic instead (zero it first; returns
    ``ss_out[:1]``): one part to read, but the sum's order, and so its last bits, vary from run to
    run. x [M, K], w [N, K], res and hg [M, N], g [N]."""
    what = "residual_gemm"
    m, k = _check_epilogue(x, w, cfg, what)
    n = w.shape[0]
    _check_rows(what, res=res, hg=hg)
    if tuple(res.shape) != (m, n) or tuple(hg.shape) != (m, n) or tuple(g.shape) != (n,):
        raise ValueError(f"{what}: res and hg must be [{m}, {n}] and g [{n}], "
                         f"got {tuple(res.shape)}, {tuple(hg.shape)}, {tuple(g.shape)}")
    if hg.data_ptr() == res.data_ptr():
        raise ValueError(f"{what}: hg and res must be different tensors")
    tiles = ss_parts(n, cfg)
    ss_out = _check_ss_parts(what, "ss_out", ss_out, m, parts=1 if ss_atomic else tiles)
    part, counts = _epilogue_workspace(m, n, cfg, False, x.device, res)
    skinny_epilogue_kernel[(tiles, cfg.split_k)](
        x, w, res, ss_out, res, g, hg, ss_out, part, counts,
        m, n, k, 0, 0.0, cfg.k_per_split(k), 0,
        x.stride(0), w.stride(0), res.stride(0), res.stride(0), hg.stride(0), 0, ss_out.stride(0),
        ROW_SCALE=False, GLU=False, RESID=True,
        BLOCK_M=block_m(m), BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k, EVEN_K=cfg.even_k(k),
        SPLIT_K=cfg.split_k, SWAP_AB=cfg.swap_ab, SS_ATOMIC=ss_atomic, num_warps=cfg.num_warps,
        num_stages=cfg.num_stages,
    )
    return ss_out[:1 if ss_atomic else tiles]
