#!/usr/bin/env python3
"""Recovers the batch of every iteration of a recorded live run, as the twin's `StepBatch`.

    python3 scripts/live_batches.py traces/live/<run> --out steps.csv
    python3 scripts/live_batches.py traces/live/<run> [<run> ...] --out-dir DIR   # DIR/<run>.csv each

A live run (traces/live/<run>/, docs/live-run-format.md) keeps only aggregates per iteration. The
scheduler (gpu/engine/scheduler.py; gpu/engine/dlora.py for `scheduler: dlora`) is deterministic
given the order and times of its calls, so re-running it on the run's trace with the live clock
forced onto it reproduces every batch. Every pass is checked against what the run recorded and
the first disagreement stops the script (exit 1, naming the iteration, the field and both values;
nothing is written for that run): a silent mismatch would make the diagnostic lie.

Inputs: scenario.yaml (scheduler kind, workload), trace.csv and its catalogue (read with
gpu/engine/trace_io.py), run.json (`engine`: the configuration actually used, num_gpu_blocks
resolved; `loads`; `switches` and `scheduler` for dLoRA; `trace.sha256`, which must match the
trace), iterations.csv and requests.csv.

Forcing the clock. gpu/replay.py's loop: ingest the requests with `arrival_s <= now`; poll the
loader, `load_done` for each finished load; `start = now()`; `schedule(start)`; start the loads of
`plan.loads`; a pass that ordered a mode switch (dLoRA) performs it and loops; a pass that formed
no batch sleeps 0.2 ms and loops; otherwise run the step, `finish_step(plan, end)`.

* Iteration i (start S_i, duration D_i): the requests with `arrival_s <= S_i` are added (in
  arrival order, ties by request_id, as the live loop sorts them); every load whose live `done_s`
  is `<= S_i` is delivered, `load_done(adapter, done_s)` (`done_s` is the poll that saw the load
  finish, and a poll precedes its own pass); `plan = schedule(S_i)`; the plan is checked against
  row i (prefill_tokens, decode_seqs, num_seqs, distinct_adapters, preemptions, adapter_loads,
  mode); `finish_step(plan, S_i + D_i)` (dLoRA: then `record_iteration(plan, D_i)`); then the
  requests it admitted for the first time, those that sampled their first token and those that
  finished are checked against requests.csv (`first_scheduled_s` = S_i; `first_token_s`,
  `finish_s` = the end, within 2 ns of the printed S_i + D_i).
* Loads: the live loader is one FIFO worker, so run.json `loads[]` is in the order the scheduler
  ordered them; the k-th load the replayed scheduler orders is matched to the k-th live load and
  must be the same adapter. Each live load is attributed by its `ordered_s` (taken just after its
  pass's `schedule` returned) to the pass of iteration i when `S_i <= ordered_s <= S_i + D_i`,
  else to an idle pass in the gap before the next iteration; the replayed load must come from the
  same pass or gap.
* Passes that form no batch (no row in iterations.csv). An FCFS pass that forms no batch has no
  running request, so it schedules, preempts, admits and touches nothing; its only possible effect
  is ordering loads. The idle passes that matter are therefore exactly those whose loads run.json
  records in a gap, and their times are known: each is replayed at the `ordered_s` of the first
  gap load not yet accounted for, and must form no batch and order that load (any further loads it
  orders must be the gap's next ones). The many other idle passes of the live loop (one each
  0.2 ms or so while it waits) are no-ops and are not replayed. This replaces the guess "a pass
  right after the previous iteration's end and again at each arrival or load completion", which
  can order a load one idle pass earlier or later than the live loop did with nothing to check it
  against. dLoRA: a pass that ordered a mode switch is replayed at the switch's `start_s` (the
  pass's time) and must order that switch (op, adapter, preemptions); the switch lasts `seconds`:
  `switch_started(seconds)`, `switch_done(start_s + seconds)`; the next row's `switch_s` must be
  the sum of the switches before it. A dLoRA idle pass could also change the hysteresis of the
  credit priority without ordering anything; that none did is confirmed at the end against
  run.json `scheduler.final` (thresholds, speeds, credits, pass counters; a difference is printed
  as a warning).
* Arrivals read late. The live loop reads its clock for arrivals at the top of the loop, before
  the poll (and the tokenisation of the requests it adds), so an arrival a few microseconds before
  S_i may have been left for the next pass: request 133 of h200-v01-low-uniform-mixed arrived
  21 us before iteration 4211 started and was not in it. A pass at time t after the live loop's
  previous pass (or iteration end) at time `after` therefore first tries with every arrival up to
  t, and if the check fails, with only the first k of those in (after, t], k decreasing; the first
  k that passes is kept (the others are read by the next pass). For FCFS this is exact: one more
  arrival either adds a seq or a load to the plan (changing a checked count) or changes nothing
  at all (the request waits at the back of the queue, where it would be added next pass anyway).
  For dLoRA an arrival can also shift credits without changing the batch, so every k is tried and
  a pass where the accepted ones disagree on credits or priority is reported as a warning.

Output: one CSV row per iteration with the fields of the twin's `StepBatch`
(Sources/Twin/StepBatch.swift:24-55), computed as `Replica.summarise` computes them from the batch
it scheduled (Sources/Twin/Replica.swift:271-307), for each entry of n tokens after c already
computed (c = the request's `computed` at the pass = the seq's `start_pos`; known = prompt +
tokens generated so far):

* decode entry (Replica.swift:280): `generated > 0 and n == 1 and c == known - 1` (the scheduler's
  `ScheduledSeq.decode`): `decode_sequences` += 1, `decode_context_tokens` += c + 1 (the context
  includes the token being decoded), `decode_max_context` = max(., c + 1) (:281-283);
* every other entry is prefill (:285-288): `prefill_tokens` += n, `prefill_sequences` += 1,
  `prefill_continuations` += 1 when c > 0 (a later chunk of a chunked prompt; recomputation after a
  preemption restarts at c = 0 and is not one), `prefill_attention_pairs` += n * (c + (n + 1) / 2),
  written as the integer n * c + n * (n + 1) / 2 (exact: n (n + 1) is even), and
  `prefill_max_keys` = max(., c + n) (the most keys one chunk attends to);
* `sampling_sequences` += 1 when c + n == known (:290; the seq's `samples`);
* `segments` (:291-305): `adapter:tokens`, one per adapter in order of first appearance in the
  batch, tokens summed over all that adapter's entries (prefill and decode), joined by `;`;
  base-model entries have none; empty in merged mode (dLoRA), where no LoRA runs;
* `mode`: the row's mode (`unmerged`, or `merged` for a dLoRA merged iteration); `start_s`,
  `live_s`: the live start and measured duration (seconds, as in iterations.csv).

Exit status: 0 every run reconstructed exactly; 1 a mismatch; 2 a run refused (not a recorded run,
several replicas, a trace or configuration that is not the run's) or bad arguments. No torch.
"""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import hashlib
import io
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gpu.engine.config import DLoRAConfig, EngineConfig, parse_scheduler  # noqa: E402
from gpu.engine.dlora import DLoRAScheduler  # noqa: E402
from gpu.engine.records import IterationRecord  # noqa: E402
from gpu.engine.scheduler import AdapterInfo, Request, Scheduler, StepPlan  # noqa: E402
from gpu.engine.trace_io import read_catalogue, read_trace  # noqa: E402

