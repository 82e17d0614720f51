"""Decode attention over the paged KV cache: the kernel's configurations against the HBM roofline.

For Llama-2-7B's attention shape (32 heads of 128, block size 16) at batch 1, 8, 16, 32, 64 and
context 128, 1024, 4096 tokens per sequence, times every configuration of
``gpu.engine.attention.paged_decode_triton`` (splits per (sequence, head), context tile, warps,
pipeline stages, launch order: sequence or head fastest; with ``--family prefetch`` the loop
pipelined by hand, the kernel's PREFETCH, beside the STAGES loop's 64-token tiles, 4 warps, 2 stages at
each split count; with ``--family wave`` the hand loop at 1 and 2 splits, 8-32-token tiles, 1, 2 and
4 warps; with ``--family one-warp`` the hand loop at one warp a program, 1-16 splits, 8-32-token
tiles), after
checking each against the float64 reference on fresh random inputs. ``--contexts`` sets the
context lengths (the engine's bench decodes at 129: 128 tokens of prompt and the new one).
The bytes a call must move (K and V of every context token, q and the output) over the measured
copy bandwidth give the roofline; the table reports the fraction reached. Block tables point
into a cache several times the L2, rotated between repetitions, so the timing is of HBM reads.

``--graph`` times each configuration as a CUDA-graph replay of 32 calls (one per layer of a decode
step, input sets rotating), as the engine's decode graphs run it: without it a call is one launch
timed alone, and at short contexts the launch, not the kernel, sets the time (so the H200 rows
at 128 tokens of context said nothing about the splits there; docs/engine.md).

Usage (GPU machine): python3 gpu/bench_decode_attention.py --out DIR [--graph] [--quick] [--batches 1,8,16,32]
    [--contexts 128,129] [--family all|prefetch|wave|one-warp]
Writes DIR/decode_attention.csv (every configuration), DIR/decode_attention.json (the best per
case, the default's time, metadata) and prints the best-per-case table last.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gpu.common.timing import rotating_median_us, time_calls  # noqa: E402
from gpu.engine import attention as A  # noqa: E402


def copy_bandwidth() -> float:
    """Bytes read + written per second by a 2 GiB device-to-device copy (median of 10)."""
    n = 2 * 2**30 // 2
    a = torch.empty(n, dtype=torch.float16, device="cuda")
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    times = []
    for _ in range(10):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        b.copy_(a)
        e1.record()
        e1.synchronize()
        times.append(e0.elapsed_time(e1) * 1e-3)
    return 2 * a.numel() * 2 / statistics.median(times)


LAYERS = 32  # calls per graph with --graph: one decode step's layers


def time_call(fn, sets: int, graph: bool) -> float:
    """Median microseconds of one ``fn(i)`` (input set ``i`` rotating): timed alone between two
    CUDA events, or with ``graph`` as one of LAYERS calls replayed as a CUDA graph."""
    if not graph:
        return rotating_median_us(fn, sets)
    return time_calls([lambda i=i: fn(i % sets) for i in range(LAYERS)], "graph", min_reps=10, max_reps=30).median_us


def reference(q: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor, tables: torch.Tensor, ctx: int) -> torch.Tensor:
    """Float64 attention of each sequence's query over its first ``ctx`` cached tokens."""
    outs = []
    for i in range(q.shape[0]):
        idx = tables[i].long()
        k = kc[idx].reshape(-1, kc.shape[2], kc.shape[3])[:ctx].double()
        v = vc[idx].reshape(-1, vc.shape[2], vc.shape[3])[:ctx].double()
        s = torch.einsum("hd,nhd->hn", q[i].double(), k) / q.shape[-1] ** 0.5
        outs.append(torch.einsum("hn,nhd->hd", torch.softmax(s, dim=-1), v))
    return torch.stack(outs)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--graph", action="store_true", help="time 32 calls replayed as one CUDA graph, per call")
    ap.add_argument("--batches", default=None, help="batch sizes, comma-separated (default: 1,8,16,32,64; "
                    "--quick: 1,32)")
    ap.add_argument("--contexts", default=None, help="context lengths, comma-separated (default: 128,1024,4096; "
                    "--quick: 128)")
    ap.add_argument("--family", default="all", choices=("all", "prefetch", "wave", "one-warp"),
                    help="all: every STAGES-pipelined configuration (the default); prefetch: the hand-pipelined "
                    "loop (PREFETCH) over splits, tiles, warps and launch orders, beside the STAGES loop's "
                    "64-token tiles, 4 warps, 2 stages at each split count; wave: the hand loop at 1 and 2 "
                    "splits, 8-32-token tiles, 1, 2, 4 warps; one-warp: the hand loop at one warp, 1-16 "
                    "splits, 8-32-token tiles")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    bw = copy_bandwidth()
    h = kvh = 32
    d, bs = 128, 16
    batches = (1, 8, 16, 32, 64) if not args.quick else (1, 32)
    if args.batches:
        try:
            batches = tuple(int(x) for x in args.batches.split(","))
        except ValueError:
            ap.error(f"--batches: expected integers separated by commas, got {args.batches!r}")
    contexts = (128, 1024, 4096) if not args.quick else (128,)
    if args.contexts:
        try:
            contexts = tuple(int(x) for x in args.contexts.split(","))
        except ValueError:
            ap.error(f"--contexts: expected integers separated by commas, got {args.contexts!r}")
        if min(contexts) < 1:
            ap.error(f"--contexts: lengths must be at least 1, got {args.contexts!r}")
    if args.family == "all":
        configs = [(*c, False) for c in itertools.product((1, 2, 4, 8, 16), (16, 32, 64), (4, 8), (1, 2, 3),
                                                          (False, True))]
    elif args.family == "wave":
        # whether a batch's programs fit the GPU at once: registers per program fall with the tile
        configs = [(sp, tile, w, 1, False, True) for sp in (1, 2) for tile in (8, 16, 32) for w in (1, 2, 4)]
    elif args.family == "one-warp":
        configs = [(sp, tile, 1, 1, False, True) for sp in (1, 2, 4, 8, 16) for tile in (8, 16, 32)]
    else:
        # the loop Triton pipelines, in the engine's configuration before the hand-pipelined one
        configs = [(sp, 64, 4, 2, False, False) for sp in (1, 2, 4, 8)]
        configs += [(*c, 1, False, True) for c in itertools.product((1, 2, 4, 8), (16, 32, 64), (2, 4, 8))]
        configs += [(sp, tile, 4, 1, True, True) for sp in (1, 2, 4) for tile in (32, 64)]
    g = torch.Generator(device="cuda").manual_seed(0)
    # 12 GiB of cache: sequences read blocks spread over it, a different set each repetition.
    num_blocks = 12 * 2**30 // (2 * bs * kvh * d * 2)
    kc = torch.randn(num_blocks, bs, kvh, d, device="cuda", dtype=torch.float16, generator=g)
    vc = torch.randn_like(kc)
    rows = ["batch,context,splits,tile,warps,stages,head_fast,prefetch,us,gb_per_s,pct_roofline,rel_err"]
    best = {}
    for b, ctx in itertools.product(batches, contexts):
        nblk = -(-ctx // bs)
        sets = 4
        tables = [torch.randperm(num_blocks, device="cuda", generator=g)[: b * nblk].view(b, nblk).to(torch.int32)
                  for _ in range(sets)]
        lens = torch.full((b,), ctx, dtype=torch.int32, device="cuda")
        qs = [torch.randn(b, h, d, device="cuda", dtype=torch.float16, generator=g) for _ in range(sets)]
        o = torch.empty_like(qs[0])
        ref = reference(qs[0][:2], kc, vc, tables[0][:2], ctx)
        bytes_moved = b * ctx * kvh * d * 2 * 2 + 2 * b * h * d * 2
        case = []
        for splits, tile, warps, stages, hf, pf in configs:
            key = f"{b},{ctx},{splits},{tile},{warps},{stages},{int(hf)},{int(pf)}"
            try:
                o.fill_(float("nan"))
                A.paged_decode_triton(qs[0], kc, vc, tables[0], lens, out=o, splits=splits, tile=tile, warps=warps,
                                      stages=stages, head_fast=hf, prefetch=pf)
                err = float((o[:2].double() - ref).norm() / ref.norm())
                if not err < 2e-3:
                    rows.append(f"{key},,,,{err:.2e}")
                    continue
                cfg = {"splits": splits, "tile": tile, "warps": warps, "stages": stages, "head_fast": hf,
                       "prefetch": pf}
                us = time_call(lambda i, cfg=cfg, qs=qs, tables=tables, lens=lens, o=o: A.paged_decode_triton(
                    qs[i], kc, vc, tables[i], lens, out=o, **cfg), sets, args.graph)
            except Exception as e:  # noqa: BLE001
                rows.append(f"{key},,,,error {type(e).__name__}")
                continue
            gbs = bytes_moved / (us * 1e-6) / 1e9
            pct = 100 * bytes_moved / (us * 1e-6) / bw
            rows.append(f"{key},{us:.2f},{gbs:.0f},{pct:.1f},{err:.2e}")
            case.append((us, splits, tile, warps, stages, hf, pf))
        default_us = time_call(lambda i, qs=qs, tables=tables, lens=lens, o=o: A.paged_decode_triton(
            qs[i], kc, vc, tables[i], lens, out=o), sets, args.graph)
        if not case:
            raise SystemExit(f"batch {b} x context {ctx}: no configuration passed the float64 check")
        case.sort()
        us, splits, tile, warps, stages, hf, pf = case[0]
        best[f"{b}x{ctx}"] = {"batch": b, "context": ctx, "us": us, "splits": splits, "tile": tile, "warps": warps,
                              "stages": stages, "head_fast": hf, "prefetch": pf,
                              "pct_roofline": 100 * bytes_moved / (us * 1e-6) / bw,
                              "default_us": default_us,
                              "default_pct_roofline": 100 * bytes_moved / (default_us * 1e-6) / bw,
                              "default_splits": A.decode_splits(b, h)}
        (out / "decode_attention.csv").write_text("\n".join(rows) + "\n")
    import triton

    from gpu.common.meta import collect_metadata

    meta = {
        "gpu": torch.cuda.get_device_name(), "driver": collect_metadata().get("driver"),
        "torch": torch.__version__, "triton": triton.__version__,
        "cuda": torch.version.cuda, "dtype": "float16", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": os.environ.get("GIT_COMMIT", ""), "copy_bandwidth_bytes_per_s": bw,
        "shape": {"heads": h, "kv_heads": kvh, "head_dim": d, "block_size": bs},
        "family": args.family,
        "defaults": {"tile": A.DECODE_TILE, "warps": A.DECODE_WARPS, "stages": A.DECODE_STAGES,
                     "head_fast": A.DECODE_HEAD_FAST, "prefetch": A.DECODE_PREFETCH,
                     "target_programs": A.DECODE_TARGET_PROGRAMS},
        "seconds": time.perf_counter() - t0,
        "timing": f"CUDA graph of {LAYERS} calls, per call" if args.graph else "one launch between CUDA events",
    }
    (out / "decode_attention.json").write_text(json.dumps({"meta": meta, "best": best}, indent=2) + "\n")
    print(f"copy bandwidth {bw / 1e12:.2f} TB/s")
    print("batch x ctx | best us (splits,tile,warps,stages,head_fast,prefetch) | % roofline | "
          "default us | default %")
    for k, v in best.items():
        cfg = f"{v['splits']},{v['tile']},{v['warps']},{v['stages']},{int(v['head_fast'])},{int(v['prefetch'])}"
        print(f"{k:>10} | {v['us']:8.1f} ({cfg}) | "
              f"{v['pct_roofline']:5.1f} | {v['default_us']:8.1f} | {v['default_pct_roofline']:5.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
