#!/usr/bin/env python3
"""Grid or fit for the LoRA of decode steps? A check on calibration data alone.

    python3 scripts/lora_decode_fit.py [PROFILE_A PROFILE_B ...]   (default: the H200 pairs of one engine)

`lora_step.csv` holds, per kernel, the LoRA part of a step (the step with adapters minus the same
step without) over tokens x segments x rank. Its decode cells (tokens up to 128, through the
decode CUDA graphs) are differences of two 5-11 ms timings around a part of about 1 ms. For each
ordered pair of profiles of one engine, this prints the RMS relative error with which profile A
predicts profile B's decode cells: by A's own cells (the twin's grid) and by A's least-squares
line us ~ 1 + tokens + segments + tokens x rank over those cells. numpy only; no GPU.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PAIRS = (("h200-llama2-7b-3222a4e", "h200-llama2-7b-5d28821"), ("h200-llama2-7b-9e806b3", "h200-llama2-7b-32bd308"))
DECODE_TOP = 128


def cells(profile: Path) -> dict[tuple[str, int, int, int], float]:
    path = profile / "lora_step.csv"
    out = {}
    with path.open(newline="") as f:
        for line, r in enumerate(csv.DictReader(f), start=2):
            try:
                key = (r["kernel"], int(r["tokens"]), int(r["segments"]), int(r["rank"]))
                out[key] = float(r["median_us"])
            except (KeyError, TypeError, ValueError) as e:
                raise SystemExit(f"{path}:{line}: bad row ({e})") from e
    return out


def features(k: tuple[str, int, int, int]) -> list[float]:
    return [1.0, k[1], k[2], k[1] * k[3]]


def compare(a: dict, b: dict, kernel: str) -> tuple[int, float, float]:
    """(cells, grid RMS %, fit RMS %) of A predicting B's decode cells of ``kernel``."""
    keys = sorted(k for k in a if k[0] == kernel and k[1] <= DECODE_TOP and k in b)
    if len(keys) < 8:
        return len(keys), float("nan"), float("nan")
    x = np.array([features(k) for k in keys])
    coef, *_ = np.linalg.lstsq(x, np.array([a[k] for k in keys]), rcond=None)
    truth = np.array([b[k] for k in keys])
    grid = (np.array([a[k] for k in keys]) - truth) / truth
    fit = (x @ coef - truth) / truth
    return len(keys), 100 * float(np.sqrt((grid ** 2).mean())), 100 * float(np.sqrt((fit ** 2).mean()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profiles", nargs="*", help="profile folders in pairs (A B A B ...)")
    args = ap.parse_args(argv)
    if len(args.profiles) % 2:
        ap.error("give profiles in pairs")
    pairs = ([(Path(args.profiles[i]), Path(args.profiles[i + 1])) for i in range(0, len(args.profiles), 2)]
             or [(ROOT / "profiles" / a, ROOT / "profiles" / b) for a, b in DEFAULT_PAIRS])
    print("| A | B | kernel | cells | grid of A, RMS % | fit of A, RMS % |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for pa, pb in pairs:
        a, b = cells(pa), cells(pb)
        for x, y, nx, ny in ((a, b, pa.name, pb.name), (b, a, pb.name, pa.name)):
            for kernel in sorted({k[0] for k in x} & {k[0] for k in y}):
                n, g, f = compare(x, y, kernel)
                print(f"| {nx} | {ny} | {kernel} | {n} | {g:.1f} | {f:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
