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
