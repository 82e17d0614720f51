"""The Llama-architecture decoder the live engine runs (RMSNorm, rotary, MHA/GQA, SwiGLU).

One forward pass takes a flat batch of tokens: first ``num_decode`` decode tokens (one per
sequence, attention over the paged cache with the Triton kernel), then the prefill chunks
(attention with FlashAttention-2). With no prefill chunks the pass depends only on tensor shapes
and is captured as a CUDA graph by the executor. A batch that carries ``tiles`` instead (the
executor's token graphs) runs all its attention, decode rows and chunks alike, as the tiled
kernel over the pages, whose launch also depends only on shapes.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from . import attention as _attn
from .attention import (
    DECODE_TILE_M,
    HAVE_TRITON,
    PREFILL_TILE_M,
    paged_decode,
    paged_decode_rope,
    paged_tiles,
    pdl_args,
    prefill_attention,
    rope_and_cache,
)
from .kv_cache import PagedKVCache
from .lora import LoraSlots
from .weights import ModelConfig, ModelWeights

# Decode-sized weight GEMMs (at most SKINNY_MAX_M rows, fp16 on CUDA) run as the Triton skinny GEMM
# of gpu/kernels/skinny_gemm.py with SKINNY_CONFIG, the others as F.linear (cuBLAS). On the H200
# (`bash gpu/gemm_speed.sh` at e5d734f, gpu/results/gemm-speed-h200-e5d734f/, docs/engine.md) the
# step's 32 layers of GEMMs and lm_head took 3.51 / 3.56 / 3.60 ms this way at batch 1 / 8 / 16
# against cuBLASLt's 3.66 / 3.68 / 3.72, and 4.47 against 3.60 at batch 32: hence 16. 0 turns it off.
SKINNY_MAX_M = 16
SKINNY_CONFIG = "tsk_n32_k128_w4_s6_sk1"
# With the skinny GEMM, also fold add_rms_norm into the qkv and gate_up GEMMs and silu_mul into the
# down GEMM (gpu/kernels/skinny_gemm.py, "Prologues"): three small kernels a layer fewer. Off: the
# fused kernels run 3-10x slower than the launches they replace (H200, 14b5f81, gpu/bench_prologues.py),
# every N-tile program repeating the prologue over the whole x tile (gpu/ptx_report.py, docs/engine.md).
FUSE_PROLOGUES = False
# With the skinny GEMM and no LoRA in the pass, fold the norms and SiLU into the GEMMs' epilogues
# instead (gpu/kernels/skinny_gemm.py, "Epilogues"): o_proj and down_proj add their tile to the
# residual and write r * g and the row sums of squares, qkv, gate_up (with SiLU * up) and lm_head
# scale their rows by 1 / rms. Three launches a layer fewer, every N tile doing only its own work.
FUSE_EPILOGUES = False
EPILOGUE_CONFIG = None  # the epilogue GEMMs' skinny configuration name; None: SKINNY_CONFIG's
EPILOGUE_GLU_CONFIG = None  # gate_up's (two W tiles a K step): None: EPILOGUE_CONFIG's
# The same epilogue path for passes of SKINNY_MAX_M + 1 .. SKINNY_WIDE_MAX_M rows without LoRA, where
# the norms, SiLU and their launches cost about 190 + 60 us of batch 32's 4.5 ms step while cuBLASLt
# runs gate_up, o_proj and down_proj: qkv and lm_head on WIDE_EPILOGUE_CONFIG, gate_up (gate and up
# tiles, silu(gate) * up written) on WIDE_EPILOGUE_GLU_CONFIG, o_proj and down_proj on
# WIDE_EPILOGUE_NARROW_CONFIG (split-K: their 4,096 columns are 64 tiles of 64). On the H200: with
# gate_up's GLU on 128-element K steps at 2-3 stages the fused GEMMs took 258 us a step more than the
# plain ones and the step was no faster (gpu/results/wide-epilogues-h200-8536348/); timed one by one
# at 32 rows (gpu/results/epilogue-parts-h200-a8377b0/), the GLU on 64-element K steps at 4 stages
# took 47.6 us against 51-63 for the others and 52.3 for cuBLASLt's gate_up with add_rms_norm and
# silu_mul, and with it the step took 4.459 ms against 4.601 at 32 x 129 and 4.318 against 4.507 at
# 24 x 129 (three rotating rounds), 11.682 against 11.709 at 32 x 2,049; bench_engine 4.420 and
# 4.424 ms at batch 32 (71.1 and 70.4 % of the weight roofline). On by default since then.
WIDE_EPILOGUES = True
WIDE_EPILOGUE_CONFIG = "tsk_n64_k128_w4_s4_sk1_ab"
WIDE_EPILOGUE_GLU_CONFIG = "tsk_n64_k64_w4_s4_sk1_ab"
WIDE_EPILOGUE_NARROW_CONFIG = "tsk_n64_k128_w4_s6_sk2_ab"
# The epilogues' row sums of squares: added with fp32 atomics into one vector (True), whose order
# varies with the tiles' finishing, so batch 17-32's logits move by about 1.3e-3 from one capture to
# the next (gpu/results/model-13b-h200-8c64e5e/); or stored as one part an N tile and summed in one
# order by the GEMM that reads them (False): the same bits each run (gpu/results/deterministic-ss-
# h200-abf1045/), but 1.1 % slower at 32 x 129 (4.471 against 4.421 ms), 0.8 % at 24 and at 13B's
# 32, side by side in one process (gpu/results/ss-atomic-ab-h200-3dd5a38/). Atomics stay the default,
# the engine of lease cd9171f-1; set False for bit-reproducible decode.
EPILOGUE_SS_ATOMIC = True
# Decode passes through the skinny GEMM (at most SKINNY_MAX_M rows, no prefill chunk, Hopper or
# later) may launch their kernels with programmatic dependent launch (gpu/kernels/skinny_gemm.py,
# "Dependent launch"), each GEMM asking L2 for the first DECODE_PREFETCH_K elements of its
# programs' W rows while the kernel before it still runs. Timed on the H200 at d861076
# (`bash gpu/pdl_speed.sh`, gpu/results/pdl-speed-h200-d861076/): without prefetch the step
# without LoRA took 0.15 ms less at batch 1 and 8 (3.98 against 4.13 ms, 4.32 against 4.46), the
# same at 16 (4.69), and with SGMV LoRA 0.10 ms less at batch 1 but 0.07 ms more at 16; the
# prefetch made every step slower (1,024 elements: 4.74 ms at batch 1; 4,096: 7.48). With decode
# attention's loop pipelined by hand (attention.DECODE_PREFETCH, 32-token tiles, 2 warps) it took
# 3.941 / 4.128 / 4.477 ms at batch 1 / 8 / 16 against 4.061 / 4.332 / 4.504 without PDL and
# 4.078 / 4.437 / 4.661 for the engine before both (gpu/results/attention-prefetch-h200-ae82297/,
# one start): on by default since, with the profile of that engine recorded after it.
DECODE_PDL = True
DECODE_PREFETCH_K = 0
# Batches over SKINNY_MAX_M rows: GEMMs of up to SKINNY_WIDE_MAX_M rows (0: none) through the
# skinny GEMM too, with SKINNY_WIDE_CONFIG, or SKINNY_WIDE_NARROW_CONFIG for weights of at most
# SKINNY_WIDE_NARROW_N output columns (o_proj, down_proj; None: those stay with cuBLAS), except
# weights of more than SKINNY_WIDE_CUBLAS_N output columns (None: none), which stay with cuBLAS.
# Decode passes of such batches may launch with PDL like those of SKINNY_MAX_M rows or fewer
# (SKINNY_WIDE_PDL below, off). DECODE_PDL_CUBLAS: decode passes whose GEMMs are cuBLAS's launch the
# engine's own kernels (norms, rope, attention, SiLU) with PDL all the same; a cuBLAS kernel never
# lets the next one launch early, so only the launches between the engine's own kernels overlap.
# Off until 341c731: on the H200 (gpu/results/b32-speed-h200-f8bc290/) the transposed skinny GEMM for 32 rows
# took the step at batch 32 to 5.018 ms (5.009 with gate_up and lm_head on cuBLAS) against cuBLAS's
# 4.958, and PDL under cuBLAS to 5.158.
# The balanced launch (config suffix _bal, gpu/kernels/skinny_gemm.py: one program an SM, each
# weight's rows shared evenly) lost too (gpu/results/balanced-gemm-h200-23ad912/): batch 32 took
# 5.002 ms with both wide configs _bal against 4.678 as committed, and per GEMM at 32 rows it was
# no faster than the plain transposed kernel, which beat cuBLASLt on qkv (27.7 against 29.5 us)
# and lm_head (65.7 against 68.2) and lost on o_proj (13.8 against 12.2) and down_proj (33.1
# against 25.8). Hence gpu/wide_route.sh: qkv alone through the skinny GEMM.
# On since 341c731: qkv through the transposed skinny GEMM at 17-32 rows, o_proj and down_proj on
# its split-K config at 17-24 rows (cuBLASLt at 25-32), gate_up and lm_head (over
# SKINNY_WIDE_CUBLAS_N columns) with cuBLASLt, no PDL in these passes. Three starts on the H200,
# three rotating rounds each, step ms without LoRA (gpu/results/wide-route-h200-1386b0a/,
# wide-nopdl-h200-da9b307/, wide-split-h200-5fe82d2/): batch 32 at 128 + 1 tokens 4.695 / 4.636 /
# 4.617 against 4.778 / 4.632 / 4.683 for cuBLASLt alone, at 1,024 + 1 7.940 / 7.867 / 7.992
# against 7.992 / 7.894 / 8.069; batch 24 with o_proj and down_proj split-K 4.538 / 4.542 against
# 4.746 / 4.774 at 128 + 1 tokens, 7.069 / 7.220 against 7.269 / 7.423 at 1,024 + 1. At 32 rows
# no split-K config of a spread of twelve beat cuBLASLt on o_proj + down_proj (39.6 against 38.6
# us, wide-split-h200-5fe82d2/gemm), at 24 rows the best did (39.1 against 41.5).
SKINNY_WIDE_MAX_M = 32
SKINNY_WIDE_CONFIG = "tsk_n64_k128_w4_s4_sk1_ab"
SKINNY_WIDE_NARROW_CONFIG: str | None = "tsk_n64_k128_w4_s4_sk2_ab"
SKINNY_WIDE_CUBLAS_N: int | None = 16384
SKINNY_WIDE_NARROW_N = 4096
# The narrow weights take SKINNY_WIDE_NARROW_CONFIG at batches of at most this many rows only (None:
# every wide batch), cuBLAS above: cuBLASLt's pick for o_proj and down_proj at 24 rows (split-K with
# a reduce kernel after it) was slower than at 32 (gpu/results/wide-nopdl-h200-da9b307/).
SKINNY_WIDE_NARROW_MAX_M: int | None = 24
# Whether decode passes of SKINNY_MAX_M + 1 .. SKINNY_WIDE_MAX_M rows launch with PDL (DECODE_PDL).
# With qkv alone through the skinny GEMM at 17-32 rows, PDL made the step at 1,024 + 1 tokens slower
# than cuBLAS (batch 32: 8.314 ms against 7.992) and the same without PDL faster (7.940; at 128 + 1
# tokens 4.695 against 4.778, with PDL 4.690), gpu/results/wide-route-h200-1386b0a/; at 24 rows
# with PDL 7.937 against 7.389 without (gpu/results/wide-nopdl-h200-da9b307/). Batches of 16 rows
# or fewer keep PDL (2.7-3.7 % faster with it at 12 and 16 rows, wide-route-h200-1386b0a/).
SKINNY_WIDE_PDL = False
DECODE_PDL_CUBLAS = False
# Tried and removed after a0c6a84 (timed on the H200, gpu/results/prewait-h200-16aba57/ and
# peel-h200-d5cf0fd/, docs/engine.md "Decode attention's launch under PDL"):
# - the qkv GEMM letting decode attention launch only after its K loops, under PDL: like attention
#   launched plainly, 3-5 % slower at 8-16 sequences and 128 + 1 tokens, 2-7 % faster at 2,048 + 1
#   (DECODE_LONG_CONTEXT below takes the long-context half of that);
# - each skinny GEMM under PDL loading its first W tile before its wait and computing that K step
#   ahead of its loop: 1-3.5 % slower at 1-16 rows, no help at 17-32 (the peeled tiles' 24 KB of
#   shared memory left one program an SM where two fit).
# lm_head at SKINNY_MAX_M + 1 .. SKINNY_WIDE_MAX_M rows through the transposed skinny GEMM
# (SKINNY_WIDE_CONFIG) even though its output columns pass SKINNY_WIDE_CUBLAS_N (which is there for
# gate_up): per GEMM at 32 rows it took 65.7-66.1 us against cuBLASLt's 67.9-68.2
# (gpu/results/balanced-gemm-h200-23ad912/gemm/, wide-split-h200-5fe82d2/gemm/). In batch 32's
# graph (gpu/results/prewait-h200-16aba57/, 129 tokens): 65.4 us a step against 67.0, and about 61
# against 64.6 in another start (gpu/results/peel-h200-d5cf0fd/). With the argmax below together 7-8
# us a step at 32 rows (0.17 %): both on by default since the session-30 lease (docs/validation.md).
SKINNY_WIDE_LM_HEAD = True
# Greedy sampling's argmax over the vocabulary as one Triton program a row (``greedy``) instead of
# torch's reduction (10 us a step at 32 rows in the graph, gpu/results/attention-launch-h200-3d399df/).
# In batch 32's graph: 4.0 us a step against torch's 10.1 and 10.3 in two starts
# (gpu/results/prewait-h200-16aba57/, peel-h200-d5cf0fd/). On by default since the session-30 lease.
TRITON_ARGMAX = True
# Decode steps whose longest context is at least DECODE_LONG_CONTEXT tokens (None: never) replay a
# second set of decode graphs, captured with decode attention launched plainly
# (attention.DECODE_PDL_LAUNCH False), for the graph sizes whose passes run under PDL. On the H200
# (gpu/results/attention-launch-h200-3d399df/) the plain launch costs 3-5 % at 8-16 sequences and
# 128 + 1 tokens and gains 2-7 % at 2,048 + 1; at 1,024 + 1 it is -2.5 to +1.6 %. As graphs chosen
# by context (threshold 1,024, gpu/results/long-graphs-h200-278dde0/): at 128 + 1 tokens within 0.1 %
# of the default (the usual graphs replayed), at 1,024 + 1 and 2,048 + 1 the plain launch's times
# within 0.3 %: 12 and 16 sequences 1.6-5.3 % faster, but 1 sequence 5-6 % slower and 8 sequences
# +1.7 / -2.3 %. Hence only graph sizes of at least DECODE_LONG_MIN_ROWS rows take long graphs.
# On (1,024 tokens) by default since the session-30 lease.
DECODE_LONG_CONTEXT: int | None = 1024
DECODE_LONG_MIN_ROWS = 12
# Passes of at most DECODE_FUSED_ROPE_MAX_ROWS decode rows (and nothing else; 0: none): the rotary
# embedding and the cache write in decode attention's kernel (attention.paged_decode_rope) instead
# of a kernel of their own before it (rope_and_cache). On the H200, eight rotating rounds in one
# process (gpu/results/rope-tile-h200-4944a98/ab/): 3.837 / 4.101 / 4.294 ms at batch 1 / 8 / 16
# against 3.974 / 4.172 / 4.481 for the engine before (84cab04), 128 + 1 tokens of context; the
# profile of 95210c1 (which fused at every batch) prices 1-16 sequences 3-9 % under 84cab04's at
# every context up to 4,096 tokens. From 32 sequences it was faster only with 16-token attention
# tiles (4.726 against 4.843 ms at 32 x 129; with 32-token tiles slower, 5.038 against 4.958,
# gpu/results/b32-speed-h200-f8bc290/), and those tiles are slower at long contexts
# (attention.DECODE_TILE_LARGE): hence 16 then. With one warp a program in decode attention
# (attention.DECODE_WARPS) it is faster at every batch from 8 with 32-token tiles
# (gpu/results/attention-one-warp-h200-0e30e11/, ms: batch 32 4.603 against 4.707 at 128 + 1
# tokens, 11.569 against 11.655 at 2,048 + 1; batch 64 5.240 against 5.419, 19.253 against
# 19.414): every decode pass since (128 rows, the largest decode graph).
DECODE_FUSED_ROPE_MAX_ROWS = 128
_SKINNY = None  # the config, where the kernel can be imported (the project's gpu package, Triton)
if HAVE_TRITON:
    try:
        from gpu.kernels.skinny_gemm import (
            SkinnyConfig,
            norm_gemm,
            norm_prep,
            pdl_supported,
            residual_gemm,
            scaled_gemm,
            silu_gemm,
            skinny_gemm,
            ss_parts,
        )

        _SKINNY = SkinnyConfig.from_name(SKINNY_CONFIG)
    except ImportError:  # the engine imported without the project's root on sys.path: F.linear
        pass


def decode_gemm_settings() -> dict:
    """How the weight GEMMs of a decode pass are routed and launched, as set now (a profile's
    ``step_profile.decode_gemm``, docs/profile-format.md): which rows take the skinny GEMM and with
    which configurations, which weights stay with cuBLAS, and where PDL is on."""
    return {"skinny": _SKINNY is not None, "skinny_max_m": SKINNY_MAX_M, "skinny_config": SKINNY_CONFIG,
            "wide_max_m": SKINNY_WIDE_MAX_M, "wide_config": SKINNY_WIDE_CONFIG,
            "wide_narrow_config": SKINNY_WIDE_NARROW_CONFIG, "wide_narrow_n": SKINNY_WIDE_NARROW_N,
            "wide_narrow_max_m": SKINNY_WIDE_NARROW_MAX_M,
            "wide_cublas_n": SKINNY_WIDE_CUBLAS_N, "pdl": DECODE_PDL, "wide_pdl": SKINNY_WIDE_PDL,
            "pdl_cublas": DECODE_PDL_CUBLAS, "pdl_attention_late_trigger": _attn.DECODE_LATE_TRIGGER,
            "pdl_attention_launch": _attn.DECODE_PDL_LAUNCH, "pdl_attention_prewait": _attn.DECODE_PREWAIT_TILE,
            "wide_lm_head": SKINNY_WIDE_LM_HEAD, "triton_argmax": TRITON_ARGMAX,
            "long_context": DECODE_LONG_CONTEXT, "long_min_rows": DECODE_LONG_MIN_ROWS,
            "wide_epilogues": WIDE_EPILOGUES, "wide_epilogue_configs": [
                WIDE_EPILOGUE_CONFIG, WIDE_EPILOGUE_GLU_CONFIG, WIDE_EPILOGUE_NARROW_CONFIG],
            "epilogue_ss_atomic": EPILOGUE_SS_ATOMIC}


def linear(x: torch.Tensor, w: torch.Tensor, pdl: bool = False, head: bool = False) -> torch.Tensor:
    """x [T, K] @ W^T for W [N, K] (nn.Linear's layout): the weight GEMM of every projection and of
    lm_head. gpu/bench_engine.py --decode-gemm replaces this function for one run (it is looked up
    at call time, so before the graphs are captured). ``pdl`` (given only in a ``_pdl_pass``): the
    skinny GEMM launched with programmatic dependent launch, prefetching DECODE_PREFETCH_K.
    ``head``: W is lm_head (SKINNY_WIDE_LM_HEAD)."""
    if _skinny_rows(x) and w.dtype == torch.float16:
        cfg = _config_named(SKINNY_CONFIG)  # by name at call time, so that --set can change it
        if pdl:
            return skinny_gemm(x, w, cfg, pdl=True, prefetch_k=DECODE_PREFETCH_K)
        return skinny_gemm(x, w, cfg)
    if (_wide_rows(x) and w.dtype == torch.float16
            and (SKINNY_WIDE_CUBLAS_N is None or w.shape[0] <= SKINNY_WIDE_CUBLAS_N or (head and SKINNY_WIDE_LM_HEAD))):
        name = SKINNY_WIDE_CONFIG
        if w.shape[0] <= SKINNY_WIDE_NARROW_N:
            narrow_rows = SKINNY_WIDE_NARROW_MAX_M is None or x.shape[0] <= SKINNY_WIDE_NARROW_MAX_M
            name = SKINNY_WIDE_NARROW_CONFIG if narrow_rows else None
        if name is not None:
            return skinny_gemm(x, w, _config_named(name), pdl=pdl, prefetch_k=DECODE_PREFETCH_K if pdl else 0)
    return F.linear(x, w)


@functools.cache
def _config_named(name: str):
    """The SkinnyConfig of ``name``, parsed once (looked up at call time, so that --set can change it)."""
    return SkinnyConfig.from_name(name)


def decode_long_context() -> int | None:
    """DECODE_LONG_CONTEXT where a long graph would differ from the plain one (decode passes
    under PDL with attention launched early, on a device that has PDL), else None."""
    if (DECODE_LONG_CONTEXT is None or not DECODE_PDL or not _attn.DECODE_PDL_LAUNCH or _SKINNY is None
            or not torch.cuda.is_available() or not pdl_supported("cuda")):
        return None
    return DECODE_LONG_CONTEXT


def pdl_decode_rows(rows: int) -> bool:
    """Whether a decode pass of ``rows`` rows through the skinny GEMM runs under PDL (fp16 on a
    device that has it; ``_pdl_pass`` decides for a given pass)."""
    return rows <= SKINNY_MAX_M or (SKINNY_WIDE_PDL and rows <= SKINNY_WIDE_MAX_M)


def long_graph_rows(rows: int) -> bool:
    """Whether the decode graph of ``rows`` rows gets a long twin (DECODE_LONG_CONTEXT): at least
    DECODE_LONG_MIN_ROWS rows, and a pass under PDL (else the twin would be the same graph)."""
    return rows >= DECODE_LONG_MIN_ROWS and pdl_decode_rows(rows)


@contextlib.contextmanager
def plain_attention_launch():
    """Within it, decode attention is launched plainly in PDL passes (attention.DECODE_PDL_LAUNCH
    False); restored after."""
    saved = _attn.DECODE_PDL_LAUNCH
    _attn.DECODE_PDL_LAUNCH = False
    try:
        yield
    finally:
        _attn.DECODE_PDL_LAUNCH = saved


def _linear(x: torch.Tensor, w: torch.Tensor, pdl: bool, head: bool = False) -> torch.Tensor:
    """``linear``, passing ``pdl`` and ``head`` only when set (a replacement from --decode-gemm
    need not take them)."""
    kw = {k: True for k, on in (("pdl", pdl), ("head", head and SKINNY_WIDE_LM_HEAD)) if on}
    return linear(x, w, **kw)


def _pdl_pass(x: torch.Tensor, b: ForwardBatch) -> bool:
    """Whether this forward pass launches its kernels with programmatic dependent launch
    (DECODE_PDL): decode rows only (no prefill chunk, no token-graph tiles) through the skinny GEMM
    (SKINNY_MAX_M rows or fewer, or SKINNY_WIDE_MAX_M), or with cuBLAS's GEMMs where
    DECODE_PDL_CUBLAS is set, on a device that has it."""
    own = _skinny_rows(x) or (SKINNY_WIDE_PDL and _wide_rows(x))
    cublas = DECODE_PDL_CUBLAS and _SKINNY is not None and x.dtype in (torch.float16, torch.bfloat16)
    return (DECODE_PDL and (own or cublas) and x.is_cuda and not b.prefills and b.tiles is None
            and b.num_decode == x.shape[0] and pdl_supported(x.device))


def _skinny_rows(x: torch.Tensor) -> bool:
    """Whether ``x`` is an input the skinny GEMM takes: fp16 on CUDA (or any device under
    ``attention.FORCE_TRITON``, the tests' Triton interpreter), 1..SKINNY_MAX_M rows."""
    return (_SKINNY is not None and (x.is_cuda or _attn.FORCE_TRITON) and x.dim() == 2
            and 1 <= x.shape[0] <= SKINNY_MAX_M and x.dtype == torch.float16)


def _wide_rows(x: torch.Tensor) -> bool:
    """Whether ``x`` is an input of SKINNY_MAX_M + 1 .. SKINNY_WIDE_MAX_M rows that the skinny
    GEMM takes with the wide configurations (fp16 on CUDA, or under FORCE_TRITON)."""
    return (_SKINNY is not None and (x.is_cuda or _attn.FORCE_TRITON) and x.dim() == 2
            and SKINNY_MAX_M < x.shape[0] <= SKINNY_WIDE_MAX_M and x.dtype == torch.float16)


def _rope_fused(x: torch.Tensor, b: ForwardBatch) -> bool:
    """Whether this pass runs the rotary embedding and cache write inside decode attention
    (DECODE_FUSED_ROPE_MAX_ROWS): decode rows only, the Triton kernel's hand-pipelined loop, on CUDA."""
    return (0 < x.shape[0] <= DECODE_FUSED_ROPE_MAX_ROWS and HAVE_TRITON and _attn.DECODE_PREFETCH and x.is_cuda
            and not b.prefills and b.tiles is None and b.num_decode == x.shape[0]
            and b.decode_block_tables is not None)


def _fused(x: torch.Tensor) -> bool:
    """Whether this forward pass folds the small kernels into the GEMMs (FUSE_PROLOGUES)."""
    return FUSE_PROLOGUES and _skinny_rows(x) and x.stride(-1) == 1


def _fused_epilogues(x: torch.Tensor, lora_on: bool) -> bool:
    """Whether this forward pass folds the norms and SiLU into the GEMMs' epilogues (FUSE_EPILOGUES
    up to SKINNY_MAX_M rows, WIDE_EPILOGUES above): only without LoRA, whose kernels read the
    normalized activations and add to the projections' outputs before the residual."""
    return (not lora_on and x.stride(-1) == 1
            and ((FUSE_EPILOGUES and _skinny_rows(x)) or (WIDE_EPILOGUES and _wide_rows(x))))


@dataclass
class PrefillChunk:
    """Tokens ``tok_start .. tok_start + num_tokens - 1`` of the flat batch are positions
    ``start_pos ..`` of one sequence; ``block_table`` (device int64) is needed when start_pos > 0."""

    tok_start: int
    num_tokens: int
    start_pos: int
    block_table: torch.Tensor | None = None


@dataclass
class AttnTiles:
    """Attention of a token-graph step (gpu/engine/attention.py, "tiled attention"): the block
    table of every sequence of the step (``[S, max_blocks]`` int32), and two tile tables
    ``(seq, first_row, rows)`` (int32 tensors of equal length; 0 rows: unused): decode rows,
    one row a tile, and prefill chunks, cut in tiles of ``PREFILL_TILE_M`` rows."""

    block_tables: torch.Tensor
    decode: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    prefill: tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class ForwardBatch:
    input_ids: torch.Tensor  # [T] int64
    positions: torch.Tensor  # [T] int64
    slot_mapping: torch.Tensor  # [T] int64: flat KV slot of each token
    num_decode: int = 0
    decode_block_tables: torch.Tensor | None = None  # [num_decode, max_blocks] int32
    decode_context_lens: torch.Tensor | None = None  # [num_decode] int32
    prefills: list[PrefillChunk] = field(default_factory=list)
    lora_slots: torch.Tensor | None = None  # [T] int64, -1 = base model
    lora_seg: object | None = None  # gpu.kernels SegmentInfo, for the "sgmv" and "dop" LoRA kinds
    logits_idx: torch.Tensor | None = None  # tokens whose logits are wanted (None: all)
    tiles: AttnTiles | None = None  # token-graph steps: all attention through the tiled kernel


def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return w * xf.to(x.dtype)


if HAVE_TRITON:
    import triton
    import triton.language as tl

    @triton.jit
    def _add_rms_norm_kernel(x_ptr, d_ptr, w_ptr, o_ptr, stride_x, stride_d, stride_o, N, eps,
                             HAS_D: tl.constexpr, BLOCK: tl.constexpr, PDL: tl.constexpr = False):
        if PDL:  # launched with launch_pdl: wait for the kernel before, then let the next one launch
            tl.extra.cuda.gdc_wait()
            tl.extra.cuda.gdc_launch_dependents()
        row = tl.program_id(0)
        cols = tl.arange(0, BLOCK)
        m = cols < N
        x = tl.load(x_ptr + row * stride_x + cols, mask=m, other=0.0)
        if HAS_D:
            d = tl.load(d_ptr + row * stride_d + cols, mask=m, other=0.0)
            x = (x.to(tl.float32) + d.to(tl.float32)).to(x_ptr.dtype.element_ty)
            tl.store(x_ptr + row * stride_x + cols, x, mask=m)
        xf = x.to(tl.float32)
        var = tl.sum(xf * xf, axis=0) / N
        y = (xf * tl.rsqrt(var + eps)).to(o_ptr.dtype.element_ty).to(tl.float32)
        w = tl.load(w_ptr + cols, mask=m, other=0.0).to(tl.float32)
        tl.store(o_ptr + row * stride_o + cols, (w * y).to(o_ptr.dtype.element_ty), mask=m)

    @triton.jit
    def _argmax_kernel(x_ptr, o_ptr, stride_x, stride_c, N, BLOCK: tl.constexpr):
        """o[row] = the first index of row's largest value (NaN as +inf), BLOCK entries a step."""
        row = tl.program_id(0)
        cols = tl.arange(0, BLOCK)
        best = tl.full([], float("-inf"), tl.float32)
        best_i = tl.full([], 0, tl.int32)
        for start in range(0, N, BLOCK):
            c = start + cols
            v = tl.load(x_ptr + row * stride_x + c * stride_c, mask=c < N, other=float("-inf")).to(tl.float32)
            v = tl.where(v != v, float("inf"), v)
            m = tl.max(v, axis=0)
            i = tl.min(tl.where(v == m, c, N), axis=0)  # the first index of the step's largest
            take = m > best  # strictly: an equal value later keeps the earlier index
            best_i = tl.where(take, i, best_i)
            best = tl.where(take, m, best)
        tl.store(o_ptr + row, best_i.to(tl.int64))

    @triton.jit
    def _silu_mul_kernel(g_ptr, o_ptr, stride_g, stride_o, N, BLOCK: tl.constexpr, PDL: tl.constexpr = False):
        if PDL:
            tl.extra.cuda.gdc_wait()
            tl.extra.cuda.gdc_launch_dependents()
        row = tl.program_id(0)
        cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        m = cols < N
        g = tl.load(g_ptr + row * stride_g + cols, mask=m, other=0.0).to(tl.float32)
        u = tl.load(g_ptr + row * stride_g + N + cols, mask=m, other=0.0).to(tl.float32)
        s = (g / (1.0 + tl.exp(-g))).to(o_ptr.dtype.element_ty).to(tl.float32)
        tl.store(o_ptr + row * stride_o + cols, (s * u).to(o_ptr.dtype.element_ty), mask=m)


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """The index of each row's largest logit (int64 ``[T]``), the first of equal ones, as
    ``logits.argmax(-1)``: with TRITON_ARGMAX on CUDA one program a row (a NaN counts as +inf
    there, where torch takes the first NaN), else torch's."""
    if TRITON_ARGMAX and HAVE_TRITON and logits.dim() == 2 and (logits.is_cuda or _attn.FORCE_TRITON):
        t, n = logits.shape
        out = torch.empty(t, dtype=torch.int64, device=logits.device)
        if t:
            block = min(triton.next_power_of_2(n), ARGMAX_BLOCK)
            _argmax_kernel[(t,)](logits, out, logits.stride(0), logits.stride(1), n, BLOCK=block,
                                 num_warps=16 if block >= 16384 else 4)
        return out
    return logits.argmax(-1)


ARGMAX_BLOCK = 32768  # vocabulary entries a program holds at once (Llama-2's 32,000 in one go)


def add_rms_norm(x: torch.Tensor, d: torch.Tensor | None, w: torch.Tensor, eps: float,
                 pdl: bool = False) -> torch.Tensor:
    """``x += d`` in place (when d is given), then returns RMSNorm(x) * w. One kernel on CUDA
    (``pdl``: launched with programmatic dependent launch, ``DECODE_PDL``)."""
    if HAVE_TRITON and (x.is_cuda or _attn.FORCE_TRITON):
        t, n = x.shape
        out = torch.empty_like(x)
        block = triton.next_power_of_2(n)
        _add_rms_norm_kernel[(t,)](
            x, d if d is not None else x, w, out, x.stride(0), (d if d is not None else x).stride(0), out.stride(0),
            n, eps, HAS_D=d is not None, BLOCK=block, num_warps=8 if block >= 4096 else 4, **pdl_args(pdl),
        )
        return out
    if d is not None:
        x.add_(d)
    return rms_norm(x, w, eps)


def silu_mul(gu: torch.Tensor, pdl: bool = False) -> torch.Tensor:
    """``silu(gu[:, :N]) * gu[:, N:]`` for ``gu [T, 2N]``. One kernel on CUDA (``pdl`` as in
    add_rms_norm)."""
    t, n2 = gu.shape
    n = n2 // 2
    if HAVE_TRITON and (gu.is_cuda or _attn.FORCE_TRITON):
        out = torch.empty((t, n), dtype=gu.dtype, device=gu.device)
        block = 1024
        _silu_mul_kernel[(t, triton.cdiv(n, block))](gu, out, gu.stride(0), out.stride(0), n, BLOCK=block,
                                                     num_warps=4, **pdl_args(pdl))
        return out
    return F.silu(gu[:, :n]) * gu[:, n:]


class Rotary:
    """cos/sin tables as Hugging Face Llama computes them (non-interleaved halves)."""

    def __init__(self, cfg: ModelConfig, dtype: torch.dtype, device: str | torch.device) -> None:
        d = cfg.head_dim
        inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64, device=device).float() / d))
        pos = torch.arange(cfg.max_position, device=device).float()
        freqs = torch.outer(pos, inv)
        emb = torch.cat([freqs, freqs], dim=-1)
        self.cos = emb.cos().to(dtype)
        self.sin = emb.sin().to(dtype)

    def apply(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """x ``[T, heads, D]``."""
        cos = self.cos[positions][:, None, :]
        sin = self.sin[positions][:, None, :]
        half = x.shape[-1] // 2
        rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rot * sin


class LlamaModel:
    def __init__(self, cfg: ModelConfig, weights: ModelWeights, kv: PagedKVCache,
                 lora: LoraSlots | None = None) -> None:
        self.cfg = cfg
        self.w = weights
        self.kv = kv
        self.lora = lora
        dev = weights.embed.device
        self.dtype = weights.embed.dtype
        self.rotary = Rotary(cfg, self.dtype, dev)
        self._seg = None
        self._v = None

    def _lora_add(self, layer: int, module: str, x: torch.Tensor, y: torch.Tensor, mask, cols=None) -> None:
        if self.lora is None or mask is None or module not in self.lora.target_modules:
            return
        dst = y if cols is None else y[:, cols[0]:cols[1]]
        if self._seg is not None and self.lora.kind == "dop":  # v's first max_rank columns (v_columns)
            self.lora.add_delta_dop(layer, module, x, self._seg, self._v[:, :self.lora.max_rank], dst)
        elif self._seg is not None:
            self.lora.add_delta_sgmv(layer, module, x, self._seg, self._v, dst)
        else:
            self.lora.add_delta(layer, module, x, mask, dst)

    def _attention(self, b: ForwardBatch, li: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                   nd: int, pdl: bool = False) -> torch.Tensor:
        """Layer ``li``'s attention output ``[T, heads, D]``: decode rows over the paged cache,
        prefill chunks with FlashAttention-2, or everything tiled (token graphs)."""
        if b.tiles is not None:
            # zeros: the padding rows of a token graph belong to no tile and stay finite
            attn = torch.zeros_like(q)
            bt = b.tiles.block_tables
            paged_tiles(q, self.kv.k[li], self.kv.v[li], b.positions, bt, *b.tiles.decode, attn, DECODE_TILE_M)
            paged_tiles(q, self.kv.k[li], self.kv.v[li], b.positions, bt, *b.tiles.prefill, attn, PREFILL_TILE_M)
        else:
            attn = torch.empty_like(q)
        if nd > 0:
            paged_decode(q[:nd], self.kv.k[li], self.kv.v[li], b.decode_block_tables,
                         b.decode_context_lens, out=attn[:nd], pdl=pdl)
        for c in b.prefills:
            s, n = c.tok_start, c.num_tokens
            if c.start_pos == 0:
                kk, vv = k[s:s + n], v[s:s + n]
            else:
                kk, vv = self.kv.gather(li, c.block_table, c.start_pos + n)
            attn[s:s + n] = prefill_attention(q[s:s + n], kk, vv, c.start_pos)
        return attn

    @torch.inference_mode()
    def forward(self, b: ForwardBatch) -> torch.Tensor:
        cfg = self.cfg
        hq, hkv, d = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        qs, kvs = cfg.q_size, cfg.kv_size
        inter = cfg.intermediate_size
        nd = b.num_decode
        mask = None
        self._seg = self._v = None
        if self.lora is not None and b.lora_slots is not None:
            if self.lora.kind in ("sgmv", "dop") and b.lora_seg is not None:
                self._seg = b.lora_seg
                self._v = torch.empty((b.input_ids.shape[0], self.lora.v_columns()), dtype=torch.float32,
                                      device=b.input_ids.device)
                mask = True  # marks "LoRA on" for _lora_add
            else:
                mask = self.lora.slot_mask(b.lora_slots)
        x = F.embedding(b.input_ids, self.w.embed)
        if _fused_epilogues(x, mask is not None):
            return self._forward_epilogues(b, x)
        pending = None  # residual update not yet added to x (fused into the next norm)
        fused = _fused(x)
        pdl = not fused and _pdl_pass(x, b)
        fuse_rope = _rope_fused(x, b)
        for li, lw in enumerate(self.w.layers):
            if fused:  # x + pending is a new tensor here, not x updated in place
                qkv, x, h = norm_gemm(x, pending, lw.attn_norm, cfg.rms_norm_eps, lw.wqkv, _SKINNY,
                                      want_h=mask is not None)
            else:
                h = add_rms_norm(x, pending, lw.attn_norm, cfg.rms_norm_eps, pdl=pdl)
                qkv = _linear(h, lw.wqkv, pdl)
            if mask is not None:
                if self.lora.fused_qkv and self._seg is None:
                    self.lora.add_delta_qkv(li, h, mask, qkv, (qs, kvs))
                elif self.lora.kind == "dop" and self.lora.dop_slices:
                    self.lora.add_delta_qkv_dop(li, h, self._seg, self._v, qkv)
                else:
                    self._lora_add(li, "q_proj", h, qkv, mask, (0, qs))
                    self._lora_add(li, "k_proj", h, qkv, mask, (qs, qs + kvs))
                    self._lora_add(li, "v_proj", h, qkv, mask, (qs + kvs, qs + 2 * kvs))
            if fuse_rope:
                attn = paged_decode_rope(
                    qkv, self.rotary.cos, self.rotary.sin, b.slot_mapping, self.kv.k[li], self.kv.v[li],
                    b.decode_block_tables, b.decode_context_lens, hq, pdl=pdl).view(-1, qs)
            else:
                q, k, v = rope_and_cache(qkv, b.positions, self.rotary.cos, self.rotary.sin, b.slot_mapping,
                                         self.kv.k[li], self.kv.v[li], hq, hkv, d, pdl=pdl)
                attn = self._attention(b, li, q, k, v, nd, pdl).view(-1, qs)
            o = _linear(attn, lw.wo, pdl)
            self._lora_add(li, "o_proj", attn, o, mask)
            if fused:
                gu, x, h = norm_gemm(x, o, lw.mlp_norm, cfg.rms_norm_eps, lw.w_gate_up, _SKINNY,
                                     want_h=mask is not None)
            else:
                h = add_rms_norm(x, o, lw.mlp_norm, cfg.rms_norm_eps, pdl=pdl)
                gu = _linear(h, lw.w_gate_up, pdl)
            self._lora_add(li, "gate_proj", h, gu, mask, (0, inter))
            self._lora_add(li, "up_proj", h, gu, mask, (inter, 2 * inter))
            if fused:
                dn, a = silu_gemm(gu, lw.w_down, _SKINNY, want_h=mask is not None)
            else:
                a = silu_mul(gu, pdl=pdl)
                dn = _linear(a, lw.w_down, pdl)
            self._lora_add(li, "down_proj", a, dn, mask)
            pending = dn
        x = add_rms_norm(x, pending, self.w.final_norm, cfg.rms_norm_eps, pdl=pdl)
        if b.logits_idx is not None:
            x = x[b.logits_idx]
        return _linear(x, self.w.lm_head, pdl, head=True)

    def _forward_epilogues(self, b: ForwardBatch, x: torch.Tensor) -> torch.Tensor:
        """The forward pass without LoRA with the norms and SiLU in the GEMMs' epilogues
        (FUSE_EPILOGUES): x is the residual, updated in place by o_proj's and down_proj's
        epilogues; hg holds r * g of the next norm, ss[i] the row sums of squares of norm i: one
        vector the residual GEMMs add into with atomics (EPILOGUE_SS_ATOMIC), or the parts they store
        (one an N tile), summed in a fixed order by the GEMM that reads them (the same logits each run).
        norm_prep writes the first norm's as one part."""
        cfg = self.cfg
        hq, hkv, d, qs = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.q_size
        eps = cfg.rms_norm_eps
        layers = self.w.layers
        if x.shape[0] > SKINNY_MAX_M:  # WIDE_EPILOGUES
            names = (WIDE_EPILOGUE_CONFIG, WIDE_EPILOGUE_GLU_CONFIG, WIDE_EPILOGUE_NARROW_CONFIG)
            sk, sk_glu, sk_res = (_config_named(n) for n in names)
        else:
            sk = _config_named(EPILOGUE_CONFIG or SKINNY_CONFIG)
            sk_glu = sk if EPILOGUE_GLU_CONFIG is None else _config_named(EPILOGUE_GLU_CONFIG)
            sk_res = sk
        atomic = EPILOGUE_SS_ATOMIC
        parts = 1 if atomic else ss_parts(cfg.hidden_size, sk_res)
        ss = (torch.zeros if atomic else torch.empty)((2 * len(layers) + 1, parts, x.shape[0]),
                                                      dtype=torch.float32, device=x.device)
        hg = torch.empty_like(x)
        norm_prep(x, layers[0].attn_norm, hg, ss[0, 0])
        s = ss[0, :1]
        nd = b.num_decode
        fuse_rope = _rope_fused(x, b)
        for li, lw in enumerate(layers):
            qkv = scaled_gemm(hg, lw.wqkv, sk, s, eps)
            if fuse_rope:  # as in forward: the rotary embedding and cache write inside decode attention
                attn = paged_decode_rope(
                    qkv, self.rotary.cos, self.rotary.sin, b.slot_mapping, self.kv.k[li], self.kv.v[li],
                    b.decode_block_tables, b.decode_context_lens, hq)
            else:
                q, k, v = rope_and_cache(qkv, b.positions, self.rotary.cos, self.rotary.sin, b.slot_mapping,
                                         self.kv.k[li], self.kv.v[li], hq, hkv, d)
                attn = self._attention(b, li, q, k, v, nd)
            s = residual_gemm(attn.view(-1, qs), lw.wo, sk_res, x, lw.mlp_norm, hg, ss[2 * li + 1], atomic)
            a = scaled_gemm(hg, lw.w_gate_up, sk_glu, s, eps, glu=True)
            g_next = layers[li + 1].attn_norm if li + 1 < len(layers) else self.w.final_norm
            s = residual_gemm(a, lw.w_down, sk_res, x, g_next, hg, ss[2 * li + 2], atomic)
        h = hg
        if b.logits_idx is not None:
            h, s = h[b.logits_idx], s[:, b.logits_idx]
        return scaled_gemm(h, self.w.lm_head, sk, s, eps)
