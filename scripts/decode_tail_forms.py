#!/usr/bin/env python3
"""Other forms of the decode tail, checked on a profile's own `step_decode_varied.csv` rows.

    python3 scripts/decode_tail_forms.py [PROFILE_DIR] [--bin .build/release/loratwin]

The twin prices a decode step whose contexts differ as floor + work + tau x (max - mean) /
splits(g), one tau for graphs whose sequences split over several programs and one for the others
(docs/step-cost.md). This script prices each skewed varied row's floor and work with the twin
(`loratwin profile price`), then fits, by least squares on the other rows, the tail of each form
and reports its leave-one-out error on every row (calibration data only; no live run):

- `two tau`: the twin's form;
- `per graph`: one tau per graph size;
- `waves K`: tau x (max(P x mean / K, max) - max(P / K, 1) x mean) / splits, P the (sequence, head,
  split) programs and K the programs the GPU runs at once: the tail of a longest program that the
  others cannot hide once they fill more than one wave;
- `list K c0`: the makespan of the programs dealt in launch order (sequence fastest, then head,
  then split) to K slots, each taking c0 + its share of the context, minus the same for equal
  contexts.

The varied rows' contexts are rebuilt from their layout by gpu/common/layouts.py, as the profiler draws them. No GPU,
no torch.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import io
import math
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpu.common.layouts import varied_contexts as contexts  # noqa: E402

HEADS = 32  # Llama-2-7B
TILE = 64  # decode attention's context tile (gpu/engine/attention.py DECODE_TILE)
STEP_COLUMNS = ("iteration,mode,prefill_tokens,prefill_sequences,prefill_continuations,prefill_attention_pairs,"
                "decode_sequences,decode_context_tokens,decode_max_context,sampling_sequences,segments")
# Any scenario with a measured cost model: `profile price` reads only its engine and catalogue here.
SCENARIO = ROOT / "traces/repeats/h200-v01-low-uniform-mixed-repeat/scenario.yaml"


def splits(graph: int, target: int, max_splits: int) -> int:
    s = 1
    while graph * HEADS * s < target and s < max_splits:
        s *= 2
    return s


def load_rows(profile: Path, binary: Path) -> list[dict]:
    """The skewed varied rows with their graph, splits, contexts, measured time and the twin's
    floor + work."""
    import json

    meta = json.loads((profile / "meta.json").read_text())
    sizes = meta.get("graph_sizes") or []
    rule = meta.get("decode_attention") or {"target_programs": 512, "max_splits": 8}
    with (profile / "step_decode_varied.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    steps = [STEP_COLUMNS] + [f"{i},unmerged,0,0,0,0,{r['seqs']},{r['context_tokens']},{r['max_context']},{r['seqs']},"
                              for i, r in enumerate(rows)]
    with tempfile.TemporaryDirectory() as td:
        path = Path(td) / "steps.csv"
        path.write_text("\n".join(steps) + "\n")
        out = subprocess.run([str(binary), "profile", "price", str(SCENARIO), str(path), "--profile", str(profile)],
                             capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"decode_tail_forms.py: loratwin profile price: {out.stderr.strip()}")
    priced = list(csv.DictReader(io.StringIO(out.stdout)))
    data = []
    for r, p in zip(rows, priced, strict=True):
        n = int(r["seqs"])
        g = next((s for s in sizes if s >= n), n)
        cs = contexts(n, r["layout"])
        mean = sum(cs) / n
        if max(cs) <= mean:
            continue
        data.append({"n": n, "g": g, "S": splits(g, rule["target_programs"], rule["max_splits"]), "cs": cs,
                     "mean": mean, "layout": r["layout"], "y": float(r["median_us"]),
                     "off": float(p["decode_floor_us"]) + float(p["decode_work_us"])})
    return data


def waves(d: dict, k: float) -> float:
    p = d["n"] * HEADS * d["S"]
    return max(0.0, max(p * d["mean"] / k, max(d["cs"])) - max(p / k, 1.0) * d["mean"]) / d["S"]


def makespan(cs: list[int], graph: int, s: int, k: int, c0: float) -> float:
    seq = cs + [1] * (graph - len(cs))  # padding rows
    slots = [0.0] * k
    end = 0.0
    for sp in range(s):
        for _ in range(HEADS):
            for c in seq:
                per = math.ceil(math.ceil(c / s) / TILE) * TILE
                work = max(0, min(sp * per + per, c) - sp * per)
                t = heapq.heappop(slots) + c0 + work
                end = max(end, t)
                heapq.heappush(slots, t)
    return end


def list_schedule(d: dict, k: int, c0: float) -> float:
    u = makespan([round(d["mean"])] * d["n"], d["g"], d["S"], k, c0)
    return max(0.0, makespan(d["cs"], d["g"], d["S"], k, c0) - u)


def loo(data: list[dict], feature: Callable[[dict], float], group: Callable[[dict], object]) -> tuple[float, float]:
    """RMS and largest relative error over the rows, each priced with taus fitted without it (one
    tau per group, least squares through the origin on y - floor - work)."""
    x = [feature(d) for d in data]
    errs = []
    for i, d in enumerate(data):
        rest = [j for j in range(len(data)) if j != i and group(data[j]) == group(d)]
        den = sum(x[j] ** 2 for j in rest)
        tau = sum(x[j] * (data[j]["y"] - data[j]["off"]) for j in rest) / den if den > 0 else 0.0
        errs.append((d["off"] + tau * x[i] - d["y"]) / d["y"])
    return math.sqrt(sum(e * e for e in errs) / len(errs)), max(abs(e) for e in errs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile", nargs="?", type=Path, default=ROOT / "profiles/h200-llama2-7b-2ce38ba")
    ap.add_argument("--bin", type=Path, default=ROOT / ".build/release/loratwin")
    args = ap.parse_args()
    if not args.bin.is_file():
        raise SystemExit(f"decode_tail_forms.py: missing file: {args.bin} (swift build -c release)")
    data = load_rows(args.profile, args.bin)
    split = (lambda d: d["S"] > 1)  # noqa: E731
    forms: list[tuple[str, Callable[[dict], float], Callable[[dict], object]]] = [
        ("two tau (the twin's)", lambda d: (max(d["cs"]) - d["mean"]) / d["S"], split),
        ("per graph", lambda d: (max(d["cs"]) - d["mean"]) / d["S"], lambda d: d["g"]),
    ]
    forms += [(f"waves K={k}", lambda d, k=k: waves(d, k), split) for k in (264, 528, 792, 1056)]
    forms += [(f"list K={k} c0={c0}", lambda d, k=k, c0=c0: list_schedule(d, k, c0), split)
              for k in (132, 528, 792) for c0 in (0, 256)]
    print(f"{args.profile}: {len(data)} skewed step_decode_varied rows; leave-one-out error of the whole step")
    print(f"{'form':24} {'RMS %':>7} {'max %':>7}")
    for name, feat, grp in forms:
        rms, worst = loo(data, feat, grp)
        print(f"{name:24} {100 * rms:7.2f} {100 * worst:7.2f}")
    print("\nper row: measured - floor - work, over (max - mean) / splits = the row's own tau (us per token)")
    for g in sorted({d["g"] for d in data}):
        rows = [d for d in data if d["g"] == g]
        x = [(max(d["cs"]) - d["mean"]) / d["S"] for d in rows]
        y = [d["y"] - d["off"] for d in rows]
        tau = sum(a * b for a, b in zip(x, y, strict=True)) / sum(a * a for a in x)
        own = ", ".join(f"{d['layout']} {b / a:.2f}" for d, a, b in zip(rows, x, y, strict=True))
        print(f"graph {g:4d} (splits {rows[0]['S']}): least-squares tau {tau:.2f}; {own}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
