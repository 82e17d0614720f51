"""The token graphs' tiled attention over the pages against FlashAttention-2 and the FLOP roofline.

The step profile at 32bd308 (docs/engine.md, "Token graphs") priced a prompt's attention pairs at
about 2.9 ns per causal query-key pair through the tiled kernel against 0.9 ns through
FlashAttention-2 in eager steps (`step_attention.csv`, fits over the token curve): the kernel's
engine configuration (prefill tiles of 64 query rows, 64-key tiles, 4 warps, 2 stages) was set
without a measurement. For Llama-2-7B's attention shape (32 heads of 128, block size 16) this
times every configuration of ``gpu.engine.attention.paged_tiles_triton`` on the cases a token
graph meets -- one fresh prompt of 512 and 2048 tokens, a chunk of 512 after 1536 cached tokens,
8 chunks of 256, 64 decode rows of 1024 context (tiles of one row) -- after checking each against
the float64 reference on fresh random inputs; FlashAttention-2 (torch's op, contiguous K/V) on
the prompt cases for comparison. FLOPs: 4 x heads x head_dim x causal pairs.

Usage (GPU machine): python3 gpu/bench_tiles.py --out DIR [--quick]
Writes DIR/tiles.csv (every configuration), DIR/tiles.json (best per case, the engine default's
time, FlashAttention-2's, metadata) and prints the best-per-case table last.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gpu.common.peaks import measure_matmul  # noqa: E402
from gpu.common.timing import rotating_median_us  # noqa: E402
from gpu.engine import attention as A  # noqa: E402

H, D, BS = 32, 128, 16


def case_tiles(chunks: list[tuple[int, int]], block_m: int, device):
    """``chunks``: (rows, first position) per sequence. Returns the rows, their positions, the
    tile table for ``block_m`` and the causal pairs."""
    rows = sum(n for n, _ in chunks)
    pos = torch.empty(rows, dtype=torch.int64)
    tiles, r = [], 0
    for i, (n, p0) in enumerate(chunks):
        pos[r:r + n] = torch.arange(p0, p0 + n)
        tiles += A.tile_rows([(i, r, n)], block_m)
        r += n
    pairs = sum(n * (p0 + (n + 1) / 2) for n, p0 in chunks)
    return rows, pos.to(device), tiles, pairs


def _starts(chunks: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(first row, rows) of each chunk in the flat batch."""
    out, r = [], 0
    for n, _ in chunks:
        out.append((r, n))
        r += n
    return out


