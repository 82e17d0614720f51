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
the correction (a factor per graph, the same median over the closed loop as `DecodeCorrection`), and
with each form; and the closed loop's own median under each fit. It fits nothing the twin uses.
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
    for r in rows:
        n = int(r["decode_sequences"])
        if int(r["prefill_tokens"]) or n == 0:
            continue
        work, tail = float(r["decode_work_us"]), float(r["decode_tail_us"])
        out.append({"graph": step_errors.graph_of(n, sizes), "live": float(r["live_s"]) * 1e6,
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
    print("| graph | closed-loop steps | live steps | twin | corrected | " + " | ".join(FORMS)
          + " | closed loop under " + " / ".join(FORMS) + " |")
    print("|---:|---:|---:|---:|---:|" + "---:|" * len(FORMS) + "---|")
    for g in sizes:
        c = [s for s in cal if s["graph"] == g]
        v = [s for s in live if s["graph"] == g]
        if len(c) < 20 or len(v) < step_errors.MIN_STEPS:
            continue
        factor = statistics.median(s["live"] / s["price"] for s in c)
        cells = [statistics.median(s["live"] / s["price"] for s in v),
                 statistics.median(s["live"] / (s["price"] * factor) for s in v)]
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
