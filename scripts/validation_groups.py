#!/usr/bin/env python3
"""Means of the per-run SMAPE of `loratwin validate --output X.csv`, grouped by the engine commit
each run was recorded at (its `run.json` `git_commit`), as docs/validation.md reports them.

    loratwin validate traces/live --gpu h200 --output /tmp/v.csv
    python3 scripts/validation_groups.py /tmp/v.csv [--runs DIR ...] [--merge NAME=C1,C2 ...]
                                          [--prefix d0] [--exclude d04]

`--merge current=9e806b3,32bd308` adds a group of the runs of several commits; `--prefix` keeps
only the runs whose name starts with it (the dLoRA runs: d0), `--exclude` drops those whose name
starts with it (repeatable). Prints a Markdown table: per group
the number of runs and the mean SMAPE of each metric (`--median`: the median over the runs).
`--bands` (on a CSV of `loratwin validate --intervals N`) adds, per group, how many (run, metric)
pairs have the live value inside the replicas' p5-p95 band. `--check GROUP=FILE` (repeatable) then
exits 1 when a metric of that group is over its threshold in FILE (the `metric: percent` YAML of
`loratwin validate --check`), or the group has no run. No GPU, no torch.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

import yaml

METRICS = ("requests_per_s", "ttft_mean", "ttft_p50", "ttft_p99", "tpot_mean", "tpot_p50", "tpot_p99",
           "e2e_mean", "e2e_p50", "e2e_p99", "mode_changes", "decode_step_mean", "mixed_step_mean")


def commit_of(runs: Path | list[Path], scenario: str) -> str:
    """The run's engine commit, from the first of the `runs` folders with a run folder named
    `scenario`; '?' when none has one or its run.json names none."""
    for folder in [runs] if isinstance(runs, Path) else runs:
        try:
            commit = json.loads((folder / scenario / "run.json").read_text()).get("git_commit") or "?"
            return commit[:7]  # a full sha (GIT_COMMIT given whole) groups with the short one
        except (OSError, ValueError):
            continue
    return "?"


def member_of(name: str, runs: Path | list[Path], merge: dict[str, set[str]], prefix: str,
              exclude: tuple[str, ...] = ()) -> list[str]:
    """The groups the run `name` counts in: its commit and every merge holding it; none when
    `prefix` or `exclude` leaves it out."""
    if not name.startswith(prefix) or any(name.startswith(x) for x in exclude):
        return []
    c = commit_of(runs, name)
    return [c] + [m for m, commits in merge.items() if c in commits]


def groups(rows: list[dict[str, str]], runs: Path | list[Path], merge: dict[str, set[str]], prefix: str,
           exclude: tuple[str, ...] = ()) -> dict[str, dict[str, dict[str, float]]]:
    """group -> scenario -> metric -> SMAPE percent."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for r in rows:
        for g in member_of(r["scenario"], runs, merge, prefix, exclude):
            out.setdefault(g, {}).setdefault(r["scenario"], {})[r["metric"]] = float(r["smape_percent"])
    return out


def band_counts(rows: list[dict[str, str]], runs: Path | list[Path], merge: dict[str, set[str]], prefix: str,
                exclude: tuple[str, ...] = ()) -> dict[str, tuple[int, int]]:
    """group -> (run, metric) pairs whose live value lies inside the p5-p95 band, pairs with a band
    (the `band_p5` / `band_p95` columns of `loratwin validate --intervals N --output`), over the
    same runs and groups as `groups`."""
    out: dict[str, tuple[int, int]] = {}
    for r in rows:
        if not r.get("band_p5") or not r.get("band_p95"):
            continue
        live, lo, hi = float(r["live"]), float(r["band_p5"]), float(r["band_p95"])
        for g in member_of(r["scenario"], runs, merge, prefix, exclude):
            inside, total = out.get(g, (0, 0))
            out[g] = (inside + (lo <= live <= hi), total + 1)
    return out


