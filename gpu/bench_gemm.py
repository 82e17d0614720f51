"""The decode step's weight GEMMs, computed in several ways, against the copy bandwidth.

The engine's decode step (Llama-2-7B, fp16, CUDA graphs) stays under 70 % of the weight-read
roofline at batch 8-32 on the H200; the step profile put the weight GEMMs (``F.linear(h, W)``,
W of shape [N, K] in nn.Linear's layout, default cuBLAS) at 3.99 ms at batch 32, about 78 % of the
copy bandwidth. This measures whether another way of computing the same skinny products x @ W^T
reads the weights faster. The shapes come from a model preset (gpu/engine/weights.py): per layer
qkv, o, gate_up and down, once per step lm_head -- for llama-2-7b [12288, 4096], [4096, 4096],
[22016, 4096], [4096, 11008] and [32000, 4096]. The variants:

- ``linear``: F.linear(x, W) with torch's default BLAS library, as the engine runs it;
- ``linear_cublaslt``: the same under torch.backends.cuda.preferred_blas_library("cublaslt")
  (the previous library is restored afterwards; skipped, with the reason, where torch refuses it);
- ``mm_t``: torch.mm(x, Wt) with Wt = W.t().contiguous(), the [K, N] layout, made once beforehand;
- ``splitk4``: x and W cut into 4 slices along K, one torch.bmm of the slices into 4 fp16 partial
  products (W's slices are strided views, not copies), summed by torch.sum (fp32 accumulation);
- ``tsk_n{BLOCK_N}_k{BLOCK_K}_w{warps}_s{stages}_sk{SPLIT_K}``: the Triton weight-streaming skinny
  GEMM of gpu/kernels/skinny_gemm.py on W as it is (one launch; SPLIT_K > 1 sums its K slices in
  the same launch), one variant per config of TRITON_CONFIGS. On by default on CUDA (--no-triton
  leaves them out), off on the CPU unless --triton (there they run under TRITON_INTERPRET=1 only,
  else they are skipped with the reason); --triton-configs NAME,... restricts them to the names
  given (any name of that form, in the list or not).

The Triton configs (TRITON_CONFIGS) are a spread, not a search: fourteen (four of them computing
the transposed product, ``_ab``), so that their compiles (about
half a second each per BLOCK_M and K evenness; BLOCK_M 16 and 32 for batches 1..32) stay within
a few tens of seconds. A W tile of 64 x 256 or 128 x 128 fp16 is 32 KB, and with 3 stages in
flight an SM has about 100 KB requested from HBM, well above the ~32 KB per SM that 4.3 TB/s times
~1 us of latency asks for; smaller tiles (32 x 256, 32 x 128, 64 x 128) take 60-72 KB of shared
memory at M <= 16 so that three programs share an SM instead. On 132 SMs the wide shapes (qkv
12288, gate_up 22016, lm_head 32000 rows) give 96-1000 N tiles, so they need no split; N = 4096
(o, down) gives 32-128 tiles only, hence the split-K configs (2 or 4 slices: 128-256 programs).
Configs with 64 x 256 tiles and 4 stages do not fit in shared memory at M > 32 (Triton's wgmma path
stages 4 buffers there): their rows at batch 64 are errors.

Every (shape, batch M, variant) is first checked against the float64 product on fresh random
inputs (relative L2 error; above 1e-2 the variant is marked wrong, and a wrong variant's time never
counts as best), then timed with gpu/common/timing.py ``time_calls`` as a CUDA-graph replay of
calls that rotate over several inputs and weight copies (the layers' own weights, at least two and
as many as make 256 MiB where there are enough layers -- the H200's L2 holds about 60 MB), so the
time is of HBM reads. Bytes per GEMM: N K + M K + M N elements of 2 bytes; the fraction is of
the copy bandwidth measured in the same run (gpu/common/peaks.py ``measure_hbm``: a 2 GiB
device-to-device copy, bytes read plus written).

The decode step's GEMM sequence (shape "step"): qkv, o, gate_up and down for every layer, each
layer with its own weights, then lm_head, captured as one CUDA graph and replayed, per variant and
batch. Random activations of the right shapes ([M, hidden], [M, heads x head_dim], [M, hidden],
[M, intermediate], [M, hidden]) stand for what attention, the norms and the MLP's activation
produce; the sequence leaves those out. Its rate is the weight bytes over the time. The 32 layers
of Llama-2-7B take 13 GB of fp16 weights (26 GB while mm_t's transposed copies exist); --quick
uses 4 layers. A variant's step counts as correct when all its single GEMMs at that batch are.

Usage (GPU machine): python3 gpu/bench_gemm.py --out DIR [--model llama-2-7b|llama-2-13b]
                     [--batches 1,8,16,32,64] [--quick] [--no-triton | --triton-configs NAME,...]
Writes DIR/gemm.csv (one row per shape, batch and variant, the step sequence as shape "step"),
DIR/gemm.json (metadata, copy bandwidth, shapes, the step times, the best variant per batch for the
step and per shape and batch for single GEMMs) and prints the step table (ms and % of the copy
bandwidth per variant, and the best) last. ``--device cpu`` is a dry run for the tests: host
wall-clock timing, no CUDA events or graphs, on the tiny shapes of ``--model tiny-llama`` or of a
patched ``MODELS``.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from gpu.common.meta import collect_metadata  # noqa: E402
from gpu.common.peaks import measure_hbm  # noqa: E402
from gpu.common.timing import Timing, time_calls  # noqa: E402
from gpu.engine.executor import preferred_blas  # noqa: E402
from gpu.engine.weights import PRESETS, ModelConfig  # noqa: E402

MODELS: dict[str, ModelConfig] = PRESETS  # --model choices; the CPU test patches in a tiny shape
LAYER_GEMMS = ("qkv", "o", "gate_up", "down")  # per layer, in the engine's order; then lm_head once
QUICK_LAYERS = 4  # layers in the step sequence with --quick
LM_HEAD_COPIES = 2  # lm_head weights allocated: single lm_head GEMMs rotate over them, the step reads one
ROTATE_BYTES = 256 * 2**20  # single GEMMs rotate over enough weight copies to read at least this much
COPY_BYTES = 2 * 2**30  # the device-to-device copy that measures the copy bandwidth
CPU_COPY_BYTES = 64 * 2**20  # the same on the CPU dry run
WEIGHT_SCALE = 0.02  # weights are randn x this (activations plain randn), so fp16 products stay finite
REL_TOL = 1e-2  # relative L2 error against float64 above which a variant is wrong
SPLIT_K = 4  # K slices of the splitk variant
STEP_TIMING = {"min_reps": 20, "max_reps": 40, "budget_ms": 200.0}  # time_calls arguments for the step graph
CSV_FIELDS = ("shape", "n", "k", "batch", "variant", "bytes", "us_median", "us_p10", "us_p90", "gb_per_s",
              "pct_copy_bw", "rel_err", "status", "note")


def gemm_shapes(cfg: ModelConfig) -> dict[str, tuple[int, int]]:
    """(N, K) of every weight GEMM of a decode step: the weight is [N, K], the product x [M, K] @ W^T."""
    h, i = cfg.hidden_size, cfg.intermediate_size
    return {"qkv": (cfg.q_size + 2 * cfg.kv_size, h), "o": (h, cfg.q_size), "gate_up": (2 * i, h),
            "down": (h, i), "lm_head": (cfg.vocab_size, h)}


def gemm_bytes(n: int, k: int, m: int) -> int:
    """Bytes a GEMM must move at least: the weight and the input read, the output written (fp16)."""
    return 2 * (n * k + m * k + m * n)


def _same(w: torch.Tensor) -> torch.Tensor:
    return w


def _transposed(w: torch.Tensor) -> torch.Tensor:
    return w.t().contiguous()


def _supported(n: int, k: int) -> str | None:
    return None


def _linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return F.linear(x, w)


def _mm(x: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
    return torch.mm(x, wt)


def _split_k(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    m, k = x.shape
    s = SPLIT_K
    xs = x.view(m, s, k // s).transpose(0, 1)  # [s, M, K/s]: slice j is x[:, j K/s : (j+1) K/s]
    ws = w.view(w.shape[0], s, k // s).permute(1, 2, 0)  # [s, K/s, N]: slice j is W[:, j K/s : (j+1) K/s]^T
    return torch.bmm(xs, ws).sum(0)


def _split_k_unsupported(n: int, k: int) -> str | None:
    return None if k % SPLIT_K == 0 else f"K={k} is not a multiple of {SPLIT_K}"


@dataclass(frozen=True)
class Variant:
    """One way to compute x @ W^T from the engine's weight W [N, K]."""

    description: str
    run: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x [M, K], prepared weight) -> [M, N]
    prepare: Callable[[torch.Tensor], torch.Tensor] = _same  # W -> the weight in the layout run reads
    blas: str | None = None  # torch's preferred BLAS library while the variant runs (None: leave it)
    unsupported: Callable[[int, int], str | None] = _supported  # (N, K) -> why it cannot run, or None


