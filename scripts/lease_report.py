#!/usr/bin/env python3
"""Reads one lease the way docs/validation.md sets down before it runs, and applies its rules.

    python3 scripts/lease_report.py LEASE [--profile DIR] [--runs RUN ...] [--twin PATH]

LEASE is a lease id of `traces/repeats/leases.csv` (say `61ed086-1`): its runs are the repeats
recorded in it (`--runs` names run folders instead). PROFILE is the lease's profile (default: the
one its first run's scenario names). Printed, as Markdown:

1. per closed-loop variant of the profile (`closed_loop/<variant>/`, gpu/closed_loop.py): the
   factor per CUDA graph (median measured / uncorrected price of its decode-only steps, as
   `DecodeCorrection` fits it), and with several workload seeds (`--seeds`), each seed's, with
   **rule 1**: the seeds agree within 0.01 at every graph from 8 to 32 -> the correction does not
   depend on the batches drawn; they differ by more than 0.02 at any -> it does; otherwise neither;
   with four seeds or more, also **rule 1 on the halves** (set down after lease 7b18746-1): the
   first half of the seeds pooled against the second, within 0.015 at every graph from 8 to 32 ->
   the design (several short seeds) stays; over 0.03 at any -> too noisy per graph; else neither;
2. a second closed loop of the same lease, where one was measured (`CLOSED_LOOP_TAG=-end`, kept by
   scripts/install_lease.py in `gpu/results/closed-loop-<gpu>-<commit>/<variant><tag>/`), priced
   with the same profile and set against the profile's own, with the **drift rule**: their pooled
   factors agree within 0.01 at every graph from 8 to 32 -> the correction holds over the lease;
   they differ by more than 0.02 at any -> the machine drifts within a start by as much; otherwise
   neither; and where the two ran the same batches (gpu/closed_loop.py is deterministic for one
   seed and concurrency list), the time of each block of one seed and concurrency at the second
   against the first, and whether the blocks' SM clocks follow it (`gpu_monitor` in meta.json);
   and how well forms of the correction fitted on one loop predict the other's factors;
3. the lease's runs: pooled live / predicted per graph with and without the correction
   (scripts/step_errors.py), and `loratwin validate`'s mean SMAPE with and without it, with
   **rule 2**: the correction stays on by default only if it lowers the mean TTFT-mean SMAPE (read
   on the pooled repeats, below, since lease 67078bf-1, whose four d-runs read it the other way);
   then, not a rule, the same means with a later closed loop of the lease as the correction, alone
   and pooled with the profile's (`--closed-loop-from` a folder that holds it);
4. **rules 3 and 4** (a load's step excess, the eager correction) read on the lease's runs and, with
   `--pool LEASE,...`, on the repeats of those leases pooled (`traces/repeats/leases.csv`): since
   lease 5ba5c79-1 the pooled reading is the rule (one lease's four to ten runs flipped it with
   differences under a point of TTFT; docs/validation.md, "Lease 5ba5c79-1").

5. each machine start's runs (grouped by the `machine start:` line gpu/record_runs.sh writes at the
   head of their logs, since 9da212b) priced with the profile's loop and with the tagged loop of
   their own start, where the lease measured one (`CLOSED_LOOP=new-start`).

Both rules are those of docs/validation.md ("Set down for the next lease"); this script only
applies them. No GPU, no torch; needs the twin's release binary.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import step_errors  # noqa: E402

RULE_GRAPHS = (8, 12, 16, 24, 32)  # the graphs rule 1 reads
MIN_STEPS = 20  # as DecodeCorrection.minimumSteps
SUMMARY_METRICS = ("requests_per_s", "ttft_mean", "ttft_p50", "ttft_p99", "tpot_mean", "e2e_mean", "mode_changes",
                   "decode_step_mean", "mixed_step_mean")


def pooled_runs(leases_csv: Path, leases: list[str]) -> list[Path]:
    """The run folders of every lease in `leases` (each must have runs), in file order."""
    runs: list[Path] = []
    for lease in leases:
        runs += lease_runs(leases_csv, lease)
    return runs


def lease_runs(leases_csv: Path, lease: str) -> list[Path]:
    """The run folders of `lease` in `traces/repeats/leases.csv` (its `run` column, under the
    same folder); an error naming the file when there are none."""
    with leases_csv.open() as f:
        names = [r["run"] for r in csv.DictReader(f) if r.get("lease") == lease]
    if not names:
        raise SystemExit(f"{leases_csv}: no run of lease {lease!r}")
    return [leases_csv.parent / n for n in names]


def factors_by_seed(rows: list[dict[str, str]], sizes: list[int]) -> dict[int | None, dict[int, float]]:
    """Seed -> graph -> median measured / price of the decode-only steps of that graph (graphs with
    at least MIN_STEPS steps); key None: all seeds together."""
    ratios: dict[int | None, dict[int, list[float]]] = {}
    for r in filter(step_errors.is_decode, rows):
        g = step_errors.graph_of(int(r["decode_sequences"]), sizes)
        v = step_errors.ratio(r)
        seed = int(r["seed"]) if r.get("seed") not in (None, "") else 0
        for key in (None, seed):
            ratios.setdefault(key, {}).setdefault(g, []).append(v)
    return {k: {g: statistics.median(v) for g, v in sorted(by.items()) if len(v) >= MIN_STEPS}
            for k, by in ratios.items()}


def rule1(by_seed: dict[int | None, dict[int, float]]) -> tuple[str, float | None]:
    """Rule 1 on the seeds' factors at RULE_GRAPHS: ('independent' | 'dependent' | 'neither' |
    'one seed', the largest difference between two seeds at one graph)."""
    seeds = [k for k in by_seed if k is not None]
    if len(seeds) < 2:
        return "one seed", None
    worst = 0.0
    for g in RULE_GRAPHS:
        vals = [by_seed[s][g] for s in seeds if g in by_seed[s]]
        if len(vals) >= 2:
            worst = max(worst, max(vals) - min(vals))
    return by_threshold(worst, "independent", "dependent"), worst


def by_threshold(worst: float, agree: str, differ: str, within: float = 0.01, over: float = 0.02) -> str:
    """The verdict the rules on factors share: `agree` within `within`, `differ` over `over`, else
    'neither'."""
    if worst <= within:
        return agree
    if worst > over:
        return differ
    return "neither"


def halves_factors(rows: list[dict[str, str]], sizes: list[int]) -> tuple[list[int], list[int], dict[int, float],
                                                                         dict[int, float]] | None:
    """With four seeds or more: (first half of the seeds, second half, each half's pooled factors by
    graph, as factors_by_seed reads one seed); None with fewer."""
    seeds = sorted({int(r["seed"]) for r in rows if r.get("seed") not in (None, "")})
    if len(seeds) < 4:
        return None
    first, second = seeds[: len(seeds) // 2], seeds[len(seeds) // 2:]

    def pooled(keep: list[int]) -> dict[int, float]:
        sub = [r for r in rows if r.get("seed") not in (None, "") and int(r["seed"]) in keep]
        return factors_by_seed(sub, sizes).get(None, {})

    return first, second, pooled(first), pooled(second)


def rule1_halves(first: dict[int, float], second: dict[int, float]) -> tuple[str, float | None]:
    """Rule 1 on the halves at RULE_GRAPHS: ('stays' | 'too noisy' | 'neither' | 'no common graph',
    the largest difference at one graph)."""
    worst = largest_difference(first, second)
    if worst is None:
        return "no common graph", None
    return by_threshold(worst, "stays", "too noisy", within=0.015, over=0.03), worst


def largest_difference(first: dict[int, float], second: dict[int, float]) -> float | None:
    """The largest |first - second| over the RULE_GRAPHS both have; None when they share none."""
    common = [g for g in RULE_GRAPHS if g in first and g in second]
    return max(abs(first[g] - second[g]) for g in common) if common else None


def correction_forms(train: dict[int, float], test: dict[int, float]) -> dict[str, float]:
    """How well each form of the correction, fitted on one closed loop's pooled factors (`train`),
    predicts another's (`test`, graph -> factor): the largest |test / form - 1| at RULE_GRAPHS, for
    'none' (1 everywhere), 'per graph' (the twin's: each graph its own), 'one factor' (the median of
    the graphs) and 'three-graph mean' (each graph with its neighbours). Calibration only: two
    closed loops, no run."""
    gs = [g for g in sorted(train) if g in test]
    if not any(g in RULE_GRAPHS for g in gs):
        return {}
    one = statistics.median(train[g] for g in gs)
    forms = {"none": {g: 1.0 for g in gs}, "per graph": {g: train[g] for g in gs}, "one factor": {g: one for g in gs},
             "three-graph mean": {g: statistics.fmean(train[h] for h in gs[max(0, i - 1): i + 2])
                                  for i, g in enumerate(gs)}}
    return {name: max(abs(test[g] / f[g] - 1) for g in gs if g in RULE_GRAPHS) for name, f in forms.items()}


BATCH_KEY = ("seed", "concurrency", "mode", "prefill_tokens", "decode_sequences", "decode_context_tokens", "segments")


def same_batch_blocks(first: Path, second: Path) -> dict[str, float] | None:
    """Two closed loops that ran the same batches (same rows of BATCH_KEY, step for step): per block
    of one seed and concurrency, the second's executor time (``execute_s``, else ``live_s``) of its
    decode-only steps over the first's; their min, median, max and standard deviation, the host time
    per step (``live_s - execute_s``, µs) at either, and the correlation between the time ratio and
    the ratio of the blocks' mean SM clocks (first / second, from meta.json's ``gpu_monitor``
    series; absent without one). None when the batches differ."""
    def read(d: Path) -> list[dict[str, str]]:
        with (d / "steps.csv").open() as f:
            return list(csv.DictReader(f))
    a, b = read(first), read(second)
    if len(a) != len(b) or any(tuple(x.get(k) for k in BATCH_KEY) != tuple(y.get(k) for k in BATCH_KEY)
                               for x, y in zip(a, b, strict=True)):
        return None
    col = "execute_s" if a and "execute_s" in a[0] else "live_s"
    blocks: dict[tuple[str, str], list[list[float]]] = {}  # key -> per loop [time, host, t0, t1, steps]
    for x, y in zip(a, b, strict=True):
        if not step_errors.is_decode(x):
            continue
        pair = blocks.setdefault((x.get("seed", ""), x.get("concurrency", "")),
                                 [[0.0, 0.0, float("inf"), 0.0, 0], [0.0, 0.0, float("inf"), 0.0, 0]])
        for acc, r in zip(pair, (x, y), strict=True):
            acc[0] += float(r[col])
            acc[1] += float(r["live_s"]) - float(r[col])
            acc[2] = min(acc[2], float(r["start_s"]))
            acc[3] = max(acc[3], float(r["start_s"]))
            acc[4] += 1
    if not blocks:
        return None
    ratios = [p[1][0] / p[0][0] for p in blocks.values()]
    out = {"blocks": len(ratios), "min": min(ratios), "median": statistics.median(ratios), "max": max(ratios),
           "sd": statistics.pstdev(ratios),
           "host_us_first": 1e6 * sum(p[0][1] for p in blocks.values()) / sum(p[0][4] for p in blocks.values()),
           "host_us_second": 1e6 * sum(p[1][1] for p in blocks.values()) / sum(p[1][4] for p in blocks.values())}
    series = [_clock_series(d) for d in (first, second)]
    if all(series) and len(ratios) > 2:
        clock = [_mean_clock(series[0], p[0][2], p[0][3]) / _mean_clock(series[1], p[1][2], p[1][3])
                 for p in blocks.values()]
        if not any(map(math.isnan, clock)) and statistics.pstdev(clock) > 0 and statistics.pstdev(ratios) > 0:
            out["clock_correlation"] = statistics.correlation(clock, ratios)
    return out


def _clock_series(d: Path) -> tuple[list[float], list[float]] | None:
    """(t_s, sm_clock_mhz) of a closed loop's meta.json ``gpu_monitor.series``; None without one."""
    try:
        s = json.loads((d / "meta.json").read_text())["gpu_monitor"]["series"]
        return [float(t) for t in s["t_s"]], [float(c) for c in s["sm_clock_mhz"]]
    except (OSError, KeyError, TypeError, ValueError):
        return None


