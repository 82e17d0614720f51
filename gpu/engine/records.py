"""Writers of the live-run format (docs/live-run-format.md): requests.csv, iterations.csv,
run.json. Every file is written atomically (a temporary file in the same folder, then rename)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .scheduler import Request, StepPlan

REQUEST_COLUMNS = (
    "request_id",
    "adapter",
    "arrival_s",
    "first_scheduled_s",
    "first_token_s",
    "finish_s",
    "prompt_tokens",
    "output_tokens",
    "preemptions",
    "status",
)

ITERATION_COLUMNS = (
    "replica",
    "iteration",
    "start_s",
    "duration_s",
    "prefill_tokens",
    "decode_seqs",
    "num_seqs",
    "distinct_adapters",
    "mode",
    "adapter_loads",
    "preemptions",
)

# Optional trailing column, written by the live engine (docs/live-run-format.md): seconds of the
# mode switches (dLoRA merges and unmerges) that ran between the replica's previous iteration and
# this one. The virtual driver and the twin write the eleven columns above only.
SWITCH_COLUMN = "switch_s"


@dataclass(frozen=True)
class IterationRecord:
    """One row of iterations.csv. Times in seconds from the start of the run; `switch_s` is the
    seconds of mode switches since the replica's previous iteration (0 for none)."""

    replica: int
    iteration: int
    start_s: float
    duration_s: float
    prefill_tokens: int
    decode_seqs: int
    num_seqs: int
    distinct_adapters: int
    mode: str
    adapter_loads: int
    preemptions: int
    switch_s: float = 0.0

    @classmethod
    def from_plan(
        cls,
        replica: int,
        iteration: int,
        start_s: float,
        duration_s: float,
        plan: StepPlan,
        mode: str = "unmerged",
        switch_s: float = 0.0,
    ) -> IterationRecord:
        """The row of an iteration that ran `plan` (after `switch_s` seconds of mode switches)."""
        adapters = {s.adapter for s in plan.seqs if s.adapter is not None}
        return cls(
            replica=replica,
            iteration=iteration,
            start_s=start_s,
            duration_s=duration_s,
            prefill_tokens=plan.prefill_tokens,
            decode_seqs=plan.decode_seqs,
            num_seqs=len(plan.seqs),
            distinct_adapters=len(adapters),
            mode=mode,
            adapter_loads=len(plan.loads),
            preemptions=len(plan.preempted),
            switch_s=switch_s,
        )


def _time(x: float | None) -> str:
    return "" if x is None else f"{x:.9f}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> None:
    """Writes `text` to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def request_status(req: Request) -> str:
    """`finished`, `rejected`, or `unfinished` (the run ended before it finished)."""
    return req.status if req.status in ("finished", "rejected") else "unfinished"


def write_requests_csv(path: str | Path, requests: Iterable[Request]) -> None:
    """requests.csv: one row per request, in the order given (the trace's)."""
    rows = (
        (
            r.request_id,
            r.adapter or "",
            f"{r.arrival_s:.9f}",
            _time(r.first_scheduled_s),
            _time(r.first_token_s),
            _time(r.finish_s),
            r.prompt_tokens,
            r.output_tokens,
            r.preemptions,
            request_status(r),
        )
        for r in requests
    )
    write_text_atomic(path, _csv_text(REQUEST_COLUMNS, rows))


def write_iterations_csv(path: str | Path, iterations: Iterable[IterationRecord], switch_column: bool = False) -> None:
    """iterations.csv: one row per iteration, in order of start time then replica; with
    `switch_column`, the optional trailing `switch_s` column too (the live engine's)."""
    extra = (lambda it: (f"{it.switch_s:.9f}",)) if switch_column else (lambda it: ())
    rows = (
        (
            it.replica,
            it.iteration,
            f"{it.start_s:.9f}",
            f"{it.duration_s:.9f}",
            it.prefill_tokens,
            it.decode_seqs,
            it.num_seqs,
            it.distinct_adapters,
            it.mode,
            it.adapter_loads,
            it.preemptions,
            *extra(it),
        )
        for it in iterations
    )
    header = ITERATION_COLUMNS + ((SWITCH_COLUMN,) if switch_column else ())
    write_text_atomic(path, _csv_text(header, rows))


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_commit(repo: str | Path = ".") -> str | None:
    """The commit checked out in `repo` (with `-dirty` when the tree has changes), or None."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


def write_run_json(
    path: str | Path,
    engine: Mapping[str, Any],
    trace_path: str | Path,
    scenario: str,
    versions: Mapping[str, str | None],
    git: str | None = None,
    extra: Mapping[str, Any] | None = None,
    date: datetime | None = None,
) -> dict[str, Any]:
    """run.json: the engine configuration, the trace's SHA-256, the versions of the stack
    (`gpu`, `driver`, `torch`, `triton`, ... as the caller measured them), the UTC date, the
    git commit and the scenario name. Returns the object written."""
    for key in ("gpu", "driver", "torch", "triton"):
        if key not in versions:
            raise ValueError(f"run.json: versions lacks {key!r}")
    obj: dict[str, Any] = {
        "format": "loratwin-live-run/1",
        "scenario": scenario,
        "date": (date or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": git,
        "trace": {"path": str(trace_path), "sha256": sha256_file(trace_path)},
        "versions": dict(versions),
        "engine": dict(engine),
    }
    if extra:
        obj.update(extra)
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
    return obj
