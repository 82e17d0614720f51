"""Adapter loads on one loader: disk -> pinned host memory -> GPU slot, serialised.

A load order from the scheduler is queued on one worker thread (so loads run one after the
other, as docs/engine-model.md requires). From disk, the worker reads the adapter's safetensors
file with one ``readinto`` into a pinned byte buffer (from a pool that can be allocated up front,
so that no large ``cudaHostAlloc`` happens while the engine runs; the host cache is LRU,
``max_cpu_loras`` entries, and an evicted adapter's buffer goes back to the pool once its last
copy has finished); then it enqueues the host->GPU copies on a side stream between two CUDA
events. The main loop calls ``poll()``; a load is done once its worker step has returned and its
end event has fired.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from .lora import HostAdapter, LoraSlots, read_adapter, read_adapter_into


@dataclass
class LoadRecord:
    adapter: str
    slot: int
    from_disk: bool
    ordered_s: float  # host clock when the order was queued
    disk_s: float = 0.0  # seconds reading the file into pinned memory
    h2d_ms: float = 0.0  # host->GPU copy time between the CUDA events
    done_s: float = 0.0  # host clock when poll() saw it complete
    nbytes: int = 0


class AdapterLoader:
    def __init__(self, slots: LoraSlots, files: dict[str, Path], max_cpu_loras: int,
                 clock=time.perf_counter, prealloc: int = 0, prealloc_bytes: int = 0) -> None:
        self.slots = slots
        self.files = files
        self.max_cpu_loras = max_cpu_loras
        self.clock = clock
        self.host: OrderedDict[str, HostAdapter] = OrderedDict()
        self.cuda = torch.device(slots.device).type == "cuda"
        self.stream = torch.cuda.Stream() if self.cuda else None
        self.pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="lora-loader")
        self.pending: list[tuple[LoadRecord, cf.Future]] = []
        self.done: list[LoadRecord] = []
        self.device_index = torch.cuda.current_device() if self.cuda else None
        self.free: list[torch.Tensor] = [self._new_buffer(prealloc_bytes) for _ in range(prealloc)]
        self.buffers: dict[str, torch.Tensor] = {}  # adapter -> the pinned buffer its tensors view
        self.last_copy: dict[str, torch.cuda.Event] = {}  # adapter -> end event of its last copy
        self.fallback_reads = 0

    def _new_buffer(self, nbytes: int) -> torch.Tensor:
        return torch.empty(nbytes, dtype=torch.uint8, pin_memory=self.cuda)

    def _alloc(self, nbytes: int) -> torch.Tensor:
        fits = [b for b in self.free if b.numel() >= nbytes]
        if fits:
            b = min(fits, key=lambda t: t.numel())
            self.free.remove(b)
            return b
        return self._new_buffer(nbytes)

    def _release(self, name: str) -> None:
        buf = self.buffers.pop(name, None)
        ev = self.last_copy.pop(name, None)
        if buf is None:
            return
        if ev is not None:
            ev.synchronize()  # its bytes may still be on their way to the GPU
        self.free.append(buf)

    def _host_copy(self, name: str, from_disk: bool, rec: LoadRecord) -> HostAdapter:
        if not from_disk and name in self.host:
            self.host.move_to_end(name)
            return self.host[name]
        t0 = time.perf_counter()
        if name in self.host:
            del self.host[name]
            self._release(name)
        while len(self.host) >= self.max_cpu_loras:  # evict first, so its buffer can be reused
            old, _ = self.host.popitem(last=False)
            self._release(old)
        try:
            ha, buf = read_adapter_into(self.files[name], self._alloc)
            self.buffers[name] = buf
        except Exception:  # noqa: BLE001 - not a file of save_adapter's layout: the general reader
            self.fallback_reads += 1
            ha = read_adapter(self.files[name]).pin()
        rec.disk_s = time.perf_counter() - t0
        self.host[name] = ha
        self.host.move_to_end(name)
        while len(self.host) > self.max_cpu_loras:
            old, _ = self.host.popitem(last=False)
            self._release(old)
        return ha

    def _work(self, rec: LoadRecord):
        ha = self._host_copy(rec.adapter, rec.from_disk, rec)
        rec.nbytes = ha.nbytes()
        if not self.cuda:  # CPU runs (tests): a synchronous copy
            t0 = time.perf_counter()
            self.slots.copy_in(rec.slot, ha)
            rec.h2d_ms = (time.perf_counter() - t0) * 1e3
            return None, None, ha
        torch.cuda.set_device(self.device_index)
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(self.stream):
            start.record(self.stream)
            self.slots.copy_in(rec.slot, ha)
            end.record(self.stream)
        self.last_copy[rec.adapter] = end
        return start, end, ha

    def start(self, adapter: str, slot: int, from_disk: bool) -> None:
        rec = LoadRecord(adapter=adapter, slot=slot, from_disk=from_disk, ordered_s=self.clock())
        self.pending.append((rec, self.pool.submit(self._work, rec)))

    def poll(self) -> list[LoadRecord]:
        """Loads completed since the last call, in order."""
        out = []
        while self.pending:
            rec, fut = self.pending[0]
            if not fut.done():
                break
            start, end, _ = fut.result()
            if end is not None:
                if not end.query():
                    break
                rec.h2d_ms = start.elapsed_time(end)
            rec.done_s = self.clock()
            self.pending.pop(0)
            out.append(rec)
            self.done.append(rec)
        return out

    def busy(self) -> bool:
        return bool(self.pending)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
