"""A virtual-clock driver: replicas of `Scheduler` on one event queue (docs/engine-model.md,
"Events and their order" and "Several replicas").

Step and load durations come from plug-in functions; `LinearCostModel` is the fixed model the
conformance test uses. Run as `python3 -m engine.virtual SCENARIO --batch-log FILE` (with `gpu/`
on PYTHONPATH) to replay a scenario file.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import DLoRAConfig, EngineConfig, parse_scheduler
from .dlora import DLoRAPlan, DLoRAScheduler
from .records import IterationRecord, write_iterations_csv, write_requests_csv, write_text_atomic
from .scheduler import AdapterInfo, LoadOrder, Request, Scheduler, StepPlan

StepSeconds = Callable[[StepPlan], float]
LoadSeconds = Callable[[AdapterInfo, bool], float]
SwitchSeconds = Callable[[AdapterInfo, bool], float]  # (adapter, merging) -> seconds

# Event kinds, in the order events at the same time are handled.
ARRIVAL, LOAD_DONE, MODE_SWITCH_DONE, ITERATION_END, PASS = range(5)


@dataclass(frozen=True)
class LinearCostModel:
    """The conformance cost model (docs/engine-model.md, "The linear cost model").

    step = base_s + per_prefill_token_s * prefill_tokens + per_decode_seq_s * decode_seqs,
    load = host_to_gpu_s, or disk_to_host_s + host_to_gpu_s from disk; a merge or unmerge
    (docs/schedulers.md, `switch_cost: model`) takes `switch_s` (optional key, default 0.02).
    Seconds throughout.
    """

    base_s: float
    per_prefill_token_s: float
    per_decode_seq_s: float
    host_to_gpu_s: float
    disk_to_host_s: float
    switch_s: float = 0.02

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any], where: str = "cost_model") -> LinearCostModel:
        """Parses `{kind: linear, base_s: ..., ...}`; ValueError naming the key."""
        if not isinstance(d, Mapping):
            raise ValueError(f"{where}: expected a mapping")
        if d.get("kind") != "linear":
            raise ValueError(f"{where}.kind: expected 'linear', found {d.get('kind')!r}")
        names = ("base_s", "per_prefill_token_s", "per_decode_seq_s", "host_to_gpu_s", "disk_to_host_s")
        for key in d:
            if key != "kind" and key not in names and key != "switch_s":
                raise ValueError(f"{where}.{key}: unknown key")
        values: dict[str, float] = {}
        for name in names + (("switch_s",) if "switch_s" in d else ()):
            v = d.get(name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"{where}.{name}: expected a number >= 0, found {v!r}")
            values[name] = float(v)
        return cls(**values)

    def step_seconds(self, plan: StepPlan) -> float:
        """Duration of the iteration `plan`, evaluated left to right as written."""
        return self.base_s + self.per_prefill_token_s * plan.prefill_tokens + self.per_decode_seq_s * plan.decode_seqs

    def load_seconds(self, adapter: AdapterInfo, from_disk: bool) -> float:
        """Duration of one adapter load."""
        if from_disk:
            return self.disk_to_host_s + self.host_to_gpu_s
        return self.host_to_gpu_s

    def switch_seconds(self, adapter: AdapterInfo, merging: bool) -> float:
        """Duration of a merge or unmerge of `adapter`: `switch_s`."""
        return self.switch_s


@dataclass
class BatchLogEntry:
    """One line of the batch log: one iteration of one replica, or (`iteration` -1, empty
    `batch`) a pass that formed no batch but started loads, or (`dlora`) a pass that started a
    mode switch (`switch`: `merge a3` or `unmerge a3`; the key is absent on other lines)."""

    replica: int
    iteration: int
    start_s: float
    batch: list[tuple[int, int]]
    loads: list[str]
    preempted: list[int]
    switch: str | None = None

    def to_json(self) -> str:
        """The JSON line, `start_s` with 9 decimal places."""
        batch = ", ".join(f"[{rid}, {n}]" for rid, n in self.batch)
        switch = "" if self.switch is None else f', "switch": {json.dumps(self.switch)}'
        return (
            f'{{"replica": {self.replica}, "iteration": {self.iteration}, '
            f'"start_s": {self.start_s:.9f}, "batch": [{batch}], '
            f'"loads": {json.dumps(self.loads)}, "preempted": {json.dumps(self.preempted)}{switch}}}'
        )


@dataclass
class VirtualResult:
    """What a virtual run produced: requests in trace order, iterations and the batch log in
    order of start time then replica, and every load started as (start, replica, order,
    finish), including those of passes with an empty batch."""

    requests: list[Request]
    iterations: list[IterationRecord]
    batch_log: list[BatchLogEntry]
    loads: list[tuple[float, int, LoadOrder, float]]
    end_s: float
    schedulers: list[Scheduler] = field(default_factory=list)  # one per replica, final state
    switches: list[tuple[float, int, str, float]] = field(default_factory=list)  # (start, replica, label, end)


class _Replica:
    def __init__(self, index: int, scheduler: Scheduler) -> None:
        self.index = index
        self.scheduler = scheduler
        self.busy = False
        self.pass_pending = False
        self.loader_free_at = 0.0
        self.iterations = 0
        self.plan: StepPlan | None = None
        self.duration = 0.0
        self.switching = False


def run_virtual(
    config: EngineConfig,
    adapters: Mapping[str, AdapterInfo],
    requests: Iterable[Request],
    step_seconds: StepSeconds,
    load_seconds: LoadSeconds,
    replicas: int = 1,
    placement: Mapping[str, Sequence[int]] | None = None,
    batch_log: str | Path | None = None,
    dlora: DLoRAConfig | None = None,
    switch_seconds: SwitchSeconds | None = None,
    max_events: int | None = None,
) -> VirtualResult:
    """Replays `requests` on `replicas` replicas in simulated time.

    `placement` maps an adapter to the replicas that host it (default: all); requests of the
    base model (adapter None) may go to any replica. Writes the batch log to `batch_log` when
    given. The `Request` objects are updated in place and returned in input order.

    With `dlora` each replica runs `DLoRAScheduler` (docs/schedulers.md); a merge or unmerge takes
    `dlora.switch_seconds`, or, when that is None (`switch_cost: model`), `switch_seconds(adapter,
    merging)`. `max_events` bounds the events handled (RuntimeError beyond; a guard for tests: a
    `dlora` replica with `stay_ratio > merge_ratio` may merge and unmerge forever).
    """
    if dlora is not None and dlora.switch_seconds is None and switch_seconds is None:
        raise ValueError("scheduler.switch_cost: model needs the cost model's switch_seconds")
    if replicas < 1:
        raise ValueError(f"replicas: expected at least 1, found {replicas}")
    hosts: dict[str | None, list[int]] = {None: list(range(replicas))}
    for name in adapters:
        chosen = list(range(replicas)) if placement is None else list(placement.get(name, []))
        for r in chosen:
            if not 0 <= r < replicas:
                raise ValueError(f"placement.{name}: replica {r} out of range 0..{replicas - 1}")
        hosts[name] = sorted(set(chosen))
    reqs = list(requests)
    if dlora is None:
        reps = [_Replica(k, Scheduler(config, dict(adapters))) for k in range(replicas)]
    else:
        reps = [_Replica(k, DLoRAScheduler(config, dict(adapters), dlora)) for k in range(replicas)]

    events: list[tuple[float, int, int, Any]] = []
    counter = 0

    def push(time: float, kind: int, payload: Any) -> None:
        nonlocal counter
        heapq.heappush(events, (time, kind, counter, payload))
        counter += 1

    def ask_pass(rep: _Replica, now: float) -> None:
        if not rep.busy and not rep.pass_pending and not rep.switching:
            rep.pass_pending = True
            push(now, PASS, rep)

    # Arrivals in order of arrival time, ties in trace order.
    for req in sorted(reqs, key=lambda r: r.arrival_s):
        if req.adapter is not None and not hosts.get(req.adapter):
            raise ValueError(f"request {req.request_id}: adapter {req.adapter!r} is hosted nowhere")
        push(req.arrival_s, ARRIVAL, req)

    log: list[BatchLogEntry] = []
    load_log: list[tuple[float, int, LoadOrder, float]] = []
    iterations: list[IterationRecord] = []
    switch_log: list[tuple[float, int, str, float]] = []
    now = 0.0
    handled = 0
    while events:
        now, kind, _, payload = heapq.heappop(events)
        handled += 1
        if max_events is not None and handled > max_events:
            raise RuntimeError(f"run_virtual: more than {max_events} events (at {now:.9f} s)")
        if kind == ARRIVAL:
            req = payload
            candidates = hosts[req.adapter]
            rep = min((reps[k] for k in candidates), key=lambda x: (x.scheduler.queue_length, x.index))
            if rep.scheduler.add_request(req, now):
                ask_pass(rep, now)
        elif kind == LOAD_DONE:
            rep, adapter = payload
            rep.scheduler.load_done(adapter, now)
            ask_pass(rep, now)
        elif kind == ITERATION_END:
            rep = payload
            assert rep.plan is not None
            rep.scheduler.finish_step(rep.plan, now)
            if isinstance(rep.scheduler, DLoRAScheduler):
                rep.scheduler.record_iteration(rep.plan, rep.duration)
            rep.plan = None
            rep.busy = False
            ask_pass(rep, now)
        elif kind == PASS:
            rep = payload
            rep.pass_pending = False
            plan = rep.scheduler.schedule(now)
            for order in plan.loads:
                d = load_seconds(adapters[order.adapter], order.from_disk)
                finish = max(now, rep.loader_free_at) + d
                rep.loader_free_at = finish
                load_log.append((now, rep.index, order, finish))
                push(finish, LOAD_DONE, (rep, order.adapter))
            switch = plan.switch if isinstance(plan, DLoRAPlan) else None
            if switch is not None:
                assert isinstance(rep.scheduler, DLoRAScheduler) and dlora is not None
                info = adapters[switch.adapter]
                if dlora.switch_seconds is not None:
                    d = dlora.switch_seconds
                else:
                    assert switch_seconds is not None
                    d = switch_seconds(info, switch.merging)
                if not d >= 0.0:
                    raise ValueError(f"switch_seconds returned {d!r}; expected >= 0")
                rep.scheduler.switch_started(d)
                rep.switching = True
                log.append(
                    BatchLogEntry(
                        rep.index, -1, now, [], [o.adapter for o in plan.loads], list(plan.preempted), switch.label()
                    )
                )
                switch_log.append((now, rep.index, switch.label(), now + d))
                push(now + d, MODE_SWITCH_DONE, rep)
            elif not plan.seqs:
                if plan.loads or plan.preempted:  # an idle pass that started loads: iteration -1
                    log.append(
                        BatchLogEntry(rep.index, -1, now, [], [o.adapter for o in plan.loads], list(plan.preempted))
                    )
            else:
                duration = step_seconds(plan)
                if not duration > 0.0:
                    raise ValueError(f"step_seconds returned {duration!r}; expected > 0")
                entry = BatchLogEntry(
                    replica=rep.index,
                    iteration=rep.iterations,
                    start_s=now,
                    batch=[(s.request_id, s.num_tokens) for s in plan.seqs],
                    loads=[o.adapter for o in plan.loads],
                    preempted=list(plan.preempted),
                )
                log.append(entry)
                mode = plan.mode if isinstance(plan, DLoRAPlan) else "unmerged"
                iterations.append(IterationRecord.from_plan(rep.index, rep.iterations, now, duration, plan, mode=mode))
                rep.iterations += 1
                rep.duration = duration
                rep.busy = True
                rep.plan = plan
                push(now + duration, ITERATION_END, rep)
        elif kind == MODE_SWITCH_DONE:
            rep = payload
            assert isinstance(rep.scheduler, DLoRAScheduler)
            rep.scheduler.switch_done(now)
            rep.switching = False
            ask_pass(rep, now)
        else:  # pragma: no cover
            raise AssertionError(kind)

    log.sort(key=lambda e: (e.start_s, e.replica))  # stable: same time and replica stay in pass order
    iterations.sort(key=lambda it: (it.start_s, it.replica, it.iteration))
    if batch_log is not None:
        write_batch_log(batch_log, log)
    return VirtualResult(
        requests=reqs,
        iterations=iterations,
        batch_log=log,
        loads=load_log,
        end_s=now,
        schedulers=[r.scheduler for r in reps],
        switches=switch_log,
    )


def write_batch_log(path: str | Path, entries: Iterable[BatchLogEntry]) -> None:
    """Writes the batch log, one JSON object per line (atomic)."""
    write_text_atomic(path, "".join(e.to_json() + "\n" for e in entries))


def run_scenario(path: str | Path, batch_log: str | Path | None = None) -> VirtualResult:
    """Loads a scenario file (engine, linear cost model, replicas, placement `all`, workload)
    and replays it."""
    from .trace_io import load_scenario

    sc = load_scenario(path)
    if not isinstance(sc.cost_model, Mapping):
        raise ValueError(f"{path}: cost_model: expected a mapping")
    model = LinearCostModel.from_mapping(sc.cost_model, f"{path}: cost_model")
    dlora = parse_scheduler(sc.raw.get("scheduler"), f"{path}: scheduler")
    return run_virtual(
        sc.engine,
        sc.adapters,
        sc.requests,
        model.step_seconds,
        model.load_seconds,
        replicas=sc.replicas,
        placement=sc.placement,
        batch_log=batch_log,
        dlora=dlora,
        switch_seconds=model.switch_seconds,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: replay a scenario with the linear cost model and write the outputs."""
    p = argparse.ArgumentParser(prog="python3 -m engine.virtual", description=__doc__)
    p.add_argument("scenario")
    p.add_argument("--batch-log", help="JSONL batch log to write")
    p.add_argument("--requests-csv", help="requests.csv to write")
    p.add_argument("--iterations-csv", help="iterations.csv to write")
    args = p.parse_args(argv)
    try:
        result = run_scenario(args.scenario, args.batch_log)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.requests_csv:
        write_requests_csv(args.requests_csv, result.requests)
    if args.iterations_csv:
        write_iterations_csv(args.iterations_csv, result.iterations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