VARIANTS: dict[str, Variant] = {
    "linear": Variant("F.linear(x, W), default BLAS library", _linear),
    "linear_cublaslt": Variant("F.linear(x, W) under preferred_blas_library('cublaslt')", _linear,
                               blas="cublaslt"),
    "mm_t": Variant("torch.mm(x, Wt), Wt = W.t().contiguous() of shape [K, N]", _mm, _transposed),
    f"splitk{SPLIT_K}": Variant(f"torch.bmm over {SPLIT_K} K slices (strided views of W), partials summed",
                                _split_k, unsupported=_split_k_unsupported),
}


# The Triton skinny GEMM's configs (BLOCK_N, BLOCK_K, num_warps, num_stages, SPLIT_K[, swap_ab]); see the module
# docstring. Programs at N = 4096 / 12288 / 22016 / 32000 and shared memory per program at M <= 16:
TRITON_CONFIGS = (
    (64, 256, 4, 4, 1),  # 64 / 192 / 344 / 500 programs, 120 KB: one per SM, 3 W tiles in flight
    (64, 256, 8, 3, 1),  # the same tiles, 80 KB: two programs per SM, 8 warps issuing loads
    (128, 128, 4, 4, 1),  # 32 / 96 / 172 / 250 programs, 108 KB: fewer, longer programs
    (32, 256, 4, 4, 1),  # 128 / 384 / 688 / 1000 programs, 72 KB: N = 4096 fills the SMs unsplit
    (32, 128, 4, 6, 1),  # as many programs, 60 KB: 8 KB W tiles, 5 in flight
    (64, 256, 4, 4, 2),  # split-K: 128 programs at N = 4096, 384 at 12288
    (64, 256, 4, 4, 4),  # 256 programs at N = 4096
    (32, 256, 4, 4, 2),  # 256 programs at N = 4096, 72 KB
    (64, 128, 4, 4, 4),  # 256 programs at N = 4096, 60 KB
    (128, 128, 8, 4, 4),  # 128 programs of wide tiles at N = 4096
    # The transposed product (swap_ab, y^T = W x^T): the W tile is the MMA's row side, so at M = 32
    # the x tile is the narrow operand (at e5d734f every config above lost a fifth or more of its
    # bandwidth from batch 16 to 32, where its M tile doubles). Added after that run, not yet timed.
    (64, 128, 4, 4, 1, True),  # 64 / 192 / 344 / 500 programs
    (64, 256, 4, 3, 1, True),
    (128, 128, 4, 3, 1, True),
    (64, 128, 4, 4, 2, True),  # 128 programs at N = 4096
)


