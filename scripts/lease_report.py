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
2. a second closed loop of the same lease, where one was measured (`CLOSED_LOOP_TAG=-end`, kept by
   scripts/install_lease.py in `gpu/results/closed-loop-<gpu>-<commit>/<variant><tag>/`), priced
   with the same profile and set against the profile's own, with the **drift rule**: their pooled
   factors agree within 0.01 at every graph from 8 to 32 -> the correction holds over the lease;
   they differ by more than 0.02 at any -> the machine drifts within a start by as much; otherwise
   neither;
3. the lease's runs: pooled live / predicted per graph with and without the correction
   (scripts/step_errors.py), and `loratwin validate`'s mean SMAPE with and without it, with
   **rule 2**: the correction stays on by default only if it lowers the mean TTFT-mean SMAPE.

Both rules are those of docs/validation.md ("Set down for the next lease"); this script only
applies them. No GPU, no torch; needs the twin's release binary.
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
sys.path.insert(0, str(ROOT / "scripts"))

import step_errors  # noqa: E402

RULE_GRAPHS = (8, 12, 16, 24, 32)  # the graphs rule 1 reads
MIN_STEPS = 20  # as DecodeCorrection.minimumSteps
SUMMARY_METRICS = ("requests_per_s", "ttft_mean", "ttft_p50", "ttft_p99", "tpot_mean", "e2e_mean", "mode_changes",
                   "decode_step_mean")


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


def by_threshold(worst: float, agree: str, differ: str) -> str:
    """The verdict both rules on factors share: `agree` within 0.01, `differ` over 0.02, else
    'neither'."""
    if worst <= 0.01:
        return agree
    if worst > 0.02:
        return differ
    return "neither"


def drift_rule(first: dict[int, float], second: dict[int, float]) -> tuple[str, float | None]:
    """The drift rule on two closed loops' pooled factors at RULE_GRAPHS: ('holds' | 'drifts' |
    'neither' | 'no common graph', the largest difference at one graph)."""
    common = [g for g in RULE_GRAPHS if g in first and g in second]
    if not common:
        return "no common graph", None
    worst = max(abs(first[g] - second[g]) for g in common)
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


def validate_means(twin: Path, runs: list[Path], closed_loop: bool) -> dict[str, float]:
    """`loratwin validate` over the runs (symlinked into one folder): metric -> mean SMAPE."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "runs"
        folder.mkdir()
        for r in runs:
            (folder / r.name).symlink_to(r.resolve())
        out = Path(tmp) / "v.csv"
        cmd = [str(twin), "validate", str(folder), "--output", str(out)] + ([] if closed_loop else ["--no-closed-loop"])
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"loratwin validate: {r.stderr.strip()}")
        by: dict[str, list[float]] = {}
        with out.open() as f:
            for row in csv.DictReader(f):
                by.setdefault(row["metric"], []).append(float(row["smape_percent"]))
    return {m: statistics.fmean(v) for m, v in by.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lease", help="a lease id of traces/repeats/leases.csv, e.g. 61ed086-1")
    ap.add_argument("--profile", type=Path, help="the lease's profile (default: its first run's)")
    ap.add_argument("--runs", type=Path, nargs="+", help="run folders instead of the lease's repeats")
    ap.add_argument("--twin", type=Path, default=ROOT / ".build/release/loratwin")
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
            for later in (t for t in tagged_loops(ROOT, args.lease, profile) if t.name.split("-")[0] == loop.name):
                rows = step_errors.price(later, args.twin, Path(tmp), profile, closed_loop=False)
                second = factors_by_seed(rows, sizes).get(None, {})
                print(f"Closed loop `{later.name}` ({later.relative_to(ROOT)}), pooled: "
                      + ", ".join(f"dec {g} {second[g]:.3f}" for g in sorted(second)))
                verdict, worst = drift_rule(by_seed.get(None, {}), second)
                print()
                print(f"Drift rule (graphs {', '.join(map(str, RULE_GRAPHS))}): **{verdict}**"
                      + (f" (largest difference from `{loop.name}` {worst:.3f})" if worst is not None else ""))
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
    print("| pricing | " + " | ".join(SUMMARY_METRICS) + " |")
    print("|---|" + "---:|" * len(SUMMARY_METRICS))
    for label, m in (("without the correction", without), ("with it", with_)):
        print(f"| {label} | " + " | ".join(f"{m[k]:.1f}" if k in m else "-" for k in SUMMARY_METRICS) + " |")
    print()
    if loops:
        print(f"Rule 2: **{rule2(with_['ttft_mean'], without['ttft_mean'])}** the correction by default "
              f"(TTFT mean {with_['ttft_mean']:.1f} % with it, {without['ttft_mean']:.1f} % without)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
