"""The engine's decode step without LoRA under several settings of its module constants, timed in
one process, the settings alternating round by round.

``gpu/bench_engine.py`` times one setting a process (about 100 s each, with LoRA, prefill, the
transformers baseline and the profiles). Choosing between candidate settings needs them timed
side by side: this loads the random weights once, then for each round and each variant sets the
variant's constants, captures the decode CUDA graphs of the batches afresh, replays each batch
(median of ``--iters`` replays after warm-up, CUDA events), and puts the constants back. The
variant ``default`` (the engine as committed) comes first in every round. Every variant's logits
at every batch are compared with the default's (relative L2 difference; settings that only move
data, such as an L2 prefetch, give 0, those that change a kernel's summation order a little more;
over ``--max-diff`` the variant is marked ``DIFFERS`` and its times never count as a pick).

A variant is ``NAME:SETTING;SETTING...`` with each SETTING ``attention.ATTR=VALUE`` or
``model.ATTR=VALUE`` (gpu/engine/attention.py, gpu/engine/model.py; the attribute must exist;
VALUE a Python literal: ``True``, ``16``, ``"evict_first"``, ``None``), for example
``rope:model.DECODE_FUSED_ROPE_MAX_ROWS=64`` or ``t16:attention.DECODE_TILE_LARGE=16``.

Usage (GPU machine): python3 gpu/bench_decode_variants.py --out DIR [--batches 1,8,16,32,64]
    [--rounds 3] [--rotate] [--ctx 128] [--profile-batch 32] --variant NAME:SETTINGS ...
Writes DIR/variants.json (metadata, copy bandwidth, the weight roofline, every timing and logits
difference, the per-kernel device time of each variant's graph at ``--profile-batch``),
DIR/variants.csv (one row per round, variant and batch) and DIR/variants.md (median over rounds,
ms and % of the weight roofline), each written whole or not at all, and prints the table last.
"""

from __future__ import annotations

import argparse
import ast
import gc
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODULES = ("attention", "model")


@dataclass
class Variant:
    name: str
    settings: list[tuple[str, str, object]] = field(default_factory=list)  # (module, attribute, value)

    def spec(self) -> str:
        return ";".join(f"{m}.{a}={v!r}" for m, a, v in self.settings)


def parse_variant(text: str, modules: dict) -> Variant:
    """``NAME:mod.ATTR=VALUE;...`` -> Variant; ValueError naming the variant and the setting."""
    name, _, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise ValueError(f"variant {text!r}: expected NAME:module.ATTR=VALUE;...")
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"variant {text!r}: the name {name!r} must be letters, digits, '-' or '_'")
    v = Variant(name)
    for setting in (s.strip() for s in rest.split(";")):
        if not setting:
            continue
        lhs, eq, value = setting.partition("=")
        mod, dot, attr = lhs.strip().partition(".")
        if not eq or not dot:
            raise ValueError(f"variant {name}: setting {setting!r} is not module.ATTR=VALUE")
        if mod not in modules:
            raise ValueError(f"variant {name}: setting {setting!r}: module {mod!r} is not one of {', '.join(MODULES)}")
        if not hasattr(modules[mod], attr):
            raise ValueError(f"variant {name}: setting {setting!r}: gpu/engine/{mod}.py has no {attr}")
        try:
            val = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError) as e:
            raise ValueError(f"variant {name}: setting {setting!r}: {value.strip()!r} is not a Python literal") from e
        v.settings.append((mod, attr, val))
    return v


class applied:
    """Context manager: a variant's settings in place, the old values back afterwards."""

    def __init__(self, variant: Variant, modules: dict) -> None:
        self.variant, self.modules, self.saved = variant, modules, []

    def __enter__(self) -> None:
        for mod, attr, val in self.variant.settings:
            self.saved.append((mod, attr, getattr(self.modules[mod], attr)))
            setattr(self.modules[mod], attr, val)

    def __exit__(self, *exc) -> None:
        for mod, attr, val in reversed(self.saved):
            setattr(self.modules[mod], attr, val)
        self.saved.clear()


def rotated(items: list, k: int) -> list:
    """``items`` started ``k`` places on (wrapping round)."""
    k %= max(len(items), 1)
    return items[k:] + items[:k]