def table(g: dict[str, dict[str, dict[str, float]]], stat=statistics.mean) -> str:
    lines = ["| runs | n | " + " | ".join(METRICS) + " |", "| --- | ---: |" + " ---: |" * len(METRICS)]
    for name in sorted(g):
        per_run = g[name]
        cells = []
        for m in METRICS:
            values = [v[m] for v in per_run.values() if m in v]
            cells.append(f"{stat(values):.1f}" if values else "-")
        lines.append(f"| {name} | {len(per_run)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def check(g: dict[str, dict[str, dict[str, float]]], group: str, path: Path,
          stat=statistics.mean) -> list[str]:
    """The thresholds of `path` (metric -> percent) the group's mean (or `stat`) goes over, as
    messages naming the file; a group without runs or a bad file is a message too."""
    try:
        limits = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        return [f"{path}: {getattr(e, 'strerror', None) or e}"]
    if not isinstance(limits, dict):
        return [f"{path}: expected 'metric: percent' lines"]
    if group not in g:
        return [f"--check {group}: no run in that group"]
    out = []
    for metric, limit in limits.items():
        if not isinstance(limit, (int, float)) or isinstance(limit, bool):
            out.append(f"{path}: field '{metric}': {limit!r} is not a number")
            continue
        values = [v[metric] for v in g[group].values() if metric in v]
        if values and stat(values) > limit:
            out.append(f"{group}: {metric} {stat(values):.1f} % over {limit} % ({path})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=Path, help="the CSV of loratwin validate --output")
    ap.add_argument("--runs", type=Path, action="append", metavar="DIR",
                    help="folder of run folders (repeatable; default traces/live and traces/repeats)")
    ap.add_argument("--merge", action="append", default=[], metavar="NAME=C1,C2")
    ap.add_argument("--prefix", default="")
    ap.add_argument("--exclude", action="append", default=[], metavar="PREFIX")
    ap.add_argument("--median", action="store_true",
                    help="the median of the runs' SMAPE instead of the mean (how far a typical run is off)")
    ap.add_argument("--bands", action="store_true",
                    help="also count, per group, the (run, metric) pairs whose live value is inside the "
                         "p5-p95 band (a CSV of loratwin validate --intervals N)")
    ap.add_argument("--check", action="append", default=[], metavar="GROUP=FILE",
                    help="exit 1 when that group's mean of a metric is over its threshold in FILE")
    args = ap.parse_args(argv)
    checks = []
    for c in args.check:
        name, sep, path = c.partition("=")
        if not sep or not name or not path:
            ap.error(f"--check {c!r}: expected GROUP=FILE")
        checks.append((name, Path(path)))
    merge = {}
    for m in args.merge:
        name, sep, commits = m.partition("=")
        if not sep or not name or not commits:
            ap.error(f"--merge {m!r}: expected NAME=COMMIT[,COMMIT...]")
        merge[name] = set(commits.split(","))
    try:
        rows = list(csv.DictReader(args.csv.open()))
    except OSError as e:
        print(f"{args.csv}: {e.strerror}", file=sys.stderr)
        return 2
    missing = {"scenario", "metric", "smape_percent"} - set(rows[0] if rows else {})
    if missing:
        print(f"{args.csv}: line 1: missing column(s) {', '.join(sorted(missing))}", file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parents[1]
    runs = args.runs or [root / "traces/live", root / "traces/repeats"]
    stat = statistics.median if args.median else statistics.mean
    g = groups(rows, runs, merge, args.prefix, tuple(args.exclude))
    print(table(g, stat))
    if args.bands:
        counts = band_counts(rows, runs, merge, args.prefix, tuple(args.exclude))
        if not counts:
            print(f"{args.csv}: no band_p5 / band_p95 values (loratwin validate --intervals N --output)",
                  file=sys.stderr)
            return 2
        print()
        print("| runs | (run, metric) pairs inside the p5-p95 band | % |")
        print("| --- | ---: | ---: |")
        for name in sorted(counts):
            inside, total = counts[name]
            print(f"| {name} | {inside} of {total} | {100 * inside / total:.0f} |")
    failures = [m for name, path in checks for m in check(g, name, path, stat)]
    for m in failures:
        print(m, file=sys.stderr)
    if checks and not failures:
        print(f"checked {', '.join(name for name, _ in checks)}: every metric within its threshold")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
