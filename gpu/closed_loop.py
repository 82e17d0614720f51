"""Live-like steps as calibration: the engine's own loop on a synthetic closed-loop workload.

Four leases priced the decode steps of their own live runs from their own profiles, and the
steps of 9-24 sequences (CUDA graphs 12, 16 and 24) ran 6-9 % dearer than the twin prices the
same batches, those of graphs 8 and 32 within about 2 % (`scripts/step_errors.py`,
docs/validation.md "Lease a70f021-1"). The profile's decode tables time batches of equal
contexts (`step_decode`) or of set layouts (`step_decode_varied`) on blocks handed out in order,
and those the twin prices within a few percent; inside the live loop the same uniform batch takes
no longer than back to back (`gpu/diag_loop.py`). What the tables do not have is the live batches
themselves: contexts that differ and grow, requests that finish and are replaced, blocks reused
from the pool's free list, adapters mixed as the scheduler mixes them. This script makes such
batches without any validation trace, so that they are calibration data (docs/validation.md,
"Method"): for each target concurrency N it keeps N requests in the engine (a request that
finishes is replaced at once by a new one; prompt and output lengths log-normal, adapters drawn
uniformly, all from ``--seed``), runs the real `Scheduler` and `Executor` in gpu/replay.py's loop
(loader poll, scheduling pass, the step, `finish_step`; the adapters' weights are in their slots
already) and times every iteration as iterations.csv does, from the scheduling pass to the sampled
tokens. The first ``--warmup`` iterations of each N are run and not kept.

Output (``--out DIR``, absent or empty: a staging folder renamed to it at the end):

- ``steps.csv``: one row per kept iteration in the steps format of `scripts/live_batches.py` (the
  twin's StepBatch; ``live_s`` the measured iteration), plus ``concurrency`` and ``execute_s``
  (`Executor.execute` alone), so that ``loratwin profile price DIR/scenario.yaml DIR/steps.csv
  --profile P`` prices the very same batches and ``python3 scripts/step_errors.py DIR --profile P``
  compares them by graph size, skew and part;
- ``scenario.yaml``, ``trace.csv``, ``catalogue.csv``: the requests it made (arrival = when it
  was added) and the adapters, for the twin's pricing; the scenario names no profile
  (``cost_model: analytic``): give ``--profile``;
- ``meta.json``: GPU, driver, CUDA, torch, triton, dtype, date, commit, arguments, GPU monitor.

    python3 gpu/closed_loop.py --out DIR [--concurrency 1,2,4,...] [--lora sgmv|torch|dop|none]
                               [--adapters 8] [--rank 16] [--steps 300] [--warmup 60]
                               [--prompt-median 450] [--output-median 128] [--seed 0]
                               [--seeds 0,1] [--num-blocks N]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "scripts"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import live_batches  # noqa: E402  (scripts/: the twin's StepBatch of a plan, torch-free)

DEFAULT_CONCURRENCY = (1, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 64)
EXTRA_COLUMNS = ("concurrency", "execute_s", "seed")
PROMPT_RANGE = (16, 2048)  # clip of the log-normal draws, tokens
OUTPUT_RANGE = (8, 512)
SIGMA = 0.8  # log-normal shape of both lengths


@dataclass(frozen=True)
class Draw:
    """One synthetic request: prompt and output tokens and its adapter (None without LoRA)."""

    prompt_tokens: int
    output_tokens: int
    adapter: str | None


class Workload:
    """Seeded draws of requests: lengths log-normal (median and SIGMA, clipped to the ranges),
    adapters uniform over ``adapters`` (none when empty)."""

    def __init__(self, seed: int, prompt_median: int, output_median: int, adapters: Sequence[str]) -> None:
        if prompt_median < 1 or output_median < 1:
            raise ValueError("prompt and output medians must be at least 1 token")
        self.rng = random.Random(seed)
        self.prompt_median, self.output_median = prompt_median, output_median
        self.adapters = list(adapters)

    def _length(self, median: int, lo: int, hi: int) -> int:
        return max(lo, min(hi, round(self.rng.lognormvariate(math.log(median), SIGMA))))

    def draw(self) -> Draw:
        p = self._length(self.prompt_median, *PROMPT_RANGE)
        o = self._length(self.output_median, *OUTPUT_RANGE)
        a = self.rng.choice(self.adapters) if self.adapters else None
        return Draw(p, o, a)


@dataclass
class _Row:  # what live_batches.step_batch reads of an iterations.csv row
    iteration: int
    start_s: float
    duration_s: float


class ClosedLoop:
    """N requests kept in a Scheduler over an executor; `iterate` runs one pass of the replay
    loop, topping the requests up first. ``add`` gives a new request's tokens to the executor
    (returns its id) and ``drop`` takes a finished one's away: the engine's side, injected so that
    the loop itself runs without torch (tests)."""

    def __init__(self, cfg, adapters: dict, concurrency: int, workload: Workload,
                 execute: Callable[[list], None], add: Callable[[int], int], drop: Callable[[int], None],
                 clock: Callable[[], float] = time.perf_counter, t0: float | None = None) -> None:
        from gpu.engine.scheduler import Scheduler

        self.sched = Scheduler(cfg, adapters)
        self.n, self.workload = concurrency, workload
        self.execute, self.add, self.drop, self.clock = execute, add, drop, clock
        self.t0 = clock() if t0 is None else t0  # one origin for several loops: one ordered trace
        self.open: set[int] = set()
        self.requests: list = []  # every request made, in order
        self.iteration = 0

    def now(self) -> float:
        return self.clock() - self.t0

    def top_up(self) -> None:
        from gpu.engine.scheduler import Request

        while len(self.open) < self.n:
            d = self.workload.draw()
            rid = self.add(d.prompt_tokens)
            req = Request(rid, self.now(), d.adapter, d.prompt_tokens, d.output_tokens)
            if not self.sched.add_request(req, req.arrival_s):
                raise RuntimeError(f"request of {d.prompt_tokens} + {d.output_tokens} tokens rejected")
            self.open.add(rid)
            self.requests.append(req)

    def iterate(self) -> tuple[live_batches.BatchRow, float] | None:
        """One pass: top up, schedule (loads finish at once), execute, finish. Returns the
        iteration's StepBatch row (live_s = scheduling pass to sampled tokens) and the execute
        seconds, or None for a pass that formed no batch."""
        self.top_up()
        start = self.now()
        plan = self.sched.schedule(start)
        for lo in plan.loads:
            self.sched.load_done(lo.adapter, self.now())
        if not plan.seqs:
            return None
        t = self.clock()
        self.execute(plan.seqs)
        execute_s = self.clock() - t
        end = self.now()
        for r in self.sched.finish_step(plan, end):
            self.open.discard(r.request_id)
            self.drop(r.request_id)
        row = live_batches.step_batch(plan, _Row(self.iteration, start, end - start))
        self.iteration += 1
        return row, execute_s

    def close(self) -> None:
        for rid in sorted(self.open):
            self.drop(rid)
        self.open.clear()


def run_concurrency(loop: ClosedLoop, warmup: int, steps: int) -> list[tuple[live_batches.BatchRow, float]]:
    """``warmup`` iterations run and dropped, then ``steps`` kept (passes with no batch do not
    count; a loop that forms no batch 1000 times in a row is an error)."""
    kept: list[tuple[live_batches.BatchRow, float]] = []
    done = idle = 0
    while len(kept) < steps:
        got = loop.iterate()
        if got is None:
            idle += 1
            if idle >= 1000:
                raise RuntimeError(f"concurrency {loop.n}: the scheduler formed no batch 1000 times in a row")
            continue
        idle = 0
        done += 1
        if done > warmup:
            kept.append(got)
    return kept


def steps_csv(rows: Sequence[tuple]) -> str:
    """steps.csv: live_batches' columns, then concurrency, execute_s and the workload's seed (rows
    are (batch, execute_s, concurrency[, seed]); seed 0 where a row has none); iterations
    renumbered across the concurrencies and seeds."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(live_batches.COLUMNS) + list(EXTRA_COLUMNS))
    for i, (b, execute_s, n, *rest) in enumerate(rows):
        f = b.csv_fields()
        f[0] = str(i)
        w.writerow(f + [str(n), f"{execute_s:.9f}", str(rest[0] if rest else 0)])
    return buf.getvalue()


