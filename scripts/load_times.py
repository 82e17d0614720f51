#!/usr/bin/env python3
"""Adapter loads in recorded live runs against the profile that prices them, and the iterations they start.

    python3 scripts/load_times.py RUN_DIR...

Per run, from run.json ``loads`` (gpu/replay.py: every load's order and completion on the replay's
clock, its copy time between CUDA events, its file read) and the profile its scenario names
(``adapter_load.csv``): per source (host cache or file) and adapter size, the loads' median order
to completion and median copy time, live, against the profile's rows of that size (``host``: order
to completion with the loop idle; ``disk``: the file read alone; ``host_busy`` / ``disk_busy``
where the profile has them). The replay sees a load done at the first pass after it completes
(gpu/replay.py polls between steps), so the live order to completion holds the rest of the step
that ordered it; the twin does the same with its own steps. ``to the pass`` applies that rounding
to the profile's price (busy where the profile has it, else idle) on the live steps: the end of the
first live iteration at or after order + price, and ``same pass`` counts the loads that this puts
in the pass where the replay saw them done (and the same with the idle price). Then the iterations
that start a load, from iterations.csv: how much longer a decode-only one is than the mean of its
two decode-only neighbours (median; every such iteration), and the same in clean windows only
(three iterations either side with the same decode batch, no prefill and no other load). No GPU, no
torch.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from step_errors import profile_dir  # noqa: E402  (the profile the run's scenario names)


def profile_rows(profile: Path) -> dict[tuple[str, int], float]:
    """(source, bytes) -> median_us of adapter_load.csv."""
    path = profile / "adapter_load.csv"
    try:
        with path.open(newline="") as f:
            return {(r["source"], int(r["bytes"])): float(r["median_us"]) for r in csv.DictReader(f)}
    except (OSError, KeyError, ValueError) as e:
        raise SystemExit(f"load_times.py: {path}: {e}") from None


def read_loads(run: Path) -> dict[tuple[str, int], list[dict]]:
    """run.json ``loads`` by (source, bytes)."""
    try:
        loads = json.loads((run / "run.json").read_text())["loads"]
    except (OSError, KeyError, json.JSONDecodeError) as e:
        raise SystemExit(f"load_times.py: {run / 'run.json'}: {e}") from None
    groups: dict[tuple[str, int], list[dict]] = {}
    for ld in loads:
        groups.setdefault(("disk" if ld["from_disk"] else "host", int(ld["bytes"])), []).append(ld)
    return dict(sorted(groups.items()))


def load_table(run: Path) -> list[tuple[str, int, int, float, float]]:
    """(source, bytes, loads, median order-to-done ms, median copy ms) per source and size."""
    return [(src, nbytes, len(v), statistics.median((x["done_s"] - x["ordered_s"]) * 1e3 for x in v),
             statistics.median(x["h2d_ms"] for x in v)) for (src, nbytes), v in read_loads(run).items()]


def to_the_pass(loads: list[dict], price_s: float, ends: list[float]) -> tuple[float, int]:
    """The profile's price rounded up to the live steps: (median ms from order to the end of the
    first iteration ending at or after order + price, loads whose live completion was seen at
    that pass, i.e. before the next iteration ended). ``ends``: the iterations' ends, sorted."""
    waits, same = [], 0
    for ld in loads:
        i = bisect.bisect_left(ends, ld["ordered_s"] + price_s)
        if i == len(ends):
            continue
        waits.append((ends[i] - ld["ordered_s"]) * 1e3)
        nxt = ends[i + 1] if i + 1 < len(ends) else float("inf")
        same += ends[i] <= ld["done_s"] < nxt
    return (statistics.median(waits) if waits else float("nan")), same


def load_iterations(rows: list[dict[str, str]]) -> tuple[list[float], list[float]]:
    """Extra ms of decode-only iterations that start a load over their decode-only neighbours:
    (every such iteration against the mean of the one before and after, the clean windows only)."""
    every, clean = [], []
    for i in range(1, len(rows) - 1):
        r = rows[i]
        if int(r["adapter_loads"]) == 0 or r["prefill_tokens"] != "0":
            continue
        nb = [rows[j] for j in (i - 1, i + 1) if rows[j]["prefill_tokens"] == "0"]
        if len(nb) == 2:
            every.append((float(r["duration_s"]) - statistics.fmean(float(x["duration_s"]) for x in nb)) * 1e3)
        win = rows[i - 3:i + 4]
        if len(win) == 7 and all(w["prefill_tokens"] == "0" and w["decode_seqs"] == r["decode_seqs"] for w in win) \
                and all(int(w["adapter_loads"]) == 0 for j, w in enumerate(win) if j != 3):
            clean.append((float(r["duration_s"]) - statistics.fmean(float(w["duration_s"]) for w in win[:3])) * 1e3)
    return every, clean


def ordering_excess(loads: list[dict], rows: list[dict[str, str]]) -> list[float]:
    """Per load (of one source and size): ms by which the decode-only iteration that ordered it
    (the last to start at or before its order) ran longer than the mean of its decode-only
    neighbours with one sequence more or less at most; loads ordered in a step with prefill tokens,
    or without such neighbours, are left out. What the profile's ``*_step`` rows measure."""
    starts = [float(r["start_s"]) for r in rows]
    out = []
    for ld in loads:
        i = bisect.bisect_right(starts, ld["ordered_s"]) - 1
        if i < 1 or i + 1 >= len(rows) or rows[i]["prefill_tokens"] != "0":
            continue
        seqs = int(rows[i]["decode_seqs"])
        nb = [rows[j] for j in (i - 1, i + 1)
              if rows[j]["prefill_tokens"] == "0" and abs(int(rows[j]["decode_seqs"]) - seqs) <= 1]
        if nb:
            out.append((float(rows[i]["duration_s"]) - statistics.fmean(float(x["duration_s"]) for x in nb)) * 1e3)
    return out


