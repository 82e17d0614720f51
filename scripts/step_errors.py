#!/usr/bin/env python3
"""Where the twin's step cost is off, one live iteration at a time.

    python3 scripts/step_errors.py [RUN_DIR ...] [--profile DIR ...] [--parts LO-HI | --by-predecessor | --by-skew |
                                   --by-time | --by-context | --by-queue | --by-size | --by-concurrency |
                                   --by-load | --by-token-graph]
                                   [--no-closed-loop | --closed-loop-from PROFILE]
    (default: every recorded H200 run under traces/live, each priced with its own scenario's profile)

For each run: recovers every iteration's batch (scripts/live_batches.py, which replays the
engine's scheduler on the live clock and checks every pass), prices each batch with the run's own
cost model (`loratwin profile price`, the twin's MeasuredCostModel part by part), and prints the
median of live / predicted per decode CUDA-graph size and per eager-step size. A median of 1.10
means the live steps of that kind took 10 % longer than the twin prices the very same batches.
Needs the twin's release binary (`swift build -c release`); no GPU, no torch.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import live_batches  # noqa: E402

GRAPH_COLUMNS = (1, 4, 8, 12, 16, 24, 32, 40, 48, 64, 96, 128)
EAGER_COLUMNS = (("<256", 0, 255), ("256-1023", 256, 1023), (">=1024", 1024, 1 << 30))
MIN_STEPS = 10  # fewer steps of a kind: no cell


def graph_sizes(profile_meta: Path) -> list[int]:
    import json

    return json.loads(profile_meta.read_text()).get("graph_sizes") or list(GRAPH_COLUMNS)


def profile_dir(run: Path) -> Path:
    if is_closed_loop(run):
        raise SystemExit(f"{run}: a closed-loop folder (gpu/closed_loop.py) names no profile; give --profile")
    for line in (run / "scenario.yaml").read_text().splitlines():
        if "profile:" in line:
            rel = line.split("profile:")[1].split(",")[0].strip()
            return (run / rel).resolve()
    raise SystemExit(f"{run}/scenario.yaml: cost_model names no profile")


def is_closed_loop(run: Path) -> bool:
    """A folder of gpu/closed_loop.py (its steps.csv holds the batches; no live run to rebuild)."""
    return (run / "steps.csv").exists() and not (run / "iterations.csv").exists()


def price(run: Path, twin: Path, work: Path, profile: Path | None = None,
          closed_loop: bool = True, closed_loop_from: Path | None = None,
          eager: bool | None = None) -> list[dict[str, str]]:
    if is_closed_loop(run):  # its batches are there already; its scenario names no profile (profile_dir)
        steps = run / "steps.csv"
    else:
        steps = work / f"{run.name}.csv"
        rec = live_batches.reconstruct(live_batches.read_run(run))
        live_batches.write_csv(steps, rec.batches)
    priced = work / f"{run.name}.priced.csv"
    extra = (["--profile", str(profile)] if profile is not None else []) + ([] if closed_loop else ["--no-closed-loop"])
    if closed_loop and closed_loop_from is not None:
        extra += ["--closed-loop-from", str(closed_loop_from)]
    if closed_loop and eager is not None:  # None: the twin's default (off, since lease 9da212b-1)
        extra.append("--closed-loop-eager" if eager else "--no-closed-loop-eager")
    r = subprocess.run([str(twin), "profile", "price", str(run / "scenario.yaml"), str(steps), "-o", str(priced)]
                       + extra, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"loratwin profile price {run.name}: {r.stderr.strip()}")
    return list(csv.DictReader(priced.open()))


def ratio(x: dict[str, str]) -> float:
    """A priced row's measured step over the twin's price (live_s against predicted_us)."""
    return float(x["live_s"]) * 1e6 / float(x["predicted_us"])


def is_decode(x: dict[str, str]) -> bool:
    """A decode-only step: no prefill token, at least one sequence (the CUDA-graph path)."""
    return int(x["prefill_tokens"]) == 0 and int(x["decode_sequences"]) > 0


def graph_of(n: int, sizes: list[int]) -> int:
    """The CUDA graph a decode batch of ``n`` sequences replays: the smallest size that holds it."""
    return next((g for g in sizes if g >= n), n)


def cells(rows: list[dict[str, str]], sizes: list[int]) -> tuple[dict[int, float], dict[str, float]]:
    dec: dict[int, list[float]] = {}
    eag: dict[str, list[float]] = {}
    for x in rows:
        r = ratio(x)
        if int(x["prefill_tokens"]) == 0:
            dec.setdefault(graph_of(int(x["decode_sequences"]), sizes), []).append(r)
        else:
            t = int(x["prefill_tokens"]) + int(x["decode_sequences"])
            for name, lo, hi in EAGER_COLUMNS:
                if lo <= t <= hi:
                    eag.setdefault(name, []).append(r)
    return ({k: statistics.median(v) for k, v in dec.items() if len(v) >= MIN_STEPS},
            {k: statistics.median(v) for k, v in eag.items() if len(v) >= MIN_STEPS})


def probe_ratio(run: Path, profile: Path) -> float | None:
    """Median over the sizes of the run's `host_probe` (token-graph steps of 16, 64 and 256 tokens,
    timed inside the replay process before its clock starts, as step_tokens.csv times them) over
    the profile's `step_tokens.csv` at the same sizes: whether the replay process steps as fast as
    the profiler did before its loop runs. None without a probe or a matching row."""
    import json

    if not (run / "run.json").exists():  # a closed-loop folder
        return None
    probe = json.loads((run / "run.json").read_text()).get("host_probe") or {}
    table = profile / "step_tokens.csv"
    if not probe.get("tokens") or not table.exists():
        return None
    with table.open() as f:
        prof = {int(r["tokens"]): float(r["median_us"]) for r in csv.DictReader(f)}
    ratios = [us / prof[t] for t, us in zip(probe["tokens"], probe["median_us"], strict=True) if prof.get(t)]
    return statistics.median(ratios) if ratios else None


SKEW_COLUMNS = ((0, 255), (256, 767), (768, 1535), (1536, 1 << 30))  # max - mean context, tokens
CONTEXT_COLUMNS = ((0, 255), (256, 511), (512, 767), (768, 1023), (1024, 1535), (1536, 1 << 30))  # mean context
QUEUE_COLUMNS = ((0, 0), (1, 9), (10, 99), (100, 1 << 30))  # requests waiting for their first step
TIME_COLUMNS = ((0, 10), (10, 20), (20, 30), (30, 40), (40, 50), (50, 60), (60, 1 << 30))  # start_s, seconds


def skew_of(x: dict[str, str]) -> float:
    """How unequal a decode batch's contexts are: max - mean (the quantity of the twin's tail)."""
    n = int(x["decode_sequences"])
    return int(x["decode_max_context"]) - int(x["decode_context_tokens"]) / n


def binned(rows: list[dict[str, str]], sizes: list[int], value, columns) -> dict[int, dict[int, tuple[float, int]]]:
    """Median live / predicted of the decode-only steps by CUDA graph and by the bin of
    ``columns`` ((lo, hi) pairs, the first with ``value(row) < hi`` or the last) that ``value`` of
    the step falls in: graph -> column index (len(columns) for all together) -> (median, steps);
    cells of fewer than MIN_STEPS steps are left out."""
    out: dict[int, dict[int, list[float]]] = {}
    for x in filter(is_decode, rows):
        v = value(x)
        cols = out.setdefault(graph_of(int(x["decode_sequences"]), sizes), {})
        col = next((i for i, (_lo, hi) in enumerate(columns) if v < hi), len(columns) - 1)
        for c in (col, len(columns)):
            cols.setdefault(c, []).append(ratio(x))
    return {g: {c: (statistics.median(v), len(v)) for c, v in cols.items() if len(v) >= MIN_STEPS}
            for g, cols in sorted(out.items())}


def by_skew(rows: list[dict[str, str]], sizes: list[int]) -> dict[int, dict[int, tuple[float, int]]]:
    """`binned` by max - mean context (SKEW_COLUMNS, tokens)."""
    return binned(rows, sizes, skew_of, [(lo, hi + 1) for lo, hi in SKEW_COLUMNS])


def by_context(rows: list[dict[str, str]], sizes: list[int]) -> dict[int, dict[int, tuple[float, int]]]:
    """`binned` by the batch's mean context per sequence (CONTEXT_COLUMNS, tokens)."""
    return binned(rows, sizes, lambda x: int(x["decode_context_tokens"]) / int(x["decode_sequences"]),
                  [(lo, hi + 1) for lo, hi in CONTEXT_COLUMNS])


