#!/usr/bin/env python3
"""Which factor should a CUDA graph get that the closed loop did not reach? Calibration data only.

    python3 scripts/closed_loop_extrapolation.py PROFILE... [--inside 8,32] [--variant sgmv] [--twin PATH]

The closed-loop correction (`DecodeCorrection`, docs/step-cost.md) scales a decode-only step by its
graph's factor, the median over the closed loop's steps of that graph of measured / priced. Two
leases (15e17ea-1, e82f051-1) ran the loop on graphs 8-32 only, so graphs 1-4 and 40-64 had no
factor. This asks the profiles whose loop reached every graph (61ed086, 33bb776, 7b18746, 30a9ee2)
what a loop on graphs 8-32 alone should have said about the others: for each profile, the factors
of the graphs inside `--inside` (8..32) stand for such a loop, and each rule predicts the factors
of the graphs outside it, which the same loop measured:

- ``one``: factor 1 (the twin until this script's measurement);
- ``nearest``: the factor of the nearest graph inside (8 below, 32 above);
- ``median``: the median of the inside graphs' factors;
- ``mean``: their mean;
- ``median below, one above``: their median for the graphs below the range, 1 above it (the
  twin's rule, `DecodeCorrection`: the best of the others on each side).

Prints, per rule, the mean and largest absolute error over the graphs below the range, above it,
and all outside. Reads the factors from `loratwin profile check PROFILE` (its closed-loop lines).
No validation run is read.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES = ("one", "nearest", "median", "mean", "median below, one above")
LINE = re.compile(r"^\s*graph (\d+): (\d+) steps, factor ([0-9.]+)")


def parse_factors(text: str, variant: str) -> dict[int, float]:
    """Graph -> factor from `loratwin profile check` output, the block of closed_loop/<variant>."""
    out: dict[int, float] = {}
    inside = False
    for line in text.splitlines():
        if "closed_loop/" in line and "steps.csv" in line:
            inside = f"closed_loop/{variant}/steps.csv" in line
            continue
        if not inside:
            continue
        m = LINE.match(line)
        if m:
            out[int(m.group(1))] = float(m.group(3))
        elif line.strip() and not line.startswith(" "):
            inside = False
    return out


def predict(rule: str, inside: dict[int, float], graph: int) -> float:
    if rule == "one":
        return 1.0
    if rule == "nearest":
        return inside[min(inside, key=lambda g: (abs(g - graph), g))]
    if rule == "median":
        return statistics.median(inside.values())
    if rule == "mean":
        return statistics.fmean(inside.values())
    if rule == "median below, one above":
        return statistics.median(inside.values()) if graph < min(inside) else 1.0
    raise ValueError(f"unknown rule {rule!r}")


def evaluate(profiles: dict[str, dict[int, float]], lo: int, hi: int) -> dict[str, dict[str, list[float]]]:
    """Rule -> {"below": errors, "above": errors}: |measured - predicted| for every outside graph."""
    res = {r: {"below": [], "above": []} for r in RULES}
    for name, f in profiles.items():
        inside = {g: v for g, v in f.items() if lo <= g <= hi}
        if not inside:
            raise ValueError(f"{name}: no closed-loop factor between graphs {lo} and {hi}")
        for g, v in sorted(f.items()):
            if lo <= g <= hi:
                continue
            for r in RULES:
                res[r]["below" if g < lo else "above"].append(abs(v - predict(r, inside, g)))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profiles", nargs="+", type=Path)
    ap.add_argument("--inside", default="8,32", help="LO,HI: the graphs a short loop covers")
    ap.add_argument("--variant", default="sgmv")
    ap.add_argument("--twin", default=os.environ.get("LORATWIN_BIN", str(ROOT / ".build/release/loratwin")))
    args = ap.parse_args(argv)
    try:
        lo, hi = (int(x) for x in args.inside.split(","))
    except ValueError:
        ap.error(f"--inside must be LO,HI (two graph sizes), got {args.inside!r}")
    profiles = {}
    for p in args.profiles:
        out = subprocess.run([args.twin, "profile", "check", str(p)], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{p}: loratwin profile check failed: {out.stderr.strip()[:300]}", file=sys.stderr)
            return 1
        f = parse_factors(out.stdout, args.variant)
        if not any(g < lo or g > hi for g in f):
            print(f"{p}: its closed loop ({args.variant}) has no graph outside {lo}-{hi}; left out", file=sys.stderr)
            continue
        profiles[p.name] = f
        print(f"{p.name}: " + ", ".join(f"{g}: {v:.3f}" for g, v in sorted(f.items())))
    if not profiles:
        print("no profile with factors outside the range", file=sys.stderr)
        return 1
    res = evaluate(profiles, lo, hi)
    print(f"\nfactor of graphs outside {lo}-{hi} predicted from those inside ({len(profiles)} profiles): "
          "mean / largest absolute error")
    print("| rule | below | above | all outside |\n| --- | --- | --- | --- |")
    for r in RULES:
        b, a = res[r]["below"], res[r]["above"]
        cells = [f"{statistics.fmean(x):.3f} / {max(x):.3f}" if x else "-" for x in (b, a, b + a)]
        print(f"| {r} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
