#!/usr/bin/env python3
"""Per-iteration look at recorded live runs (traces/live/<run>/): where the time goes, and whether
steps that overlap an adapter load are slower. Reads only committed files; no GPU, no torch.

Usage: python3 scripts/live_steps.py [RUN_DIR ...]   (default: every run under traces/live)
"""

from __future__ import annotations

import csv
import json
import statistics as st
import sys
from pathlib import Path


def analyse(run: Path) -> None:
    rows = list(csv.DictReader(open(run / "iterations.csv")))
    meta = json.loads((run / "run.json").read_text())
    loads = [(ld["ordered_s"], ld["done_s"]) for ld in meta.get("loads", [])]
    total = sum(float(r["duration_s"]) for r in rows)
    decode = [float(r["duration_s"]) for r in rows if int(r["prefill_tokens"]) == 0]
    mixed = [r for r in rows if int(r["prefill_tokens"]) > 0]

    def overlaps(r):
        s, d = float(r["start_s"]), float(r["duration_s"])
        return any(a < s + d and b > s for a, b in loads)

    free = [float(r["duration_s"]) * 1e3 for r in mixed if not overlaps(r)]
    busy = [float(r["duration_s"]) * 1e3 for r in mixed if overlaps(r)]
    mixed_s = sum(float(r["duration_s"]) for r in mixed)
    print(f"{run.name}: {len(rows)} iterations, {total:.1f} s; decode-only {len(decode)} "
          f"(median {st.median(decode) * 1e3:.1f} ms); mixed {len(mixed)} ({mixed_s:.1f} s, "
          f"{100 * mixed_s / total:.0f} % of the time)")
    if free:
        print(f"  mixed steps with no adapter load in flight: {len(free)}, median {st.median(free):.1f} ms"
              + (f"; with a load in flight: {len(busy)}, median {st.median(busy):.1f} ms" if busy else ""))
    windows = []
    for w in range(0, int(max(float(r["start_s"]) for r in rows)) + 10, 10):
        v = [float(r["duration_s"]) / int(r["prefill_tokens"]) for r in mixed
             if w <= float(r["start_s"]) < w + 10 and int(r["prefill_tokens"]) >= 256]
        if v:
            windows.append(f"{w}-{w + 10} s: {st.median(v) * 1e6:.0f}")
    if windows:
        print("  mixed steps of 256+ prefill tokens, median us per prefill token, by start: " + "; ".join(windows))


def main(argv: list[str]) -> int:
    runs = [Path(a) for a in argv] or sorted(p.parent for p in Path("traces/live").glob("*/iterations.csv"))
    for run in runs:
        analyse(run)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
