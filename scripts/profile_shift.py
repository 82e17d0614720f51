#!/usr/bin/env python3
"""How far apart profiles of one engine are: per table, each profile's mean log deviation from the
group over the cells every profile has (a systematic shift), and the cell-by-cell spread.

    python3 scripts/profile_shift.py PROFILE_DIR PROFILE_DIR [...] [--tables step_decode,step_tokens]

Calibration data only (the profiles' own tables); no live run. Stdlib only.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from pathlib import Path

TIMING = {"median_us", "p10_us", "p90_us", "reps"}


def cells(path: Path) -> dict[tuple[str, ...], float]:
    """The table's medians by their key columns (every column but the timing ones); a row without
    a positive number in ``median_us`` stops the script naming the file, line and column."""
    with path.open() as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "median_us" not in reader.fieldnames:
            raise SystemExit(f"{path}:1: no median_us column")
        keys = [k for k in reader.fieldnames if k not in TIMING]
        out = {}
        for line, r in enumerate(reader, start=2):
            try:
                v = float(r["median_us"])
            except (TypeError, ValueError):
                v = math.nan
            if not v > 0:
                raise SystemExit(f"{path}:{line}: median_us: expected a positive number, got {r['median_us']!r}")
            out[tuple(r[k] for k in keys)] = v
    return out


def shifts(tables: list[dict[tuple[str, ...], float]]) -> tuple[list[float], float, int]:
    """(per-profile mean log deviation from the group, pooled cell-by-cell sd, common cells)."""
    common = set.intersection(*(set(t) for t in tables)) if tables else set()
    if len(tables) < 2 or not common:
        return [math.nan] * len(tables), math.nan, len(common)
    dev: list[list[float]] = [[] for _ in tables]
    for k in common:
        logs = [math.log(t[k]) for t in tables]
        m = statistics.fmean(logs)
        for i, x in enumerate(logs):
            dev[i].append(x - m)
    flat = [d for ds in dev for d in ds]
    sd = math.sqrt(sum(d * d for d in flat) / (len(common) * (len(tables) - 1)))
    return [statistics.fmean(ds) for ds in dev], sd, len(common)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profiles", nargs="+", type=Path)
    ap.add_argument("--tables", default="step_decode,step_tokens")
    args = ap.parse_args(argv)
    if len(args.profiles) < 2:
        ap.error("give at least two profiles")
    names = [p.name for p in args.profiles]
    print("| table | cells | " + " | ".join(names) + " | cell sd |")
    print("| --- | ---: | " + " | ".join("---:" for _ in names) + " | ---: |")
    for t in [x for x in args.tables.split(",") if x]:
        missing = [str(p / f"{t}.csv") for p in args.profiles if not (p / f"{t}.csv").exists()]
        if missing:
            print(f"{', '.join(missing)}: no such table", file=sys.stderr)
            return 1
        s, sd, n = shifts([cells(p / f"{t}.csv") for p in args.profiles])
        print(f"| {t} | {n} | " + " | ".join(f"{100 * x:+.1f} %" for x in s) + f" | {100 * sd:.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
