"""``timed``'s rest (gpu/common/timing.py): after each timed call the GPU is left idle for ``rest``
times that call's duration; warm-up calls and ``rest=0`` sleep not at all."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from gpu.common import timing  # noqa: E402


def test_rest_sleeps_in_proportion_to_each_call(monkeypatch):
    clock = [0.0]
    durations = iter([0.5, 0.5, 1.0, 2.0, 3.0])  # two warm-up calls, then three timed ones
    slept = []

    def fn():
        clock[0] += next(durations)

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(timing.time, "sleep", slept.append)
    st = timing.timed(fn, reps=3, warmup=2, rest=0.5)
    assert st.samples_us == [1e6, 2e6, 3e6]
    assert slept == [0.5, 1.0, 1.5]
    slept.clear()
    durations = iter([1.0] * 5)
    timing.timed(fn, reps=3, warmup=2)
    assert slept == []


def test_timed_difference_pairs_each_repetition_and_alternates_the_order(monkeypatch):
    clock = [0.0]
    calls = []
    slept = []
    # base takes 1 s plus a drift of 0.1 s per call; treated 0.5 s more than base at the same moment
    def make(name, extra):
        def fn():
            n = len(calls)
            calls.append(name)
            clock[0] += 1.0 + 0.1 * n + extra
        return fn

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(timing.time, "sleep", slept.append)
    st = timing.timed_difference(make("base", 0.0), make("treated", 0.5), reps=4, warmup=1, rest=1.0)
    # warm-up: base, treated; then (base, treated), (treated, base), (base, treated), (treated, base)
    assert calls == ["base", "treated"] + ["base", "treated", "treated", "base"] * 2
    # each difference is 0.5 s plus one call's drift (+0.1 when base ran first, -0.1 when it ran second)
    assert st.samples_us == pytest.approx([0.6e6, 0.4e6, 0.6e6, 0.4e6])
    assert st.median == pytest.approx(0.5e6)
    assert len(slept) == 8  # a rest after each timed call, none after the warm-up
