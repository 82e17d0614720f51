"""step_mixed's `base_us` (gpu/profile_steps.py): the same composition timed with every row's
adapter taken off, and the adapters put back afterwards, also when the step fails."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from gpu import profile_steps as ps  # noqa: E402


class _Seq:
    def __init__(self, slot):
        self.slot = slot


class _Executor:
    def __init__(self, fail_after: int | None = None):
        self.seen: list[list] = []
        self.fail_after = fail_after

    def execute(self, seqs):
        if self.fail_after is not None and len(self.seen) >= self.fail_after:
            raise RuntimeError("step failed")
        self.seen.append([q.slot for q in seqs])


def test_base_runs_without_adapters_and_restores_them(monkeypatch):
    monkeypatch.setattr(ps, "_rest", 0.0)
    seqs = [_Seq(3), _Seq(None), _Seq(0)]
    ex = _Executor()
    us = ps.mixed_base_us(ex, seqs, reps=3)
    assert us > 0
    assert len(ex.seen) == 1 + 3  # one untimed run, then the repetitions
    assert all(slots == [None, None, None] for slots in ex.seen)
    assert [q.slot for q in seqs] == [3, None, 0]


def test_adapters_are_restored_when_the_step_fails(monkeypatch):
    monkeypatch.setattr(ps, "_rest", 0.0)
    seqs = [_Seq(1), _Seq(2)]
    with pytest.raises(RuntimeError, match="step failed"):
        ps.mixed_base_us(_Executor(fail_after=1), seqs, reps=2)
    assert [q.slot for q in seqs] == [1, 2]


def test_the_column_sits_before_the_timing_columns():
    cols = ps.MIXED_COLUMNS.split(",")
    assert cols.index("base_us") == cols.index("first_us") + 1
    assert cols[-4:] == ps.TIMING.split(",")
