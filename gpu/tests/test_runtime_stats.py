"""RuntimeStats (gpu/common/runtime_stats.py): the collector's passes are counted and timed between
start and stop, the callback is removed at stop, and the allocator part is left out off CUDA."""

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
