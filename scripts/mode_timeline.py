#!/usr/bin/env python3
"""When a dLoRA run changes mode, live and in the twin, side by side.

    python3 scripts/mode_timeline.py RUN_DIR [RUN_DIR ...] [--twin .build/release/loratwin]

For each recorded run (traces/live/<run> or traces/repeats/<run>; docs/live-run-format.md) the
start of every iteration whose mode differs from the one before (the run starts unmerged, as
`loratwin validate` counts mode changes), from its iterations.csv, and the same from the twin's
simulation of the run's scenario (`loratwin simulate SCENARIO --output DIR`). Each live change is
paired with the nearest twin change of the same kind (merge or unmerge) within ``--window``
seconds; what is left unpaired on either side is what the counts differ by. No GPU, no torch.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def changes(iterations_csv: Path) -> list[tuple[float, str]]:
    """(start_s, new mode) of every iteration whose mode differs from the previous one's."""
    out: list[tuple[float, str]] = []
    last = "unmerged"
    with iterations_csv.open() as f:
        for r in csv.DictReader(f):
            if r["mode"] != last:
                out.append((float(r["start_s"]), r["mode"]))
                last = r["mode"]
    return out


def pair(live: list[tuple[float, str]], twin: list[tuple[float, str]], window: float
         ) -> tuple[list[tuple[float, float, str]], list[tuple[float, str]], list[tuple[float, str]]]:
    """Greedy in time order: each live change takes the nearest unused twin change of the same
    mode within ``window`` s. Returns (pairs (live s, twin s, mode), live unpaired, twin unpaired)."""
    used: set[int] = set()
    pairs, live_only = [], []
    for t, m in live:
        best = None
        for j, (u, n) in enumerate(twin):
            if j in used or n != m or abs(u - t) > window:
                continue
            if best is None or abs(u - t) < abs(twin[best][0] - t):
                best = j
        if best is None:
            live_only.append((t, m))
        else:
            used.add(best)
            pairs.append((t, twin[best][0], m))
    twin_only = [c for j, c in enumerate(twin) if j not in used]
    return pairs, live_only, twin_only


def simulate(run: Path, twin: Path, work: Path) -> Path:
    out = work / run.name
    r = subprocess.run([str(twin), "simulate", str(run / "scenario.yaml"), "--output", str(out)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"loratwin simulate {run}: {r.stderr.strip()}")
    return out / "iterations.csv"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--twin", type=Path, default=ROOT / ".build/release/loratwin")
    ap.add_argument("--window", type=float, default=1.0, help="seconds within which two changes pair (default 1)")
    args = ap.parse_args(argv)
    if not args.twin.exists():
        raise SystemExit(f"{args.twin}: not found; run `swift build -c release` first")
    print("| run | live | twin | paired (live / twin s) | live only | twin only |")
    print("|---|---:|---:|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for run in args.runs:
            live = changes(run / "iterations.csv")
            twin = changes(simulate(run, args.twin, Path(tmp)))
            pairs, lo, to = pair(live, twin, args.window)
            fmt = lambda cs: ", ".join(f"{m[0]} {t:.1f}" for t, m in cs) or "-"  # noqa: E731
            print(f"| {run.name} | {len(live)} | {len(twin)} | "
                  + ", ".join(f"{m[0]} {a:.1f}/{b:.1f}" for a, b, m in pairs) + f" | {fmt(lo)} | {fmt(to)} |")
    print()
    print("m = merge, u = unmerge; times are iteration starts in seconds from the run's start.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