def triton_variants(names: list[str] | None, device: torch.device) -> dict[str, Variant]:
    """The Triton skinny GEMM variants: one per config of TRITON_CONFIGS, or per name of ``names``
    (ValueError for a name that is no config name). Each is skipped, with the reason, where Triton
    cannot run on ``device``; none where Triton cannot be imported (the reason goes to stderr)."""
    try:
        from gpu.kernels import skinny_gemm as sg
    except ImportError as e:
        print(f"Triton variants left out: {type(e).__name__}: {e}", file=sys.stderr)
        return {}
    cfgs = [sg.SkinnyConfig.from_name(n) for n in names] if names else [sg.SkinnyConfig(*c) for c in TRITON_CONFIGS]
    reason = sg.unavailable_reason(device)
    out = {}
    for c in cfgs:
        out[c.name] = Variant(
            f"Triton skinny GEMM (gpu/kernels/skinny_gemm.py): BLOCK_N {c.block_n}, BLOCK_K {c.block_k}, "
            f"{c.num_warps} warps, {c.num_stages} stages, split-K {c.split_k}" + (", y^T = W x^T" if c.swap_ab else "")
            + (", tiles through TMA" if c.tma else ""),
            functools.partial(sg.skinny_gemm, cfg=c), unsupported=lambda n, k, reason=reason: reason)
    return out