def summarize(rows: list[dict], variants: list[str], batches: list[int], roof_ms: float) -> dict:
    """variant -> batch -> {step_ms (median over rounds), pct, max_rel_diff, ok}."""
    out: dict = {}
    for v in variants:
        out[v] = {}
        for b in batches:
            mine = [r for r in rows if r["variant"] == v and r["batch"] == b and r.get("step_ms") is not None]
            if not mine:
                out[v][b] = {"step_ms": None, "pct_weight_roofline": None, "max_rel_diff": None, "ok": False}
                continue
            ms = statistics.median(r["step_ms"] for r in mine)
            diff = max(r["rel_diff_vs_default"] for r in mine)
            out[v][b] = {"step_ms": ms, "pct_weight_roofline": 100 * roof_ms / ms, "max_rel_diff": diff,
                         "ok": all(r["ok"] for r in mine), "rounds": len(mine)}
    return out


def table(summary: dict, batches: list[int], roof_ms: float, head: str) -> str:
    lines = [head, "", f"weight roofline {roof_ms:.3f} ms; step ms (% of it), median over rounds; "
             "DIFFERS: logits off the default's by more than --max-diff", "",
             "| variant | " + " | ".join(f"batch {b}" for b in batches) + " |",
             "| --- | " + " | ".join("---:" for _ in batches) + " |"]
    for v, per in summary.items():
        cells = []
        for b in batches:
            s = per[b]
            if s["step_ms"] is None:
                cells.append("error")
            else:
                cells.append(f"{s['step_ms']:.3f} ({s['pct_weight_roofline']:.1f} %)"
                             + ("" if s["ok"] else " DIFFERS"))
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="llama-2-7b")
    ap.add_argument("--ctx", type=int, default=128, help="context tokens per sequence before the step's own")
    ap.add_argument("--batches", default="1,8,16,32,64")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--max-diff", type=float, default=2e-2, help="largest relative L2 logits difference")
    ap.add_argument("--profile-batch", type=int, default=None,
                    help="per-kernel device time of each variant's graph at this batch (torch.profiler)")
    ap.add_argument("--rotate", action="store_true",
                    help="rotate the variants' order by one each round after the first (the first always starts "
                         "with default, whose logits the others are compared with)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:SETTINGS")
    args = ap.parse_args(argv)
    batches = sorted({int(b) for b in args.batches.split(",") if b.strip()})
    if not batches or batches[0] < 1:
        ap.error("--batches takes positive batch sizes")
    if args.rounds < 1 or args.iters < 1:
        ap.error("--rounds and --iters take counts >= 1")

    import torch

    from gpu.bench_engine import cuda_time_ms, kernel_table, measure_ceilings
    from gpu.check_engine import metadata
    from gpu.common.results import write_rows
    from gpu.engine import attention
    from gpu.engine import model as engine_model
    from gpu.engine.executor import Executor
    from gpu.engine.executor import StepSeq as Seq
    from gpu.engine.kv_cache import PagedKVCache
    from gpu.engine.records import write_text_atomic
    from gpu.engine.weights import PRESETS, random_weights

    modules = {"attention": attention, "model": engine_model}
    if args.model not in PRESETS:
        ap.error(f"--model {args.model!r}: one of {', '.join(sorted(PRESETS))}")
    try:
        variants = [Variant("default")] + [parse_variant(t, modules) for t in args.variant]
    except ValueError as e:
        ap.error(str(e))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        ap.error(f"variant names repeat: {', '.join(names)}")
    if not torch.cuda.is_available():
        print("bench_decode_variants: no CUDA device", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    meta = metadata()
    meta["git_commit"] = os.environ.get("GIT_COMMIT")
    ceilings = measure_ceilings()
    cfg = PRESETS[args.model]
    bw = ceilings["hbm_bytes_per_s"]
    roof_ms = cfg.weight_bytes_read_per_step() / bw * 1e3
    weights = random_weights(cfg, torch.float16, "cuda", seed=0)
    bs = 16
    per_seq = -(-(args.ctx + 1) // bs)
    max_b = batches[-1]
    kv = PagedKVCache(cfg, num_blocks=max_b * per_seq + 8, block_size=bs, dtype=torch.float16, device="cuda")
    for t in kv.k + kv.v:  # never time on zeros
        t.normal_()
    model = engine_model.LlamaModel(cfg, weights, kv, None)
    gen = torch.Generator().manual_seed(1)
    prompts = [torch.randint(0, cfg.vocab_size, (args.ctx + 1,), generator=gen).tolist() for _ in range(max_b)]
    rows: list[dict] = []
    reference: dict[int, torch.Tensor] = {}
    profiles: dict[str, dict] = {}
    for rnd in range(args.rounds):
        for v in rotated(variants, rnd if args.rotate else 0):
            with applied(v, modules):
                ex = None
                try:
                    ex = Executor(model, block_size=bs, max_model_len=4096, use_graphs=True,
                                  graph_sizes=tuple(batches), max_num_seqs=max_b, token_graph_sizes=())
                    capture_s = ex.capture_graphs()
                    for b in batches:
                        seqs = []
                        for i in range(b):
                            ex.tokens[i] = list(prompts[i])
                            seqs.append(Seq(i, None, args.ctx, 1, list(range(i * per_seq, (i + 1) * per_seq))))
                        size = ex.bucket(b)
                        ex._fill_static(seqs, size)
                        t = cuda_time_ms(lambda ex=ex, size=size: ex.replay(size, False), warmup=5, iters=args.iters)
                        logits = ex.replay(size, False)[0][:b].float()
                        torch.cuda.synchronize()
                        if v.name == "default" and b not in reference:
                            reference[b] = logits.clone()
                        ref = reference[b]
                        diff = float((logits - ref).norm() / ref.norm())
                        ok = bool(torch.isfinite(logits).all()) and diff <= args.max_diff
                        rows.append({"round": rnd, "variant": v.name, "batch": b, "step_ms": statistics.median(t),
                                     "step_ms_min": min(t), "capture_s": capture_s, "rel_diff_vs_default": diff,
                                     "ok": ok})
                        print(f"round {rnd} {v.name:>16} b={b:3d} {statistics.median(t):7.3f} ms "
                              f"({100 * roof_ms / statistics.median(t):5.1f} %) diff {diff:.1e}"
                              + ("" if ok else " DIFFERS"), flush=True)
                        if rnd == 0 and args.profile_batch == b:
                            from torch.profiler import ProfilerActivity, profile

                            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                                for _ in range(5):
                                    ex.replay(size, False)
                                torch.cuda.synchronize()
                            profiles[v.name] = kernel_table(prof, 5)
                except Exception as e:  # noqa: BLE001 (a variant that fails is reported, the others go on)
                    import traceback

                    traceback.print_exc()
                    rows.append({"round": rnd, "variant": v.name, "batch": None, "step_ms": None,
                                 "error": f"{type(e).__name__}: {e}", "ok": False})
                finally:
                    del ex
                    gc.collect()
                    torch.cuda.empty_cache()
    summary = summarize(rows, names, batches, roof_ms)
    res = {"meta": meta, "model": cfg.to_dict(), "dtype": "float16", "ctx": args.ctx, "batches": batches,
           "rounds": args.rounds, "iters": args.iters, "max_diff": args.max_diff, "ceilings": ceilings,
           "weight_roofline_ms": roof_ms, "variants": {v.name: v.spec() for v in variants},
           "rows": rows, "summary": summary, "profiles": profiles,
           "seconds": time.perf_counter() - t_start}
    head = (f"# Decode step variants: {meta.get('gpu')}, driver {meta.get('driver')}, CUDA {meta.get('cuda')}, "
            f"torch {meta.get('torch')}, triton {meta.get('triton')}, fp16, {meta.get('date')}, "
            f"commit {meta.get('git_commit')}; {args.model}, {args.ctx} + 1 tokens of context, no LoRA")
    md = table(summary, batches, roof_ms, head) + "\n" + "\n".join(
        f"- `{v.name}`: {v.spec() or 'the engine as committed'}" for v in variants) + "\n"
    fields = ["round", "variant", "batch", "step_ms", "step_ms_min", "capture_s", "rel_diff_vs_default", "ok", "error"]
    write_rows(out, "variants", fields, rows, res)  # variants.csv and variants.json, each written whole
    write_text_atomic(out / "variants.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