COLUMNS = (
    "iteration",
    "start_s",
    "live_s",
    "mode",
    "prefill_tokens",
    "prefill_sequences",
    "prefill_continuations",
    "prefill_attention_pairs",
    "prefill_max_keys",
    "decode_sequences",
    "decode_context_tokens",
    "decode_max_context",
    "sampling_sequences",
    "segments",
)

# Row fields checked against iterations.csv, in the order they are compared.
CHECKED = ("prefill_tokens", "decode_seqs", "num_seqs", "distinct_adapters", "preemptions", "adapter_loads")


class Refused(ValueError):
    """A run this script does not reconstruct (not recorded, several replicas, a trace or a
    configuration that is not the run's)."""


class Mismatch(Exception):
    """The reconstructed pass disagrees with the live record."""

    def __init__(self, iteration: int, field: str, live: Any, rebuilt: Any, detail: str = "") -> None:
        self.iteration = iteration
        self.field = field
        self.live = live
        self.rebuilt = rebuilt
        msg = f"iteration {iteration}: {field}: live {live}, reconstructed {rebuilt}"
        super().__init__(msg + (f" ({detail})" if detail else ""))


# A row of iterations.csv is the engine's own IterationRecord (gpu/engine/records.py).
LiveRow = IterationRecord


@dataclass(frozen=True)
class LiveLoad:
    """One entry of run.json `loads`."""

    adapter: str
    ordered_s: float
    done_s: float


