"""What the Python runtime and the CUDA caching allocator did during a replay: the garbage
collector's passes (count and time per generation, through ``gc.callbacks``) and the allocator's
device allocations, frees and retries (``torch.cuda.memory_stats``), from the clock's start to
its end. Host-bound eager steps slow down when either does more work; run.json's ``runtime``
records both so that two runs of one machine can be compared (docs/live-run-format.md).

    stats = RuntimeStats(cuda=True).start()
    ...  # the replay loop
    run_json["runtime"] = stats.stop()
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

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
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
        if self.cuda:
            end = self._alloc()
            doc["cuda_allocator"] = {
                **{k: end.get(k, 0) - self._alloc0.get(k, 0) for k in ALLOC_COUNTERS if k in end},
                **{k: end[k] for k in ALLOC_GAUGES if k in end},
            }
        return doc