def blas_library(name: str | None):
    """Run the block with torch's preferred BLAS library set to ``name`` (None: unchanged); restore
    the previous library afterwards. Raises what torch raises when it cannot set ``name``."""
    return preferred_blas(name, strict=True)


def skip_reason(v: Variant, n: int, k: int) -> str | None:
    """Why ``v`` cannot run on an [N, K] weight here, or None."""
    reason = v.unsupported(n, k)
    if reason:
        return reason
    if v.blas is not None:
        try:
            with blas_library(v.blas):
                pass
        except (RuntimeError, ValueError, AttributeError) as e:
            return f"preferred_blas_library({v.blas!r}): {e}"
    return None


def rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    """Relative L2 error of ``y`` against the float64 ``ref`` (inf for a wrong shape)."""
    if tuple(y.shape) != tuple(ref.shape):
        return math.inf
    return float((y.double() - ref).norm() / ref.norm())


def cpu_time_calls(calls, mode: str = "graph", *, min_reps: int = 3, **_ignored) -> Timing:
    """Stand-in for ``time_calls`` in the CPU dry run: host wall time per call of a few repetitions
    of ``calls`` after one warm-up, without CUDA events or graphs."""
    for c in calls:
        c()
    per_call = []
    for _ in range(min(min_reps, 3)):
        t0 = time.perf_counter()
        for c in calls:
            c()
        per_call.append((time.perf_counter() - t0) * 1e6 / len(calls))
    per_call.sort()
    return Timing("cpu", statistics.median(per_call), per_call[0], per_call[-1], len(per_call), len(calls))