def by_queue(rows: list[dict[str, str]], sizes: list[int]) -> dict[int, dict[int, tuple[float, int]]]:
    """`binned` by the requests waiting for their first step when the step started (the rows'
    ``waiting`` column, `with_waiting`; QUEUE_COLUMNS)."""
    return binned(rows, sizes, lambda x: int(x.get("waiting") or 0), [(lo, hi + 1) for lo, hi in QUEUE_COLUMNS])


def with_waiting(run: Path, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The priced rows of a live run, each with ``waiting``: the requests that had arrived by the
    step's start and were not yet scheduled (requests.csv's arrival_s and first_scheduled_s; a
    preempted request waiting again is not counted). A closed loop has no queue: 0."""
    reqs = run / "requests.csv"
    if not reqs.exists():
        return [{**x, "waiting": "0"} for x in rows]
    with reqs.open() as f:
        got = list(csv.DictReader(f))
    arrived = sorted(float(r["arrival_s"]) for r in got)
    scheduled = sorted(float(r["first_scheduled_s"]) for r in got if r.get("first_scheduled_s"))
    out = []
    for x in rows:
        t = float(x["start_s"])
        n = bisect.bisect_right(arrived, t) - bisect.bisect_right(scheduled, t)
        out.append({**x, "waiting": str(max(n, 0))})
    return out


def by_size(rows: list[dict[str, str]]) -> dict[int, tuple[float, int]]:
    """Median live / predicted of the decode-only steps by their number of sequences (not the
    CUDA graph they ran as); sizes of fewer than MIN_STEPS steps are left out."""
    out: dict[int, list[float]] = {}
    for x in filter(is_decode, rows):
        out.setdefault(int(x["decode_sequences"]), []).append(ratio(x))
    return {n: (statistics.median(v), len(v)) for n, v in sorted(out.items()) if len(v) >= MIN_STEPS}


def token_graph_sizes(profile_meta: Path) -> list[int]:
    """The profile's token graphs (meta.json ``token_graph_sizes``; none before token graphs)."""
    return json.loads(profile_meta.read_text()).get("token_graph_sizes") or []


