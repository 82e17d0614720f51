"""step_decode_varied's batches (gpu/profile_steps.py): the contexts of each layout, and block
tables dealt round-robin so that no sequence's blocks are consecutive, each block used once."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from gpu import profile_steps as ps  # noqa: E402


class _Pool:
    def __init__(self, num_blocks: int) -> None:
        self.num_blocks, self.next_block = num_blocks, 0

    blocks = ps.Rig.blocks


def test_every_measured_batch_is_skewed_but_scattered():
    # the layouts themselves: gpu/tests/test_layouts.py (no torch)
    for n in ps.VARIED_SIZES:
        for layout in ps.VARIED_LAYOUTS:
            ctx = ps.varied_contexts(n, layout)
            assert len(ctx) == n and min(ctx) > 0
            assert (max(ctx) > sum(ctx) / n) == (layout != "scattered")


def test_tables_are_interleaved_and_cover_each_context():
    ctx = [30, 70, 15]  # 2, 5 and 1 blocks of 16 (context + the new token)
    tables = ps.interleaved_tables(_Pool(1000), ctx)
    assert [len(t) for t in tables] == [2, 5, 1]
    flat = [b for t in tables for b in t]
    assert sorted(flat) == list(range(8))  # every block once
    assert tables[0] == [0, 3] and tables[1] == [1, 4, 5, 6, 7] and tables[2] == [2]


def test_timed_rotating_turns_over_the_sets_and_drops_them():
    calls, dropped = [], []

    class _Ex:
        last_host_s = 0.0

        def execute(self, seqs, force_eager=False):
            calls.append((seqs[0], force_eager))
            self.last_host_s += 0.001

    class _Rig:
        def drop(self, ex, seqs):
            dropped.append(seqs[0])

    st = ps.timed_rotating(_Rig(), _Ex(), [["a"], ["b"], ["c"]], reps=4, force_eager=True)
    assert len(st.samples_us) == 4
    assert [c for c, _ in calls] == ["a", "b", "c", "a", "b", "c"]  # 2 warm-up steps, then 4 timed
    assert all(e for _, e in calls) and dropped == ["a", "b", "c"]


def test_timed_rotating_keeps_each_steps_host_preparation_by_table(monkeypatch):
    monkeypatch.setattr(ps, "_host_prep", {})
    monkeypatch.setattr(ps, "_table", "step_decode")

    class _Ex:
        last_host_s = 0.0

        def execute(self, seqs, force_eager=False):
            self.last_host_s = 0.0005 * len(seqs)

    class _Rig:
        def drop(self, ex, seqs):
            pass

    ps.timed_rotating(_Rig(), _Ex(), [["a"], ["b", "c"]], reps=4)
    prep = ps._host_prep["step_decode"]
    assert len(prep) == 6 and sorted(set(prep)) == [0.0005, 0.001]  # warm-up steps included


def test_token_grid_covers_every_token_graph_and_chunks_add_up():
    class _R:
        token_sizes = (16, 192, 1152, 2048)

    grid = ps.token_grid(_R(), quick=False)
    assert set(_R.token_sizes) <= set(grid) and grid[-1] == 4096 and list(grid) == sorted(grid)

    class _Eager:
        token_sizes = ()

    assert ps.token_grid(_Eager(), quick=False)[0] == 1  # without token graphs: the old eager grid
    for t in (1, 8, 16, 192, 256, 1152, 4096):
        ch = ps.token_chunks(t)
        assert sum(ch) == t and max(ch) <= 256 and (t < 16 or min(ch) > 1)