def _mean_clock(series: tuple[list[float], list[float]], t0: float, t1: float) -> float:
    """Mean SM clock over the samples from t0 to t1 (half a sampling period either side)."""
    vals = [c for t, c in zip(*series, strict=True) if t0 - 0.25 <= t <= t1 + 0.25]
    return statistics.fmean(vals) if vals else float("nan")


def drift_rule(first: dict[int, float], second: dict[int, float]) -> tuple[str, float | None]:
    """The drift rule on two closed loops' pooled factors at RULE_GRAPHS: ('holds' | 'drifts' |
    'neither' | 'no common graph', the largest difference at one graph)."""
    worst = largest_difference(first, second)
    if worst is None:
        return "no common graph", None
    return by_threshold(worst, "holds", "drifts"), worst


def tagged_loops(root: Path, lease: str, profile: Path) -> list[Path]:
    """The lease's tagged closed loops (`gpu/results/closed-loop-<gpu>-<commit>/<variant>-<tag>/`,
    commit = the lease id before its last '-', gpu = the profile's name before '-llama')."""
    commit = lease.rsplit("-", 1)[0]
    gpu = profile.name.split("-llama")[0]
    folder = root / f"gpu/results/closed-loop-{gpu}-{commit}"
    return sorted(p for p in folder.glob("*-*") if (p / "steps.csv").exists()) if folder.is_dir() else []


