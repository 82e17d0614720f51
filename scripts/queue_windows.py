#!/usr/bin/env python3
"""Where a run's latency error builds up: live against the twin, by arrival window.

    python3 scripts/queue_windows.py RUN_DIR [--window 5] [--quantiles] [--bin .build/release/loratwin]

Simulates the run's scenario (`loratwin simulate RUN_DIR/scenario.yaml -o TMP`: the same trace,
engine configuration and cost model as `loratwin validate`) and, for the requests that arrived in
each window of WINDOW seconds, prints the mean TTFT, the mean wait for a first schedule (arrival to
first_scheduled_s) and the mean decode phase (first token to finish), live and predicted. A twin
whose steps are right on average but dear in the busy stretch shows here as a wait that grows
faster than the live one while the queue builds. `--quantiles` prints instead the TTFT's
quantiles from p10 to p99, live and predicted, and the share of requests whose first token came
within the live median: where the distribution has a cliff at its middle (a run at the queueing
knee, half its requests served at once and half after a wait), the median jumps across it with a
point or two of that share, while the quantiles either side agree. No GPU, no torch.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def read_requests(path: Path) -> dict[str, dict[str, str]]:
    """request_id -> row; SystemExit naming the file when it or a column is missing."""
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise SystemExit(f"queue_windows.py: {path}: {e.strerror}") from None
    need = ("request_id", "arrival_s", "first_scheduled_s", "first_token_s", "finish_s")
    if rows and any(c not in rows[0] for c in need):
        raise SystemExit(f"queue_windows.py: {path}: needs the columns {', '.join(need)}")
    return {r["request_id"]: r for r in rows}


def simulated_requests(run: Path, binary: Path, caller: str = "queue_windows.py") -> dict[str, dict[str, str]]:
    """The twin's requests for a recorded run: `loratwin simulate RUN/scenario.yaml -o TMP` (the same
    trace, engine configuration and cost model as `loratwin validate`), read back by request_id."""
    with tempfile.TemporaryDirectory() as td:
        r = subprocess.run([str(binary), "simulate", str(run / "scenario.yaml"), "-o", td],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{caller}: loratwin simulate {run}: {r.stderr.strip()}")
        return read_requests(Path(td) / "requests.csv")


def phases(r: dict[str, str]) -> tuple[float, float, float] | None:
    """(TTFT, wait for the first schedule, decode phase) in seconds; None for an unfinished request."""
    try:
        a, s, t, f = (float(r[k]) for k in ("arrival_s", "first_scheduled_s", "first_token_s", "finish_s"))
    except (ValueError, TypeError):
        return None
    return t - a, s - a, f - t


def windows(live: dict[str, dict[str, str]], twin: dict[str, dict[str, str]], width: float) -> list[str]:
    """One line per arrival window with at least one request finished on both sides."""
    groups: dict[int, list[tuple[tuple[float, float, float], tuple[float, float, float]]]] = {}
    for rid, lr in live.items():
        tr = twin.get(rid)
        lp, tp = phases(lr), phases(tr) if tr else None
        if lp is None or tp is None:
            continue
        groups.setdefault(int(float(lr["arrival_s"]) // width), []).append((lp, tp))
    lines = [f"{'arrivals s':>12} {'n':>4} | {'TTFT live':>9} {'twin':>6} | {'wait live':>9} {'twin':>6} "
             f"| {'decode live':>11} {'twin':>6}"]
    for w in sorted(groups):
        g = groups[w]

        def m(side: int, i: int, g=g) -> float:
            return statistics.mean(x[side][i] for x in g)

        lines.append(f"{w * width:5.0f}-{(w + 1) * width:<6.0f} {len(g):4d} | {m(0, 0):9.2f} {m(1, 0):6.2f} | "
                     f"{m(0, 1):9.2f} {m(1, 1):6.2f} | {m(0, 2):11.2f} {m(1, 2):6.2f}")
    return lines


QUANTILES = (0.1, 0.25, 0.4, 0.45, 0.5, 0.55, 0.6, 0.75, 0.9, 0.99)


def quantile(values: list[float], q: float) -> float:
    """The q-quantile of values, interpolated between order statistics as docs/metrics.md defines it."""
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def ttft_quantiles(live: dict[str, dict[str, str]], twin: dict[str, dict[str, str]]) -> list[str]:
    """TTFT quantiles of the requests finished on each side, live and predicted, and the share of
    each side's requests with a TTFT at most the live median."""
    sides = [[p[0] for p in map(phases, rows.values()) if p is not None] for rows in (live, twin)]
    if not all(sides):
        return ["no finished request on one side"]
    lines = [f"{'TTFT':>6} | {'live s':>8} {'twin s':>8}"]
    for q in QUANTILES:
        lines.append(f"p{100 * q:<5g} | {quantile(sides[0], q):8.3f} {quantile(sides[1], q):8.3f}")
    med = quantile(sides[0], 0.5)
    share = [100 * sum(x <= med for x in side) / len(side) for side in sides]
    lines.append(f"share with TTFT <= the live median ({med:.3f} s): live {share[0]:.1f} %, twin {share[1]:.1f} %")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--window", type=float, default=5.0, help="seconds of arrivals per line")
    ap.add_argument("--quantiles", action="store_true", help="TTFT quantiles instead of arrival windows")
    ap.add_argument("--bin", type=Path, default=ROOT / ".build/release/loratwin")
    args = ap.parse_args()
    if args.window <= 0:
        ap.error("--window must be positive")
    if not args.bin.is_file():
        raise SystemExit(f"queue_windows.py: missing file: {args.bin} (swift build -c release)")
    live = read_requests(args.run / "requests.csv")
    twin = simulated_requests(args.run, args.bin)
    print("\n".join(ttft_quantiles(live, twin) if args.quantiles else windows(live, twin, args.window)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