def by_token_graph(rows: list[dict[str, str]], sizes: list[int]) -> dict[int, tuple[float, int]]:
    """Median live / predicted of the steps with prefill tokens by the token graph they ran as (the
    smallest of ``sizes`` holding prefill tokens + decode sequences; 0: beyond every token graph,
    launched eagerly); graphs of fewer than MIN_STEPS steps are left out. The closed loop's factor
    per token graph (``loratwin profile check``, ``--closed-loop-eager``) is the same median over
    its own steps."""
    out: dict[int, list[float]] = {}
    for x in rows:
        if int(x["prefill_tokens"]) > 0:
            t = int(x["prefill_tokens"]) + int(x["decode_sequences"])
            out.setdefault(next((g for g in sizes if g >= t), 0), []).append(ratio(x))
    return {n: (statistics.median(v), len(v)) for n, v in sorted(out.items()) if len(v) >= MIN_STEPS}


def by_concurrency(rows: list[dict[str, str]]) -> dict[int, tuple[float, int, list[float]]]:
    """A closed loop's decode-only steps (its ``concurrency`` column) by concurrency: median live /
    predicted, steps, and the medians of its four quarters in iteration order (how steady it is
    while that concurrency runs); concurrencies of fewer than 4 x MIN_STEPS steps are left out."""
    out: dict[int, list[float]] = {}
    for x in filter(is_decode, rows):
        if x.get("concurrency"):
            out.setdefault(int(x["concurrency"]), []).append(ratio(x))
    table = {}
    for n, v in sorted(out.items()):
        if len(v) >= 4 * MIN_STEPS:
            k = len(v) // 4
            table[n] = (statistics.median(v), len(v), [statistics.median(v[i * k:(i + 1) * k]) for i in range(4)])
    return table