def _ms(us: float | None) -> str:
    return f"{us / 1e3:.2f}" if us is not None else "-"


def _median(v: list[float]) -> str:
    return f"{statistics.median(v):.2f} ms over {len(v)}" if v else "none"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--diagnostic-profile", type=Path, metavar="DIR",
                    help="copy the first run's profile to DIR (new) with host_step / disk_step rows set to the "
                         "pooled live medians: a diagnostic read off the runs, never a calibration")
    args = ap.parse_args(argv)
    if args.diagnostic_profile is not None and args.diagnostic_profile.exists():
        raise SystemExit(f"load_times.py: {args.diagnostic_profile}: exists; give a new folder")
    pooled: dict[tuple[str, int], list[float]] = {}
    for run in args.runs:
        if not (run / "run.json").exists():
            raise SystemExit(f"load_times.py: {run}: not a run folder (no run.json)")
        prof = profile_dir(run)
        rows = profile_rows(prof)
        print(f"{run.name} (profile {prof.name})")
        try:
            with (run / "iterations.csv").open(newline="") as f:
                its = list(csv.DictReader(f))
            ends = sorted(float(r["start_s"]) + float(r["duration_s"]) for r in its)
        except (OSError, KeyError, ValueError) as e:
            raise SystemExit(f"load_times.py: {run / 'iterations.csv'}: {e}") from None
        groups = read_loads(run)
        print("| source | MB | loads | live order to done ms | live copy ms | profile idle ms | profile busy ms "
              "| to the pass ms | same pass | same pass, idle price | ordering step +ms (n) | profile step +ms |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for src, nbytes, n, done, h2d in load_table(run):
            idle = rows.get((src, nbytes))
            if src == "disk" and idle is not None and ("host", nbytes) in rows:
                idle += rows[("host", nbytes)]  # the twin's idle price of a load from disk: read + copy
            busy = rows.get((f"{src}_busy", nbytes))
            price = busy if busy is not None else idle
            rounded, same = to_the_pass(groups[(src, nbytes)], price / 1e6, ends) if price is not None \
                else (float("nan"), 0)
            same_idle = to_the_pass(groups[(src, nbytes)], idle / 1e6, ends)[1] if idle is not None else 0
            excess = ordering_excess(groups[(src, nbytes)], its)
            pooled.setdefault((src, nbytes), []).extend(excess)
            ex = f"{statistics.median(excess):.2f} ({len(excess)})" if excess else "-"
            print(f"| {src} | {nbytes >> 20} | {n} | {done:.2f} | {h2d:.2f} | {_ms(idle)} | {_ms(busy)} "
                  f"| {rounded:.2f} | {same} of {n} | {same_idle} of {n} | {ex} "
                  f"| {_ms(rows.get((f'{src}_step', nbytes)))} |")
        every, clean = load_iterations(its)
        print(f"iterations starting a load, longer than their neighbours: {_median(every)}; "
              f"in clean windows {_median(clean)}")
        print()
    if len(args.runs) > 1:
        print("Pooled over the runs: the decode-only step that ordered a load, ms longer than its neighbours")
        print("| source | MB | loads | median | p25 | p75 |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for (src, nbytes), v in sorted(pooled.items()):
            if v:
                q = statistics.quantiles(v, n=4) if len(v) >= 2 else [v[0]] * 3
                print(f"| {src} | {nbytes >> 20} | {len(v)} | {statistics.median(v):.2f} | {q[0]:.2f} | {q[2]:.2f} |")
    if args.diagnostic_profile is not None:
        write_diagnostic_profile(profile_dir(args.runs[0]), args.diagnostic_profile, pooled)
        print(f"\nwrote {args.diagnostic_profile} (a diagnostic, not a calibration): "
              f"loratwin validate RUNS --profile {args.diagnostic_profile}")
    return 0


def write_diagnostic_profile(src: Path, dest: Path, pooled: dict[tuple[str, int], list[float]]) -> None:
    """A copy of profile ``src`` at ``dest`` whose adapter_load.csv has ``*_step`` rows (µs) at the
    pooled live medians of the ordering steps' excess, per source and size; written to a temporary
    folder first and renamed, so that a failure leaves nothing at ``dest``."""
    rows = [f"{s}_step,{b},{statistics.median(v) * 1e3:.3f},0,0,{len(v)}" for (s, b), v in sorted(pooled.items()) if v]
    for s in ("host", "disk"):
        if sum(r.startswith(f"{s}_step,") for r in rows) < 2:
            raise SystemExit(f"load_times.py: fewer than two sizes of {s} loads in the runs: no diagnostic profile")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    table = tmp / "adapter_load.csv"
    kept = [ln for ln in table.read_text().splitlines() if not ln.split(",", 1)[0].endswith("_step")]
    table.write_text("\n".join(kept + rows) + "\n")
    tmp.rename(dest)


if __name__ == "__main__":
    sys.exit(main())
