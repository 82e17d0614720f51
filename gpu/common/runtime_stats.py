"""What the Python runtime and the CUDA caching allocator did during a replay: the garbage
collector's passes (count and time per generation, through ``gc.callbacks``) and the allocator's
device allocations, frees and retries (``torch.cuda.memory_stats``), from the clock's start to
its end. Host-bound eager steps slow down when either does more work; run.json's ``runtime``
records both so that two runs of one machine can be compared (docs/live-run-format.md).

    stats = RuntimeStats(cuda=True, quiet_gc=True).start()
    ...  # the replay loop
    run_json["runtime"] = stats.stop()

With ``quiet_gc`` the collector does not run between start and stop: at start everything alive is
collected once and frozen (``gc.freeze``: later passes would not walk it) and automatic
collection is switched off; stop switches it back on and unfreezes. Why: before this, 48 of the
112 runs recorded through lease e82f051-1 had one full (generation-2) pass of 75-136 ms in
the middle of the replay (their run.json ``runtime.gc``), a stall of the whole loop, at the same
moment in every recording of one trace and engine, that no step profile sees. A replay lasts
minutes and reference counting frees everything but cycles, so the memory it leaves uncollected
is small (``tracked_objects_at_end`` reports it).
"""

from __future__ import annotations

import gc
import time
from typing import Any

# Counters of torch.cuda.memory_stats() worth comparing between runs (deltas over the run), and
# gauges (values at the end).
ALLOC_COUNTERS = ("num_device_alloc", "num_device_free", "num_alloc_retries", "num_ooms",
                  "num_sync_all_streams")
ALLOC_GAUGES = ("reserved_bytes.all.peak", "allocated_bytes.all.peak", "reserved_bytes.all.current",
                "allocated_bytes.all.current")


class RuntimeStats:
    """Collector passes and allocator counters between ``start`` and ``stop``."""

    def __init__(self, cuda: bool, quiet_gc: bool = False) -> None:
        self.cuda = cuda
        self.quiet_gc = quiet_gc
        self._quiet: dict[str, Any] = {}  # with quiet_gc: what start() found and did
        self._quiet_on = False  # start()'s changes to the collector in force
        self.passes = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = 0.0
        self._t0: float | None = None
        self._alloc0: dict[str, Any] = {}

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        elif self._t0 is not None:
            dt = time.perf_counter() - self._t0
            g = int(info.get("generation", 0))
            self.passes[g] += 1
            self.seconds[g] += dt
            self.longest = max(self.longest, dt)
            self._t0 = None

    @staticmethod
    def _alloc() -> dict[str, Any]:
        import torch

        return dict(torch.cuda.memory_stats())

    def start(self) -> RuntimeStats:
        if self.quiet_gc and not self._quiet_on:
            t = time.perf_counter()
            gc.collect()
            gc.freeze()
            self._quiet = {"was_enabled": gc.isenabled(), "frozen_objects": gc.get_freeze_count(),
                           "collect_and_freeze_s": round(time.perf_counter() - t, 6)}
            gc.disable()
            self._quiet_on = True
        gc.callbacks.append(self._callback)
        if self.cuda:
            self._alloc0 = self._alloc()
        return self

    def stop(self) -> dict[str, Any]:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
        doc: dict[str, Any] = {
            "gc": {"passes": list(self.passes), "seconds": [round(s, 6) for s in self.seconds],
                   "longest_s": round(self.longest, 6), "thresholds": list(gc.get_threshold()),
                   "tracked_objects_at_end": len(gc.get_objects())},
        }
        if self._quiet_on:  # undo what start() did, once
            if self._quiet["was_enabled"]:
                gc.enable()
            gc.unfreeze()
            self._quiet_on = False
        if self.quiet_gc:
            doc["gc"]["quiet"] = {"automatic_collection": "off between start and stop", **self._quiet}
        if self.cuda:
            end = self._alloc()
            doc["cuda_allocator"] = {
                **{k: end.get(k, 0) - self._alloc0.get(k, 0) for k in ALLOC_COUNTERS if k in end},
                **{k: end[k] for k in ALLOC_GAUGES if k in end},
            }
        return doc
