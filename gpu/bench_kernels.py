"""Micro-benchmark of the LoRA kernels; writes the kernel profile the twin reads, and the docs table.

On the GPU machine (one call; prints progress, writes everything under --out):

    python3 gpu/bench_kernels.py run --out $OUT --time-budget-s 270

then, here, copy ``kernel_lora.csv`` and ``meta.json`` into ``profiles/h100-llama2-7b/`` and
regenerate the table of docs/kernels.md (torch-free):

    python3 gpu/bench_kernels.py render --profile profiles/h100-llama2-7b --doc docs/kernels.md

Method (docs/kernels.md says more): the HBM bandwidth and tensor peaks are measured first, in the
same run. Every grid point times SGMV (``apply`` = shrink + expand, and each half), the torch loop
and the gathered bmm, each with CUDA events over at least 20 repetitions after warm-up, median
reported. Inputs rotate over enough independent sets (x, y, v and the adapters' slots) that one
repetition touches at least 2.5x the L2 cache. Every point is timed as CUDA-graph replays and
eagerly. Decode graphs give SGMV the bounds a captured engine graph must use (one segment slot per
token, segment-length bound = tokens); eager calls and prefill get tight bounds (the layout's own).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu.kernels.report import read_csv, render_markdown, splice, write_csv  # noqa: E402
from gpu.kernels.roofline import op_bytes, op_flops, roofline_us  # noqa: E402
from gpu.kernels.shapes import LLAMA2_7B, LLAMA2_13B, ModelShape  # noqa: E402
from gpu.kernels.workloads import (  # noqa: E402
    WORKLOADS,
    adapter_ranks,
    decode_segment_lengths,
    prefill_segment_lengths,
)

DECODE_TOKENS = (1, 2, 4, 8, 16, 32, 64)
PREFILL_TOKENS = (256, 512, 1024, 2048, 4096)
RANKS = ("16", "64", "mix")
ROTATION_BYTES = 128 << 20
MAX_SETS = 32
MAX_EAGER_SETS = 8
BMM_MAX_BYTES = 1 << 30
DEVICE = "cuda"


@dataclass(frozen=True)
class Point:
    """One grid point: a model module, a dtype, a batch layout, and a rank label."""

    model: ModelShape
    module: str
    dtype: str
    phase: str
    tokens: int
    rank: str
    seg_lens: tuple[int, ...]
    workloads: tuple[str, ...]  # every workload label with this layout


def layouts(phase: str, tokens: int) -> list[tuple[tuple[int, ...], tuple[str, ...]]]:
    """Distinct segment layouts at ``tokens``, each with the workload labels that give it."""
    fn = decode_segment_lengths if phase == "decode" else prefill_segment_lengths
    seen: dict[tuple[int, ...], list[str]] = {}
    for w in WORKLOADS:
        seen.setdefault(tuple(fn(w, tokens)), []).append(w)
    return [(lens, tuple(ws)) for lens, ws in seen.items()]


def grid(model: ModelShape, dtype: str, modules: tuple[str, ...], ranks: tuple[str, ...],
         phases: tuple[str, ...] = ("decode", "prefill")) -> list[Point]:
    pts = []
    for phase in phases:
        for module in modules:
            for rank in ranks:
                for tokens in DECODE_TOKENS if phase == "decode" else PREFILL_TOKENS:
                    for lens, ws in layouts(phase, tokens):
                        pts.append(Point(model, module, dtype, phase, tokens, rank, lens, ws))
    return pts


def plan() -> list[Point]:
    """Grid points in priority order (the run stops adding points when its time budget is spent)."""
    mods = ("qkvo", "gate_up", "down")
    return (grid(LLAMA2_7B, "fp16", mods, RANKS, ("decode",))
            + grid(LLAMA2_7B, "fp16", mods, RANKS, ("prefill",))
            + grid(LLAMA2_7B, "bf16", ("qkvo",), ("16",))
            + grid(LLAMA2_13B, "fp16", mods, ("16",)))


def bench_point(p: Point, peaks, log: Callable[[str], None]) -> list[dict]:
    import torch

    from gpu.common.timing import time_calls
    from gpu.kernels.ops import SegmentInfo, lora_apply, sgmv_expand, sgmv_shrink
    from gpu.kernels.segments import layout_from_lengths, pad_layout

    dt = {"fp16": torch.float16, "bf16": torch.bfloat16}[p.dtype]
    h_in, h_out = p.model.module_dims(p.module)
    n_ad = len(p.seg_lens)
    ad_ranks = adapter_ranks(p.rank, n_ad)
    r_buf = max(ad_ranks)
    T = p.tokens
    apply_bytes = op_bytes("apply", p.seg_lens, ad_ranks, h_in, h_out)
    n_sets = max(2, min(MAX_SETS, math.ceil(ROTATION_BYTES / apply_bytes)))
    dev = DEVICE
    S = n_sets * n_ad
    a = torch.randn(S, r_buf, h_in, device=dev, dtype=dt) * h_in**-0.5
    b = torch.randn(S, r_buf, h_out, device=dev, dtype=dt) * (0.01 * r_buf**-0.5)
    slot_ranks = ad_ranks * n_sets
    ranks_t = torch.tensor(slot_ranks, dtype=torch.int32, device=dev)
    keep = (torch.arange(r_buf, device=dev)[None, :] < ranks_t[:, None]).to(dt)[:, :, None]
    a.mul_(keep)  # zero padding past each slot's rank (the bmm reference needs it; SGMV never reads it)
    b.mul_(keep)
    scales_l = [1.0] * S
    scales_t = torch.ones(S, dtype=torch.float32, device=dev)
    xs = [torch.randn(T, h_in, device=dev, dtype=dt) for _ in range(n_sets)]
    ys = [torch.randn(T, h_out, device=dev, dtype=dt) for _ in range(n_sets)]
    vs = [torch.zeros(T, r_buf, device=dev, dtype=torch.float32) for _ in range(n_sets)]
    tight, padded = [], []
    for j in range(n_sets):
        lay = layout_from_lengths(p.seg_lens, [j * n_ad + i for i in range(n_ad)])
        tight.append(SegmentInfo.from_layout(lay, dev, tokens=T))
        padded.append(SegmentInfo.from_layout(pad_layout(lay, T), dev, tokens=T, max_seg_len=T))

    def sets(mode: str) -> range:
        return range(n_sets if mode == "graph" else min(n_sets, MAX_EAGER_SETS))

    # A captured decode step must take any layout: SGMV gets one segment slot per token and a
    # segment-length bound of T there. Prefill (eager in an engine) knows its layout: tight bounds,
    # also when timed as a graph (which then measures the GPU time without Python's launch cost).
    graph_segs = padded if p.phase == "decode" else tight

    def apply_calls(kind: str, mode: str) -> list[Callable[[], object]]:
        segs = graph_segs if (mode == "graph" and kind == "sgmv") else tight
        if kind == "sgmv":
            return [lambda j=j: lora_apply(xs[j], ys[j], a, b, segs[j], ranks_t, scales_t, v=vs[j]) for j in sets(mode)]
        if kind == "torch":
            return [lambda j=j: lora_apply(xs[j], ys[j], a, b, segs[j], slot_ranks, scales_l, kind="torch")
                    for j in sets(mode)]
        return [lambda j=j: lora_apply(xs[j], ys[j], a[:, :r_buf], b, segs[j], ranks_t, scales_t, kind="bmm")
                for j in sets(mode)]

    def half_calls(op: str, mode: str) -> list[Callable[[], object]]:
        segs = graph_segs if mode == "graph" else tight
        if op == "shrink":
            return [lambda j=j: sgmv_shrink(xs[j], a, segs[j], ranks_t, vs[j]) for j in sets(mode)]
        return [lambda j=j: sgmv_expand(vs[j], b, segs[j], ranks_t, scales_t, ys[j]) for j in sets(mode)]

    modes = ("graph", "eager")
    jobs: list[tuple[str, str, str, Callable[[], list]]] = []
    for mode in modes:
        jobs.append(("sgmv", "apply", mode, lambda m=mode: apply_calls("sgmv", m)))
        jobs.append(("sgmv", "shrink", mode, lambda m=mode: half_calls("shrink", m)))
        jobs.append(("sgmv", "expand", mode, lambda m=mode: half_calls("expand", m)))
        jobs.append(("torch", "apply", mode, lambda m=mode: apply_calls("torch", m)))
        if T * r_buf * (h_in + h_out) * 2 <= BMM_MAX_BYTES:
            jobs.append(("bmm", "apply", mode, lambda m=mode: apply_calls("bmm", m)))
    rows = []
    flops_peak = peaks.flops_per_s(p.dtype)
    rank_mean = sum(n * r for n, r in zip(p.seg_lens, ad_ranks, strict=True)) / T
    for kernel, op, mode, make in jobs:
        try:
            t = time_calls(make(), mode)
        except Exception as exc:  # noqa: BLE001 - log, keep going
            log(f"  FAILED {kernel} {op} {mode}: {exc!r}")
            traceback.print_exc()
            continue
        nb = op_bytes(op, p.seg_lens, ad_ranks, h_in, h_out)
        fl = op_flops(op, p.seg_lens, ad_ranks, h_in, h_out)
        roof = roofline_us(nb, fl, peaks.hbm_bytes_per_s, flops_peak)
        for w in p.workloads:
            rows.append({
                "kernel": kernel, "op": op, "timing": mode, "dtype": p.dtype, "model": p.model.name,
                "module": p.module, "h_in": h_in, "h_out": h_out, "phase": p.phase, "workload": w, "tokens": T,
                "segments": n_ad, "rank": p.rank, "rank_max": r_buf, "rank_mean": rank_mean,
                "median_us": t.median_us, "p10_us": t.p10_us, "p90_us": t.p90_us, "reps": t.reps,
                "calls_per_rep": t.calls_per_rep, "bytes": nb, "flops": fl, "roofline_us": roof,
                "roofline_fraction": roof / t.median_us,
            })
    return rows


def sweep(peaks, log: Callable[[str], None]) -> list[dict]:
    """Shrink split-K sweep on a few critical points (eager, tight bounds), to check the heuristic."""
    import torch

    from gpu.common.timing import time_calls
    from gpu.kernels.config import shrink_config
    from gpu.kernels.ops import SegmentInfo, sgmv_shrink
    from gpu.kernels.segments import layout_from_lengths

    out = []
    cases = [("qkvo", 4096, [4096], 16), ("qkvo", 4096, [4096], 64), ("down", 4096, [4096], 64),
             ("qkvo", 1024, [1024], 64), ("qkvo", 64, [1] * 64, 16), ("down", 64, [1] * 64, 64),
             ("qkvo", 8, [8], 64), ("down", 1, [1], 16)]
    for module, T, lens, r in cases:
        h_in, h_out = LLAMA2_7B.module_dims(module)
        n = len(lens)
        n_sets = max(2, min(16, math.ceil(ROTATION_BYTES / op_bytes("shrink", lens, [r] * n, h_in, h_out))))
        a = torch.randn(n * n_sets, r, h_in, device="cuda", dtype=torch.float16)
        ranks = torch.full((n * n_sets,), r, dtype=torch.int32, device="cuda")
        xs = [torch.randn(T, h_in, device="cuda", dtype=torch.float16) for _ in range(n_sets)]
        vs = [torch.zeros(T, r, device="cuda") for _ in range(n_sets)]
        segs = [SegmentInfo.from_layout(layout_from_lengths(lens, [j * n + i for i in range(n)]), "cuda", tokens=T)
                for j in range(n_sets)]
        heur = shrink_config(T, h_in, r, n, max(lens))
        for split in sorted({1, 2, 4, 8, 16, heur.split_k}):
            cfg = shrink_config(T, h_in, r, n, max(lens), split_k=split)
            try:
                t = time_calls([partial(sgmv_shrink, xs[j], a, segs[j], ranks, vs[j], config=cfg)
                                for j in range(n_sets)], "graph")
            except Exception as exc:  # noqa: BLE001
                log(f"  sweep FAILED {module} T={T} split={split}: {exc!r}")
                continue
            nb = op_bytes("shrink", lens, [r] * n, h_in, h_out)
            roof = roofline_us(nb, op_flops("shrink", lens, [r] * n, h_in, h_out), peaks.hbm_bytes_per_s,
                               peaks.fp16_flops_per_s)
            row = {"op": "shrink", "module": module, "tokens": T, "segments": n, "rank": r, "split_k": cfg.split_k,
                   "heuristic_split_k": heur.split_k, "block_m": cfg.block_m, "median_us": round(t.median_us, 2),
                   "roofline_us": round(roof, 2), "fraction": round(roof / t.median_us, 3)}
            log(f"  sweep {row}")
            out.append(row)
    out += sweep_expand(peaks, log)
    return out


def sweep_expand(peaks, log: Callable[[str], None]) -> list[dict]:
    """Expand tile sweep (block_m, block_n, warps) on a few points (graph, tight bounds)."""
    import torch

    from gpu.common.timing import time_calls
    from gpu.kernels.config import ExpandConfig, cdiv
    from gpu.kernels.ops import SegmentInfo, sgmv_expand
    from gpu.kernels.segments import layout_from_lengths

    out = []
    cases = [("gate_up", [4096], "16"), ("qkvo", [256] * 16, "mix"), ("gate_up", [1] * 64, "mix"),
             ("down", [1] * 64, "64")]
    for module, lens, rank in cases:
        h_in, h_out = LLAMA2_7B.module_dims(module)
        n, T = len(lens), sum(lens)
        rks = adapter_ranks(rank, n)
        R = max(rks)
        nb = op_bytes("expand", lens, rks, h_in, h_out)
        n_sets = max(2, min(16, math.ceil(ROTATION_BYTES / nb)))
        b = torch.randn(n * n_sets, R, h_out, device="cuda", dtype=torch.float16)
        ranks = torch.tensor(rks * n_sets, dtype=torch.int32, device="cuda")
        scales = torch.ones(n * n_sets, device="cuda")
        vs = [torch.randn(T, R, device="cuda") for _ in range(n_sets)]
        ys = [torch.randn(T, h_out, device="cuda", dtype=torch.float16) for _ in range(n_sets)]
        segs = [SegmentInfo.from_layout(layout_from_lengths(lens, [j * n + i for i in range(n)]), "cuda", tokens=T)
                for j in range(n_sets)]
        roof = roofline_us(nb, op_flops("expand", lens, rks, h_in, h_out), peaks.hbm_bytes_per_s,
                           peaks.fp16_flops_per_s)
        br = max(16, 1 << (R - 1).bit_length())
        for bm, bn, warps in ((16, 128, 4), (16, 256, 4), (32, 128, 4), (64, 128, 4), (64, 128, 8), (64, 256, 8)):
            bound = max(lens)
            cfg = ExpandConfig(bm, bn, br, cdiv(bound, bm), warps, 2)
            try:
                t = time_calls([partial(sgmv_expand, vs[j], b, segs[j], ranks, scales, ys[j], config=cfg)
                                for j in range(n_sets)], "graph")
            except Exception as exc:  # noqa: BLE001
                log(f"  expand sweep FAILED {module} {cfg}: {exc!r}")
                continue
            row = {"op": "expand", "module": module, "tokens": T, "segments": n, "rank": rank, "block_m": bm,
                   "block_n": bn, "num_warps": warps, "median_us": round(t.median_us, 2),
                   "roofline_us": round(roof, 2), "fraction": round(roof / t.median_us, 3)}
            log(f"  sweep {row}")
            out.append(row)
    return out


def profile_meta(meta: dict, peaks, done: int, planned: int, seconds: float) -> dict:
    """meta.json of the profile: run metadata, measured ceilings, and the table's description."""
    meta = dict(meta)
    meta.update({
        "schema_version": 1,
        "profile": "h100-llama2-7b",
        "dtype": "fp16 (bf16 and llama2-13b rows where the dtype and model columns say so)",
        "peaks": {"hbm_bytes_per_s": peaks.hbm_bytes_per_s, "fp16_flops_per_s": peaks.fp16_flops_per_s,
                  "bf16_flops_per_s": peaks.bf16_flops_per_s,
                  "method": "HBM: 1 GiB device-to-device copy, bytes read + written; tensor: 8192^3 matmul, "
                            "random data; medians of 20-30 CUDA-event timings"},
        "tables": {"kernel_lora": {
            "file": "kernel_lora.csv", "points_done": done, "points_planned": planned,
            "timing": "graph = per-call time inside a replayed CUDA graph; eager = per-call time of "
                      "back-to-back launches from Python (includes host launch cost when host-bound)",
            "method": f"CUDA events, median of >= 20 repetitions after warm-up; inputs rotated over up to "
                      f"{MAX_SETS} sets (>= {ROTATION_BYTES >> 20} MiB a repetition where that fits in 32 sets)",
        }},
        "bench_seconds": round(seconds, 1),
    })
    return meta


