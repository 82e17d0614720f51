"""Decode steps timed the profiler's way and the live loop's way, on one machine, interleaved.

Three H200 leases priced their own live runs' decode steps of 1-24 sequences 2-13 % low with
decode tables timed back to back (`profile_steps.py --decode-rest 0`), while rest-1 profiles of
earlier leases priced the same scenarios within a few percent (docs/validation.md, "Two more
leases"). This script asks the question on calibration data alone: does a decode graph take
longer inside the replay loop than in the profiler's tight loop, and which condition of the loop
makes it so? For each graph size it drives a real `Scheduler` (synthetic requests, prompts of
``--context`` tokens, adapters round-robin when ``--lora`` names a kind) to a full decode batch and
then times the very same batch in rounds, every condition once a round, in a balanced order
(`round_orders`):

- ``tight``: `Executor.execute` back to back (how the decode tables are timed since 2ce38ba);
- ``rest1``: after each step an idle pause as long as the step took (the tables before 2ce38ba);
- ``gap``: a fixed idle pause (``--gap-ms``) between steps, about the replay loop's host time
  outside `execute`;
- ``loop``: the replay loop's iteration as gpu/replay.py runs it (loader poll, scheduling pass, the
  step, `finish_step`, the iteration record), with an idle `AdapterLoader` and the GPU monitor
  running; its ``execute`` time and its whole iteration (scheduling pass to sampled tokens, what
  iterations.csv records) are both kept.

Each measurement is a burst of ``--burst`` steps under one condition, of which the last
``--burst - 2`` are kept, so every kept step follows a step of its own condition. Output
(``--out DIR``): ``loop.csv`` (one row per condition, size and statistic), ``meta.json`` (GPU,
driver, CUDA, torch, triton, dtype, date, commit, arguments, GPU monitor summary) and ``loop.md``
(per size, the median of each condition and its ratio to ``tight``), all written at the end through
temporary names. A diagnostic: nothing from it enters a profile unless a profiler change is made
from it and measured as calibration.

    python3 gpu/diag_loop.py --out DIR [--sizes 1,4,8,12,16,24,32,48,64] [--context 512]
                             [--lora sgmv|torch|none] [--rounds 12] [--burst 6] [--gap-ms 0.3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONDITIONS = ("tight", "rest1", "gap", "loop")
# What loop.csv reports per condition: the step's execute() time; for `loop` also the iteration.
COLUMNS = "condition,seqs,context,lora,statistic,median_us,p10_us,p90_us,n"


def round_orders(rounds: int, conditions: Sequence[str] = CONDITIONS) -> list[list[str]]:
    """The order of the conditions in each round: every condition once per round, the rounds
    going through a Williams design (a Latin square in which each condition follows every other
    equally often; the mirrored rows join it for an odd number of conditions), so that neither a
    condition's place in the round nor the one before it favours any condition."""
    k = len(conditions)
    first, lo, hi = [0], 1, k - 1
    while len(first) < k:
        first.append(lo)
        lo += 1
        if len(first) < k:
            first.append(hi)
            hi -= 1
    square = [[(x + i) % k for x in first] for i in range(k)]
    if k % 2:
        square += [row[::-1] for row in square]
    return [[conditions[x] for x in square[r % len(square)]] for r in range(rounds)]


def kept(samples: Sequence[float], burst: int) -> list[float]:
    """The samples of one burst that are kept: all but the first two (the first follows a step of
    another condition; the second is dropped as a margin, for whatever the switch left behind)."""
    if len(samples) != burst:
        raise ValueError(f"a burst of {burst} steps gave {len(samples)} samples")
    return list(samples[2:])


def summary_rows(samples: dict[tuple[str, str], list[float]], seqs: int, context: int, lora: str) -> list[str]:
    """loop.csv rows from ``{(condition, statistic): [seconds]}``."""
    rows = []
    for (cond, stat), v in sorted(samples.items(), key=lambda kv: (CONDITIONS.index(kv[0][0]), kv[0][1])):
        us = [x * 1e6 for x in v]
        dec = statistics.quantiles(us, n=10, method="inclusive") if len(us) > 1 else us * 9  # p10 .. p90
        rows.append(f"{cond},{seqs},{context},{lora},{stat},{statistics.median(us):.1f},"
                    f"{dec[0]:.1f},{dec[-1]:.1f},{len(us)}")
    return rows


