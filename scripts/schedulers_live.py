#!/usr/bin/env python3
"""Live vs predicted for the recorded dLoRA runs (traces/live/d0*): the table of docs/schedulers.md.

For every run folder under traces/live whose name starts with d0 and that has a recording, runs
`loratwin validate RUN --output` (the twin on the run's trace, engine configuration and profile)
and `loratwin simulate RUN/scenario.yaml -o` (for the per-adapter waits), and prints a Markdown
table: throughput, TTFT p50, E2E p99, longest wait overall and of the cold adapters (all but the
most requested one), and mode changes, live and predicted side by side.

Usage: python3 scripts/schedulers_live.py [--bin .build/release/loratwin]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Folder suffixes of the baselines (traces/live/make_dlora_runs.sh) and their names.
BASELINES = {"-fcfs": "unmerged (FCFS)", "-merged": "always merged", "-nocredit": "dLoRA, no credits",
             "-draincredit": "dLoRA, drain_credit"}


def cold_wait(requests_csv: Path) -> float:
    """Longest wait (first scheduled - arrival, seconds) of a request of any adapter but the most
    requested one."""
    rows = list(csv.DictReader(open(requests_csv)))
    hot = Counter(r["adapter"] for r in rows).most_common(1)[0][0]
    waits = [float(r["first_scheduled_s"]) - float(r["arrival_s"]) for r in rows
             if r["adapter"] != hot and r["first_scheduled_s"]]
    return max(waits) if waits else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / ".build/release/loratwin"))
    args = ap.parse_args()
    runs = sorted(p.parent for p in (ROOT / "traces/live").glob("d0*/requests.csv"))
    if not runs:
        print("no recorded dLoRA run under traces/live", file=sys.stderr)
        return 1
    print("| run | scheduler | req/s live / twin | TTFT p50 s | E2E p99 s | longest wait s | cold adapters' "
          "longest wait s | mode changes |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as td:
        for run in runs:
            out = Path(td) / f"{run.name}.json"
            subprocess.run([args.bin, "validate", str(run), "--output", str(out)], check=True, capture_output=True)
            m = json.loads(out.read_text())[0]["metrics"]
            sim = Path(td) / run.name
            subprocess.run([args.bin, "simulate", str(run / "scenario.yaml"), "-o", str(sim)], check=True,
                           capture_output=True)
            suffix = next((x for x in BASELINES if run.name.endswith(x)), "")
            base, sched = run.name.removesuffix(suffix), BASELINES.get(suffix, "dLoRA")

            def pair(key: str, fmt: str = "{:.2f}", m: dict = m) -> str:
                return f"{fmt.format(m[key]['live'])} / {fmt.format(m[key]['predicted'])}"

            print(f"| {base} | {sched} | {pair('requests_per_s')} | {pair('ttft_p50')} | {pair('e2e_p99')} "
                  f"| {pair('longest_wait', '{:.1f}')} | {cold_wait(run / 'requests.csv'):.1f} / "
                  f"{cold_wait(sim / 'requests.csv'):.1f} | {pair('mode_changes', '{:.0f}')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
