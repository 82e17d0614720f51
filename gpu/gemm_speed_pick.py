"""Picks the Triton skinny GEMM configs to time the engine's step with, from gpu/bench_gemm.py's gemm.csv.

Two picks, as gpu/bench_engine.py --decode-gemm WIDE,NARROW takes them: WIDE, the config with the
least summed median time over the wide weights (every shape with more than NARROW_N output columns:
qkv, gate_up, lm_head in Llama-2-7B) at every batch of the CSV; NARROW, the same over the others (o,
down). Only a config whose every row in its group has status ok counts (a wrong or failed one never
is picked). Each pick is printed with its time against the engine's own GEMM (``linear_cublaslt``,
the library the decode graphs are captured under, else ``linear``) summed over the same rows.

Usage: python3 gpu/gemm_speed_pick.py GEMM_CSV   -> prints ``WIDE,NARROW`` on stdout (nothing when
no config is ok in a group) and the comparison on stderr. A row whose numbers do not parse is an
error naming the file and line.
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

NARROW_N = 8192  # as gpu/bench_engine.py NARROW_N
BASELINES = ("linear_cublaslt", "linear")


def read_rows(path: Path) -> list[dict]:
    """The single-GEMM rows of ``path`` (not the "step" rows), n and us_median parsed."""
    rows = []
    with path.open(newline="") as f:
        for line, r in enumerate(csv.DictReader(f), start=2):
            if r.get("shape") == "step":
                continue
            try:
                r["n"] = int(r["n"])
                r["us"] = float(r["us_median"]) if r["us_median"] else float("nan")
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{path}:{line}: bad n or us_median ({e})") from None
            rows.append(r)
    return rows


def pick(rows: list[dict]) -> dict[str, dict]:
    """For each group ("wide", "narrow"): the best config's name, its summed time and the
    baseline's over the same rows (None where no config is ok on every row of the group)."""
    cells: dict[str, set] = defaultdict(set)  # group -> {(shape, batch)}
    times: dict[str, dict[str, dict]] = defaultdict(lambda: defaultdict(dict))  # group -> variant -> cell -> us
    for r in rows:
        group = "wide" if r["n"] > NARROW_N else "narrow"
        cell = (r["shape"], r["batch"])
        cells[group].add(cell)
        if r["status"] == "ok" and r["us"] == r["us"]:  # not NaN
            times[group][r["variant"]][cell] = r["us"]
    out = {}
    for group in ("wide", "narrow"):
        want = cells[group]
        ok = {v: sum(t.values()) for v, t in times[group].items() if v.startswith("tsk_") and set(t) == want}
        base = next((b for b in BASELINES if set(times[group].get(b, {})) == want and want), None)
        best = min(ok, key=ok.get) if ok else None
        out[group] = None if best is None else {
            "config": best, "us": ok[best], "baseline": base,
            "baseline_us": sum(times[group][base].values()) if base else None}
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.split("\n\n")[-2], file=sys.stderr)
        return 2
    try:
        picks = pick(read_rows(Path(args[0])))
    except (OSError, ValueError) as e:
        print(f"gemm_speed_pick: {e}", file=sys.stderr)
        return 1
    for group, p in picks.items():
        if p is None:
            print(f"{group}: no Triton config ok on every row", file=sys.stderr)
        else:
            ratio = ""
            if p["baseline"]:
                ratio = f", {p['baseline']} {p['baseline_us']:.1f} us ({p['baseline_us'] / p['us']:.3f}x)"
            print(f"{group}: {p['config']} {p['us']:.1f} us summed{ratio}", file=sys.stderr)
    if all(picks.values()):
        print(f"{picks['wide']['config']},{picks['narrow']['config']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
