"""CUDA-event timing of GPU work, eager or as CUDA-graph replays, with rotated inputs.

``time_calls(calls, mode)`` runs the list of zero-argument callables (one per rotated input set,
so successive calls touch different memory and the L2 cache does not flatter small cases) once
per repetition, between two CUDA events, and reports per-call times (repetition time / number of
calls): median, 10th and 90th percentiles over the repetitions.

- ``mode="eager"``: the calls are issued from Python back to back, so the time per call is the
  larger of the GPU time and the host's launch cost (about 9 us a kernel on the H100 machine).
- ``mode="graph"``: the calls are captured once into one CUDA graph and the graph is replayed;
  launches cost about a microsecond each, as in an engine that replays its decode step.

A GPU spin (``torch.cuda._sleep``) precedes the first repetition so the host gets ahead and the
device never waits on the first launches.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Timing:
    """Per-call time of one measured configuration, in microseconds."""

    mode: str
    median_us: float
    p10_us: float
    p90_us: float
    reps: int
    calls_per_rep: int


def _quantile(sorted_values: list[float], q: float) -> float:
    i = q * (len(sorted_values) - 1)
    lo = int(i)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (i - lo)


def _run_all(calls: Sequence[Callable[[], object]]) -> None:
    for c in calls:
        c()


def time_calls(calls: Sequence[Callable[[], object]], mode: str = "eager", *, min_reps: int = 20,
               max_reps: int = 60, budget_ms: float = 60.0, warmup: int = 2) -> Timing:
    """Median per-call time of ``calls`` (one rotation each repetition); at least ``min_reps`` repetitions."""
    if mode not in ("eager", "graph"):
        raise ValueError(f"mode must be 'eager' or 'graph', got {mode!r}")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            _run_all(calls)
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    graph: torch.cuda.CUDAGraph | None = None
    if mode == "graph":
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            _run_all(calls)
        graph.replay()
        torch.cuda.synchronize()

    def one_rep() -> None:
        if graph is not None:
            graph.replay()
        else:
            _run_all(calls)

    # Probe one repetition to size the run within the budget.
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    one_rep()
    e.record()
    torch.cuda.synchronize()
    probe_ms = max(s.elapsed_time(e), 1e-3)
    reps = int(max(min_reps, min(max_reps, budget_ms / probe_ms)))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    torch.cuda._sleep(2_000_000)
    for i in range(reps):
        starts[i].record()
        one_rep()
        ends[i].record()
    torch.cuda.synchronize()
    n = len(calls)
    per_call = sorted(starts[i].elapsed_time(ends[i]) * 1e3 / n for i in range(reps))
    return Timing(mode, statistics.median(per_call), _quantile(per_call, 0.1), _quantile(per_call, 0.9), reps, n)


def rotating_median_us(fn: Callable[[int], object], sets: int, reps: int = 30) -> float:
    """Median microseconds of one ``fn(i)`` between two CUDA events, over ``reps`` repetitions with
    the input set ``i`` rotating over ``range(sets)`` (each set called once first, as warm-up)."""
    for i in range(sets):
        fn(i)
    torch.cuda.synchronize()
    samples = []
    for r in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        fn(r % sets)
        e1.record()
        e1.synchronize()
        samples.append(e0.elapsed_time(e1) * 1e3)
    return statistics.median(samples)


@dataclass
class Stats:
    """Host wall-clock samples of whole engine steps (``Executor.execute``), in microseconds: what
    the step profile (gpu/profile_steps.py) and the replay's host probe record."""

    samples_us: list[float] = field(default_factory=list)

    def row(self) -> str:
        """``median,p10,p90,reps`` as the profile's CSV tables write them."""
        return f"{self.median:.3f},{self.p10:.3f},{self.p90:.3f},{len(self.samples_us)}"

    def _deciles(self) -> list[float]:
        xs = sorted(self.samples_us)
        return statistics.quantiles(xs, n=10) if len(xs) >= 2 else [xs[0]] * 9

    @property
    def median(self) -> float:
        return statistics.median(self.samples_us)

    @property
    def p10(self) -> float:
        return self._deciles()[0]

    @property
    def p90(self) -> float:
        return self._deciles()[-1]


def timed(fn: Callable[[], object], reps: int, warmup: int = 2, rest: float = 0.0) -> Stats:
    """Host wall time of ``fn()`` (which must wait for its GPU work), ``reps`` times after ``warmup`` calls.

    ``rest``: after each call, leave the GPU idle for ``rest`` times that call's duration. Steps
    timed back to back keep a GPU at its power cap, and the H200 then lowers its clocks: the step
    profile at 32bd308 timed its eager tables at a median SM clock of 1470-1665 MHz, where the live
    runs of the same lease ran at 1890-1965 MHz with idle gaps between steps (docs/validation.md,
    "Clocks"). A rest of 1 (half the time idle) brings the duty cycle nearer a live engine's."""
    for _ in range(warmup):
        fn()
    return Stats([_wall_us(fn, rest) for _ in range(reps)])


def _wall_us(fn: Callable[[], object], rest: float) -> float:
    """Host wall time of one ``fn()`` in microseconds, then idle ``rest`` times as long."""
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    if rest > 0:
        time.sleep(rest * dt)
    return dt * 1e6


def timed_difference(base: Callable[[], object], treated: Callable[[], object], reps: int, warmup: int = 2,
                     rest: float = 0.0) -> Stats:
    """Per-repetition difference ``treated() - base()`` of host wall times, in microseconds: each
    repetition times the two back to back, alternating which goes first, so that whatever drifts
    over a table's run (clocks, host load) falls on both sides of the difference. Timing the two
    in separate blocks, as lora_step did up to 5d28821, left cells 10-20 % noisy around a LoRA
    part of about 1 ms of a 5-11 ms step (docs/validation.md, "The 5d28821 lease"). ``rest`` as in
    ``timed``, after each of the two calls."""
    for _ in range(warmup):
        base()
        treated()
    s = Stats()
    for i in range(reps):
        if i % 2 == 0:
            b = _wall_us(base, rest)
            t = _wall_us(treated, rest)
        else:
            t = _wall_us(treated, rest)
            b = _wall_us(base, rest)
        s.samples_us.append(t - b)
    return s
