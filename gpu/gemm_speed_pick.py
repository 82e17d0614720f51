"""Picks the Triton skinny GEMM config to time the engine's step with, from gpu/bench_gemm.py's gemm.csv.

The pick is the config with the least summed time of the whole step sequence (the rows of shape
"step": every layer's qkv, o, gate_up and down and lm_head, one CUDA graph) over the chosen batches.
The step, not the single GEMMs, because single GEMMs summed mislead: on the H200 at e5d734f they put
tsk_n128_k128_w4_s4_sk1 first over the wide weights, a config whose step is about 20 % slower than
the best one's at batch 1-16 (gpu/results/gemm-speed-h200-e5d734f/). Only a config whose step rows at every chosen
batch have status ok counts (its GEMMs all checked against float64), so a wrong one is never
picked. The pick is printed with its time against the engine's own library (``linear_cublaslt``,
under which the decode graphs are captured, else ``linear``) over the same batches.

Usage: python3 gpu/gemm_speed_pick.py GEMM_CSV [--batches 1,8,16]
  -> prints the config's name on stdout (nothing when no config is ok at every batch) and the
  comparison on stderr. A row whose numbers do not parse is an error naming the file and line.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

BASELINES = ("linear_cublaslt", "linear")


def read_steps(path: Path) -> list[dict]:
    """The step rows of ``path``, batch and us_median parsed (NaN where empty)."""
    rows = []
    with path.open(newline="") as f:
        for line, r in enumerate(csv.DictReader(f), start=2):
            if r.get("shape") != "step":
                continue
            try:
                r["batch"] = int(r["batch"])
                r["us"] = float(r["us_median"]) if r["us_median"] else math.nan
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{path}:{line}: bad batch or us_median ({e})") from None
            rows.append(r)
    return rows


def pick(rows: list[dict], batches: set[int] | None = None) -> dict | None:
    """The best Triton config over ``batches`` (all of the rows' when None): its name, summed step
    time, per-batch times, and the baseline's; None when no config is ok at every batch."""
    want = batches if batches is not None else {r["batch"] for r in rows}
    times: dict[str, dict[int, float]] = {}
    for r in rows:
        if r["batch"] in want and r["status"] == "ok" and math.isfinite(r["us"]):
            times.setdefault(r["variant"], {})[r["batch"]] = r["us"]
    ok = {v: t for v, t in times.items() if v.startswith("tsk_") and set(t) == want and want}
    if not ok:
        return None
    best = min(ok, key=lambda v: sum(ok[v].values()))
    base = next((b for b in BASELINES if set(times.get(b, {})) == want), None)
    return {"config": best, "us": sum(ok[best].values()), "by_batch": ok[best], "baseline": base,
            "baseline_us": sum(times[base].values()) if base else None,
            "baseline_by_batch": times[base] if base else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", type=Path)
    ap.add_argument("--batches", default="", help="comma-separated batches to sum over (default: all)")
    args = ap.parse_args(argv)
    try:
        batches = {int(b) for b in args.batches.split(",") if b.strip()} or None
    except ValueError:
        ap.error(f"--batches: expected integers, got {args.batches!r}")
    try:
        p = pick(read_steps(args.csv), batches)
    except (OSError, ValueError) as e:
        print(f"gemm_speed_pick: {e}", file=sys.stderr)
        return 1
    if p is None:
        print("no Triton config ok at every batch", file=sys.stderr)
        return 0
    per = ", ".join(f"{b}: {us / 1e3:.3f} ms" for b, us in sorted(p["by_batch"].items()))
    line = f"{p['config']}: step {per}"
    if p["baseline"]:
        base = ", ".join(f"{b}: {us / 1e3:.3f}" for b, us in sorted(p["baseline_by_batch"].items()))
        line += f"; {p['baseline']} {base} ({p['baseline_us'] / p['us']:.3f}x)"
    print(line, file=sys.stderr)
    print(p["config"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