def table(rows: Sequence[str]) -> str:
    """loop.md: per graph size the median execute() time of each condition, its ratio to
    ``tight``, and the loop's whole iteration."""
    med: dict[int, dict[str, float]] = {}
    head = None
    for line in rows:
        f = line.split(",")
        if f[0] == "condition":
            continue
        cond, seqs, _ctx, lora, stat, m = f[0], int(f[1]), f[2], f[3], f[4], float(f[5])
        head = (f[2], lora)
        med.setdefault(seqs, {})[cond if stat == "execute" else f"{cond}_{stat}"] = m
    out = [f"Median execute() time per decode step, us (context {head[0] if head else '?'}, LoRA "
           f"{head[1] if head else '?'}); ratio to tight in brackets; loop iteration = scheduling pass to "
           f"sampled tokens, as iterations.csv records it.", "",
           "| seqs | tight | rest1 | gap | loop | loop iteration |", "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n in sorted(med):
        m = med[n]
        t = m.get("tight")

        def cell(key: str, m=m, t=t) -> str:
            if key not in m:
                return "-"
            return f"{m[key]:.0f} ({m[key] / t:.3f})" if t else f"{m[key]:.0f}"

        out.append(f"| {n} | {cell('tight')} | {cell('rest1')} | {cell('gap')} | {cell('loop')} | "
                   f"{cell('loop_iteration')} |")
    return "\n".join(out) + "\n"


class LoopBench:
    """One graph size: a Scheduler driven to a full decode batch on the engine of a
    profile_steps.Rig, then bursts of steps under each condition."""

    def __init__(self, rig, kind: str, seqs: int, context: int, lora: bool, steps_needed: int,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        from gpu.engine.config import EngineConfig
        from gpu.engine.loader import AdapterLoader
        from gpu.engine.scheduler import AdapterInfo, Request, Scheduler
        from gpu.profile_steps import TARGETS

        self.rig, self.ex, self.clock = rig, rig.ex[kind], clock
        names = [f"a{i}" for i in range(8)] if lora else []
        adapters = {a: AdapterInfo(a, 16, 32.0, TARGETS) for a in names}
        out_tokens = steps_needed + 8
        cfg = EngineConfig(max_num_seqs=seqs, max_num_batched_tokens=max(4096, seqs), num_gpu_blocks=rig.num_blocks,
                           max_model_len=context + out_tokens + 16, max_loras=8, max_cpu_loras=8)
        self.sched = Scheduler(cfg, adapters)
        self.loader = AdapterLoader(rig.slots[kind], {}, 8)  # idle, as in a run whose adapters are resident
        self.t0 = clock()
        self.rids: list[int] = []
        for i in range(seqs):
            rid = rig.new_request(self.ex, context)
            self.rids.append(rid)
            req = Request(rid, 0.0, names[i % len(names)] if names else None, context, out_tokens)
            if not self.sched.add_request(req, self.now()):
                raise RuntimeError(f"request of {context} + {out_tokens} tokens rejected (blocks {rig.num_blocks})")
        self.plan = None
        self.iteration = 0
        for _ in range(64):  # prefill until every sequence decodes
            self.loop_step()
            if self.plan is not None and len(self.plan.seqs) == seqs and all(s.decode for s in self.plan.seqs):
                break
        else:
            raise RuntimeError(f"{seqs} sequences never formed a decode batch")

    def now(self) -> float:
        return self.clock() - self.t0

    def loop_step(self) -> tuple[float, float]:
        """One iteration of gpu/replay.py's loop (no arrivals, loads finished at once: the
        adapters' weights are in their slots already); returns (execute s, iteration s)."""
        from gpu.engine.records import IterationRecord

        for rec in self.loader.poll():
            self.sched.load_done(rec.adapter, self.now())
        start = self.now()
        plan = self.sched.schedule(start)
        for lo in plan.loads:
            self.sched.load_done(lo.adapter, self.now())
        if not plan.seqs:
            return 0.0, 0.0
        t = self.clock()
        self.ex.execute(plan.seqs)
        t_exec = self.clock() - t
        end = self.now()
        self.sched.finish_step(plan, end)
        self.record = IterationRecord.from_plan(0, self.iteration, start, end - start, plan)
        self.iteration += 1
        self.plan = plan
        return t_exec, end - start

    def step(self) -> float:
        """The last loop plan's batch executed again, as the profiler does (the scheduler's state
        does not move)."""
        t = self.clock()
        self.ex.execute(self.plan.seqs)
        return self.clock() - t

    def burst(self, cond: str, n: int, gap_s: float) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"execute": []}
        if cond == "loop":
            out["iteration"] = []
            for _ in range(n):
                e, it = self.loop_step()
                out["execute"].append(e)
                out["iteration"].append(it)
            return out
        for _ in range(n):
            d = self.step()
            out["execute"].append(d)
            if cond == "rest1":
                time.sleep(d)
            elif cond == "gap":
                time.sleep(gap_s)
            elif cond != "tight":
                raise ValueError(f"unknown condition {cond!r}")
        return out

    def close(self) -> None:
        self.loader.close()
        for rid in self.rids:
            self.ex.drop(rid)


def measure(rig, kind: str, sizes: Sequence[int], context: int, lora: bool, rounds: int, burst: int,
            gap_s: float) -> list[str]:
    rows = [COLUMNS]
    orders = round_orders(rounds)
    loop_steps = rounds * burst  # the loop condition advances the scheduler once per step
    for n in sizes:
        bench = LoopBench(rig, kind, n, context, lora, steps_needed=loop_steps + 16)
        for _ in range(2):  # warm every condition once, untimed
            for cond in CONDITIONS:
                bench.burst(cond, 2, gap_s)
        samples: dict[tuple[str, str], list[float]] = {}
        for order in orders:
            for cond in order:
                got = bench.burst(cond, burst, gap_s)
                for stat, v in got.items():
                    samples.setdefault((cond, stat), []).extend(kept(v, burst))
        rows += summary_rows(samples, n, context, kind if lora else "none")
        bench.close()
        print(f"seqs {n}: " + ", ".join(
            f"{c} {statistics.median(samples[(c, 'execute')]) * 1e6:.0f} us" for c in CONDITIONS), flush=True)
    return rows


def warm(rig, kind: str) -> float:
    """profile_steps.Rig.warm for the one executor measured: a prompt without and with an
    adapter, then the CUDA graphs; returns the capture seconds."""
    ex = rig.ex[kind]
    for slot in (None, 0):
        seqs = rig.prefill_seqs(ex, [512], slot=slot)
        ex.execute(seqs)
        rig.drop(ex, seqs)
    return ex.capture_graphs() if ex.use_graphs else 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--model", default="llama-2-7b")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--sizes", default="1,4,8,12,16,24,32,48,64")
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--lora", default="sgmv", choices=("sgmv", "torch", "none"),
                    help="adapters (8, rank 16, round-robin) applied with this kind; none: no adapters")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--burst", type=int, default=6)
    ap.add_argument("--gap-ms", type=float, default=0.3)
    ap.add_argument("--memory-utilization", type=float, default=0.80)
    args = ap.parse_args(argv)
    if args.burst < 3:
        ap.error("--burst must be at least 3 (two steps of each burst are not kept)")
    sizes = [int(x) for x in args.sizes.split(",") if x]

    import torch

    from gpu.common.gpu_monitor import GpuMonitor
    from gpu.engine.executor import DEFAULT_GRAPH_SIZES
    from gpu.engine.records import write_text_atomic
    from gpu.profile_steps import Rig, versions

    t0 = time.perf_counter()
    graph_sizes = tuple(s for s in DEFAULT_GRAPH_SIZES if s <= 128)
    if any(n > max(graph_sizes) for n in sizes):
        ap.error(f"--sizes: at most {max(graph_sizes)} (the largest decode graph)")
    rig = Rig(args.model, args.device, graph_sizes, args.memory_utilization, dop_table=None)
    # no LoRA: the executor the profiler's decode tables use (its first kind)
    kind = rig.kinds[0] if args.lora == "none" else args.lora
    if args.lora != "none":
        rig.fill_slots(kind, [16] * 8, "loop", list(range(8)))
    capture_s = warm(rig, kind)
    monitor = GpuMonitor().start() if args.device == "cuda" else None
    t_mon = time.perf_counter()
    rows = measure(rig, kind, sizes, args.context, args.lora != "none", args.rounds, args.burst,
                   args.gap_ms / 1e3)
    gpu = None
    if monitor is not None:
        monitor.stop()
        gpu = monitor.summary(t_mon)
    meta = {**versions(), "dtype": str(rig.dtype).replace("torch.", ""),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": os.environ.get("GIT_COMMIT", ""), "command": "python3 " + " ".join(sys.argv),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "conditions": list(CONDITIONS), "graph_capture_s": capture_s,
            "seconds": round(time.perf_counter() - t0, 1), "gpu_monitor": gpu,
            "torch_threads": torch.get_num_threads()}
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "loop.csv", "\n".join(rows) + "\n")
    write_text_atomic(args.out / "meta.json", json.dumps(meta, indent=1, default=str) + "\n")
    md = table(rows)
    write_text_atomic(args.out / "loop.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
