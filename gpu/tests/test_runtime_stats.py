"""RuntimeStats (gpu/common/runtime_stats.py): the collector's passes are counted and timed between
start and stop, the callback is removed at stop, and the allocator part is left out off CUDA; with
quiet_gc no automatic pass runs between start and stop, and the collector is as before after it."""

from __future__ import annotations

import gc

from gpu.common.runtime_stats import RuntimeStats


def test_counts_collector_passes_and_removes_its_callback():
    stats = RuntimeStats(cuda=False).start()
    gc.collect(0)
    gc.collect(2)
    doc = stats.stop()
    assert stats._callback not in gc.callbacks
    assert doc["gc"]["passes"][0] >= 1 and doc["gc"]["passes"][2] >= 1
    assert all(s >= 0 for s in doc["gc"]["seconds"]) and doc["gc"]["longest_s"] >= 0
    assert doc["gc"]["tracked_objects_at_end"] > 0
    assert "cuda_allocator" not in doc
    before = list(doc["gc"]["passes"])
    gc.collect(2)  # after stop: not counted
    assert stats.passes == before


def test_stop_twice_is_harmless():
    stats = RuntimeStats(cuda=False).start()
    stats.stop()
    assert stats.stop()["gc"]["passes"] == stats.passes


def test_quiet_gc_stops_automatic_passes_and_restores_the_collector():
    assert gc.isenabled() and gc.get_freeze_count() == 0
    stats = RuntimeStats(cuda=False, quiet_gc=True).start()
    assert not gc.isenabled() and gc.get_freeze_count() > 0
    garbage = []
    for i in range(50_000):  # many times the generation-0 threshold of container allocations
        a, b = [i], []
        a.append(b)
        b.append(a)  # a cycle: only the collector frees it
        garbage.append(len(a))
    doc = stats.stop()
    assert doc["gc"]["passes"] == [0, 0, 0]
    q = doc["gc"]["quiet"]
    assert q["was_enabled"] and q["frozen_objects"] > 0 and q["collect_and_freeze_s"] >= 0
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert stats.stop()["gc"]["quiet"]["frozen_objects"] == q["frozen_objects"]  # stop twice: harmless
    assert gc.isenabled()


def test_quiet_gc_leaves_a_disabled_collector_disabled():
    gc.disable()
    try:
        stats = RuntimeStats(cuda=False, quiet_gc=True).start()
        stats.stop()
        assert not gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.enable()