def copy_bandwidth(device: torch.device) -> float:
    """Bytes read + written per second by a device-to-device copy (``measure_hbm``, median); on the
    CPU dry run a host copy of CPU_COPY_BYTES timed by the wall clock."""
    if device.type == "cuda":
        return measure_hbm(COPY_BYTES)
    a = torch.zeros(CPU_COPY_BYTES // 2, dtype=torch.float16)
    b = torch.empty_like(a)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        b.copy_(a)
        times.append(time.perf_counter() - t0)
    return 2 * CPU_COPY_BYTES / statistics.median(times)


def _result(status: str, note: str = "", err: float = math.nan, t: Timing | None = None,
            nbytes: int = 0, bw: float = math.nan) -> dict:
    r = {"status": status, "note": note, "rel_err": err, "us": math.nan, "p10": math.nan, "p90": math.nan,
         "gb_per_s": math.nan, "pct_copy_bw": math.nan, "bytes": nbytes}
    if t is not None:
        rate = nbytes / (t.median_us * 1e-6)
        r.update(us=t.median_us, p10=t.p10_us, p90=t.p90_us, gb_per_s=rate / 1e9, pct_copy_bw=100 * rate / bw)
    return r


def check_and_time(v: Variant, check: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                   timed: list[tuple[torch.Tensor, torch.Tensor]], timer, nbytes: int, bw: float) -> dict:
    """Check ``v`` on ``check`` = (x, prepared weight, float64 reference), then time it over the
    (x, prepared weight) pairs of ``timed``, one call each, as one CUDA graph. A wrong variant is
    timed as well (its status says it is wrong)."""
    x, w, ref = check
    try:
        err = rel_err(v.run(x, w), ref)
    except Exception as e:  # noqa: BLE001 (an unsupported layout or library: record it, go on)
        return _result("error", f"check: {type(e).__name__}: {e}", nbytes=nbytes)
    status = "ok" if err <= REL_TOL else "wrong"  # a NaN error is wrong too
    calls = [lambda x=x, w=w: v.run(x, w) for x, w in timed]
    try:
        t = timer(calls, "graph")
    except Exception as e:  # noqa: BLE001
        return _result("error", f"timing: {type(e).__name__}: {e}", err, nbytes=nbytes)
    return _result(status, "" if status == "ok" else f"rel err {err:.2e} > {REL_TOL:g}", err, t, nbytes, bw)


def _fmt(x: float, spec: str) -> str:
    return format(x, spec) if isinstance(x, (int, float)) and math.isfinite(x) else ""


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for r in rows:
            w.writerow([r["shape"], r["n"], r["k"], r["batch"], r["variant"], r["bytes"], _fmt(r["us"], ".2f"),
                        _fmt(r["p10"], ".2f"), _fmt(r["p90"], ".2f"), _fmt(r["gb_per_s"], ".1f"),
                        _fmt(r["pct_copy_bw"], ".1f"), _fmt(r["rel_err"], ".2e"), r["status"], r["note"]])


def best_of(results: dict[str, dict]) -> str | None:
    """The variant with the least median time among those with status ok, or None."""
    ok = [(r["us"], name) for name, r in results.items() if r["status"] == "ok" and math.isfinite(r["us"])]
    return min(ok)[1] if ok else None


def step_status(singles: list[dict]) -> tuple[str, str, float]:
    """Status, note and largest relative error of a step made of the GEMMs ``singles``."""
    err = max((s["rel_err"] for s in singles), default=math.nan)
    for status in ("error", "skipped", "wrong"):
        bad = [s for s in singles if s["status"] == status]
        if bad:
            return status, f"{len(bad)} of its GEMMs {status}: {bad[0]['note']}", err
    return "ok", "", err


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="llama-2-7b", choices=sorted(MODELS))
    ap.add_argument("--batches", default="1,8,16,32,64", help="rows M of x, comma-separated")
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_LAYERS} layers in the step sequence")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                    help="cpu: a dry run with wall-clock timing (tests; use tiny shapes)")
    ap.add_argument("--triton", action=argparse.BooleanOptionalAction, default=None,
                    help="the Triton skinny GEMM variants (default: on CUDA, or with --triton-configs)")
    ap.add_argument("--triton-configs", default="",
                    help="comma-separated Triton config names (tsk_n64_k256_w4_s4_sk1, ...) instead of the list")
    args = ap.parse_args(argv)
    triton_names = [n.strip() for n in args.triton_configs.split(",") if n.strip()]
    t_start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    timer = time_calls if cuda else cpu_time_calls
    variants = dict(VARIANTS)
    if args.triton if args.triton is not None else (cuda or bool(triton_names)):
        try:
            variants.update(triton_variants(triton_names, dev))
        except ValueError as e:
            ap.error(str(e))
    cfg = MODELS[args.model]
    shapes = gemm_shapes(cfg)
    layers = min(QUICK_LAYERS, cfg.num_layers) if args.quick else cfg.num_layers
    bw = copy_bandwidth(dev)
    gen = torch.Generator(device=dev).manual_seed(0)

    def rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
        t = torch.randn(*shape, generator=gen, device=dev, dtype=torch.float16)
        return t.mul_(scale) if scale != 1.0 else t

    # One weight per layer for the layer GEMMs (the step reads them all, single GEMMs rotate over
    # some), LM_HEAD_COPIES for lm_head (the step reads the first).
    weights = {name: [rand(n, k, scale=WEIGHT_SCALE)
                      for _ in range(layers if name in LAYER_GEMMS else LM_HEAD_COPIES)]
               for name, (n, k) in shapes.items()}
    rows: list[dict] = []
    single: dict[str, dict[int, dict[str, dict]]] = {name: {m: {} for m in batches} for name in shapes}
    for name, (n, k) in shapes.items():
        print(f"{name} [{n}, {k}]", file=sys.stderr, flush=True)
        ws = weights[name]
        nrot = min(len(ws), max(2, math.ceil(ROTATE_BYTES / (n * k * 2))))
        check_w = rand(n, k, scale=WEIGHT_SCALE)  # fresh inputs for the correctness check
        check_x = {m: rand(m, k) for m in batches}
        w64 = check_w.double().t()
        refs = {m: check_x[m].double() @ w64 for m in batches}
        del w64
        xs = {m: [rand(m, k) for _ in range(nrot)] for m in batches}
        for vname, v in variants.items():
            reason = skip_reason(v, n, k)
            if reason:
                for m in batches:
                    single[name][m][vname] = _result("skipped", reason, nbytes=gemm_bytes(n, k, m))
                continue
            pcheck = pws = None
            try:
                with blas_library(v.blas):
                    pcheck = v.prepare(check_w)
                    pws = [v.prepare(w) for w in ws[:nrot]]
                    for m in batches:
                        single[name][m][vname] = check_and_time(
                            v, (check_x[m], pcheck, refs[m]), list(zip(xs[m], pws, strict=True)), timer,
                            gemm_bytes(n, k, m), bw)
            except Exception as e:  # noqa: BLE001 (prepare failed)
                for m in batches:
                    single[name][m].setdefault(vname, _result("error", f"prepare: {type(e).__name__}: {e}",
                                                              nbytes=gemm_bytes(n, k, m)))
            del pcheck, pws  # mm_t's transposed copies
        for m in batches:
            for vname, r in single[name][m].items():
                rows.append({"shape": name, "n": n, "k": k, "batch": m, "variant": vname, **r})
        write_csv(out / "gemm.csv", rows)
        del check_w, check_x, refs, xs

    # The step sequence: every layer's qkv, o, gate_up, down, then lm_head, as one CUDA graph.
    step_bytes = sum(layers * n * k * 2 for name, (n, k) in shapes.items() if name in LAYER_GEMMS)
    step_bytes += shapes["lm_head"][0] * shapes["lm_head"][1] * 2
    acts = {m: {name: rand(m, k) for name, (n, k) in shapes.items()} for m in batches}
    step: dict[int, dict[str, dict]] = {m: {} for m in batches}
    for vname, v in variants.items():
        print(f"step {vname}", file=sys.stderr, flush=True)
        todo = []
        for m in batches:
            status, note, err = step_status([single[name][m][vname] for name in shapes])
            if status in ("error", "skipped"):
                step[m][vname] = _result(status, note, err, nbytes=step_bytes)
            else:
                todo.append((m, status, note, err))
        if not todo:
            continue
        try:
            with blas_library(v.blas):
                pl = [{name: v.prepare(weights[name][i]) for name in LAYER_GEMMS} for i in range(layers)]
                plm = v.prepare(weights["lm_head"][0])
                for m, status, note, err in todo:
                    def run_step(pl=pl, plm=plm, a=acts[m], run=v.run) -> None:
                        for lw in pl:
                            for name in LAYER_GEMMS:
                                run(a[name], lw[name])
                        run(a["lm_head"], plm)

                    try:
                        t = timer([run_step], "graph", **STEP_TIMING)
                        step[m][vname] = _result(status, note, err, t, step_bytes, bw)
                    except Exception as e:  # noqa: BLE001
                        step[m][vname] = _result("error", f"timing: {type(e).__name__}: {e}", err,
                                                 nbytes=step_bytes)
            del pl, plm
        except Exception as e:  # noqa: BLE001 (prepare failed)
            for m, _, _, err in todo:
                step[m].setdefault(vname, _result("error", f"prepare: {type(e).__name__}: {e}", err,
                                                  nbytes=step_bytes))
    for m in batches:
        for vname, r in step[m].items():
            rows.append({"shape": "step", "n": "", "k": "", "batch": m, "variant": vname, **r})
    write_csv(out / "gemm.csv", rows)

    best_step = {}
    for m in batches:
        b = best_of(step[m])
        base = step[m].get("linear", {}).get("us", math.nan)
        best_step[str(m)] = None if b is None else {
            "variant": b, "ms": step[m][b]["us"] / 1e3, "pct_copy_bw": step[m][b]["pct_copy_bw"],
            "linear_ms": base / 1e3, "speedup_vs_linear": base / step[m][b]["us"]}
    best_gemm: dict[str, dict[str, dict | None]] = {name: {} for name in shapes}
    for name in shapes:
        for m in batches:
            b = best_of(single[name][m])
            best_gemm[name][str(m)] = None if b is None else {
                "variant": b, "us": single[name][m][b]["us"], "pct_copy_bw": single[name][m][b]["pct_copy_bw"]}

    def clean(r: dict) -> dict:
        return {key: (None if isinstance(val, float) and not math.isfinite(val) else val) for key, val in r.items()}

    timing = ("CUDA graph replays (gpu/common/timing.py time_calls), per call" if cuda
              else "CPU dry run: host wall clock, no CUDA events or graphs")
    doc = {
        "meta": collect_metadata(model=cfg.name, dtype="float16", device=str(dev), timing=timing,
                                 seconds=time.perf_counter() - t_start),
        "copy_bandwidth_bytes_per_s": bw,
        "copy_bytes": COPY_BYTES if cuda else CPU_COPY_BYTES,
        "model": cfg.to_dict(),
        "layers": layers,
        "batches": batches,
        "shapes": {name: {"n": n, "k": k, "weight_bytes": n * k * 2,
                          "per_step": layers if name in LAYER_GEMMS else 1} for name, (n, k) in shapes.items()},
        "variants": {vname: v.description for vname, v in variants.items()},
        "rel_tol": REL_TOL,
        "step_weight_bytes": step_bytes,
        "step": {str(m): {vname: clean(r) for vname, r in step[m].items()} for m in batches},
        "best_step": best_step,
        "best_gemm": best_gemm,
    }
    (out / "gemm.json").write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")

    print(f"copy bandwidth {bw / 1e12:.2f} TB/s; step: {cfg.name}, {layers} layers x ({', '.join(LAYER_GEMMS)}) "
          f"+ lm_head, {step_bytes / 1e9:.2f} GB of weights; ms and % of the copy bandwidth")
    names = list(variants)
    width = max(19, *(len(vn) for vn in names))
    print(f"{'batch':>5} | " + " | ".join(f"{vn:>{width}}" for vn in names) + " | best")
    for m in batches:
        cells = []
        for vn in names:
            r = step[m].get(vn)
            if r is None or not math.isfinite(r["us"]) or r["status"] != "ok":
                cells.append(f"{(r or {}).get('status', '-'):>{width}}")
            else:
                cells.append(f"{r['us'] / 1e3:9.3f} ms {r['pct_copy_bw']:5.1f}%".rjust(width))
        b = best_step[str(m)]
        print(f"{m:>5} | " + " | ".join(cells) + f" | {b['variant'] if b else 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
