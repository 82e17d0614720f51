"""The skinny GEMM's prologues alone: norm_gemm and silu_gemm against the kernels they replace.

gpu/bench_engine.py --fuse-prologues put the decode step at about 26 ms at batch 1-16 on the H200
(e82f051, gpu/results/gemm-speed-h200-e82f051/) against 4.1 ms unfused: the fused kernels of
gpu/kernels/skinny_gemm.py ("Prologues") are far slower than the GEMMs they extend. This times them
one by one, on the decode step's shapes, so that the cause shows:

- ``unfused``: what the engine runs without FUSE_PROLOGUES: add_rms_norm (x += d, then RMSNorm(x) *
  g) then skinny_gemm, or silu_mul then skinny_gemm -- two launches;
- ``gemm``: skinny_gemm alone on a ready input (the floor the fused kernel should approach);
- ``fused <config>``: norm_gemm / silu_gemm with each SkinnyConfig of --configs (split-K 1).

Shapes (Llama-2-7B): ``qkv`` norm with d, K 4096 -> N 12288; ``gate_up`` norm with d, 4096 -> 22016;
``down`` silu, 11008 -> 4096. Rows M: --batches (default 1, 8, 16). Each variant is first checked
against the float64 product of the unfused reference on fresh random inputs (relative L2 error;
above 1e-2 it is marked wrong), then timed with gpu/common/timing.py ``time_calls`` as CUDA-graph
replays rotating over weight copies of at least 256 MiB in all (the L2 holds about 60 MB), so the
time is of HBM reads. Also reported per compiled kernel: registers per thread and spilled
registers (Triton's ``n_regs`` / ``n_spills``, where this Triton exposes them).

Usage (GPU machine): python3 gpu/bench_prologues.py --out DIR [--batches 1,8,16] [--configs NAME,...]
Writes DIR/prologues.csv, DIR/prologues.json (metadata, copy bandwidth, rows, kernel stats) and
prints the table last.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gpu.common.meta import collect_metadata  # noqa: E402
from gpu.common.peaks import measure_hbm  # noqa: E402
from gpu.common.results import KERNEL_FIELDS, print_rows, write_rows  # noqa: E402
from gpu.common.timing import time_calls  # noqa: E402
from gpu.engine import model as em  # noqa: E402
from gpu.kernels import skinny_gemm as sg  # noqa: E402

SHAPES = {"qkv": ("norm", 4096, 12288), "gate_up": ("norm", 4096, 22016), "down": ("silu", 11008, 4096)}
DEFAULT_CONFIGS = ["tsk_n32_k128_w4_s6_sk1", "tsk_n32_k128_w4_s2_sk1", "tsk_n32_k128_w4_s3_sk1",
                   "tsk_n32_k64_w4_s4_sk1", "tsk_n64_k128_w4_s4_sk1", "tsk_n32_k256_w4_s3_sk1",
                   "tsk_n64_k64_w4_s4_sk1", "tsk_n32_k128_w8_s4_sk1"]
EPS = 1e-5
WRONG = 1e-2


def reference(kind: str, x: torch.Tensor, d: torch.Tensor | None, g: torch.Tensor | None,
              w: torch.Tensor) -> torch.Tensor:
    """The product in float64: RMSNorm(x + d) * g @ W^T, or (silu(gate) * up) @ W^T."""
    w64 = w.double()
    if kind == "norm":
        r = x.double() + (d.double() if d is not None else 0.0)
        h = r * torch.rsqrt(r.pow(2).mean(-1, keepdim=True) + EPS) * g.double()
        return h @ w64.t()
    k = x.shape[1] // 2
    gate, up = x[:, :k].double(), x[:, k:].double()
    return (gate * torch.sigmoid(gate) * up) @ w64.t()


def rel(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y.double() - ref).norm() / ref.norm())


def kernel_stats(kernel) -> list[dict]:
    """Registers and spills of every compiled specialization of a Triton kernel (empty where this
    Triton keeps its cache elsewhere)."""
    out = []
    try:
        caches = kernel.device_caches
        for dev_cache in caches.values():
            cache = dev_cache[0] if isinstance(dev_cache, tuple) else dev_cache
            for key, ck in cache.items():
                out.append({"key": str(key)[:200], "n_regs": getattr(ck, "n_regs", None),
                            "n_spills": getattr(ck, "n_spills", None),
                            "shared": getattr(getattr(ck, "metadata", None), "shared", None),
                            "num_stages": getattr(getattr(ck, "metadata", None), "num_stages", None),
                            "num_warps": getattr(getattr(ck, "metadata", None), "num_warps", None)})
    except Exception as e:  # noqa: BLE001 -- an introspection detail; the timings stand without it
        out.append({"error": f"{type(e).__name__}: {e}"})
    return out


def _norm_fused(x, d, g, w, cfg):
    return sg.norm_gemm(x, d, g, EPS, w, cfg)[0]


def _silu_fused(x, d, g, w, cfg):
    return sg.silu_gemm(x, w, cfg)[0]


def variants(kind: str, cfgs: list[sg.SkinnyConfig], gemm_cfg: sg.SkinnyConfig):
    """name -> fn(x, d, g, w) returning y."""
    out = {}
    if kind == "norm":
        out["unfused"] = lambda x, d, g, w: sg.skinny_gemm(em.add_rms_norm(x, d, g, EPS), w, gemm_cfg)
        out["gemm"] = lambda x, d, g, w: sg.skinny_gemm(x, w, gemm_cfg)
        for c in cfgs:
            out[f"fused {c.name}"] = functools.partial(_norm_fused, cfg=c)
    else:
        out["unfused"] = lambda x, d, g, w: sg.skinny_gemm(em.silu_mul(x), w, gemm_cfg)
        out["gemm"] = lambda x, d, g, w: sg.skinny_gemm(x[:, : x.shape[1] // 2].contiguous(), w, gemm_cfg)
        for c in cfgs:
            out[f"fused {c.name}"] = functools.partial(_silu_fused, cfg=c)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--batches", default="1,8,16")
    ap.add_argument("--configs", default=",".join(DEFAULT_CONFIGS))
    ap.add_argument("--shapes", default=",".join(SHAPES))
    args = ap.parse_args(argv)
    try:
        batches = [int(b) for b in args.batches.split(",")]
        cfgs = [sg.SkinnyConfig.from_name(n) for n in args.configs.split(",") if n]
    except ValueError as e:
        ap.error(f"--batches / --configs: {e}")
    unknown = [s for s in args.shapes.split(",") if s not in SHAPES]
    if unknown:
        ap.error(f"--shapes: unknown {unknown}, expected some of {list(SHAPES)}")
    if not torch.cuda.is_available():
        print("bench_prologues: needs CUDA", file=sys.stderr)
        return 2
    gemm_cfg = sg.SkinnyConfig.from_name(em.SKINNY_CONFIG)
    dev = torch.device("cuda")
    torch.manual_seed(0)
    bw = measure_hbm()
    rows = []
    for shape in args.shapes.split(","):
        kind, k, n = SHAPES[shape]
        copies = max(2, math.ceil((256 << 20) / (n * k * 2)))
        ws = [torch.randn(n, k, device=dev, dtype=torch.float16) / math.sqrt(k) for _ in range(copies)]
        g = (1 + 0.1 * torch.randn(k, device=dev)).half() if kind == "norm" else None
        for m in batches:
            xk = k if kind == "norm" else 2 * k
            for name, fn in variants(kind, cfgs, gemm_cfg).items():
                row = {"shape": shape, "n": n, "k": k, "m": m, "variant": name}
                # check on fresh inputs (add_rms_norm updates x in place: a copy per call)
                x = torch.randn(m, xk, device=dev, dtype=torch.float16)
                d = 1e-3 * torch.randn(m, k, device=dev, dtype=torch.float16) if kind == "norm" else None
                ref = reference(kind, x, d, g, ws[0])
                if name == "gemm":
                    ref = (x[:, :k] if kind == "silu" else x).double() @ ws[0].double().t()
                try:
                    y = fn(x.clone(), d, g, ws[0])
                    torch.cuda.synchronize()
                    err = rel(y, ref)
                    row["rel_err"] = err
                    if not math.isfinite(err) or err > WRONG:
                        row["status"] = "wrong"
                        rows.append(row)
                        continue
                    xs = [torch.randn(m, xk, device=dev, dtype=torch.float16) for _ in ws]
                    ds = [1e-4 * torch.randn(m, k, device=dev, dtype=torch.float16) if kind == "norm" else None
                          for _ in ws]
                    calls = [functools.partial(fn, xi, di, g, wi) for xi, di, wi in zip(xs, ds, ws, strict=True)]
                    t = time_calls(calls, mode="graph")
                    row["status"] = "ok"
                    row["us"] = t.median_us
                    byts = (n * k + m * xk + m * n + (m * k if kind == "norm" else 0)) * 2
                    row["pct_copy_bw"] = 100 * byts / (t.median_us * 1e-6) / bw
                except Exception as e:  # noqa: BLE001 -- reported per variant, the others go on
                    row["status"] = "error"
                    row["note"] = f"{type(e).__name__}: {str(e)[:200]}"
                rows.append(row)
        del ws
        torch.cuda.empty_cache()
    stats = {"skinny_prologue_kernel": kernel_stats(sg.skinny_prologue_kernel),
             "skinny_gemm_kernel": kernel_stats(sg.skinny_gemm_kernel)}
    meta = collect_metadata(dtype="float16", copy_bandwidth_Bps=bw, gemm_config=gemm_cfg.name)
    write_rows(args.out, "prologues", KERNEL_FIELDS, rows,
               {"meta": meta, "rows": rows, "kernel_stats": stats})
    for name, st in stats.items():
        for s in st:
            print(name, s)
    print_rows(rows, bw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
