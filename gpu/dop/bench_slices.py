"""q, k and v as one LoRA operator (horizontal fusion) against Punica-style per-projection SGMV, on the GPU.

The q, k and v projections of a layer read the same input. Punica's SGMV (``gpu/kernels``, one
fixed configuration) applies their LoRA updates as three operators: three shrinks (each with the
``v.zero_()`` of its split-K), three expands. ``gpu.dop.kernels.dop_apply_sliced`` runs them as one
shrink and one expand over three slices, with the candidate the Dop table chooses for the
projection's key. Each is a handful of microseconds, near the launch floor (docs/dop.md), so
launches, not bytes, are what there is to save. This script measures it, in three parts:

1. **Check** (before anything is timed): every sketch the sliced launcher accepts (split none /
   atomic / two-phase, dot / gemv, segment / tiles tiling, adapter / token order, both grid orders),
   on fresh random inputs with mixed ranks below the slot rank, Llama-2-7B's q | k | v (4096 x 3)
   and a grouped-query shape (4096 | 1024 | 1024), against the float64 reference of each slice
   (``gpu.kernels.reference.fp64_apply``): relative error <= 4u (fp16 u = 2^-11) per slice, every
   value finite, the scratch poisoned with NaN first. A failure stops the script (exit 1).
2. **Operator**: per scenario (decode batches 1-64 x the four workload types, a 512-token prefill;
   ranks 16 and 64), CUDA-graph replays over rotated input sets, CUDA events, medians
   (``gpu.common.timing``): SGMV x 3, the Dop choice x 3, the Dop choice sliced; and the roofline
   of the three updates (``gpu.kernels.roofline``, bytes at the measured copy bandwidth).
3. **Decode step** in the engine (``gpu/engine``, CUDA graphs, Llama-2-7B, random weights, 8 slots
   of ranks 8-64 on q, k, v, o, context ``--ctx``): no LoRA, ``sgmv``, ``dop`` without slices and
   ``dop`` with slices, the four executors alternated at each batch; the logits of ``dop`` with
   slices against ``sgmv`` on the same inputs.

Writes ``bench_slices.json`` (every number, metadata) and ``bench_slices.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gpu.common.timing import time_calls  # noqa: E402
from gpu.dop.dispatch import DEFAULT_TABLE, Dispatcher  # noqa: E402
from gpu.dop.kernels import dop_apply, dop_apply_sliced, make_scratch, slices_fit  # noqa: E402
from gpu.dop.space import Candidate, Scenario, check, normalize  # noqa: E402
from gpu.kernels.ops import SegmentInfo, lora_apply  # noqa: E402
from gpu.kernels.reference import fp64_apply  # noqa: E402
from gpu.kernels.roofline import op_bytes  # noqa: E402
from gpu.kernels.segments import layout_from_lengths  # noqa: E402
from gpu.kernels.workloads import WORKLOADS, decode_segment_lengths, prefill_segment_lengths  # noqa: E402

U_FP16 = 2.0**-11
H = 4096
DECODE = (1, 4, 16, 32, 64)
RANKS = (16, 64)

# Sketches the check covers (normalized; each with details that divide 1024, the GQA slice width).
CHECK_CANDIDATES = [normalize(c) for c in (
    Candidate(split="atomic", block_k=128, block_n=256, split_k=16),
    Candidate(split="none", block_k=128, block_n=128),
    Candidate(split="two_phase", block_k=64, block_n=128, split_k=8),
    Candidate(math="gemv", block_m=1, split="atomic", block_k=128, block_n=128, split_k=8),
    Candidate(math="gemv", block_m=4, split="two_phase", block_k=256, block_n=128, split_k=4),
    Candidate(tiling="tiles", split="atomic", block_k=128, block_n=256, split_k=16),
    Candidate(order="adapter", split="atomic", block_k=128, block_n=128, split_k=8, item_fast=1),
    Candidate(tiling="tiles", block_m=64, split="two_phase", block_k=128, block_n=128, split_k=4, warps_e=8),
)]


def _seg(lens, slots, tokens, device):
    return SegmentInfo.from_layout(layout_from_lengths(lens, slots), device, tokens=tokens)


def check_sliced(device: str, gen: torch.Generator) -> list[dict]:
    """Part 1: sliced candidates against the float64 reference, slice by slice."""
    rows = []
    shapes = {"mha 4096|4096|4096": (H, H, H), "gqa 4096|1024|1024": (H, 1024, 1024)}
    layouts = [("decode", "distinct", 16), ("decode", "skewed", 64), ("decode", "identical", 1),
               ("prefill", "uniform", 512)]
    for shape_name, widths in shapes.items():
        bounds = (widths[0], widths[0] + widths[1])
        h_out = sum(widths)
        for phase, wl, tokens in layouts:
            lens = (decode_segment_lengths if phase == "decode" else prefill_segment_lengths)(wl, tokens)
            n_ad = len(lens)
            R = 64
            perm = torch.randperm(2 * n_ad, generator=gen, device=device).tolist()
            seg = _seg(lens, perm[:n_ad], tokens, device)
            a = (torch.randn(3, 2 * n_ad, R, H, generator=gen, device=device) * H**-0.5).half()
            b = (torch.randn(2 * n_ad, R, h_out, generator=gen, device=device) * R**-0.5).half()
            ranks_list = [[8, 16, 24, 64][i % 4] for i in range(2 * n_ad)]  # below the slot rank too
            ranks = torch.tensor(ranks_list, dtype=torch.int32, device=device)
            scales = (torch.rand(2 * n_ad, generator=gen, device=device) + 0.5).float()
            x = torch.randn(tokens, H, generator=gen, device=device).half()
            y = torch.randn(tokens, h_out, generator=gen, device=device).half()
            cols = [(0, bounds[0]), (bounds[0], bounds[1]), (bounds[1], h_out)]
            refs = [fp64_apply(x, y[:, c0:c1], a[j], b[:, :, c0:c1], seg, ranks, scales)[0]
                    for j, (c0, c1) in enumerate(cols)]
            probe = Scenario("llama2-7b", "q_proj", R, wl, phase, tokens)
            for c in CHECK_CANDIDATES:
                why = check(c, probe)
                if not slices_fit(c, bounds, h_out) or (why is not None and not why.startswith("dominated")):
                    continue  # a point the space itself rules out for this scenario
                sc = make_scratch(c, tokens, H, R, device, slices=3)
                for t in (sc.v, sc.ws):
                    if t is not None:
                        t.fill_(float("nan"))
                out = dop_apply_sliced(x, y.clone(), a, b, seg, ranks, scales, c, bounds, sc)
                torch.cuda.synchronize()
                errs = [float((out[:, c0:c1].double() - ref).norm() / ref.norm())
                        for (c0, c1), ref in zip(cols, refs, strict=True)]
                ok = bool(torch.isfinite(out).all()) and max(errs) <= 4 * U_FP16
                rows.append({"shape": shape_name, "phase": phase, "workload": wl, "tokens": tokens,
                             "candidate": c.key(), "rel_err": errs, "ok": ok})
                print(f"check {shape_name:20} {phase:7} {wl:9} T={tokens:4} {c.key():62} "
                      f"err={max(errs):.2e} {'ok' if ok else 'FAIL'}", flush=True)
    return rows


class _OpInputs:
    """Rotated input sets of one scenario: x, y [T, 3H], stacks A [3, S, R, H] and B [S, R, 3H]."""

    def __init__(self, lens, tokens: int, rank: int, device: str, gen: torch.Generator) -> None:
        n_ad = len(lens)
        per_set = 3 * (2 * n_ad * rank * H * 2) + tokens * 4 * H * 2
        self.n_sets = max(2, min(32, math.ceil((128 << 20) / per_set)))
        S = self.n_sets * n_ad
        self.a = (torch.randn(3, S, rank, H, generator=gen, device=device) * H**-0.5).half()
        self.b = (torch.randn(S, rank, 3 * H, generator=gen, device=device) * (0.01 * rank**-0.5)).half()
        self.ranks = torch.full((S,), rank, dtype=torch.int32, device=device)
        self.scales = torch.ones(S, dtype=torch.float32, device=device)
        self.xs = [torch.randn(tokens, H, generator=gen, device=device).half() for _ in range(self.n_sets)]
        self.ys = [torch.randn(tokens, 3 * H, generator=gen, device=device).half() for _ in range(self.n_sets)]
        self.segs = [_seg(lens, [j * n_ad + i for i in range(n_ad)], tokens, device) for j in range(self.n_sets)]


def _three(fn, inp: _OpInputs, j: int, vs) -> None:
    for m in range(3):
        fn(inp.xs[j], inp.ys[j][:, m * H:(m + 1) * H], inp.a[m], inp.b[:, :, m * H:(m + 1) * H], inp.segs[j],
           inp.ranks, inp.scales, vs[j])


def time_operator(disp: Dispatcher, hbm: float, device: str, gen: torch.Generator) -> list[dict]:
    """Part 2: the q, k, v updates of one layer, three ways, per scenario."""
    rows = []
    scen = [("decode", wl, t) for t in DECODE for wl in WORKLOADS] + [("prefill", "uniform", 512)]
    for rank in RANKS:
        for phase, wl, tokens in scen:
            lens = (decode_segment_lengths if phase == "decode" else prefill_segment_lengths)(wl, tokens)
            inp = _OpInputs(lens, tokens, rank, device, gen)
            hit = disp.choose(H, H, rank, tokens, wl, phase)
            row = {"phase": phase, "workload": wl, "tokens": tokens, "rank": rank, "segments": len(lens),
                   "rotation_sets": inp.n_sets}
            vs = [torch.empty(tokens, rank, dtype=torch.float32, device=device) for _ in range(inp.n_sets)]

            def sgmv(x, y, a, b, seg, rk, sc, v):
                lora_apply(x, y, a, b, seg, rk, sc, kind="sgmv", v=v)

            t = time_calls([partial(_three, sgmv, inp, j, vs) for j in range(inp.n_sets)], "graph", budget_ms=40)
            row["sgmv_x3_us"] = t.median_us
            if hit is not None:
                c = hit[0]
                row["dop_choice"] = c.key()
                scr = [make_scratch(c, tokens, H, rank, device) for _ in range(inp.n_sets)]

                def dop(x, y, a, b, seg, rk, sc, s, c=c):
                    dop_apply(x, y, a, b, seg, rk, sc, c, s)

                t = time_calls([partial(_three, dop, inp, j, scr) for j in range(inp.n_sets)], "graph", budget_ms=40)
                row["dop_x3_us"] = t.median_us
                # the sliced operator runs the table's choice for three slices (module qkv) where the
                # table has such entries, else its one-projection choice, as the engine does
                c3 = (disp.choose(H, H, rank, tokens, wl, phase, "fp16", 3) or hit)[0]
                if slices_fit(c3, (H, 2 * H), 3 * H):
                    row["dop_sliced_choice"] = c3.key()
                    scr3 = [make_scratch(c3, tokens, H, rank, device, slices=3) for _ in range(inp.n_sets)]
                    t = time_calls([partial(dop_apply_sliced, inp.xs[j], inp.ys[j], inp.a, inp.b, inp.segs[j],
                                            inp.ranks, inp.scales, c3, (H, 2 * H), scr3[j])
                                    for j in range(inp.n_sets)], "graph", budget_ms=40)
                    row["dop_sliced_us"] = t.median_us
            nbytes = 3 * op_bytes("apply", lens, [rank] * len(lens), H, H)
            row["roofline_us"] = nbytes / hbm * 1e6
            best = min(v for k, v in row.items() if k in ("dop_x3_us", "dop_sliced_us") and v is not None) \
                if "dop_x3_us" in row else None
            if best is not None:
                row["speedup_best_over_sgmv"] = row["sgmv_x3_us"] / best
                row["fraction_of_roofline"] = row["roofline_us"] / best
            rows.append(row)
            print(f"op r={rank:2} {phase:7} {wl:9} T={tokens:4} sgmv x3 {row['sgmv_x3_us']:7.2f} us  "
                  f"dop x3 {row.get('dop_x3_us', float('nan')):7.2f}  "
                  f"sliced {row.get('dop_sliced_us', float('nan')):7.2f}"
                  f"  roofline {row['roofline_us']:5.2f}", flush=True)
            del inp
            torch.cuda.empty_cache()
    return rows


def time_steps(args, device: str) -> dict:
    """Part 3: decode steps of the engine, no LoRA / sgmv / dop without and with slices."""
    from gpu.engine.executor import Executor
    from gpu.engine.executor import StepSeq as Seq
    from gpu.engine.kv_cache import PagedKVCache
    from gpu.engine.lora import ATTN_MODULES, LoraSlots, random_adapter
    from gpu.engine.model import LlamaModel
    from gpu.engine.weights import PRESETS, random_weights

    cfg = PRESETS["llama-2-7b"]
    dt = torch.float16
    weights = random_weights(cfg, dt, device, seed=0)
    bs, ctx = 16, args.ctx
    batches = (1, 8, 16, 32, 64)
    per_seq = -(-(ctx + 1) // bs)
    kv = PagedKVCache(cfg, num_blocks=max(batches) * per_seq + 8, block_size=bs, dtype=dt, device=device)
    for t in kv.k + kv.v:
        t.normal_()
    ranks = [8, 16, 32, 64, 8, 16, 32, 64]
    adapters = [random_adapter(cfg, f"r{r}_{i}", r, 2.0 * r, ATTN_MODULES, seed=10 + i, device=device)
                for i, r in enumerate(ranks)]
    kinds = {"sgmv": dict(kind="sgmv"), "dop": dict(kind="dop", tuned_table=args.table, dop_slices=False),
             "dop_sliced": dict(kind="dop", tuned_table=args.table, dop_slices=True)}
    exes = {}
    slots_of = {}
    for name, kw in kinds.items():
        slots = LoraSlots(cfg, 8, 64, ATTN_MODULES, dt, device, **kw)
        for i, ha in enumerate(adapters):
            slots.copy_in(i, ha)
        torch.cuda.synchronize()
        slots_of[name] = slots
        exes[name] = Executor(LlamaModel(cfg, weights, kv, slots), block_size=bs, max_model_len=4096,
                              use_graphs=True, graph_sizes=batches, max_num_seqs=max(batches))
        exes[name].capture_graphs()
    out = {"ctx": ctx, "ranks": ranks, "rows": [], "dop_status": slots_of["dop_sliced"].dop_status}
    gen = torch.Generator().manual_seed(1)
    for b in batches:
        seqs = [Seq(i, i % 8, ctx, 1, list(range(i * per_seq, (i + 1) * per_seq))) for i in range(b)]
        toks = [torch.randint(0, cfg.vocab_size, (ctx + 1,), generator=gen).tolist() for _ in range(b)]
        for exe in exes.values():
            for i in range(b):
                exe.tokens[i] = toks[i]
            exe._fill_static(seqs, exe.bucket(b))
        size = exes["sgmv"].bucket(b)
        logits = {n: exes[n].replay(size, True)[0][:b].float().clone() for n in ("sgmv", "dop_sliced")}
        torch.cuda.synchronize()
        diff = float((logits["dop_sliced"] - logits["sgmv"]).abs().max())
        scale = float(logits["sgmv"].abs().max())
        times: dict[str, list[float]] = {"none": [], "sgmv": [], "dop": [], "dop_sliced": []}
        for _ in range(args.rounds):  # the four alternated, so drift hits each alike
            for name in times:
                exe = exes["sgmv" if name == "none" else name]
                use_lora = name != "none"
                for _ in range(3):
                    exe.replay(size, use_lora)
                ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
                ev[0].record()
                for _ in range(10):
                    exe.replay(size, use_lora)
                ev[1].record()
                ev[1].synchronize()
                times[name].append(ev[0].elapsed_time(ev[1]) / 10)
        row = {"batch": b, **{f"{n}_ms": statistics.median(v) for n, v in times.items()},
               "logits_max_abs_diff_sliced_vs_sgmv": diff, "logits_max_abs": scale}
        for n in ("sgmv", "dop", "dop_sliced"):
            row[f"{n}_lora_ms"] = row[f"{n}_ms"] - row["none_ms"]
        out["rows"].append(row)
        print(f"step b={b:2} none {row['none_ms']:.3f} sgmv {row['sgmv_ms']:.3f} dop {row['dop_ms']:.3f} "
              f"sliced {row['dop_sliced_ms']:.3f} ms  logits diff {diff:.2e} of {scale:.1f}", flush=True)
    out["qkv_calls"] = {n: dict(s.dop_sliced_calls) for n, s in slots_of.items()}
    return out


def write_md(res: dict) -> str:
    m = res["meta"]
    lines = [f"Measured on {m.get('gpu')} (driver {m.get('driver')}, CUDA {m.get('cuda')}, torch {m.get('torch')}, "
             f"triton {m.get('triton')}), fp16, {m.get('date')}, commit `{m.get('git_commit')}`; copy bandwidth "
             f"{res['hbm_bytes_per_s'] / 1e12:.2f} TB/s. `python3 gpu/dop/bench_slices.py`.", ""]
    ok = sum(r["ok"] for r in res["check"])
    lines += [f"Check: {ok} of {len(res['check'])} (candidate, shape, layout) sliced runs within 4u of the float64 "
              f"reference on every slice (largest error {max(max(r['rel_err']) for r in res['check']):.2e}).", ""]
    lines += ["| rank | phase | tokens | workload | SGMV x 3 us | Dop x 3 us | Dop sliced us | best / SGMV | "
              "roofline us | fraction of roofline |", "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in res["operator"]:
        lines.append(f"| {r['rank']} | {r['phase']} | {r['tokens']} | {r['workload']} | {r['sgmv_x3_us']:.2f} | "
                     f"{r.get('dop_x3_us', float('nan')):.2f} | {r.get('dop_sliced_us', float('nan')):.2f} | "
                     f"{r.get('speedup_best_over_sgmv', float('nan')):.2f}x | {r['roofline_us']:.2f} | "
                     f"{r.get('fraction_of_roofline', float('nan')):.3f} |")
    g = res["geomeans"]
    lines += ["", f"Geomean over decode batches 1-64 and the four workload types ({g['decode_scenarios']} scenarios): "
              f"Dop x 3 {g['decode_dop_x3']:.2f}x, Dop sliced {g['decode_dop_sliced']:.2f}x, "
              f"best {g['decode_best']:.2f}x "
              f"over SGMV x 3.", ""]
    st = res.get("steps")
    if st:
        lines += [f"Decode step, Llama-2-7B, CUDA graphs, {st['ctx']} tokens of context, 8 slots (ranks "
                  f"{st['ranks']}) on q, k, v, o:", "",
                  "| batch | no LoRA ms | sgmv ms | dop ms | dop sliced ms | LoRA ms sgmv / dop / sliced | "
                  "sliced / sgmv step | logits max abs diff (sliced vs sgmv) |",
                  "|---:|---:|---:|---:|---:|---|---:|---:|"]
        for r in st["rows"]:
            lines.append(f"| {r['batch']} | {r['none_ms']:.3f} | {r['sgmv_ms']:.3f} | {r['dop_ms']:.3f} | "
                         f"{r['dop_sliced_ms']:.3f} | {r['sgmv_lora_ms']:.3f} / {r['dop_lora_ms']:.3f} / "
                         f"{r['dop_sliced_lora_ms']:.3f} | {r['dop_sliced_ms'] / r['sgmv_ms']:.3f} | "
                         f"{r['logits_max_abs_diff_sliced_vs_sgmv']:.2e} (of {r['logits_max_abs']:.1f}) |")
    return "\n".join(lines) + "\n"


def geomeans(rows: list[dict]) -> dict:
    dec = [r for r in rows if r["phase"] == "decode" and "dop_x3_us" in r]

    def gm(key):
        vals = [r["sgmv_x3_us"] / r[key] for r in dec if r.get(key)]
        return math.exp(sum(map(math.log, vals)) / len(vals)) if vals else float("nan")

    best = [r["speedup_best_over_sgmv"] for r in dec]
    return {"decode_scenarios": len(dec), "decode_dop_x3": gm("dop_x3_us"), "decode_dop_sliced": gm("dop_sliced_us"),
            "decode_best": math.exp(sum(map(math.log, best)) / len(best)) if best else float("nan")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--table", default=str(DEFAULT_TABLE), help="Dop tuned table")
    ap.add_argument("--ctx", type=int, default=128, help="context tokens per sequence in the step part")
    ap.add_argument("--rounds", type=int, default=15, help="alternated timing rounds per batch in the step part")
    ap.add_argument("--no-steps", action="store_true", help="skip part 3")
    args = ap.parse_args()
    from gpu.check_engine import metadata
    from gpu.dop.measure import measure_hbm_bytes_per_s

    dev = "cuda"
    t0 = time.perf_counter()
    res: dict = {"meta": {**metadata(), "dtype": "fp16"}}
    res["hbm_bytes_per_s"] = measure_hbm_bytes_per_s()
    gen = torch.Generator(device=dev).manual_seed(20261202)
    res["check"] = check_sliced(dev, gen)
    if not all(r["ok"] for r in res["check"]):
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench_slices.json").write_text(json.dumps(res, indent=1))
        print("sliced check FAILED: nothing timed", flush=True)
        return 1
    disp = Dispatcher.from_file(args.table)
    res["operator"] = time_operator(disp, res["hbm_bytes_per_s"], dev, gen)
    res["geomeans"] = geomeans(res["operator"])
    if not args.no_steps:
        res["steps"] = time_steps(args, dev)
    res["seconds"] = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_slices.json").write_text(json.dumps(res, indent=1))
    md = write_md(res)
    (args.out / "bench_slices.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
