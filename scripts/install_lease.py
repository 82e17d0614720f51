#!/usr/bin/env python3
"""Installs what one lease of the GPU machine brought back (`bash gpu/record_runs.sh` results) into
the repository, the way docs/validation.md describes each lease:

    python3 scripts/install_lease.py WORK --commit SHA --lease SHA-N [--base-profile DIR]
                                     [--profile DIR] [--gpu h200] [--note TEXT] [--dry-run]

WORK is the unpacked `$OUT/work` of the lease's calls (several calls' folders may be merged into
one): `profile/` and `profile.log` (gpu/profile_steps.py), `closed-loop-<variant>/` and
`closed-loop-<variant>.log` (gpu/closed_loop.py), `runs/<run>/` (gpu/replay.py, each with its
`replay.log`). SHA is the commit the lease ran (its GIT_COMMIT).

- the profile: a copy of ``--base-profile`` (default: the newest `profiles/<gpu>-llama2-7b-*` by
  its step tables' date) as `profiles/<gpu>-llama2-7b-SHA`, the step tables merged in by
  gpu/merge_profile.py, the log and the step meta as `gpu/results/profile/profile-<gpu>-SHA.log`
  and `step-meta-<gpu>-SHA.json`; the closed-loop folders into its `closed_loop/<variant>/`;
- a tagged closed loop (`closed-loop-<variant><tag>/`, tag from CLOSED_LOOP_TAG, say `-end`: a second
  closed loop in the same lease) into `gpu/results/closed-loop-<gpu>-SHA/<variant><tag>/` with its
  log, not into the profile (the twin's correction stays the first one's; scripts/lease_report.py
  sets the two side by side);
- each run: a repeat of `traces/live/<run>` as `traces/repeats/<run>-repeat[N]` (the next free N):
  the trace files of the first recording, the run's requests.csv, iterations.csv and run.json, its
  scenario with the name, two comment lines and the profile of this lease (or, without a profile
  in WORK, ``--profile``: an earlier lease's profile of the same engine; else the scenario's own);
  its replay.log as `gpu/results/runs-<gpu>-SHA/<name>.log`; a row
  in `traces/repeats/leases.csv` (the first with ``--note``).

Everything is checked before anything is written (the run's trace is the first recording's, by
its sha256 in run.json; no destination exists; the run's scenario names the GPU); a failure names
the file and writes nothing. ``--dry-run`` prints what it would do.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACE_FILES = ("trace.csv", "trace.catalogue.csv", "trace.meta.json")
RUN_FILES = ("requests.csv", "iterations.csv", "run.json")
CLOSED_LOOP_FILES = ("steps.csv", "catalogue.csv", "trace.csv", "scenario.yaml", "meta.json")


class Refused(Exception):
    """Something in WORK or the repository that stops the install; nothing was written."""


@dataclass
class Plan:
    profile: Path | None = None  # the new profile directory
    run_profile: Path | None = None  # without one: --profile, the profile the runs are priced with
    base: Path | None = None
    closed_loops: list[tuple[Path, Path]] = field(default_factory=list)  # (source folder, destination)
    tagged_loops: list[tuple[Path, Path]] = field(default_factory=list)  # the same, kept under gpu/results/
    runs: list[tuple[Path, str, str]] = field(default_factory=list)  # (run folder in WORK, source name, repeat name)


def newest_profile(root: Path, gpu: str) -> Path:
    best = None
    for d in sorted(root.glob(f"profiles/{gpu}-llama2-7b-*")):
        if d.is_symlink() or not (d / "meta.json").exists():
            continue
        date = json.loads((d / "meta.json").read_text()).get("step_profile", {}).get("date") or ""
        if best is None or date > best[0]:
            best = (date, d)
    if best is None:
        raise Refused(f"profiles/{gpu}-llama2-7b-*: no profile to start from; give --base-profile")
    return best[1]


def repeat_name(root: Path, run: str, taken: set[str]) -> str:
    """`run-repeat`, or `run-repeatN` with the smallest N >= 2 that is free."""
    n = 1
    while True:
        name = f"{run}-repeat" + ("" if n == 1 else str(n))
        if name not in taken and not (root / "traces/repeats" / name).exists():
            return name
        n += 1


def trace_sha(run_json: Path) -> str | None:
    r = json.loads(run_json.read_text())
    return r.get("trace_sha256") or (r.get("trace") or {}).get("sha256")


def plan(root: Path, work: Path, commit: str, gpu: str, base: Path | None, run_profile: Path | None = None) -> Plan:
    p = Plan()
    if run_profile is not None:
        if (work / "profile").is_dir():
            raise Refused(f"{work / 'profile'}: the lease has a profile of its own; "
                          "--profile is for a lease without one")
        if not (run_profile / "meta.json").exists() or not run_profile.resolve().is_relative_to(root / "profiles"):
            raise Refused(f"{run_profile}: not a profile under {root / 'profiles'} (no meta.json there)")
        p.run_profile = run_profile.resolve()  # a link (the default profile) moves; its target does not
    if (work / "profile").is_dir():
        if not (work / "profile/meta.json").exists():
            raise Refused(f"{work / 'profile'}: no meta.json (an unfinished profile?)")
        p.profile = root / f"profiles/{gpu}-llama2-7b-{commit}"
        if p.profile.exists():
            raise Refused(f"{p.profile}: exists already")
        p.base = base or newest_profile(root, gpu)
    for d in sorted(work.glob("closed-loop-*")):
        if not d.is_dir():
            continue
        missing = [f for f in ("steps.csv", "catalogue.csv") if not (d / f).exists()]
        if missing:
            raise Refused(f"{d}: missing {', '.join(missing)}")
        variant = d.name.removeprefix("closed-loop-")
        if "-" in variant:  # tagged: a second closed loop of the lease, kept apart from the profile
            dst = root / f"gpu/results/closed-loop-{gpu}-{commit}" / variant
            if dst.exists():
                raise Refused(f"{dst}: exists already")
            p.tagged_loops.append((d, dst))
            continue
        if p.profile is None:
            raise Refused(f"{d}: a closed loop without a profile of the same lease")
        p.closed_loops.append((d, p.profile / "closed_loop" / variant))
    taken: set[str] = set()
    for d in sorted((work / "runs").glob("*")) if (work / "runs").is_dir() else []:
        src = root / "traces/live" / d.name
        if not (src / "scenario.yaml").exists():
            raise Refused(f"{d}: no first recording at {src} (a run recorded under another name?)")
        for f in RUN_FILES:
            if not (d / f).exists():
                raise Refused(f"{d / f}: missing (the replay did not finish?)")
        want = hashlib.sha256((src / "trace.csv").read_bytes()).hexdigest()
        got = trace_sha(d / "run.json")
        if got != want:
            raise Refused(f"{d / 'run.json'}: trace sha256 {got} is not that of {src / 'trace.csv'} ({want})")
        m = re.search(r"^gpu:\s*([a-z0-9]+)", (src / "scenario.yaml").read_text(), re.M)
        if m and not m.group(1).startswith(gpu[:4]):
            raise Refused(f"{src / 'scenario.yaml'}: gpu {m.group(1)}, not {gpu}: not a repeat on this GPU")
        name = repeat_name(root, d.name, taken)
        taken.add(name)
        p.runs.append((d, d.name, name))
    if p.profile is None and not p.runs and not p.tagged_loops:
        raise Refused(f"{work}: nothing to install (no profile/, closed-loop-*/ or runs/)")
    return p


def scenario_text(src: Path, run: str, name: str, commit: str, profile: Path | None, lent: bool = False) -> str:
    """`lent`: `profile` is an earlier lease's (`--profile`), not one measured in this lease."""
    body = [ln for ln in (src / "scenario.yaml").read_text().splitlines() if not ln.startswith("#")]
    how = ("in a lease without a profile of its own (priced with the scenario's)" if profile is None
           else f"in a lease without a profile of its own, priced with {profile.name}" if lent
           else f"in the lease of the profile {profile.name}, after it")
    head = [f"# Repeat recording of traces/live/{run} (bash gpu/record_runs.sh {run}): the same scenario and trace,",
            f"# recorded again at {commit} {how} (docs/validation.md, \"Repeat runs\")."]
    out = []
    for ln in body:
        if ln.startswith("name:"):
            ln = f"name: {name}"
        if profile is not None and ln.startswith("cost_model:"):
            ln = re.sub(r"profiles/[A-Za-z0-9_.-]+", f"profiles/{profile.name}", ln)
        out.append(ln)
    return "\n".join(head + out) + "\n"