@dataclass(frozen=True)
class LiveSwitch:
    """One entry of run.json `switches` (dLoRA): the pass at `start_s` ordered it; the replica
    was unavailable for `seconds`."""

    op: str
    adapter: str
    start_s: float
    seconds: float
    preempted: int


@dataclass
class LiveRun:
    """What the reconstruction reads of a run folder."""

    name: str
    engine: EngineConfig
    adapters: dict[str, AdapterInfo]
    requests: list[Request]
    rows: list[LiveRow]
    loads: list[LiveLoad]
    dlora: DLoRAConfig | None = None  # None: FCFS
    switches: list[LiveSwitch] = field(default_factory=list)
    final: dict[str, Any] | None = None  # run.json scheduler.final (dLoRA)
    # requests.csv, by time in whole nanoseconds: request ids whose first scheduling, first token
    # and last token fall at that time (what the per-request check of `reconstruct` compares).
    first_scheduled: dict[int, set[int]] = field(default_factory=dict)
    first_token: dict[int, set[int]] = field(default_factory=dict)
    finished: dict[int, set[int]] = field(default_factory=dict)


@dataclass
class Reconstruction:
    """What `reconstruct` returns: the rows, the scheduler in its final state, and counts of the
    forced clock's choices."""

    batches: list[BatchRow]
    scheduler: Scheduler
    idle_passes: int = 0  # passes that formed no batch and ordered loads (run at the loads' ordered_s)
    deferred_arrivals: int = 0  # arrivals before a pass's time that the live pass had not read yet
    switches: int = 0  # dLoRA mode switches replayed (passes that formed no batch)
    # dLoRA: passes where an arrival read or not gives the same batch but different credits or
    # priority (the "all read" choice is kept), and the keys of run.json scheduler.final that the
    # final state does not reproduce. Both empty for FCFS and for every committed dLoRA run.
    undetermined: int = 0
    final_differs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BatchRow:
    """One output row: the twin's StepBatch of one live iteration."""

    iteration: int
    start_s: float
    live_s: float
    mode: str
    prefill_tokens: int
    prefill_sequences: int
    prefill_continuations: int
    prefill_attention_pairs: int
    prefill_max_keys: int
    decode_sequences: int
    decode_context_tokens: int
    decode_max_context: int
    sampling_sequences: int
    segments: tuple[tuple[str, int], ...]

    def csv_fields(self) -> list[str]:
        seg = "" if self.mode == "merged" else ";".join(f"{a}:{n}" for a, n in self.segments)
        return [
            str(self.iteration), f"{self.start_s:.9f}", f"{self.live_s:.9f}", self.mode,
            str(self.prefill_tokens), str(self.prefill_sequences), str(self.prefill_continuations),
            str(self.prefill_attention_pairs), str(self.prefill_max_keys), str(self.decode_sequences), str(self.decode_context_tokens),
            str(self.decode_max_context), str(self.sampling_sequences), seg,
        ]


