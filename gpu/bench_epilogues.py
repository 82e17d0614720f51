"""The skinny GEMM's epilogues alone: each fused GEMM of FUSE_EPILOGUES against what it replaces.

gpu/bench_engine.py --fuse-epilogues took the decode step at batch 16 from 4.690 to 4.637 ms on the
H200 (94f6de6, gpu/results/epilogue-speed-h200-94f6de6/), though the launches it removes cost about
0.18 ms: its GEMMs ran slower than the plain ones. This times them one by one on the decode step's
shapes (Llama-2-7B), so that the slow one shows:

- ``qkv`` (4096 -> 12288) and ``lm_head`` (4096 -> 32000): ``unfused`` = add_rms_norm (x += d, then
  RMSNorm * g) then skinny_gemm; ``fused`` = scaled_gemm over r * g and the row sums of squares;
- ``gate_up`` (4096 -> 2 x 11008): ``unfused`` = add_rms_norm, skinny_gemm, silu_mul; ``fused`` =
  scaled_gemm with glu;
- ``o`` (4096 -> 4096) and ``down`` (11008 -> 4096): ``unfused`` = skinny_gemm (the residual add is
  the next add_rms_norm's, counted there); ``fused`` = residual_gemm (residual += y, r * g, sums of
  squares by atomics);
- every shape: ``gemm`` = skinny_gemm alone on a ready input, the floor.

The unfused pair runs the engine's SKINNY_CONFIG; fused variants run each configuration of
--configs (and gate_up also --glu-configs). Each variant is checked first against float64 on fresh
random inputs (relative L2 error; above 1e-2 it is marked wrong), then timed with gpu/common/timing.py
``time_calls`` as CUDA-graph replays rotating over weight copies of at least 256 MiB (the L2 holds
about 60 MB), so the time is of HBM reads. The table ends with a layer's sum (qkv + o + gate_up +
down) unfused and fused, per configuration, x 32 plus lm_head: the step's GEMM and small-kernel time.

Usage (GPU machine): python3 gpu/bench_epilogues.py --out DIR [--batches 1,8,16] [--configs NAME,...]
[--glu-configs NAME,...] [--gemm-config NAME]. ``unfused linear`` and ``gemm linear`` run the same with
F.linear (cuBLASLt preferred), what the engine runs over SKINNY_MAX_M rows. Writes DIR/epilogues.csv
and DIR/epilogues.json (metadata, copy
bandwidth, rows) and prints the table last.
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

# name -> (kind, K, N): kind "norm" (scaled_gemm), "glu" (scaled_gemm with glu; N = 2 x the output),
# "resid" (residual_gemm)
SHAPES = {"qkv": ("norm", 4096, 12288), "o": ("resid", 4096, 4096), "gate_up": ("glu", 4096, 22016),
          "down": ("resid", 11008, 4096), "lm_head": ("norm", 4096, 32000)}
DEFAULT_CONFIGS = ["tsk_n32_k128_w4_s6_sk1", "tsk_n64_k128_w4_s4_sk1", "tsk_n32_k128_w4_s4_sk1"]
DEFAULT_GLU_CONFIGS = ["tsk_n16_k128_w4_s6_sk1", "tsk_n16_k256_w4_s4_sk1", "tsk_n32_k64_w4_s6_sk1"]
EPS = 1e-5
WRONG = 1e-2
LAYERS = 32


def rel(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y.double() - ref).norm() / ref.norm())


class Inputs:
    """One set of inputs of a shape at M rows: the residual r (and the update d the unfused norm adds),
    the norm weight g, r * g and its row sums of squares (what the epilogue before would have written),
    and x, the input of a residual GEMM."""

    def __init__(self, kind: str, m: int, k: int, n: int, dev: torch.device) -> None:
        self.r = torch.randn(m, k, device=dev, dtype=torch.float16)
        self.d = 1e-3 * torch.randn(m, k, device=dev, dtype=torch.float16)
        self.g = (1 + 0.1 * torch.randn(k, device=dev)).half()
        rs = (self.r.float() + self.d.float()).half()  # the residual after the add, as the fused path has it
        self.hg = (rs.float() * self.g.float()).half()
        self.ss = (rs.float() ** 2).sum(1).contiguous()
        if kind == "resid":  # x [M, K] -> y [M, N] added to res [M, N]
            self.x = torch.randn(m, k, device=dev, dtype=torch.float16)
            self.res = torch.randn(m, n, device=dev, dtype=torch.float16)
            self.gn = (1 + 0.1 * torch.randn(n, device=dev)).half()
            self.hg_out = torch.empty_like(self.res)
            self.ss_out = torch.empty(n, m, device=dev, dtype=torch.float32)  # room for one part a tile of any config


def reference(kind: str, inp: Inputs, w: torch.Tensor) -> torch.Tensor:
    """float64: the normed product (norm), silu(gate) * up of it (glu), or res + x W^T (resid)."""
    w64 = w.double()
    if kind == "resid":
        return inp.res.double() + inp.x.double() @ w64.t()
    r = inp.r.double() + inp.d.double()
    h = r * torch.rsqrt(r.pow(2).mean(-1, keepdim=True) + EPS) * inp.g.double()
    y = h @ w64.t()
    if kind == "glu":
        n = y.shape[1] // 2
        return torch.nn.functional.silu(y[:, :n]) * y[:, n:]
    return y


def _mm(x: torch.Tensor, w: torch.Tensor, gemm_cfg) -> torch.Tensor:
    """The plain GEMM: the skinny one with ``gemm_cfg``, F.linear where it is None."""
    return torch.nn.functional.linear(x, w) if gemm_cfg is None else sg.skinny_gemm(x, w, gemm_cfg)


def _unfused(kind: str, gemm_cfg, inp: Inputs, w: torch.Tensor) -> torch.Tensor:
    if kind == "resid":
        return _mm(inp.x, w, gemm_cfg)
    h = em.add_rms_norm(inp.r, inp.d, inp.g, EPS)  # r += d in place, as the engine's layer does
    y = _mm(h, w, gemm_cfg)
    return em.silu_mul(y) if kind == "glu" else y


def _gemm(kind: str, gemm_cfg, inp: Inputs, w: torch.Tensor) -> torch.Tensor:
    return _mm(inp.x if kind == "resid" else inp.hg, w, gemm_cfg)


def _fused(kind: str, cfg, inp: Inputs, w: torch.Tensor) -> torch.Tensor:
    if kind == "resid":
        sg.residual_gemm(inp.x, w, cfg, inp.res, inp.gn, inp.hg_out, inp.ss_out)
        return inp.res
    return sg.scaled_gemm(inp.hg, w, cfg, inp.ss, EPS, glu=kind == "glu")


def variants(kind: str, cfgs: list, glu_cfgs: list, gemm_cfg) -> dict:
    """name -> fn(inputs, w) returning the output to check (the residual for resid). ``unfused
    linear`` and ``gemm linear``: the same with F.linear (cuBLASLt where main sets it), what the
    engine runs over SKINNY_MAX_M rows."""
    out = {"unfused": functools.partial(_unfused, kind, gemm_cfg), "gemm": functools.partial(_gemm, kind, gemm_cfg),
           "unfused linear": functools.partial(_unfused, kind, None),
           "gemm linear": functools.partial(_gemm, kind, None)}
    for c in (glu_cfgs if kind == "glu" else []) + cfgs:
        out.setdefault(f"fused {c.name}", functools.partial(_fused, kind, c))
    return out


def programs(kind: str, name: str, n: int, gemm_cfg) -> int:
    """Programs of the variant's GEMM launch (one per N tile): how many waves it makes on the GPU's
    SMs, where a partial last wave idles some of them. gate_up's fused kernel covers two W tiles a
    program, so it launches half as many as the plain GEMM of the same configuration."""
    if name.endswith(" linear"):
        return 0  # cuBLAS's own grid, not known here
    cfg = gemm_cfg if not name.startswith("fused") else sg.SkinnyConfig.from_name(name.split()[1])
    out_n = n // 2 if kind == "glu" and name.startswith("fused") else n
    return -(-out_n // cfg.block_n) * cfg.split_k


def check(kind: str, name: str, fn, inp: Inputs, w: torch.Tensor) -> float:
    """Relative L2 error of variant ``name`` (``fn``) on fresh inputs against float64: the GEMM alone
    against the plain product, the unfused residual GEMM with the add the next norm makes."""
    if name.startswith("gemm"):  # gemm, gemm linear
        ref = (inp.x if kind == "resid" else inp.hg).double() @ w.double().t()
    else:
        ref = reference(kind, inp, w)
    y = fn(inp, w)
    if kind == "resid" and name.startswith("unfused"):
        y = inp.res.double() + y.double()
    return rel(y, ref)


def traffic_bytes(kind: str, m: int, k: int, n: int) -> int:
    """Bytes a fused call must move at least: W, its input rows, its output rows (and the residual
    read and written, r * g written, for resid)."""
    out_n = n // 2 if kind == "glu" else n
    extra = 3 * m * n if kind == "resid" else 0
    return (n * k + m * k + m * out_n + extra) * 2


def layer_sums(rows: list[dict], batches: list[int]) -> list[str]:
    """Per batch: a layer's four GEMMs unfused and with the best fused configuration of each, and
    the step's (x LAYERS, plus lm_head), in µs."""
    def best(m: int, shape: str, prefix: str) -> float | None:
        ts = [r["us"] for r in rows if r["shape"] == shape and r["m"] == m and r.get("status") == "ok"
              and r["variant"].startswith(prefix)]
        return min(ts) if ts else None

    out = []
    for m in batches:
        got = {(s, v): best(m, s, v) for s in SHAPES for v in ("unfused", "fused", "gemm")}
        if any(v is None for v in got.values()):
            out.append(f"m={m}: some variant missing, no sums")
            continue
        layer = {v: sum(got[(s, v)] for s in ("qkv", "o", "gate_up", "down")) for v in ("unfused", "fused", "gemm")}
        step = {v: LAYERS * layer[v] + got[("lm_head", v)] for v in layer}
        out.append(f"m={m}: layer unfused {layer['unfused']:.1f} us, fused (best of each) {layer['fused']:.1f}, "
                   f"GEMMs alone {layer['gemm']:.1f}; step {step['unfused'] / 1e3:.3f} / {step['fused'] / 1e3:.3f} / "
                   f"{step['gemm'] / 1e3:.3f} ms")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--batches", default="1,8,16")
    ap.add_argument("--configs", default=",".join(DEFAULT_CONFIGS))
    ap.add_argument("--glu-configs", default=",".join(DEFAULT_GLU_CONFIGS))
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--gemm-config", default=None,
                    help="the plain skinny GEMM's config for unfused / gemm (default: the engine's SKINNY_CONFIG)")
    args = ap.parse_args(argv)
    try:
        batches = [int(b) for b in args.batches.split(",")]
        cfgs = [sg.SkinnyConfig.from_name(n) for n in args.configs.split(",") if n]
        glu_cfgs = [sg.SkinnyConfig.from_name(n) for n in args.glu_configs.split(",") if n]
    except ValueError as e:
        ap.error(f"--batches / --configs / --glu-configs: {e}")
    bad = [c.name for c in cfgs + glu_cfgs if c.tma or c.balanced]
    if bad:
        ap.error(f"the epilogues run without _tma or _bal: {bad}")
    unknown = [s for s in args.shapes.split(",") if s not in SHAPES]
    if unknown:
        ap.error(f"--shapes: unknown {unknown}, expected some of {list(SHAPES)}")
    if not torch.cuda.is_available():
        print("bench_epilogues: needs CUDA", file=sys.stderr)
        return 2
    gemm_cfg = sg.SkinnyConfig.from_name(args.gemm_config or em.SKINNY_CONFIG)
    try:  # F.linear as the engine's decode graphs run it
        torch.backends.cuda.preferred_blas_library("cublaslt")
    except Exception as e:  # noqa: BLE001
        print(f"bench_epilogues: cuBLASLt not preferred ({type(e).__name__}: {e})", file=sys.stderr)
    dev = torch.device("cuda")
    torch.manual_seed(0)
    bw = measure_hbm()
    rows = []
    for shape in args.shapes.split(","):
        kind, k, n = SHAPES[shape]
        copies = max(2, math.ceil((256 << 20) / (n * k * 2)))
        ws = [torch.randn(n, k, device=dev, dtype=torch.float16) / math.sqrt(k) for _ in range(copies)]
        for m in batches:
            for name, fn in variants(kind, cfgs, glu_cfgs, gemm_cfg).items():
                row = {"shape": shape, "n": n, "k": k, "m": m, "variant": name,
                       "programs": programs(kind, name, n, gemm_cfg)}
                try:
                    err = check(kind, name, fn, Inputs(kind, m, k, n, dev), ws[0])
                    row["rel_err"] = err
                    if not math.isfinite(err) or err > WRONG:
                        row["status"] = "wrong"
                        rows.append(row)
                        continue
                    sets = [Inputs(kind, m, k, n, dev) for _ in ws]
                    calls = [functools.partial(fn, si, wi) for si, wi in zip(sets, ws, strict=True)]
                    t = time_calls(calls, mode="graph")
                    row["status"] = "ok"
                    row["us"] = t.median_us
                    row["pct_copy_bw"] = 100 * traffic_bytes(kind, m, k, n) / (t.median_us * 1e-6) / bw
                except Exception as e:  # noqa: BLE001 -- reported per variant, the others go on
                    row["status"] = "error"
                    row["note"] = f"{type(e).__name__}: {str(e)[:200]}"
                rows.append(row)
        del ws
        torch.cuda.empty_cache()
    sums = layer_sums(rows, batches)
    meta = collect_metadata(dtype="float16", copy_bandwidth_Bps=bw, gemm_config=gemm_cfg.name)
    write_rows(args.out, "epilogues", KERNEL_FIELDS, rows, {"meta": meta, "rows": rows, "sums": sums})
    print_rows(rows, bw)
    for line in sums:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