def run(args: argparse.Namespace) -> int:
    import torch

    from gpu.common.meta import collect_metadata
    from gpu.common.peaks import measure_peaks

    t0 = time.time()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    logf = (out / "bench_kernels.log").open("w")

    def log(msg: str) -> None:
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    meta = collect_metadata(command=args.command)
    log(f"metadata: {json.dumps(meta)}")
    peaks = measure_peaks()
    log(f"peaks: HBM {peaks.hbm_bytes_per_s / 1e12:.3f} TB/s, fp16 {peaks.fp16_flops_per_s / 1e12:.1f} TFLOP/s, "
        f"bf16 {peaks.bf16_flops_per_s / 1e12:.1f} TFLOP/s ({time.time() - t0:.1f} s)")
    (out / "meta.json").write_text(json.dumps(profile_meta(meta, peaks, 0, 0, time.time() - t0), indent=2) + "\n")
    sweep_rows = sweep(peaks, log) if not args.no_sweep else []
    (out / "bench_sweep.json").write_text(json.dumps(sweep_rows, indent=1) + "\n")
    points = plan()
    if args.quick:
        points = [p for p in points if p.module == "qkvo" and p.rank == "16" and p.dtype == "fp16"][:12]
    rows: list[dict] = []
    done = 0
    for i, p in enumerate(points):
        if time.time() - t0 > args.time_budget_s:
            log(f"time budget reached: {done} of {len(points)} points done")
            break
        try:
            got = bench_point(p, peaks, log)
        except Exception as exc:  # noqa: BLE001 - log, keep going
            log(f"point {i} FAILED {p.model.name} {p.module} {p.dtype} {p.phase} T={p.tokens} {p.seg_lens}: {exc!r}")
            traceback.print_exc()
            got = []
        rows.extend(got)
        done += 1
        s = {(r["op"], r["timing"], r["kernel"]): r["median_us"] for r in got if r["workload"] == p.workloads[0]}
        log(f"[{time.time() - t0:6.1f}s] {i + 1}/{len(points)} {p.model.name} {p.module} {p.dtype} {p.phase} "
            f"T={p.tokens} segs={len(p.seg_lens)} r={p.rank} " + " ".join(
                f"{k[2]}-{k[0]}-{k[1]}={v:.1f}" for k, v in sorted(s.items())))
        if i % 20 == 0:
            write_csv(rows, out / "kernel_lora.csv")
        torch.cuda.empty_cache()
    write_csv(rows, out / "kernel_lora.csv")
    meta = profile_meta(meta, peaks, done, len(points), time.time() - t0)
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    (out / "kernels_table.md").write_text(render_markdown(rows, meta) + "\n")
    log(f"done: {len(rows)} rows, {done} points in {time.time() - t0:.1f} s")
    return 0


def render(args: argparse.Namespace) -> int:
    rows = read_csv(args.profile / "kernel_lora.csv")
    meta = json.loads((args.profile / "meta.json").read_text())
    doc = args.doc.read_text() if args.doc.exists() else "# LoRA kernels\n"
    args.doc.write_text(splice(doc, render_markdown(rows, meta)))
    print(f"wrote the generated tables of {args.doc} from {len(rows)} rows")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description="LoRA kernel micro-benchmark and profile writer")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="time the kernels on the GPU, write the profile under --out")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--time-budget-s", type=float, default=270.0)
    r.add_argument("--quick", action="store_true", help="a dozen points only (smoke test)")
    r.add_argument("--no-sweep", action="store_true")
    r.add_argument("--command", default=None, help="the command line to record in meta.json")
    d = sub.add_parser("render", help="regenerate docs/kernels.md's tables from a committed profile (no GPU)")
    d.add_argument("--profile", type=Path, default=Path("profiles/h100-llama2-7b"))
    d.add_argument("--doc", type=Path, default=Path("docs/kernels.md"))
    args = ap.parse_args()
    return run(args) if args.cmd == "run" else render(args)


if __name__ == "__main__":
    sys.exit(main())