# ------------------------------------------------------------------------------------ reading
def read_run(run_dir: str | Path) -> LiveRun:
    """Reads scenario.yaml (scheduler kind, workload), the trace and catalogue, run.json (engine
    as used, loads) and iterations.csv. Raises Refused for runs it cannot reconstruct."""
    import yaml

    d = Path(run_dir)
    scen_path = d / "scenario.yaml"
    doc = yaml.safe_load(scen_path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise Refused(f"{scen_path}: expected a mapping")
    dlora = parse_scheduler(doc.get("scheduler"), f"{scen_path}: scheduler")
    if doc.get("replicas", 1) != 1:
        raise Refused(f"{scen_path}: replicas {doc.get('replicas')}: only one replica is reconstructed")
    if not (d / "run.json").exists() or not (d / "iterations.csv").exists():
        raise Refused(f"{d}: no run.json or iterations.csv (not a recorded run)")
    meta = json.loads((d / "run.json").read_text(encoding="utf-8"))
    sdoc = meta.get("scheduler") or {}
    kind = sdoc.get("kind", "fcfs")
    if kind != ("fcfs" if dlora is None else "dlora"):
        raise Refused(f"{d}: run.json says scheduler {kind!r}, scenario.yaml {'fcfs' if dlora is None else 'dlora'}")
    if dlora is not None:
        for key, value in dataclasses.asdict(dlora).items():
            if key in sdoc and sdoc[key] != value:
                raise Refused(f"{d}: scheduler.{key}: scenario.yaml gives {value!r}, run.json {sdoc[key]!r}")
    # The engine actually used (num_gpu_blocks resolved); the scenario's keys must agree with it.
    engine = EngineConfig.from_mapping(meta["engine"], f"{d}/run.json: engine")
    scen_engine = doc.get("engine") or {}
    for key, value in scen_engine.items():
        if key in meta["engine"] and meta["engine"][key] != value:
            raise Refused(f"{d}: engine.{key}: scenario.yaml says {value!r}, run.json {meta['engine'][key]!r}")
    wl = doc["workload"]
    trace_path = scen_path.parent / str(wl["trace"])
    sha = (meta.get("trace") or {}).get("sha256")
    if sha is not None and hashlib.sha256(trace_path.read_bytes()).hexdigest() != sha:
        raise Refused(f"{trace_path}: SHA-256 differs from run.json's trace.sha256: not the trace of this run")
    adapters = read_catalogue(scen_path.parent / str(wl["catalogue"]))
    requests = read_trace(trace_path, adapters)
    rows: list[LiveRow] = []
    with open(d / "iterations.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if int(r["replica"]) != 0:
                raise Refused(f"{d}/iterations.csv: replica {r['replica']}: only one replica is reconstructed")
            rows.append(LiveRow(
                replica=0, iteration=int(r["iteration"]), start_s=float(r["start_s"]),
                duration_s=float(r["duration_s"]),
                prefill_tokens=int(r["prefill_tokens"]), decode_seqs=int(r["decode_seqs"]),
                num_seqs=int(r["num_seqs"]), distinct_adapters=int(r["distinct_adapters"]), mode=r["mode"],
                adapter_loads=int(r["adapter_loads"]), preemptions=int(r["preemptions"]),
                switch_s=float(r.get("switch_s") or 0.0),
            ))
    loads = [LiveLoad(str(x["adapter"]), float(x["ordered_s"]), float(x["done_s"])) for x in meta.get("loads", [])]
    switches = [LiveSwitch(str(x["op"]), str(x["adapter"]), float(x["start_s"]), float(x["seconds"]),
                           int(x["preempted"])) for x in meta.get("switches", [])]
    run = LiveRun(name=d.name, engine=engine, adapters=adapters, requests=requests, rows=rows, loads=loads,
                  dlora=dlora, switches=switches, final=(meta.get("scheduler") or {}).get("final"))
    with open(d / "requests.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            for key, table in (("first_scheduled_s", run.first_scheduled), ("first_token_s", run.first_token),
                               ("finish_s", run.finished)):
                if r[key].strip():
                    table.setdefault(_ns(float(r[key])), set()).add(int(r["request_id"]))
    return run


def _ns(t: float) -> int:
    return round(t * 1e9)


def _at(table: dict[int, set[int]], t: float, slack: int) -> set[int]:
    """The request ids of `table` within `slack` ns of time `t`."""
    k = _ns(t)
    out: set[int] = set()
    for x in range(k - slack, k + slack + 1):
        out |= table.get(x, set())
    return out


# ----------------------------------------------------------------------------- the StepBatch
def step_batch(plan: StepPlan, row: LiveRow, mode: str = "unmerged") -> BatchRow:
    """The twin's StepBatch of `plan` (Replica.summarise, Sources/Twin/Replica.swift)."""
    pt = ps = pc = pairs = pmax = ds = dctx = dmax = samp = 0
    seg: dict[str, int] = {}  # insertion order: first appearance in the batch
    for s in plan.seqs:
        n, c = s.num_tokens, s.start_pos
        if s.decode:  # generated > 0 and n == 1 and c == known - 1
            ds += 1
            dctx += c + 1
            dmax = max(dmax, c + 1)
        else:
            pt += n
            ps += 1
            if c > 0:
                pc += 1
            pairs += n * c + n * (n + 1) // 2  # n * (c + (n + 1) / 2), exact: n (n + 1) is even
            pmax = max(pmax, c + n)
        if s.samples:  # c + n == known
            samp += 1
        if s.adapter is not None:
            seg[s.adapter] = seg.get(s.adapter, 0) + n
    return BatchRow(
        iteration=row.iteration, start_s=row.start_s, live_s=row.duration_s, mode=mode,
        prefill_tokens=pt, prefill_sequences=ps, prefill_continuations=pc, prefill_attention_pairs=pairs,
        prefill_max_keys=pmax, decode_sequences=ds, decode_context_tokens=dctx, decode_max_context=dmax, sampling_sequences=samp,
        segments=() if mode == "merged" else tuple(seg.items()),
    )


# --------------------------------------------------------------------------- reconstruction
def _attribute(rows: list[LiveRow], loads: list[LiveLoad]) -> list[tuple[str, int]]:
    """For each live load: ("pass", i) when iteration i's pass ordered it, else ("gap", i) for
    an idle pass before iteration i (i = len(rows) after the last iteration)."""
    out: list[tuple[str, int]] = []
    i = 0
    for ld in loads:
        while i < len(rows) and ld.ordered_s > rows[i].start_s + rows[i].duration_s:
            i += 1
        if i < len(rows) and ld.ordered_s >= rows[i].start_s:
            out.append(("pass", i))
        else:
            out.append(("gap", i))
    return out


def _final_differences(sched: Scheduler, final: dict[str, Any] | None) -> list[str]:
    """dLoRA: the keys of run.json `scheduler.final` the replayed scheduler ends without. Speeds
    and credits come from the printed durations (9 decimals), so they match to a relative 1e-6;
    counters exactly. Idle passes after the last iteration, which are not replayed, could move a
    counter: a difference is a warning, the rows having been checked one by one."""
    if not isinstance(sched, DLoRAScheduler) or not final:
        return []
    out = []

    def close(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return a is b
        return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))

    for key in ("merge_ratio", "stay_ratio", "speed_merged", "speed_unmerged"):
        if key in final and not close(final[key], getattr(sched, key)):
            out.append(f"{key} {final[key]} vs {getattr(sched, key)}")
    for key in ("prioritised_passes", "drain_passes", "priority_unmerges", "empty_unmerges"):
        if key in final and final[key] != getattr(sched, key):
            out.append(f"{key} {final[key]} vs {getattr(sched, key)}")
    for a, v in (final.get("credit") or {}).items():
        if not close(v, sched.credit.get(a)):
            out.append(f"credit[{a}] {v} vs {sched.credit.get(a)}")
    return out


def _dlora_state(sched: Scheduler, plan: StepPlan) -> tuple:
    """What a dLoRA pass decides besides its batch (credits, priority, thresholds, counters)."""
    if not isinstance(sched, DLoRAScheduler):
        return ()
    return (tuple(sorted(sched.credit.items())), sched.prioritised, sched.merged, sched.merge_ratio,
            sched.stay_ratio, sched.prioritised_passes, sched.drain_passes, tuple(getattr(plan, "transfers", ())))


def reconstruct(run: LiveRun) -> Reconstruction:
    """Replays the scheduler on the live clock; one BatchRow per iteration. Raises Mismatch.

    Besides each row's counts, every iteration's requests are checked against requests.csv: those
    it admitted for the first time (`first_scheduled_s` = its start), those that sampled their
    first token and those that finished (`first_token_s`, `finish_s` = its end, S_i + D_i from the
    printed values, so within 2 ns of the printed end)."""
    order = sorted(run.requests, key=lambda r: (r.arrival_s, r.request_id))
    rows, loads = run.rows, run.loads
    where = _attribute(rows, loads)
    first_sched = Scheduler(run.engine, run.adapters) if run.dlora is None else \
        DLoRAScheduler(run.engine, run.adapters, run.dlora)
    switches = run.switches
    sw_gap = []  # the iteration each switch precedes
    for sw in switches:
        k = 0 if not sw_gap else sw_gap[-1]
        while k < len(rows) and rows[k].start_s <= sw.start_s:
            k += 1
        sw_gap.append(k)
    st = {"sched": first_sched, "switched": 0, "added": 0, "ordered": 0, "delivered": 0, "deferred": 0,
          "undetermined": 0}
    idle = 0

    def deliver(t: float, i: int) -> None:
        """The load completions the live loop had polled by `t` (a poll precedes its pass)."""
        j = st["delivered"]
        while j < len(loads) and loads[j].done_s <= t:
            if j >= st["ordered"]:
                raise Mismatch(i, "load completion", f"{loads[j].adapter} done at {loads[j].done_s:.9f} s",
                               "no such load ordered yet", f"live load #{j} ordered at {loads[j].ordered_s:.9f} s")
            st["sched"].load_done(loads[j].adapter, loads[j].done_s)
            j += 1
        st["delivered"] = j

    def take_loads(plan: StepPlan, i: int, kind: str) -> None:
        """Matches the plan's load orders to the next live loads: same adapter, same pass."""
        for lo in plan.loads:
            j = st["ordered"]
            if j >= len(loads):
                raise Mismatch(i, "load order", "none (run.json has no further load)", lo.adapter)
            if loads[j].adapter != lo.adapter:
                raise Mismatch(i, "load order", loads[j].adapter, lo.adapter, f"live load #{j}")
            if where[j] != (kind, i):
                live_where = f"{where[j][0]} {where[j][1]}"
                raise Mismatch(i, "load order", f"{lo.adapter} ordered by {live_where}", f"{lo.adapter} by {kind} {i}",
                               f"live load #{j} ordered at {loads[j].ordered_s:.9f} s")
            st["ordered"] = j + 1

    def run_pass(t: float, after: float, i: int, check) -> StepPlan:
        """One pass at `t`, the live loop's previous pass having been at `after`. The requests
        with `arrival_s <= after` are in; those in (after, t] are ambiguous (the live loop read
        its clock for arrivals somewhere in between). All of them are tried first, then fewer
        (the first k of them), and the first outcome that `check` accepts is kept. Adding one
        more arrival to a pass either adds a seq or a load to its plan (changing a checked
        count) or changes nothing at all (the request just waits at the back of the queue), so
        the accepted plan and the state after it are the same whichever k is accepted."""
        sched: Scheduler = st["sched"]
        k0 = st["added"]
        while k0 < len(order) and order[k0].arrival_s <= after:
            sched.add_request(order[k0], t)
            k0 += 1
        k1 = k0
        while k1 < len(order) and order[k1].arrival_s <= t:
            k1 += 1
        st["added"] = k0
        deliver(t, i)
        if k1 == k0:
            plan = sched.schedule(t)
            check(plan)
            return plan
        snapshot = copy.deepcopy(sched)
        first: Mismatch | None = None
        accepted: list[tuple[int, Scheduler, StepPlan]] = []
        for k in range(k1, k0 - 1, -1):
            trial = sched if k == k1 else copy.deepcopy(snapshot)
            for r in order[k0:k]:
                trial.add_request(copy.deepcopy(r), t)
            plan = trial.schedule(t)
            try:
                check(plan)
            except Mismatch as e:
                first = first or e
                continue
            accepted.append((k, trial, plan))
            if run.dlora is None:
                break  # FCFS: any accepted k gives the same plan and state (above)
        if not accepted:
            assert first is not None
            raise first
        k, trial, plan = accepted[0]
        if len({_dlora_state(x, p) for _, x, p in accepted}) > 1:
            st["undetermined"] += 1  # dLoRA: the batch is the same, credits or priority are not
        st["sched"], st["added"] = trial, k
        st["deferred"] += k1 - k
        return plan

    def check_idle(i: int, t: float):
        def check(plan: StepPlan) -> None:
            if getattr(plan, "switch", None) is not None:
                raise Mismatch(i, "idle pass", "no switch", plan.switch.label(), f"pass at {t:.9f} s")
            if plan.seqs:
                raise Mismatch(i, "idle pass", "no batch", f"a batch of {len(plan.seqs)} seqs",
                               f"pass at {t:.9f} s, before start_s {rows[i].start_s:.9f} s")
            j = st["ordered"]
            got = [lo.adapter for lo in plan.loads]
            want = [ld.adapter for ld, w in zip(loads[j:j + len(got)], where[j:j + len(got)], strict=True)
                    if w == ("gap", i)]
            if not got or got != want:
                raise Mismatch(i, "idle pass loads", loads[j].adapter, got or "none",
                               f"pass at {t:.9f} s, live load #{j}")
        return check

    def check_row(i: int):
        row = rows[i]

        def check(plan: StepPlan) -> None:
            if getattr(plan, "switch", None) is not None:
                raise Mismatch(i, "switch", "none", plan.switch.label(), f"pass at start_s {row.start_s:.9f} s")
            mode = getattr(plan, "mode", "unmerged")
            if mode != row.mode:
                raise Mismatch(i, "mode", row.mode, mode)
            rebuilt = {
                "prefill_tokens": plan.prefill_tokens,
                "decode_seqs": plan.decode_seqs,
                "num_seqs": len(plan.seqs),
                "distinct_adapters": len({s.adapter for s in plan.seqs if s.adapter is not None}),
                "preemptions": len(plan.preempted),
                "adapter_loads": len(plan.loads),
            }
            for key in CHECKED:
                if getattr(row, key) != rebuilt[key]:
                    raise Mismatch(i, key, getattr(row, key), rebuilt[key])
            j = st["ordered"]
            for m, (lo, ld) in enumerate(zip(plan.loads, loads[j:], strict=False)):
                if lo.adapter != ld.adapter:
                    raise Mismatch(i, "load order", ld.adapter, lo.adapter, f"live load #{j + m}")
        return check

    def check_switch(i: int, sw: LiveSwitch):
        def check(plan: StepPlan) -> None:
            got = getattr(plan, "switch", None)
            if got is None or got.kind != sw.op or got.adapter != sw.adapter:
                raise Mismatch(i, "switch", f"{sw.op} {sw.adapter}", got.label() if got else "none",
                               f"pass at {sw.start_s:.9f} s")
            if len(plan.preempted) != sw.preempted:
                raise Mismatch(i, "switch preemptions", sw.preempted, len(plan.preempted),
                               f"pass at {sw.start_s:.9f} s")
        return check

    def check_requests(i: int, plan: StepPlan) -> None:
        """After finish_step: the iteration's requests against requests.csv."""
        row = rows[i]
        reqs = st["sched"]._requests
        end = row.start_s + row.duration_s
        ids = [s.request_id for s in plan.seqs]
        checks = (
            ("first scheduled", run.first_scheduled, row.start_s, 0,
             {r for r in ids if reqs[r].first_scheduled_s == row.start_s}),
            ("first tokens", run.first_token, end, 2, {r for r in ids if reqs[r].first_token_s == end}),
            ("finished requests", run.finished, end, 2, {r for r in ids if reqs[r].finish_s == end}),
        )
        for name, table, t, slack, rebuilt in checks:
            live = _at(table, t, slack)
            if live != rebuilt:
                raise Mismatch(i, name, sorted(live), sorted(rebuilt))

    out: list[BatchRow] = []
    after = float("-inf")  # the live loop's previous pass (or iteration end)
    for i, row in enumerate(rows):
        switch_s = 0.0
        if row.iteration != i:
            raise Mismatch(i, "iteration", row.iteration, i, "iterations.csv rows out of order")
        # Idle passes before this iteration that ordered loads or (dLoRA) a mode switch, in time
        # order (see the module docstring).
        while True:
            t_load = loads[st["ordered"]].ordered_s \
                if st["ordered"] < len(loads) and where[st["ordered"]] == ("gap", i) else None
            t_sw = switches[st["switched"]].start_s \
                if st["switched"] < len(switches) and sw_gap[st["switched"]] == i else None
            if t_load is None and t_sw is None:
                break
            if t_sw is not None and (t_load is None or t_sw <= t_load):
                sw = switches[st["switched"]]
                run_pass(sw.start_s, after, i, check_switch(i, sw))
                sched = st["sched"]
                sched.switch_started(sw.seconds)
                after = sw.start_s + sw.seconds
                sched.switch_done(after)
                switch_s += sw.seconds
                st["switched"] += 1
                continue
            assert t_load is not None
            plan = run_pass(t_load, after, i, check_idle(i, t_load))
            take_loads(plan, i, "gap")
            idle += 1
            after = loads[st["ordered"] - 1].ordered_s
        if abs(switch_s - row.switch_s) > 2e-9:
            raise Mismatch(i, "switch_s", f"{row.switch_s:.9f}", f"{switch_s:.9f}", "run.json switches before it")
        plan = run_pass(row.start_s, after, i, check_row(i))
        take_loads(plan, i, "pass")
        out.append(step_batch(plan, row, getattr(plan, "mode", "unmerged")))
        after = row.start_s + row.duration_s
        st["sched"].finish_step(plan, after)
        if isinstance(st["sched"], DLoRAScheduler):
            st["sched"].record_iteration(plan, row.duration_s)
        check_requests(i, plan)
    return Reconstruction(batches=out, scheduler=st["sched"], idle_passes=idle, deferred_arrivals=st["deferred"],
                          switches=st["switched"], undetermined=st["undetermined"],
                          final_differs=_final_differences(st["sched"], run.final))


# ---------------------------------------------------------------------------------- writing
def write_csv(path: str | Path, batches: list[BatchRow]) -> None:
    """Writes the rows atomically (a temporary file in the same folder, then os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for b in batches:
        w.writerow(b.csv_fields())
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(buf.getvalue())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    """CLI. Exit 0: every run reconstructed exactly; 1: a mismatch (nothing written for that
    run); 2: a run refused or unreadable, or bad arguments."""
    ap = argparse.ArgumentParser(description="Recovers each live iteration's batch as the twin's StepBatch.")
    ap.add_argument("runs", nargs="+", help="run folders (traces/live/<run>)")
    ap.add_argument("--out", help="output CSV (one run)")
    ap.add_argument("--out-dir", help="output folder: <run>.csv per run")
    args = ap.parse_args(argv)
    if (args.out is None) == (args.out_dir is None):
        ap.error("give exactly one of --out and --out-dir")
    if args.out is not None and len(args.runs) != 1:
        ap.error("--out takes one run; use --out-dir for several")
    status = 0
    for run_dir in args.runs:
        name = Path(run_dir).name
        try:
            run = read_run(run_dir)
            rec = reconstruct(run)
        except Mismatch as e:
            print(f"{name}: MISMATCH: {e}", file=sys.stderr)
            status = 1
            continue
        except (Refused, ValueError, OSError, KeyError) as e:
            print(f"{name}: refused: {e}", file=sys.stderr)
            status = status or 2
            continue
        dest = Path(args.out) if args.out is not None else Path(args.out_dir) / f"{name}.csv"
        write_csv(dest, rec.batches)
        extra = f", {rec.switches} mode switches" if run.dlora is not None else ""
        print(f"{name}: {len(rec.batches)} iterations reconstructed exactly ({len(run.loads)} loads, "
              f"{rec.idle_passes} idle passes that ordered loads{extra}, {rec.deferred_arrivals} arrivals read one "
              f"pass after their time) -> {dest}")
        if rec.undetermined:
            print(f"{name}: warning: {rec.undetermined} passes where reading an arrival or not gives the same batch "
                  "but not the same dLoRA credits or priority (read kept)", file=sys.stderr)
        if rec.final_differs:
            print(f"{name}: warning: the final dLoRA state differs from run.json scheduler.final: "
                  + "; ".join(rec.final_differs), file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