def rule2(with_correction: float, without: float) -> str:
    """Rule 2: 'keep' when the correction lowers the mean TTFT-mean SMAPE, else 'turn off'."""
    return "keep" if with_correction < without else "turn off"


def has_step_rows(profile: Path) -> bool:
    """Whether the profile's adapter_load.csv has ``host_step`` rows (a load's excess on the step
    that orders it, profiles after d6fff0f)."""
    try:
        return any(ln.startswith("host_step,") for ln in (profile / "adapter_load.csv").read_text().splitlines())
    except OSError:
        return False


def rule3(with_excess: float, without: float) -> str:
    """Rule 3 (set down before lease 3a804f7-1 ran): a load's step excess 'on' by default when it
    lowers the mean TTFT-mean SMAPE of the lease's runs, else 'off' (on after that lease, read with
    the eager correction of Rule 4: docs/validation.md, "Lease 3a804f7-1")."""
    return "on" if with_excess < without else "off"


def rule4(with_eager: float, without: float) -> str:
    """Rule 4 (set down after lease d6fff0f-1, for the leases after it): the closed loop's
    correction of steps with prefill tokens 'on' by default when it lowers the mean TTFT-mean SMAPE
    of a lease's runs, else 'off' (on from lease 3a804f7-1, off since lease 9da212b-1's pooled
    reading)."""
    return "on" if with_eager < without else "off"