def by_time(rows: list[dict[str, str]], sizes: list[int]) -> dict[int, dict[int, tuple[float, int]]]:
    """`binned` by when the step started in the run (TIME_COLUMNS, seconds): whether the steps'
    excess grows as the engine runs on."""
    return binned(rows, sizes, lambda x: float(x["start_s"]), TIME_COLUMNS)


PARTS = ("decode_floor_us", "decode_work_us", "decode_tail_us", "lora_us", "host_us")


def decode_parts(rows: list[dict[str, str]], lo: int, hi: int) -> tuple[int, float, dict[str, float]] | None:
    """Over the decode-only steps of ``lo`` to ``hi`` sequences: their number, the mean live step
    (us) and the mean of the predicted step and of each of its parts (us), and of the closed-loop
    factor that scales the parts' sum (1 where the priced rows have none)."""
    sel = [x for x in rows if int(x["prefill_tokens"]) == 0 and lo <= int(x["decode_sequences"]) <= hi]
    if not sel:
        return None
    parts = {k: statistics.fmean(float(x[k]) for x in sel) for k in ("predicted_us", *PARTS)}
    parts["decode_factor"] = statistics.fmean(float(x.get("decode_factor") or 1) for x in sel)
    return len(sel), statistics.fmean(float(x["live_s"]) * 1e6 for x in sel), parts


def by_predecessor(rows: list[dict[str, str]], sizes: list[int]) -> dict[str, tuple[float, int]]:
    """Median live / predicted of the decode-only steps by what ran just before: the same CUDA
    graph, another graph, or a step with prefill tokens."""
    out: dict[str, list[float]] = {}
    for a, b in zip(rows, rows[1:], strict=False):
        if int(b["prefill_tokens"]) != 0:
            continue
        if int(a["prefill_tokens"]) != 0:
            key = "after eager"
        elif graph_of(int(a["decode_sequences"]), sizes) == graph_of(int(b["decode_sequences"]), sizes):
            key = "after same graph"
        else:
            key = "after other graph"
        out.setdefault(key, []).append(ratio(b))
    return {k: (statistics.median(v), len(v)) for k, v in sorted(out.items())}


def load_kinds(run: Path, n: int) -> list[str]:
    """Per live iteration (``n`` of them), the loads its pass ordered (run.json ``loads``, each in
    the last iteration to start at or before its order): 'disk' if any came from the file, else
    'host' if any came from the host cache, else 'none'."""
    its = list(csv.DictReader((run / "iterations.csv").open()))
    if len(its) != n:
        raise SystemExit(f"{run}: {len(its)} iterations in iterations.csv, {n} priced")
    starts = [float(r["start_s"]) for r in its]
    kinds = ["none"] * n
    for ld in json.loads((run / "run.json").read_text()).get("loads", []):
        i = bisect.bisect_right(starts, ld["ordered_s"]) - 1
        if i >= 0:
            kinds[i] = "disk" if ld["from_disk"] or kinds[i] == "disk" else "host"
    return kinds


def by_load(rows: list[dict[str, str]], kinds: list[str]) -> dict[tuple[str, str], tuple[float, int]]:
    """Median live minus predicted (us) by step kind (decode-only or with prefill tokens) and by the
    loads the step's pass ordered: what a load adds to the step that orders it, beyond the price."""
    out: dict[tuple[str, str], list[float]] = {}
    for x, k in zip(rows, kinds, strict=True):
        step = "decode" if int(x["prefill_tokens"]) == 0 else "eager"
        out.setdefault((step, k), []).append(float(x["live_s"]) * 1e6 - float(x["predicted_us"]))
    return {key: (statistics.median(v), len(v)) for key, v in sorted(out.items())}