def trace_csv(requests: Sequence) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["request_id", "arrival_s", "adapter", "prompt_tokens", "output_tokens"])
    for r in requests:
        w.writerow([r.request_id, f"{r.arrival_s:.9f}", r.adapter or "", r.prompt_tokens, r.output_tokens])
    return buf.getvalue()


def catalogue_csv(names: Sequence[str], rank: int) -> str:
    lines = ["adapter,rank,alpha,target_modules"]
    lines += [f"{a},{rank},{2.0 * rank},q_proj;k_proj;v_proj;o_proj" for a in names]
    return "\n".join(lines) + "\n"


def scenario_yaml(model: str, gpu: str, kernel: str, max_model_len: int, blocks: int) -> str:
    return "\n".join([
        "# Made by gpu/closed_loop.py: the requests of a closed-loop calibration run, for `loratwin profile price",
        "# scenario.yaml steps.csv --profile DIR` (no profile named here: give --profile).",
        "name: closed-loop", "seed: 0", f"model: {model}", f"gpu: {gpu}", "cost_model: analytic",
        "engine:", "  max_num_seqs: 128", "  max_num_batched_tokens: 4096", "  chunked_prefill: true",
        "  block_size: 16", f"  num_gpu_blocks: {blocks}", f"  max_model_len: {max_model_len}",
        "  max_loras: 8", "  max_lora_rank: 64", "  max_cpu_loras: 8",
        "workload:", "  trace: trace.csv", "  catalogue: catalogue.csv",
        f"# LoRA kernel of the steps: {kernel}", ""])


