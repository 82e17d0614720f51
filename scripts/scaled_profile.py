#!/usr/bin/env python3
"""A copy of a step profile with its eager-step tables scaled: a diagnostic, never a calibration.

    python3 scripts/scaled_profile.py PROFILE_DIR K OUT_DIR [--tables step_tokens,step_attention,step_mixed]

Multiplies every timing column (`*_us`) of the named tables by K and writes the whole profile to
OUT_DIR (which must not exist). It answers "what would the twin predict if the eager steps cost K
times what the profile measured?" -- e.g. with K the median live / predicted eager-step ratio of
`scripts/step_errors.py`, which comes from the live runs: a factor taken from the runs the twin is
validated on, so its result says where an error comes from and is never committed as a profile
(docs/validation.md, "Clocks"). Then: `loratwin validate RUNS --profile OUT_DIR --kernel sgmv`.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path


def scale(src: Path, k: float, dst: Path, tables: list[str]) -> None:
    if dst.exists():
        raise SystemExit(f"{dst}: exists; give a new folder")
    if k <= 0:
        raise SystemExit(f"K must be positive, got {k}")
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copytree(src, tmp)
    for t in tables:
        path = tmp / f"{t}.csv"
        if not path.exists():
            shutil.rmtree(tmp)
            raise SystemExit(f"{src / (t + '.csv')}: no such table")
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))
        cols = [i for i, c in enumerate(rows[0]) if c.endswith("_us")]
        for line, r in enumerate(rows[1:], start=2):
            for i in cols:
                if r[i]:
                    try:
                        r[i] = f"{float(r[i]) * k:.3f}"
                    except ValueError:
                        shutil.rmtree(tmp)
                        where = f"{src / (t + '.csv')}:{line}: column {rows[0][i]}"
                        raise SystemExit(f"{where}: not a number: {r[i]!r}") from None
        with path.open("w", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerows(rows)
    tmp.rename(dst)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profile", type=Path)
    ap.add_argument("k", type=float)
    ap.add_argument("out", type=Path)
    ap.add_argument("--tables", default="step_tokens,step_attention,step_mixed")
    a = ap.parse_args(argv)
    scale(a.profile, a.k, a.out, [t for t in a.tables.split(",") if t])
    print(f"wrote {a.out}: {a.tables} x {a.k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