def print_binned(run: str, profile: str, table: dict[int, dict[int, tuple[float, int]]], columns: int) -> None:
    """The rows of a `binned` table: one per graph size, a cell for each of ``columns`` bins, then
    all together."""
    for g, got in table.items():
        if not got:  # every cell under MIN_STEPS
            continue
        cells_ = [f"{got[c][0]:.3f} ({got[c][1]})" if c in got else "-" for c in range(columns + 1)]
        print(f"| {run} | {profile} | {g} | " + " | ".join(cells_) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="*", help="run folders (default: the recorded H200 runs under traces/live), or "
                                           "folders of gpu/closed_loop.py (with --profile)")
    ap.add_argument("--twin", default=str(ROOT / ".build/release/loratwin"))
    ap.add_argument("--profile", type=Path, action="append",
                    help="price every run with this profile instead of its scenario's (a diagnostic: e.g. a copy "
                         "with one table measured otherwise); repeat it to price with several, a row each")
    table = ap.add_mutually_exclusive_group()  # one table instead of the default one
    table.add_argument("--parts", metavar="LO-HI",
                    help="instead of the table: the decode-only steps of LO to HI sequences, mean live step and "
                         "mean of the predicted parts (floor, work, tail, LoRA, host)")
    table.add_argument("--by-predecessor", action="store_true",
                    help="instead of the table: decode-only steps' live / predicted by what ran before them")
    table.add_argument("--by-skew", action="store_true",
                    help="instead of the table: decode-only steps' live / predicted by CUDA graph and by how "
                         "unequal their contexts are (max - mean context)")
    table.add_argument("--by-time", action="store_true",
                    help="instead of the table: decode-only steps' live / predicted by CUDA graph and by when they "
                         "started in the run (10 s bins)")
    table.add_argument("--by-context", action="store_true",
                    help="instead of the table: decode-only steps' live / predicted by CUDA graph and by the batch's "
                         "mean context per sequence")
    table.add_argument("--by-queue", action="store_true",
                    help="instead of the table: decode-only steps' live / predicted by CUDA graph and by how many "
                         "requests were waiting for their first step")
    table.add_argument("--by-concurrency", action="store_true",
                    help="instead of the table (closed loops only): decode-only steps' live / predicted by the "
                         "loop's concurrency, with the medians of its four quarters")
    table.add_argument("--by-size", action="store_true",
                    help="instead of the table: decode-only steps' live / predicted by batch size (sequences), "
                         "pooled over the runs, with the range of the runs' own medians")
    table.add_argument("--by-token-graph", action="store_true",
                    help="instead of the table: steps with prefill tokens' live / predicted by the token graph they "
                         "ran as (0: beyond them), pooled over the runs, with the range of the runs' own medians")
    table.add_argument("--by-load", action="store_true",
                    help="instead of the table: median live - predicted (us) of the steps by kind and by the "
                         "adapter loads their pass ordered (none, from the host cache, from the file), pooled")
    ap.add_argument("--closed-loop-from", type=Path, metavar="PROFILE",
                    help="correct decode steps with this profile's closed loop instead of each run's own")
    ap.add_argument("--closed-loop-eager", action=argparse.BooleanOptionalAction, default=None,
                    help="correct the steps with prefill tokens by the closed loop as well, or not "
                         "(default: the twin's, off; --closed-loop-eager / --no-closed-loop-eager)")
    ap.add_argument("--no-closed-loop", action="store_true",
                    help="price without the profile's closed-loop correction of decode steps (docs/profile-format.md)")
    args = ap.parse_args(argv)
    if args.no_closed_loop and args.closed_loop_from is not None:
        ap.error("--no-closed-loop and --closed-loop-from exclude each other")
    binned_tables = {  # option -> (table, what its columns bin, the bins, their label)
        "by_skew": (by_skew, "max - mean context of the batch", SKEW_COLUMNS, "skew"),
        "by_time": (by_time, "when the step started in the run, s", TIME_COLUMNS, "s"),
        "by_context": (by_context, "mean context per sequence of the batch, tokens", CONTEXT_COLUMNS, "ctx"),
        "by_queue": (by_queue, "requests waiting for their first step", QUEUE_COLUMNS, "waiting"),
    }
    binned_table, what, columns, unit = next((v for k, v in binned_tables.items() if getattr(args, k)),
                                             (None, "", (), ""))
    twin = Path(args.twin)
    if not twin.exists():
        raise SystemExit(f"{twin}: not found; run `swift build -c release` first")
    runs = [Path(r) for r in args.runs] or sorted(
        p.parent for p in (ROOT / "traces/live").glob("*/run.json")
        if "gpu: h200" in (p.parent / "scenario.yaml").read_text())
    profiles = args.profile or [None]
    if args.parts:
        try:
            lo, hi = (int(x) for x in args.parts.split("-"))
        except ValueError:
            ap.error(f"--parts: expected LO-HI sequences, e.g. 8-16, got {args.parts!r}")
        print(f"Decode-only steps of {lo}-{hi} sequences: mean live and predicted step and the predicted parts, us")
        print()
        print("| run | profile | steps | live | predicted | floor | work | tail | LoRA | host | factor |")
        print("|---|---|" + "---:|" * 9)
    elif args.by_predecessor:
        print("Median live / predicted of decode-only steps by what ran just before (steps)")
        print()
        print("| run | profile | after same graph | after other graph | after eager |")
        print("|---|---|---:|---:|---:|")
    elif binned_table is not None:
        print(f"Median live / predicted of decode-only steps by CUDA graph and by {what} (steps)")
        print()
        names = [f"{unit} >={lo}" if hi >= 1 << 30 else f"{unit} {lo}" if lo == hi else f"{unit} {lo}-{hi}"
                 for lo, hi in columns]
        print("| run | profile | graph | " + " | ".join(names) + " | all |")
        print("|---|---|---:|" + "---:|" * (len(names) + 1))
    elif args.by_concurrency:
        print("Median live / predicted of a closed loop's decode-only steps by concurrency, and of its four quarters "
              "in iteration order")
        print()
        print("| run | profile | concurrency | steps | median | quarters |")
        print("|---|---|---:|---:|---:|---|")
    elif args.by_load:
        print("Median live - predicted step time (us) by step kind and by the loads the step's pass ordered, "
              "every run pooled (steps)")
        print()
        print("| step | no load | host load | load from the file |")
        print("|---|---:|---:|---:|")
    elif args.by_token_graph:
        print("Median live / predicted of steps with prefill tokens by token graph, every run pooled (steps); "
              "the range of the runs' own medians (runs with at least 10 such steps)")
        print()
        print("| token graph | steps | pooled | runs' medians |")
        print("|---:|---:|---:|---|")
    elif args.by_size:
        print("Median live / predicted of decode-only steps by batch size, every run pooled (steps); "
              "the range of the runs' own medians (runs with at least 10 such steps)")
        print()
        print("| sequences | steps | pooled | runs' medians |")
        print("|---:|---:|---:|---|")
    else:
        print("Median of live / predicted step time over the same batches (scripts/step_errors.py)")
        print()
        head = (["run", "profile"] + [f"dec {g}" for g in GRAPH_COLUMNS] + [f"eager {n}" for n, _, _ in EAGER_COLUMNS]
                + ["probe"])
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * 2 + "---:|" * (len(head) - 2))
    pooled: dict[str, tuple[list[dict[str, str]], list[int]]] = {}  # profile column -> rows of every run
    per_run: dict[str, list[dict[int, tuple[float, int]]]] = {}  # --by-size: profile column -> each run's table
    tsizes: dict[str, list[int]] = {}  # --by-token-graph: profile column -> its token graphs
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs:
            for override in profiles:
                prof = override.resolve() if override else profile_dir(run)
                rows = price(run, twin, Path(tmp), override, closed_loop=not args.no_closed_loop,
                             closed_loop_from=args.closed_loop_from, eager=args.closed_loop_eager)
                if args.by_queue:
                    rows = with_waiting(run, rows)
                if args.by_load:
                    for x, k in zip(rows, load_kinds(run, len(rows)), strict=True):
                        x["loads"] = k
                key = override.resolve().name if override else "each its own"
                pooled.setdefault(key, ([], graph_sizes(prof / "meta.json")))[0].extend(rows)
                if args.parts:
                    got = decode_parts(rows, lo, hi)
                    if got is None:
                        continue
                    n, live, parts = got
                    cols = [parts["predicted_us"]] + [parts[k] for k in PARTS]
                    print(f"| {run.name} | {prof.name} | {n} | {live:.0f} | "
                          + " | ".join(f"{v:.0f}" for v in cols) + f" | {parts['decode_factor']:.3f} |")
                    continue
                if args.by_predecessor:
                    got = by_predecessor(rows, graph_sizes(prof / "meta.json"))
                    cells_ = [f"{got[k][0]:.3f} ({got[k][1]})" if k in got else "-"
                              for k in ("after same graph", "after other graph", "after eager")]
                    print(f"| {run.name} | {prof.name} | " + " | ".join(cells_) + " |")
                    continue
                if args.by_size:
                    per_run.setdefault(key, []).append(by_size(rows))
                    continue
                if args.by_token_graph:
                    tsizes[key] = token_graph_sizes(prof / "meta.json")
                    per_run.setdefault(key, []).append(by_token_graph(rows, tsizes[key]))
                    continue
                if args.by_load:
                    continue
                if args.by_concurrency:
                    if not is_closed_loop(run):
                        raise SystemExit(f"{run}: --by-concurrency reads a closed loop (gpu/closed_loop.py)")
                    for n, (med, steps, quarters) in by_concurrency(rows).items():
                        print(f"| {run.name} | {prof.name} | {n} | {steps} | {med:.3f} | "
                              + " / ".join(f"{q:.3f}" for q in quarters) + " |")
                    continue
                if binned_table is not None:
                    print_binned(run.name, prof.name, binned_table(rows, graph_sizes(prof / "meta.json")), len(columns))
                    continue
                dec, eag = cells(rows, graph_sizes(prof / "meta.json"))
                row = [run.name, prof.name] + [f"{dec[g]:.2f}" if g in dec else "-" for g in GRAPH_COLUMNS]
                row += [f"{eag[n]:.2f}" if n in eag else "-" for n, _, _ in EAGER_COLUMNS]
                pr = probe_ratio(run, prof)
                row.append(f"{pr:.2f}" if pr is not None else "-")
                print("| " + " | ".join(row) + " |")
    if args.by_load:
        for rows, _sizes in pooled.values():
            got = by_load(rows, [x["loads"] for x in rows])
            for step in ("decode", "eager"):
                cells_ = [f"{got[(step, k)][0]:.0f} ({got[(step, k)][1]})" if (step, k) in got else "-"
                          for k in ("none", "host", "disk")]
                print(f"| {step} | " + " | ".join(cells_) + " |")
    elif args.by_size or args.by_token_graph:
        for key, (rows, _sizes) in pooled.items():
            table_ = by_size(rows) if args.by_size else by_token_graph(rows, tsizes[key])
            for n, (med, steps) in table_.items():
                own = [t[n][0] for t in per_run.get(key, []) if n in t]
                span = f"{min(own):.3f}-{max(own):.3f} ({len(own)})" if own else "-"
                print(f"| {n} | {steps} | {med:.3f} | {span} |")
    elif len(runs) > 1 and binned_table is not None:
        for key, (rows, sizes) in pooled.items():
            print_binned(f"all {len(runs)} runs", key, binned_table(rows, sizes), len(columns))
    elif len(runs) > 1 and not (args.parts or args.by_predecessor or args.by_size or args.by_concurrency
                                or args.by_load or args.by_token_graph):
        for key, (rows, sizes) in pooled.items():  # every step of every run, one median per cell
            dec, eag = cells(rows, sizes)
            row = [f"all {len(runs)} runs", key] + [f"{dec[g]:.2f}" if g in dec else "-" for g in GRAPH_COLUMNS]
            row += [f"{eag[n]:.2f}" if n in eag else "-" for n, _, _ in EAGER_COLUMNS] + ["-"]
            print("| " + " | ".join(row) + " |")
    if not (args.parts or args.by_predecessor or binned_table or args.by_size or args.by_concurrency
            or args.by_load or args.by_token_graph):
        print()
        print(f"dec N: decode-only steps that ran as the CUDA graph of size N; eager T: steps with prefill tokens,"
              f" T = prefill tokens + decode sequences; '-': fewer than {MIN_STEPS} steps. probe: the run's"
              f" host_probe (token-graph steps of 16, 64 and 256 tokens timed before the replay's clock starts) over"
              f" the profile's step_tokens.csv, median of the sizes: the replay process against the profiler, before"
              f" the loop runs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
