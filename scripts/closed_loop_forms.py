#!/usr/bin/env python3
"""Would another form of the decode attention term, fitted on a closed loop, price live steps better?

    python3 scripts/closed_loop_forms.py PROFILE RUN_DIR... [--variant sgmv] [--twin PATH]

PROFILE must hold `closed_loop/<variant>/` (gpu/closed_loop.py). Every decode-only step of the
closed loop and of the live runs is priced by the twin part by part without the closed-loop
correction (`loratwin profile price --no-closed-loop`, through scripts/step_errors.py). The part
the forms replace is the attention, `max(work, tail)` of docs/step-cost.md; the rest of the price
(floor, LoRA, host) is kept. Per CUDA graph, each form is fitted by least squares (numpy) to the
closed loop's measured step minus the kept parts, on the closed loop alone (calibration), and then
applied to the live runs' steps of that graph:

- ``scale``: c x max(work, tail) (the twin's own term scaled; close to the correction, which scales
  the whole step);
- ``work+excess``: a x work + b x max(0, tail - work);
- ``contexts``: c0 + c1 x total context + c2 x longest context.

Printed: per graph, the median live / predicted of the live runs' steps with the twin's price, with
the correction (a factor per graph, the same median over the closed loop as `DecodeCorrection`),
with a factor per batch size instead (`per_size_factor`: the closed loop's median at each size with
at least 20 steps, linear between the sampled sizes of the same graph, the nearest of them beyond,
the graph's factor where it sampled none), and with each form; and the closed loop's own median
under each fit. It fits nothing the twin uses.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import step_errors  # noqa: E402

FORMS = ("scale", "work+excess", "contexts")


def decode_steps(rows: list[dict[str, str]], sizes: list[int]) -> list[dict[str, float]]:
    """The decode-only steps of priced rows: graph, measured and priced us, the kept parts and the
    features the forms use."""
    out = []
    for r in filter(step_errors.is_decode, rows):
        n = int(r["decode_sequences"])
        work, tail = float(r["decode_work_us"]), float(r["decode_tail_us"])
        out.append({"graph": step_errors.graph_of(n, sizes), "sequences": n, "live": float(r["live_s"]) * 1e6,
                    "price": float(r["predicted_us"]),
                    "kept": float(r["decode_floor_us"]) + float(r["lora_us"]) + float(r["host_us"]),
                    "work": work, "tail": tail, "context": float(r["decode_context_tokens"]),
                    "longest": float(r["decode_max_context"])})
    return out


def features(form: str, s: dict[str, float]) -> list[float]:
    if form == "scale":
        return [max(s["work"], s["tail"])]
    if form == "work+excess":
        return [s["work"], max(0.0, s["tail"] - s["work"])]
    if form == "contexts":
        return [1.0, s["context"], s["longest"]]
    raise ValueError(form)


def fit(form: str, steps: list[dict[str, float]]) -> np.ndarray:
    """Least squares of the measured step minus the kept parts on the form's features."""
    x = np.array([features(form, s) for s in steps])
    y = np.array([s["live"] - s["kept"] for s in steps])
    return np.linalg.lstsq(x, y, rcond=None)[0]


def priced(form: str, coef: np.ndarray, s: dict[str, float]) -> float:
    return s["kept"] + float(np.dot(features(form, s), coef))


def per_size_factor(cal: list[dict[str, float]], sizes: list[int]):
    """A function of batch size: the closed loop's median measured / priced at each size with at
    least 20 steps, linear between the sampled sizes of one CUDA graph (never across a graph's
    edge, where the step's cost jumps), the nearest sampled size of the graph beyond them, and the
    graph's own median where the loop sampled no size of it (1 without any step)."""
    by_size: dict[int, list[float]] = {}
    by_graph: dict[int, list[float]] = {}
    for s in cal:
        by_size.setdefault(int(s["sequences"]), []).append(s["live"] / s["price"])
        by_graph.setdefault(int(s["graph"]), []).append(s["live"] / s["price"])
    fac = {n: statistics.median(v) for n, v in by_size.items() if len(v) >= 20}
    gfac = {g: statistics.median(v) for g, v in by_graph.items()}

    def factor(n: int) -> float:
        g = step_errors.graph_of(n, sizes)
        same = sorted(m for m in fac if step_errors.graph_of(m, sizes) == g)
        if not same:
            return gfac.get(g, 1.0)
        lo = [m for m in same if m <= n]
        hi = [m for m in same if m >= n]
        if lo and hi:
            a, b = lo[-1], hi[0]
            return fac[a] if a == b else fac[a] + (fac[b] - fac[a]) * (n - a) / (b - a)
        return fac[lo[-1]] if lo else fac[hi[0]]

    return factor


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profile", type=Path)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--variant", default="sgmv")
    ap.add_argument("--twin", default=str(ROOT / ".build/release/loratwin"))
    args = ap.parse_args(argv)
    loop = args.profile / "closed_loop" / args.variant
    if not (loop / "steps.csv").exists():
        raise SystemExit(f"{loop}/steps.csv: no closed loop in this profile")
    sizes = step_errors.graph_sizes(args.profile / "meta.json")
    twin = Path(args.twin)
    with tempfile.TemporaryDirectory() as tmp:
        cal = decode_steps(step_errors.price(loop, twin, Path(tmp), args.profile, closed_loop=False), sizes)
        live = []
        for run in args.runs:
            live += decode_steps(step_errors.price(run, twin, Path(tmp), args.profile, closed_loop=False), sizes)
    print(f"Decode-only steps, median live / predicted by CUDA graph; forms fitted on {loop} "
          f"({len(cal)} steps), applied to {len(args.runs)} runs ({len(live)} steps)")
    print()
    by_size = per_size_factor(cal, sizes)
    print("| graph | closed-loop steps | live steps | twin | corrected | per size | " + " | ".join(FORMS)
          + " | closed loop under " + " / ".join(FORMS) + " |")
    print("|---:|---:|---:|---:|---:|---:|" + "---:|" * len(FORMS) + "---|")
    for g in sizes:
        c = [s for s in cal if s["graph"] == g]
        v = [s for s in live if s["graph"] == g]
        if len(c) < 20 or len(v) < step_errors.MIN_STEPS:
            continue
        factor = statistics.median(s["live"] / s["price"] for s in c)
        cells = [statistics.median(s["live"] / s["price"] for s in v),
                 statistics.median(s["live"] / (s["price"] * factor) for s in v),
                 statistics.median(s["live"] / (s["price"] * by_size(int(s["sequences"]))) for s in v)]
        own = []
        for form in FORMS:
            coef = fit(form, c)
            cells.append(statistics.median(s["live"] / priced(form, coef, s) for s in v))
            own.append(statistics.median(s["live"] / priced(form, coef, s) for s in c))
        print(f"| {g} | {len(c)} | {len(v)} | " + " | ".join(f"{x:.3f}" for x in cells) + " | "
              + " / ".join(f"{x:.3f}" for x in own) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
