"""Writing a benchmark's rows: CSV and JSON side by side, each atomically (temp file, then rename),
and the one-line-per-row table the kernel benches print last (gpu/bench_prologues.py,
gpu/bench_epilogues.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

# the columns of a kernel bench's rows (gpu/bench_prologues.py, gpu/bench_epilogues.py)
KERNEL_FIELDS = ["shape", "n", "k", "m", "variant", "status", "rel_err", "us", "pct_copy_bw", "programs", "note"]


def write_rows(out: Path, stem: str, fields: list[str], rows: list[dict], payload: dict) -> None:
    """``out/stem.csv`` (the rows, ``fields`` as columns, missing values empty) and ``out/stem.json``
    (``payload``), each written to a temp file and renamed, so a failure leaves no half-written file."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f"{stem}.csv.tmp"
    with tmp.open("w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=fields)
        wr.writeheader()
        for r in rows:
            wr.writerow({k: r.get(k, "") for k in fields})
    tmp.replace(out / f"{stem}.csv")
    tmp = out / f"{stem}.json.tmp"
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(out / f"{stem}.json")


def print_rows(rows: list[dict], bandwidth_Bps: float) -> None:
    """One line per row: shape, rows, variant, µs per call and % of the copy bandwidth (or the
    status), the error against float64."""
    print(f"copy bandwidth {bandwidth_Bps / 1e12:.2f} TB/s; us per call (% of copy bandwidth)")
    for r in rows:
        t = f"{r['us']:9.1f} us {r['pct_copy_bw']:5.1f}%" if r.get("status") == "ok" else r.get("status")
        print(f"{r['shape']:8s} m={r['m']:3d} {r['variant']:32s} {t}  err={r.get('rel_err', float('nan')):.1e}")