def summary(rows: Sequence[tuple]) -> str:
    """A short table: per concurrency, the decode-only iterations and their median."""
    by: dict[int, list[float]] = {}
    for b, _e, n, *_ in rows:
        if b.prefill_tokens == 0:
            by.setdefault(n, []).append(b.live_s * 1e6)
    out = ["| concurrency | decode-only iterations | median us |", "| ---: | ---: | ---: |"]
    out += [f"| {n} | {len(v)} | {statistics.median(v):.0f} |" for n, v in sorted(by.items())]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--model", default="llama-2-7b")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--concurrency", default=",".join(map(str, DEFAULT_CONCURRENCY)))
    ap.add_argument("--lora", default="sgmv", choices=("sgmv", "torch", "dop", "none"))
    ap.add_argument("--dop-table", type=Path,
                    default=Path(os.environ.get("DOP_TABLE", str(ROOT / "gpu" / "dop" / "tuned_h200.json"))),
                    help="--lora dop: the Dop tuned table (env DOP_TABLE), as gpu/profile_steps.py reads it")
    ap.add_argument("--adapters", type=int, default=8, help="adapters (at most 8: all resident)")
    ap.add_argument("--rank", type=int, default=16, choices=(8, 16, 32, 64))
    ap.add_argument("--steps", type=int, default=300, help="iterations kept per concurrency")
    ap.add_argument("--warmup", type=int, default=60, help="iterations run first and not kept")
    ap.add_argument("--prompt-median", type=int, default=450)
    ap.add_argument("--output-median", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", default=None,
                    help="several workloads one after another, e.g. 0,1 (each over every concurrency; the "
                         "seed column of steps.csv tells them apart; overrides --seed)")
    ap.add_argument("--memory-utilization", type=float, default=0.80)
    ap.add_argument("--num-blocks", type=int, default=None,
                    help="KV blocks the scheduler may hand out (default: the whole pool); the validation "
                         "scenarios use 4096")
    args = ap.parse_args(argv)
    try:
        conc = [int(x) for x in args.concurrency.split(",") if x]
    except ValueError:
        ap.error(f"--concurrency: expected integers separated by commas, got {args.concurrency!r}")
    if not conc or min(conc) < 1:
        ap.error("--concurrency: at least one value, each at least 1")
    if not 1 <= args.adapters <= 8:
        ap.error("--adapters: 1 to 8 (every adapter keeps a GPU slot: no loads)")
    if args.out.exists() and any(args.out.iterdir()):
        ap.error(f"--out {args.out}: exists and is not empty (the folder is written whole, at the end)")
    try:
        seeds = [int(x) for x in args.seeds.split(",") if x] if args.seeds is not None else [args.seed]
    except ValueError:
        ap.error(f"--seeds: expected integers separated by commas, got {args.seeds!r}")
    if not seeds or len(set(seeds)) != len(seeds):
        ap.error("--seeds: at least one, each once")
    if args.num_blocks is not None and args.num_blocks < 1:
        ap.error("--num-blocks: at least 1")
    if args.steps < 1 or args.warmup < 0:
        ap.error("--steps must be at least 1 and --warmup at least 0")
    if args.lora == "dop" and not args.dop_table.is_file():
        ap.error(f"--lora dop: no tuned table at {args.dop_table} (--dop-table)")

    import torch

    from gpu.common.gpu_monitor import GpuMonitor
    from gpu.common.runtime_stats import RuntimeStats
    from gpu.diag_loop import warm
    from gpu.engine.config import EngineConfig
    from gpu.engine.executor import DEFAULT_GRAPH_SIZES
    from gpu.engine.records import write_text_atomic
    from gpu.engine.scheduler import AdapterInfo
    from gpu.profile_steps import TARGETS, Rig, versions

    t0 = time.perf_counter()
    graph_sizes = tuple(s for s in DEFAULT_GRAPH_SIZES if s <= 128)
    if max(conc) > max(graph_sizes):
        ap.error(f"--concurrency: at most {max(graph_sizes)} (the largest decode graph)")
    rig = Rig(args.model, args.device, graph_sizes, args.memory_utilization,
              dop_table=args.dop_table if args.lora == "dop" else None)
    if args.lora == "dop" and "dop" not in rig.kinds:
        ap.error(f"--lora dop: {rig.dop_note}")
    blocks = rig.num_blocks if args.num_blocks is None else args.num_blocks
    if blocks > rig.num_blocks:
        ap.error(f"--num-blocks {blocks}: the pool has {rig.num_blocks}")
    lora = args.lora != "none"
    kind = args.lora if lora else rig.kinds[0]
    names = [f"a{i}" for i in range(args.adapters)] if lora else []
    if lora:
        rig.fill_slots(kind, [args.rank] * 8, "closed", list(range(8)))
    capture_s = warm(rig, kind)
    ex = rig.ex[kind]
    infos = {a: AdapterInfo(a, args.rank, 2.0 * args.rank, TARGETS) for a in names}
    max_len = PROMPT_RANGE[1] + OUTPUT_RANGE[1] + 16
    monitor = GpuMonitor().start() if args.device == "cuda" else None
    runtime = RuntimeStats(args.device == "cuda", quiet_gc=True).start()  # as gpu/replay.py's loop
    t_mon = time.perf_counter()
    rows: list[tuple[live_batches.BatchRow, float, int, int]] = []
    requests: list = []
    for seed in seeds:
        workload = Workload(seed, args.prompt_median, args.output_median, names)
        for n in conc:
            cfg = EngineConfig(max_num_seqs=n, max_num_batched_tokens=4096, num_gpu_blocks=blocks,
                               max_model_len=max_len, max_loras=8, max_cpu_loras=8)
            loop = ClosedLoop(cfg, infos, n, workload, ex.execute, lambda length: rig.new_request(ex, length),
                              ex.drop, t0=t_mon)
            kept = run_concurrency(loop, args.warmup, args.steps)
            loop.close()
            rows += [(b, e, n, seed) for b, e in kept]
            requests += loop.requests
            dec = [b.live_s for b, _ in kept if b.prefill_tokens == 0]
            print(f"seed {seed} concurrency {n}: {len(kept)} iterations, {len(dec)} decode-only"
                  + (f", median {statistics.median(dec) * 1e6:.0f} us" if dec else ""), flush=True)
    runtime_doc = runtime.stop()
    gpu = None
    if monitor is not None:
        monitor.stop()
        gpu = monitor.summary(t_mon)
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    meta = {**versions(), "dtype": str(rig.dtype).replace("torch.", ""),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": os.environ.get("GIT_COMMIT", ""), "command": "python3 " + " ".join(sys.argv),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "kernel": kind if lora else "none", "graph_sizes": list(graph_sizes), "graph_capture_s": capture_s,
            "dop": ({"table": str(args.dop_table), "note": rig.dop_note,
                     "slices": rig.slots["dop"].dop_slices} if kind == "dop" else None),
            "num_blocks": blocks, "pool_blocks": rig.num_blocks, "seconds": round(time.perf_counter() - t0, 1),
            "gpu_monitor": gpu, "runtime": runtime_doc, "iterations": len(rows)}
    # Everything into a sibling folder first, renamed to --out at the end: a failure leaves no
    # half-written folder behind.
    args.out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{args.out.name}.", dir=args.out.parent))
    stage.chmod(0o755)  # mkdtemp's 0700 would stay on --out
    gpu_key = "h200" if "H200" in name else "h100"
    try:
        write_text_atomic(stage / "trace.csv", trace_csv(requests))
        write_text_atomic(stage / "catalogue.csv", catalogue_csv(names, args.rank))
        write_text_atomic(stage / "scenario.yaml", scenario_yaml(args.model, gpu_key, meta["kernel"], max_len,
                                                                    blocks))
        write_text_atomic(stage / "meta.json", json.dumps(meta, indent=1, default=str) + "\n")
        write_text_atomic(stage / "steps.csv", steps_csv(rows))
        if args.out.exists():
            args.out.rmdir()  # empty (checked above)
        os.replace(stage, args.out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    md = summary(rows)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