# Set down after lease 94f6de6-1 (docs/validation.md): a pooled rule changes a default only by a
# difference of at least this many points of TTFT mean SMAPE; a smaller one keeps the default.
TIE_MARGIN = 0.1


def pooled_reading(rule, with_: float, without: float, default: str, margin: float = TIE_MARGIN) -> str:
    """A rule's reading on the pooled runs: ``rule(with_, without)``, or a tie (the default stays)
    when the two means are less than ``margin`` points apart."""
    if abs(with_ - without) < margin:
        return f"a tie, {default} stays"
    return rule(with_, without)


def validate_means(twin: Path, runs: list[Path], closed_loop: bool,
                   closed_loop_from: Path | None = None, load_step: bool | None = None,
                   eager: bool | None = None) -> dict[str, float]:
    """`loratwin validate` over the runs (symlinked into one folder): metric -> mean SMAPE;
    `closed_loop_from`: the correction from that folder's closed loop (`--closed-loop-from`);
    `load_step`: with or without a load's step excess (`--load-step` / `--no-load-step`); `eager`:
    the closed loop corrects the steps with prefill tokens as well or not (`--closed-loop-eager` /
    `--no-closed-loop-eager`); None: the twin's default."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "runs"
        folder.mkdir()
        for r in runs:
            (folder / r.name).symlink_to(r.resolve())
        out = Path(tmp) / "v.csv"
        cmd = [str(twin), "validate", str(folder), "--output", str(out)] + ([] if closed_loop else ["--no-closed-loop"])
        if closed_loop_from is not None:
            cmd += ["--closed-loop-from", str(closed_loop_from)]
        if load_step is not None:
            cmd.append("--load-step" if load_step else "--no-load-step")
        if eager is not None and closed_loop:
            cmd.append("--closed-loop-eager" if eager else "--no-closed-loop-eager")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"loratwin validate: {r.stderr.strip()}")
        by: dict[str, list[float]] = {}
        with out.open() as f:
            for row in csv.DictReader(f):
                by.setdefault(row["metric"], []).append(float(row["smape_percent"]))
    return {m: statistics.fmean(v) for m, v in by.items()}


def print_means(first: str, rows: list[tuple[str, dict[str, float]]]) -> None:
    """A Markdown table of mean SMAPE by SUMMARY_METRICS, one row per (label, means)."""
    print(f"| {first} | " + " | ".join(SUMMARY_METRICS) + " |")
    print("|---|" + "---:|" * len(SUMMARY_METRICS))
    for label, m in rows:
        print(f"| {label} | " + " | ".join(f"{m[k]:.1f}" if k in m else "-" for k in SUMMARY_METRICS) + " |")


def loop_folder(profile: Path, variant: str, loops: list[Path], dest: Path) -> Path:
    """A folder `loratwin validate --closed-loop-from` reads: the profile's meta.json and, as
    `closed_loop/<variant>/`, the steps of `loops` run as one closed loop (the i-th loop's seeds
    offset by 10 * i, iterations renumbered; the first loop's catalogue). Every loop must have
    the same catalogue."""
    out = dest / "closed_loop" / variant
    out.mkdir(parents=True)
    (dest / "meta.json").write_bytes((profile / "meta.json").read_bytes())
    catalogue = (loops[0] / "catalogue.csv").read_bytes()
    if any((lp / "catalogue.csv").read_bytes() != catalogue for lp in loops[1:]):
        raise SystemExit(f"{loops[1]}: another catalogue than {loops[0]}'s; the loops cannot be pooled")
    (out / "catalogue.csv").write_bytes(catalogue)
    rows: list[dict[str, str]] = []
    for i, lp in enumerate(loops):
        with (lp / "steps.csv").open(newline="") as f:
            for r in csv.DictReader(f):
                if r.get("seed") not in (None, ""):
                    r["seed"] = str(int(r["seed"]) + 10 * i)
                rows.append(r)
    for n, r in enumerate(rows):
        r["iteration"] = str(n)
    with (out / "steps.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lease", help="a lease id of traces/repeats/leases.csv, e.g. 61ed086-1")
    ap.add_argument("--profile", type=Path, help="the lease's profile (default: its first run's)")
    ap.add_argument("--runs", type=Path, nargs="+", help="run folders instead of the lease's repeats")
    ap.add_argument("--twin", type=Path, default=ROOT / ".build/release/loratwin")
    ap.add_argument("--pool", metavar="LEASE,...",
                    help="read Rules 2, 3 and 4 on the repeats of these leases pooled as well (the rule since "
                         "lease 5ba5c79-1 for 3 and 4, 67078bf-1 for 2; say every closed-loop lease)")
    args = ap.parse_args(argv)
    if not args.twin.exists():
        raise SystemExit(f"{args.twin}: not found; run `swift build -c release` first")
    runs = args.runs or lease_runs(ROOT / "traces/repeats/leases.csv", args.lease)
    profile = (args.profile or step_errors.profile_dir(runs[0])).resolve()
    sizes = step_errors.graph_sizes(profile / "meta.json")
    print(f"# Lease {args.lease}: {len(runs)} runs, profile `{profile.name}`")
    print()
    loops = sorted(p for p in (profile / "closed_loop").glob("*") if (p / "steps.csv").exists())
    if not loops:
        print("No closed loop in the profile: rule 1 does not apply, and the runs have no correction.")
    with tempfile.TemporaryDirectory() as tmp:
        for loop in loops:
            rows = step_errors.price(loop, args.twin, Path(tmp), profile, closed_loop=False)
            by_seed = factors_by_seed(rows, sizes)
            seeds = sorted(k for k in by_seed if k is not None)
            graphs = sorted(by_seed.get(None, {}))
            print(f"## Closed loop `{loop.name}`: measured / uncorrected price by CUDA graph")
            print()
            print("| seeds | " + " | ".join(f"dec {g}" for g in graphs) + " |")
            print("|---|" + "---:|" * len(graphs))
            for key in ([None] + seeds if len(seeds) > 1 else [None]):
                label = "all" if key is None else f"seed {key}"
                print(f"| {label} | " + " | ".join(f"{by_seed[key][g]:.3f}" if g in by_seed[key] else "-"
                                                    for g in graphs) + " |")
            verdict, worst = rule1(by_seed)
            print()
            print(f"Rule 1 (graphs {', '.join(map(str, RULE_GRAPHS))}): **{verdict}**"
                  + (f" (largest difference between seeds {worst:.3f})" if worst is not None else ""))
            print()
            halves = halves_factors(rows, sizes)
            if halves is not None:
                lo, hi, f_lo, f_hi = halves
                verdict, worst = rule1_halves(f_lo, f_hi)
                print(f"Rule 1 on the halves (seeds {lo} against {hi}, pooled): **{verdict}**"
                      + (f" (largest difference {worst:.3f})" if worst is not None else ""))
                print()
            for later in (t for t in tagged_loops(ROOT, args.lease, profile) if t.name.split("-")[0] == loop.name):
                rows = step_errors.price(later, args.twin, Path(tmp), profile, closed_loop=False)
                later_by_seed = factors_by_seed(rows, sizes)
                second = later_by_seed.get(None, {})
                print(f"Closed loop `{later.name}` ({later.relative_to(ROOT)}), pooled: "
                      + ", ".join(f"dec {g} {second[g]:.3f}" for g in sorted(second)))
                seeds_later = sorted(k for k in later_by_seed if k is not None)
                if len(seeds_later) > 1:
                    print()
                for seed in seeds_later if len(seeds_later) > 1 else []:
                    f = later_by_seed[seed]
                    print(f"- seed {seed}: " + ", ".join(f"dec {g} {f[g]:.3f}" for g in RULE_GRAPHS if g in f))
                verdict, worst = drift_rule(by_seed.get(None, {}), second)
                print()
                print(f"Drift rule (graphs {', '.join(map(str, RULE_GRAPHS))}): **{verdict}**"
                      + (f" (largest difference from `{loop.name}` {worst:.3f})" if worst is not None else ""))
                print()
                first = by_seed.get(None, {})
                forms = [correction_forms(first, second), correction_forms(second, first)]
                if all(forms):
                    print(f"Forms of the correction fitted on one loop, largest error on the other's factors at graphs "
                          f"{', '.join(map(str, RULE_GRAPHS))} (`{loop.name}` -> `{later.name}` / back): "
                          + "; ".join(f"{k} {forms[0][k]:.3f} / {forms[1][k]:.3f}" for k in forms[0]))
                    print()
                blocks = same_batch_blocks(loop, later)
                if blocks is None:
                    print(f"`{later.name}` did not run the same batches as `{loop.name}`.")
                else:
                    print(f"The same batches, step for step: over {blocks['blocks']} blocks of one seed and "
                          f"concurrency, executor time at `{later.name}` / at `{loop.name}` "
                          f"{blocks['min']:.3f} to {blocks['max']:.3f} (median {blocks['median']:.3f}, "
                          f"standard deviation {blocks['sd']:.4f}); host time {blocks['host_us_first']:.0f} / "
                          f"{blocks['host_us_second']:.0f} µs a step"
                          + (f"; correlation with the blocks' SM clock ratio {blocks['clock_correlation']:.2f}"
                             if "clock_correlation" in blocks else ""))
                print()
        pooled = {}
        for closed in (False, True):
            rows = []
            for run in runs:
                rows += step_errors.price(run, args.twin, Path(tmp), None, closed_loop=closed)
            pooled[closed], _ = step_errors.cells(rows, sizes)
    graphs = [g for g in step_errors.GRAPH_COLUMNS if g in pooled[False] or g in pooled[True]]
    print(f"## The {len(runs)} runs: live / predicted by CUDA graph, pooled")
    print()
    print("| pricing | " + " | ".join(f"dec {g}" for g in graphs) + " |")
    print("|---|" + "---:|" * len(graphs))
    for closed, label in ((False, "without the correction"), (True, "with it")):
        print(f"| {label} | " + " | ".join(f"{pooled[closed][g]:.2f}" if g in pooled[closed] else "-"
                                           for g in graphs) + " |")
    print()
    without = validate_means(args.twin, runs, closed_loop=False)
    with_ = validate_means(args.twin, runs, closed_loop=True)
    print("## Mean SMAPE % over the runs (`loratwin validate`)")
    print()
    print_means("pricing", [("without the correction", without), ("with it", with_)])
    print()
    if loops:
        print(f"Rule 2: **{rule2(with_['ttft_mean'], without['ttft_mean'])}** the correction by default "
              f"(TTFT mean {with_['ttft_mean']:.1f} % with it, {without['ttft_mean']:.1f} % without)")
    if has_step_rows(profile):
        no_step = validate_means(args.twin, runs, closed_loop=True, load_step=False)
        print()
        print("A load's excess on the step that orders it (the profile's `host_step` / `disk_step` rows), with the "
              "correction:")
        print()
        print_means("pricing", [("with the excess (the default)", with_), ("without it (`--no-load-step`)", no_step)])
        print()
        print(f"Rule 3: the excess **{rule3(with_['ttft_mean'], no_step['ttft_mean'])}** by default "
              f"(TTFT mean {with_['ttft_mean']:.1f} % with it, {no_step['ttft_mean']:.1f} % without)")
    if loops:
        decode_only = validate_means(args.twin, runs, closed_loop=True, eager=False)
        eager_on = validate_means(args.twin, runs, closed_loop=True, eager=True)
        print()
        print("The closed loop's correction of steps with prefill tokens as well or of decode-only (the default) "
              "steps alone (`--no-closed-loop-eager`):")
        print()
        print_means("pricing", [("and the steps with prefill tokens (`--closed-loop-eager`)", eager_on),
                                ("decode-only steps corrected (the default)", decode_only)])
        print()
        print(f"Rule 4: the eager correction **{rule4(eager_on['ttft_mean'], decode_only['ttft_mean'])}** by default "
              f"(TTFT mean {eager_on['ttft_mean']:.1f} % with it, {decode_only['ttft_mean']:.1f} % without)")
    if args.pool:
        pool = pooled_runs(ROOT / "traces/repeats/leases.csv", [x for x in args.pool.split(",") if x])
        p_with = validate_means(args.twin, pool, closed_loop=True)
        p_without = validate_means(args.twin, pool, closed_loop=False)
        p_no_step = validate_means(args.twin, pool, closed_loop=True, load_step=False)
        p_decode = validate_means(args.twin, pool, closed_loop=True, eager=False)
        p_eager = validate_means(args.twin, pool, closed_loop=True, eager=True)
        print()
        print(f"Rules 2, 3 and 4 on the {len(pool)} repeats of the pooled leases ({args.pool}), the rule since "
              "lease 5ba5c79-1 (3 and 4) and 67078bf-1 (2):")
        print()
        print_means("pricing", [("the defaults", p_with), ("without the correction", p_without),
                                ("without the excess", p_no_step), ("decode-only steps corrected", p_decode),
                                ("with the eager correction", p_eager)])
        print()
        w = p_with["ttft_mean"]
        r2 = pooled_reading(rule2, w, p_without["ttft_mean"], "keep")
        r3 = pooled_reading(rule3, w, p_no_step["ttft_mean"], "on")
        r4 = pooled_reading(rule4, p_eager["ttft_mean"], p_decode["ttft_mean"], "off")
        print(f"Rule 2 (pooled): **{r2}** the correction by default "
              f"(TTFT mean {w:.2f} % with it, {p_without['ttft_mean']:.2f} % without)")
        print(f"Rule 3 (pooled): the excess **{r3}**; Rule 4 (pooled): the eager correction **{r4}** "
              f"(TTFT mean {w:.2f} % with the defaults, {p_no_step['ttft_mean']:.2f} % without the "
              f"excess, {p_eager['ttft_mean']:.2f} % with the eager correction and {p_decode['ttft_mean']:.2f} % "
              f"without it; a difference under "
              f"{TIE_MARGIN} points is a tie and keeps the default)")
    with tempfile.TemporaryDirectory() as tmp:
        for loop in loops:
            # a loop corrects only the runs of its own kernel ('none' those without LoRA); the others
            # would have no correction from a folder that holds this loop alone
            own = [r for r in runs if run_kernel(r) == loop.name]
            laters = [t for t in tagged_loops(ROOT, args.lease, profile) if t.name.split("-")[0] == loop.name]
            if not own or not laters:
                continue
            others = [(f"`{loop.name}` (the profile's)",
                       with_ if len(own) == len(runs) else validate_means(args.twin, own, closed_loop=True))]
            for later in laters:
                for label, parts in ((f"`{later.name}` alone", [later]), (f"`{loop.name}` and `{later.name}` pooled",
                                                                           [loop, later])):
                    folder = loop_folder(profile, loop.name, parts, Path(tmp) / f"{loop.name}-{len(others)}")
                    others.append((label, validate_means(args.twin, own, closed_loop=True, closed_loop_from=folder)))
            print()
            print(f"Other closed loops of the lease as the correction, over its {len(own)} runs of kernel "
                  f"`{loop.name}` (not rules: a comparison, after them):")
            print()
            print_means("correction", others)
    print_by_start(args.twin, args.lease, profile, runs)
    return 0


def machine_start(log: Path) -> str | None:
    """The machine start a run or closed loop was recorded in: the `machine start: ID` line that
    gpu/record_runs.sh writes at the head of its log (logs before 9da212b have none)."""
    try:
        with log.open() as f:
            first = f.readline().strip()
    except OSError:
        return None
    return first.removeprefix("machine start: ") if first.startswith("machine start: ") else None


def runs_by_start(root: Path, lease: str, gpu: str, runs: list[Path]) -> dict[str, list[Path]]:
    """The lease's runs grouped by machine start, from their logs in `gpu/results/runs-<gpu>-<commit>/`
    (runs without the line left out)."""
    commit = lease.rsplit("-", 1)[0]
    by: dict[str, list[Path]] = {}
    for r in runs:
        start = machine_start(root / f"gpu/results/runs-{gpu}-{commit}" / f"{r.name}.log")
        if start is not None:
            by.setdefault(start, []).append(r)
    return by


def print_by_start(twin: Path, lease: str, profile: Path, runs: list[Path]) -> None:
    """Each machine start's runs of one kernel priced with the closed loop of that start (a tagged
    loop whose log names the same start), against the profile's own correction: the set-down plan
    of docs/validation.md for a start other than the profile's."""
    gpu = profile.name.split("-llama")[0]
    starts = runs_by_start(ROOT, lease, gpu, runs)
    loops = {}
    for t in tagged_loops(ROOT, lease, profile):
        start = machine_start(t.parent / f"closed-loop-{t.name}.log")
        if start is not None:
            loops.setdefault(start, []).append(t)
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for start, rs in sorted(starts.items()):
            for loop in loops.get(start, []):
                variant = loop.name.split("-")[0]
                own = [r for r in rs if run_kernel(r) == variant]
                if not own:
                    continue
                folder = loop_folder(profile, variant, [loop], Path(tmp) / f"{loop.name}-{len(rows)}")
                label = f"start {start}, {len(own)} `{variant}` runs"
                rows.append((f"{label}: the profile's loop", validate_means(twin, own, closed_loop=True)))
                rows.append((f"{label}: `{loop.name}` (its own start's)",
                             validate_means(twin, own, closed_loop=True, closed_loop_from=folder)))
    if rows:
        print()
        print("Each machine start's runs priced with the closed loop of their own start (not a rule: the "
              "set-down plan for a start other than the profile's):")
        print()
        print_means("runs: correction", rows)


def run_kernel(run: Path) -> str:
    """The LoRA kernel a recorded run ran with (run.json `lora.kind`), 'none' for a run without LoRA."""
    lora = json.loads((run / "run.json").read_text()).get("lora") or {}
    return lora.get("kind") or "none"


if __name__ == "__main__":
    sys.exit(main())
