#!/usr/bin/env python3
"""What the twin predicts for dLoRA's variants on recorded dLoRA runs: a what-if, not a validation.

    python3 scripts/dlora_whatif.py [RUN ...] [--bin .build/release/loratwin]

Each RUN is a recorded run folder (default: the d01-d04 recordings of lease 3a804f7-1, the newest
with a closed loop, `traces/repeats/leases.csv`). Its scenario is simulated (`loratwin simulate
--json`, the run's own profile, closed loop and trace) once per scheduler variant, with only the
`scheduler:` line replaced: dLoRA as recorded (`{kind: dlora, drain_credit: false}`, draft 2), with
`drain_credit: true`, with the aging guard `max_wait_s: 5`, and plain FCFS. Printed as a Markdown
table: completed requests/s, TTFT mean / p50 / p99, E2E p99, the longest wait of any adapter and
of the run's least-requested adapter, and the mode changes. Each variant's scenario is written next
to the run as a hidden file and removed again (the profile's relative path must resolve); nothing else is written.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUNS = ("d01-skewed-zipf2-repeat3", "d02-identical-heavy-share95-repeat8",
                "d03-popularity-shift-rot3-repeat2", "d04-cold-adapter-share90-repeat13")
# dLoRA as the recordings ran it (draft 2, `drain_credit: false`, the default before lease 67078bf-1),
# with `drain_credit` (the default since), and draft 2 with the aging guard.
VARIANTS = (("dLoRA (as recorded)", "{kind: dlora, drain_credit: false}"),
            ("dLoRA, drain_credit", "{kind: dlora, drain_credit: true}"),
            ("dLoRA, max_wait_s 5", "{kind: dlora, drain_credit: false, max_wait_s: 5}"),
            ("FCFS (unmerged)", "{kind: fcfs}"))


def coldest_adapter(run: Path) -> str | None:
    """The adapter with the fewest requests in the run's trace (ties: the first in name order)."""
    with (run / "trace.csv").open() as f:
        counts = Counter(r["adapter"] for r in csv.DictReader(f) if r.get("adapter"))
    return min(sorted(counts), key=lambda a: counts[a]) if counts else None


def with_scheduler(text: str, scheduler: str, where: Path) -> str:
    """The scenario text with its `scheduler:` line replaced (an error naming the file without one)."""
    new, n = re.subn(r"^scheduler:.*$", f"scheduler: {scheduler}", text, count=1, flags=re.M)
    if n != 1:
        raise SystemExit(f"{where}: no top-level 'scheduler:' line to replace")
    return new


def simulate(binary: Path, run: Path, scheduler: str) -> dict:
    src = run / "scenario.yaml"
    tmp = run / f".whatif-{abs(hash(scheduler)) % 10**8}.yaml"
    tmp.write_text(with_scheduler(src.read_text(), scheduler, src))
    try:
        r = subprocess.run([str(binary), "simulate", str(tmp), "--json"], capture_output=True, text=True)
    finally:
        tmp.unlink()
    if r.returncode != 0:
        raise SystemExit(f"loratwin simulate {src} with scheduler {scheduler}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def row(label: str, variant: str, j: dict, cold: str | None) -> str:
    t, e = j["ttft"], j["e2e"]
    waits = j.get("longest_wait_by_adapter_s") or {}
    cold_wait = f"{waits[cold]:.1f} ({cold})" if cold in waits else "-"
    return (f"| {label} | {variant} | {j['requests_per_s']:.2f} | {t['mean_s']:.2f} / {t['p50_s']:.2f} / "
            f"{t['p99_s']:.2f} | {e['p99_s']:.2f} | {j['longest_wait_s']:.1f} | {cold_wait} | {j['mode_changes']} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="*", type=Path, help="run folders (default: lease 3a804f7-1's d01-d04)")
    ap.add_argument("--bin", type=Path, default=ROOT / ".build/release/loratwin")
    args = ap.parse_args(argv)
    runs = args.runs or [ROOT / "traces/repeats" / r for r in DEFAULT_RUNS]
    for run in runs:
        if not (run / "scenario.yaml").is_file():
            raise SystemExit(f"{run / 'scenario.yaml'}: no such file")
    print("| run | scheduler | req/s | TTFT mean / p50 / p99 s | E2E p99 s | longest wait s | "
          "least-requested adapter's longest wait s | mode changes |")
    print("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for run in runs:
        cold = coldest_adapter(run)
        for label, sched in VARIANTS:
            print(row(run.name, label, simulate(args.bin, run, sched), cold))
    return 0


if __name__ == "__main__":
    sys.exit(main())
