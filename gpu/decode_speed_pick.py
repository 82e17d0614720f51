"""Which decode-attention configuration gpu/decode_speed.sh times in the whole step.

    python3 gpu/decode_speed_pick.py DIR/decode_attention.csv

Reads every configuration that gpu/bench_decode_attention.py timed and, among those the engine can
run as its default (sequence-fastest launch order, and at each batch the split count the engine
picks itself, ``decode_splits``), prints the tile, warps and stages (``TILE,WARPS,STAGES``, for
``gpu/bench_engine.py --decode-attention``) of the one with the least time summed over the
benchmarked cases, each case's time relative to the engine default's there, when that sum is at
least MARGIN under the default's; nothing otherwise (the reason on stderr). One configuration for
every batch, as the engine has one. CSVs written while the bench also swept a several-heads kernel
(a ``heads`` column, e.g. gpu/results/decode-speed-h200-30a9ee2/) are read too: their rows of more
than one head a program are left out, as the engine no longer has that kernel.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

MARGIN = 0.03  # 3 %: less is within the bench's repeat-to-repeat spread
DEFAULT = (64, 4, 2)  # the STAGES loop's tile, warps, stages: the engine's before DECODE_PREFETCH
HEADS = 32  # Llama-2-7B, the bench's shape
# gpu/engine/attention.py decode_splits's rule while the engine ran the STAGES loop, which this picks for
# (since decode attention runs one warp a program: 1,024 and 16, then 768 and 16 from 40255a5)
TARGET_PROGRAMS, MAX_SPLITS = 512, 8


def engine_splits(batch: int) -> int:
    """The split count the engine picks at this batch (attention.decode_splits, torch-free here)."""
    s = 1
    while batch * HEADS * s < TARGET_PROGRAMS and s < MAX_SPLITS:
        s *= 2
    return s


def pick(rows: list[dict[str, str]]) -> tuple[str | None, str]:
    """(TILE,WARPS,STAGES or None, why) from decode_attention.csv's rows; ValueError naming the
    line (the header is line 1) of a row whose numbers do not parse."""
    times: dict[tuple[int, int, int], dict[tuple[int, int], float]] = {}
    for line, r in enumerate(rows, start=2):
        if not r.get("us") or r.get("head_fast") not in ("0", None) or r.get("prefetch") not in ("0", None):
            continue  # the head-fastest order, or the hand-pipelined loop (--family prefetch): not STAGES configs
        try:
            if r.get("heads") is not None and int(r["heads"]) != 1:  # an older CSV's several-heads kernel
                continue
            b, ctx, splits = int(r["batch"]), int(r["context"]), int(r["splits"])
            cfg = (int(r["tile"]), int(r["warps"]), int(r["stages"]))
            us = float(r["us"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"line {line}: {e}") from None
        if splits == engine_splits(b):
            times.setdefault(cfg, {})[(b, ctx)] = us
    base = times.get(DEFAULT)
    if not base:
        return None, "the engine default was not timed"
    cases = sorted(base)
    score = {cfg: sum(t[c] / base[c] for c in cases) / len(cases) for cfg, t in times.items() if set(cases) <= set(t)}
    best = min(score, key=score.get)
    label = ", ".join(f"{b}x{c}" for b, c in cases)
    if score[best] > 1 - MARGIN:
        return None, f"best {best} at {score[best]:.3f} of the default's time over {label}"
    return ",".join(map(str, best)), f"{best} at {score[best]:.3f} of the default's time over {label}"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with Path(argv[0]).open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        print(f"{argv[0]}: {e.strerror}", file=sys.stderr)
        return 1
    try:
        cfg, why = pick(rows)
    except ValueError as e:
        print(f"{argv[0]}: {e}", file=sys.stderr)
        return 1
    print(why, file=sys.stderr)
    if cfg:
        print(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