def leases_rows(p: Plan, lease: str, note: str) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for i, (_d, _run, name) in enumerate(p.runs):
        w.writerow([name, lease, note if i == 0 else ""])
    return buf.getvalue()


def copy_closed_loop(root: Path, src: Path, dst: Path, log_dst: Path) -> str:
    """Copies a closed-loop folder's files into `dst` and its log (`<src>.log` beside it, when
    there is one) to `log_dst`; returns `dst` relative to the root."""
    dst.mkdir(parents=True)
    for f in CLOSED_LOOP_FILES:
        if (src / f).exists():
            shutil.copyfile(src / f, dst / f)
    log = src.parent / f"{src.name}.log"
    if log.exists():
        shutil.copyfile(log, log_dst)
    return str(dst.relative_to(root))


def install(root: Path, work: Path, p: Plan, commit: str, lease: str, gpu: str, note: str) -> list[str]:
    done = []
    if p.profile is not None:
        shutil.copytree(p.base, p.profile, symlinks=True, ignore=shutil.ignore_patterns("closed_loop"))
        r = subprocess.run([sys.executable, str(root / "gpu/merge_profile.py"), str(work / "profile"), str(p.profile)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            shutil.rmtree(p.profile)
            raise Refused(f"gpu/merge_profile.py: {r.stderr.strip() or r.stdout.strip()}")
        logs = root / "gpu/results/profile"
        logs.mkdir(parents=True, exist_ok=True)
        if (work / "profile.log").exists():
            shutil.copyfile(work / "profile.log", logs / f"profile-{gpu}-{commit}.log")
        shutil.copyfile(work / "profile/meta.json", logs / f"step-meta-{gpu}-{commit}.json")
        done.append(f"{p.profile.relative_to(root)} (from {p.base.name})")
        for src, dst in p.closed_loops:
            done.append(copy_closed_loop(root, src, dst, logs / f"{src.name}-{gpu}-{commit}.log"))
    for src, dst in p.tagged_loops:
        done.append(copy_closed_loop(root, src, dst, dst.parent / f"{src.name}.log"))
    if p.runs:
        logs = root / f"gpu/results/runs-{gpu}-{commit}"
        logs.mkdir(parents=True, exist_ok=True)
        for d, run, name in p.runs:
            src, dst = root / "traces/live" / run, root / "traces/repeats" / name
            dst.mkdir(parents=True)
            for f in TRACE_FILES:
                if (src / f).exists():
                    shutil.copyfile(src / f, dst / f)
            for f in RUN_FILES:
                shutil.copyfile(d / f, dst / f)
            (dst / "scenario.yaml").write_text(scenario_text(src, run, name, commit, p.profile or p.run_profile,
                                                             lent=p.profile is None and p.run_profile is not None))
            if (d / "replay.log").exists():
                shutil.copyfile(d / "replay.log", logs / f"{name}.log")
            done.append(f"{dst.relative_to(root)}")
        with (root / "traces/repeats/leases.csv").open("a") as f:
            f.write(leases_rows(p, lease, note))
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--commit", required=True, help="the commit the lease ran (its GIT_COMMIT)")
    ap.add_argument("--lease", required=True, help="the lease's name in traces/repeats/leases.csv, e.g. SHA-1")
    ap.add_argument("--base-profile", type=Path)
    ap.add_argument("--profile", type=Path, help="a lease without a profile of its own: the profile (of an earlier "
                                                 "lease of the same engine) its runs are priced with")
    ap.add_argument("--gpu", default="h200")
    ap.add_argument("--note", default="")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not re.fullmatch(r"[0-9a-f]{7,40}", args.commit):
        ap.error(f"--commit {args.commit!r}: expected a commit id")
    root = args.root.resolve()
    try:
        p = plan(root, args.work, args.commit, args.gpu, args.base_profile,
                 args.profile and (args.profile if args.profile.is_absolute() else root / args.profile))
        if args.dry_run:
            if p.profile is not None:
                print(f"profile {p.profile.relative_to(root)} from {p.base.name}")
            for _s, dst in p.closed_loops + p.tagged_loops:
                print(f"closed loop {dst.relative_to(root)}")
            for _d, run, name in p.runs:
                print(f"run {run} -> traces/repeats/{name}")
            return 0
        for line in install(root, args.work, p, args.commit, args.lease, args.gpu, args.note):
            print("installed", line)
    except Refused as e:
        print(e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