def make_tables(chunks, pool: int, gen, device):
    width = max(-(-(n + p0) // BS) for n, p0 in chunks)
    perm = torch.randperm(pool, generator=gen)
    bt = torch.zeros(len(chunks), width, dtype=torch.int32)
    k = 0
    for i, (n, p0) in enumerate(chunks):
        need = -(-(n + p0) // BS)
        bt[i, :need] = perm[k:k + need].to(torch.int32)
        k += need
    return bt.to(device)


CASES = {
    "prompt512": [(512, 0)],
    "prompt2048": [(2048, 0)],
    "chunk512_after1536": [(512, 1536)],
    "chunks8x256": [(256, 0)] * 8,
    "decode64_ctx1024": [(1, 1023)] * 64,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="out/tiles")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cuda", help="cpu: a dry run under TRITON_INTERPRET=1 (tests)")
    ap.add_argument("--pool", type=int, default=8192, help="KV blocks per cache (default: 1 GiB, past the L2)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    gen = torch.Generator().manual_seed(0)
    pool = args.pool
    kc = torch.randn(pool + 1, BS, H, D, dtype=torch.float16, device=dev)
    vc = torch.randn_like(kc)
    rate = measure_matmul(torch.float16) if cuda else float("nan")
    configs = list(itertools.product((16, 32, 64, 128), (32, 64, 128), (4, 8), (1, 2, 3)))
    if args.quick:
        configs = [(A.PREFILL_TILE_M, *A.PREFILL_CONFIG), (64, 64, 4, 2), (A.DECODE_TILE_M, *A.DECODE_CONFIG)]
    rows, best = [], {}
    for name, chunks in CASES.items():
        sets = 3
        tables = [make_tables(chunks, pool, gen, dev) for _ in range(sets)]
        decode_only = all(n == 1 for n, _ in chunks)
        nrows, pos, _, pairs = case_tiles(chunks, 16, dev)
        qs = [torch.randn(nrows, H, D, dtype=torch.float16, device=dev) for _ in range(sets)]
        o = torch.empty_like(qs[0])
        # float64 reference of set 0 (the output does not depend on the tiling)
        ts0, tr0, tl0 = (torch.tensor(c, dtype=torch.int32, device=dev)
                         for c in zip(*A.tile_rows([(i, r0, n) for i, (r0, n) in enumerate(_starts(chunks))], 16),
                                      strict=True))
        ref = A.paged_tiles_torch(qs[0], kc, vc, pos, tables[0], ts0, tr0, tl0,
                                  torch.empty(qs[0].shape, dtype=torch.float64, device=dev))
        configs_done = []
        for bm, bn, w, st in configs:
            if decode_only and bm != 16:
                continue
            _, _, tiles, _ = case_tiles(chunks, bm, dev)
            ts, tr, tl_ = (torch.tensor(c, dtype=torch.int32, device=dev) for c in zip(*tiles, strict=True))
            try:
                o.zero_()
                A.paged_tiles_triton(qs[0], kc, vc, pos, tables[0], ts, tr, tl_, o, bm, bn, w, st)
                err = float((o.double() - ref).abs().max() / ref.abs().max())
            except Exception as e:  # noqa: BLE001 (too much shared memory, an unsupported tile)
                rows.append(f"{name},{bm},{bn},{w},{st},,,,{type(e).__name__}")
                continue
            ok = err < 2e-2
            us = float("nan")
            if ok:
                def call(i, qs=qs, pos=pos, tables=tables, o=o, ts=ts, tr=tr, tl_=tl_, cfg=(bm, bn, w, st)):
                    A.paged_tiles_triton(qs[i], kc, vc, pos, tables[i], ts, tr, tl_, o, *cfg)

                us = rotating_median_us(call, sets, reps=20)
            tflops = 4 * H * D * pairs / (us * 1e-6) / 1e12 if ok else float("nan")
            rows.append(f"{name},{bm},{bn},{w},{st},{us:.2f},{tflops:.1f},{err:.2e},{'ok' if ok else 'WRONG'}")
            configs_done.append({"block_m": bm, "block_n": bn, "warps": w, "stages": st, "us": us, "rel_err": err})
        fa = None
        if not decode_only and cuda:
            inputs = [[(torch.randn(1, H, n, D, dtype=torch.float16, device=dev),
                        torch.randn(1, H, n + p0, D, dtype=torch.float16, device=dev),
                        torch.randn(1, H, n + p0, D, dtype=torch.float16, device=dev)) for n, p0 in chunks]
                      for _ in range(sets)]

            def flash(i, inputs=inputs):
                for q, k, v in inputs[i]:
                    torch.ops.aten._scaled_dot_product_flash_attention(q, k, v, 0.0, is_causal=True)

            fa = rotating_median_us(flash, sets, reps=20)
        good = [c for c in configs_done if math.isfinite(c["us"])]
        b = min(good, key=lambda c: c["us"]) if good else None
        bm_default = A.DECODE_TILE_M if decode_only else A.PREFILL_TILE_M
        default = next((c for c in good if (c["block_m"], c["block_n"], c["warps"], c["stages"]) ==
                        (bm_default, *A.tile_config(bm_default, torch.float16))), None)
        best[name] = {"pairs": pairs, "best": b, "engine_default": default, "flash_attention_us": fa}
    header = "case,block_m,block_n,warps,stages,us,tflops,rel_err,status\n"
    (out / "tiles.csv").write_text(header + "\n".join(rows) + "\n")
    import triton

    from gpu.common.meta import collect_metadata

    meta = {"gpu": torch.cuda.get_device_name() if cuda else "cpu", "driver": collect_metadata().get("driver"),
            "torch": torch.__version__,
            "triton": triton.__version__, "cuda": torch.version.cuda, "dtype": "float16",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": os.environ.get("GIT_COMMIT", ""),
            "fp16_matmul_flops": rate, "cases": best}
    (out / "tiles.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"fp16 matmul {rate / 1e12:.0f} TFLOP/s")
    print(f"{'case':22} {'default us':>10} {'best us':>9} {'best (m,n,w,s)':>16} {'TFLOP/s':>8} {'% peak':>7} "
          f"{'FA2 us':>8}")
    for name, r in best.items():
        b, d = r["best"], r["engine_default"]
        if b is None:
            print(f"{name:22} no valid configuration")
            continue
        tf = 4 * H * D * r["pairs"] / (b["us"] * 1e-6)
        cfg = f"({b['block_m']},{b['block_n']},{b['warps']},{b['stages']})"
        fa = f"{r['flash_attention_us']:.1f}" if r["flash_attention_us"] else "-"
        print(f"{name:22} {d['us'] if d else float('nan'):>10.1f} {b['us']:>9.1f} {cfg:>16} {tf / 1e12:>8.1f} "
              f"{100 * tf / rate:>6.1f}% {fa:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
