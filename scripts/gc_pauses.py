#!/usr/bin/env python3
"""How much the garbage collector's full passes in recorded live runs weigh on the TTFT error.

    python3 scripts/gc_pauses.py RUN_DIR_OR_FOLDER... [--bin .build/release/loratwin]

The replay recorded, in run.json ``runtime.gc``, the collector's passes during each run; a full
(generation-2) pass stalls the whole loop, and the iteration it falls in is many times its
neighbours. Until the runs after lease e82f051-1 (gpu/common/runtime_stats.py ``quiet_gc``) about
half the recordings had one. For every run with a full pass this finds the stalled decode-only
iterations (at least 50 ms and five times the median of the ten decode-only iterations before), simulates the run's
scenario (`loratwin simulate`, as `loratwin validate` does) and prints the TTFT mean and p99,
live and predicted, and their SMAPE, over all requests and over the requests that were not
waiting for their first token during a stall (arrival before its end, first token after its
start). The twin never sees a stall, so the second pair is what it could be judged on had the
engine not stalled; it is a diagnosis, not a metric of `loratwin validate`. No GPU, no torch.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from queue_windows import phases, quantile, read_requests, simulated_requests  # noqa: E402

STALL_S = 0.05  # an iteration at least this long ...
STALL_RATIO = 5.0  # ... and this many times the median of the ten before it


def full_passes(run: Path) -> tuple[int, float]:
    """(full collector passes, longest pass in seconds) from run.json; (0, 0) without the record."""
    try:
        gc = json.loads((run / "run.json").read_text()).get("runtime", {}).get("gc", {})
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"gc_pauses.py: {run / 'run.json'}: {e}") from None
    passes = gc.get("passes", [0, 0, 0])
    return int(passes[2]) if len(passes) == 3 else 0, float(gc.get("longest_s", 0.0))


def stalls(iterations: list[dict[str, str]]) -> list[tuple[float, float]]:
    """(start, end) in seconds of the decode-only iterations that stalled, against the decode-only
    iterations before them (a step with a prefill chunk is long by its work, not by a stall)."""
    out = []
    decode: list[float] = []
    for r in iterations:
        if r["prefill_tokens"] != "0":
            continue
        d = float(r["duration_s"])
        before = decode[-10:]
        decode.append(d)
        if before and d >= STALL_S and d >= STALL_RATIO * statistics.median(before):
            s = float(r["start_s"])
            out.append((s, s + d))
    return out


def smape(live: float, pred: float) -> float:
    return 0.0 if live == pred == 0 else 200 * abs(pred - live) / (abs(pred) + abs(live))


def ttft_pair(live: dict, twin: dict, ids: list[str]) -> tuple[float, float, float, float]:
    """(live mean, twin mean, live p99, twin p99) of TTFT over the requests finished on both sides."""
    lt, tt = [], []
    for rid in ids:
        lp, tp = phases(live[rid]), phases(twin[rid]) if rid in twin else None
        if lp is not None and tp is not None:
            lt.append(lp[0])
            tt.append(tp[0])
    lt.sort()
    tt.sort()
    return statistics.fmean(lt), statistics.fmean(tt), quantile(lt, 0.99), quantile(tt, 0.99)


def run_dirs(paths: list[Path]) -> list[Path]:
    out = []
    for p in paths:
        if (p / "run.json").exists():
            out.append(p)
        elif p.is_dir():
            out += sorted(d for d in p.iterdir() if (d / "run.json").exists())
        else:
            raise SystemExit(f"gc_pauses.py: {p}: not a run folder or a folder of runs")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--bin", type=Path, default=ROOT / ".build/release/loratwin")
    args = ap.parse_args(argv)
    runs = run_dirs(args.runs)
    print("| run | full passes | longest pass ms | stalled iterations (start s: ms) | requests left out "
          "| TTFT mean SMAPE % (all / without them) | TTFT p99 SMAPE % (all / without them) |")
    print("| --- | ---: | ---: | --- | ---: | --- | --- |")
    with_pass = 0
    sums = [0.0, 0.0, 0.0, 0.0]
    for run in runs:
        n, longest = full_passes(run)
        if n == 0:
            continue
        with_pass += 1
        try:
            with (run / "iterations.csv").open(newline="") as f:
                its = list(csv.DictReader(f))
        except OSError as e:
            raise SystemExit(f"gc_pauses.py: {run / 'iterations.csv'}: {e.strerror}") from None
        win = stalls(its)
        live = read_requests(run / "requests.csv")
        twin = simulated_requests(run, args.bin, "gc_pauses.py")
        ids = list(live)
        waiting = {rid for rid in ids if phases(live[rid]) is not None and any(
            float(live[rid]["arrival_s"]) < e and float(live[rid]["first_token_s"]) > s for s, e in win)}
        kept = [rid for rid in ids if rid not in waiting]
        a = ttft_pair(live, twin, ids)
        k = ttft_pair(live, twin, kept)
        cells = [smape(a[0], a[1]), smape(k[0], k[1]), smape(a[2], a[3]), smape(k[2], k[3])]
        sums = [x + y for x, y in zip(sums, cells, strict=True)]
        stalled = ", ".join(f"{a:.2f}: {(b - a) * 1e3:.0f}" for a, b in win) or "0"
        print(f"| {run.name} | {n} | {longest * 1e3:.0f} | {stalled} | {len(waiting)} "
              f"| {cells[0]:.1f} / {cells[1]:.1f} | {cells[2]:.1f} / {cells[3]:.1f} |")
    if with_pass:
        m = [x / with_pass for x in sums]
        print(f"| mean over {with_pass} of {len(runs)} runs | | | | "
              f"| {m[0]:.1f} / {m[1]:.1f} | {m[2]:.1f} / {m[3]:.1f} |")
    else:
        print(f"no full collector pass in {len(runs)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
