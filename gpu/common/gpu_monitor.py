"""Samples the GPU's clocks, power and temperature while a replay or a profile runs, so that a
step that is slower live than in the profile can be checked against the clocks it ran at.

``nvidia-smi`` samples itself (``-lms``) in a child process and writes to a file: nothing runs in
this Python process meanwhile, so the engine's host-bound steps do not lose time to it. The
samples are parsed when the monitor stops. Without ``nvidia-smi`` (CPU runs, tests) the monitor
records why and does nothing else. Torch-free.

    with GpuMonitor(period_ms=500) as mon:
        ...  # the run
    doc = mon.summary(t0=...)  # run.json's "gpu_monitor"
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Fields of `nvidia-smi --query-gpu`; the last one is called clocks_throttle_reasons on older
# drivers, so a query that fails is retried without it.
FIELDS = ("clocks.sm", "clocks.mem", "power.draw", "temperature.gpu", "clocks_event_reasons.active")
NAMES = ("sm_clock_mhz", "mem_clock_mhz", "power_w", "temperature_c", "event_reasons")


@dataclass
class Sample:
    """One line of nvidia-smi's output, with the host clock of when it was read (seconds)."""

    t_s: float
    sm_clock_mhz: float | None
    mem_clock_mhz: float | None
    power_w: float | None
    temperature_c: float | None
    event_reasons: str | None


def _number(text: str) -> float | None:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return None  # "[N/A]", "[Not Supported]"


def parse_samples(text: str, fields: int, start_s: float, period_s: float) -> list[Sample]:
    """Parses ``nvidia-smi --format=csv,noheader,nounits`` lines of one GPU (the monitor queries
    one, ``-i``), ``fields`` values per line. Sample i is placed at ``start_s + i * period_s``
    (nvidia-smi's own timestamps have a one-second resolution). A line with another number of
    values (a partial last line) is skipped."""
    out: list[Sample] = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != fields:
            continue  # a partial last line when the process was stopped
        vals = [_number(p) for p in parts[:4]]
        reasons = parts[4] if fields > 4 else None
        out.append(Sample(start_s + len(out) * period_s, *vals, reasons))
    return out


def summarize(samples: list[Sample]) -> dict:
    """min / p10 / median / max of each numeric field, and the event reasons seen (with counts)."""
    doc: dict = {"samples": len(samples)}
    for name in NAMES[:4]:
        xs = sorted(v for s in samples if (v := getattr(s, name)) is not None)
        if not xs:
            continue
        doc[name] = {"min": xs[0], "p10": xs[len(xs) // 10], "median": statistics.median(xs), "max": xs[-1]}
    reasons: dict[str, int] = {}
    for s in samples:
        if s.event_reasons:
            reasons[s.event_reasons] = reasons.get(s.event_reasons, 0) + 1
    if reasons:
        doc["event_reasons"] = reasons
    return doc


class GpuMonitor:
    """Runs ``nvidia-smi -lms`` for the duration of a ``with`` block (or start/stop)."""

    def __init__(self, period_ms: int = 500, device_index: int = 0, binary: str = "nvidia-smi") -> None:
        self.period_ms = period_ms
        self.device_index = device_index
        self.binary = binary
        self.proc: subprocess.Popen | None = None
        self.path: Path | None = None
        self.fields = len(FIELDS)
        self.start_s = 0.0
        self.samples: list[Sample] = []
        self.error: str | None = None

    def _query(self, fields: tuple[str, ...]) -> list[str]:
        return [self.binary, "-i", str(self.device_index), f"--query-gpu={','.join(fields)}",
                "--format=csv,noheader,nounits"]

    def start(self) -> GpuMonitor:
        exe = shutil.which(self.binary)
        if exe is None:
            self.error = f"{self.binary} not found"
            return self
        fields = FIELDS
        try:  # one query first: an unknown field fails at once, before the run starts
            probe = subprocess.run(self._query(fields), capture_output=True, text=True, timeout=10)
            if probe.returncode != 0:
                fields = FIELDS[:4]
                probe = subprocess.run(self._query(fields), capture_output=True, text=True, timeout=10)
            if probe.returncode != 0:
                self.error = f"{self.binary} failed: {probe.stderr.strip() or probe.stdout.strip()}"
                return self
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.error = f"{self.binary} failed: {exc}"
            return self
        self.fields = len(fields)
        fd, name = tempfile.mkstemp(prefix="gpu-monitor-", suffix=".csv")
        os.close(fd)
        self.path = Path(name)
        self.start_s = time.perf_counter()
        self.proc = subprocess.Popen(self._query(fields) + [f"-lms={self.period_ms}", "-f", name],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def stop(self) -> list[Sample]:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.path is not None:
            text = self.path.read_text() if self.path.exists() else ""
            self.path.unlink(missing_ok=True)
            self.path = None
            self.samples = parse_samples(text, self.fields, self.start_s, self.period_ms / 1000)
        return self.samples

    def __enter__(self) -> GpuMonitor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def summary(self, t0: float | None = None, series: bool = True) -> dict:
        """run.json's ``gpu_monitor``: the summary, and (``series``) the samples as columns, their
        times relative to ``t0`` (a ``time.perf_counter()`` value, e.g. the replay's clock zero)."""
        if self.error is not None:
            return {"available": False, "reason": self.error}
        doc = {"available": True, "period_ms": self.period_ms, **summarize(self.samples)}
        if series and self.samples:
            base = t0 if t0 is not None else self.start_s
            doc["series"] = {"t_s": [round(s.t_s - base, 3) for s in self.samples],
                             **{n: [getattr(s, n) for s in self.samples] for n in NAMES[:4]}}
        return doc
