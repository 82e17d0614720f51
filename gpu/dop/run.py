"""Dop on the GPU machine: one call measures the HBM bandwidth, runs (or resumes) the search, and
writes the state, the tuned table and a log under --out. Prints a short table last.

    GIT_COMMIT=<sha> python3 gpu/dop/run.py --state gpu/dop/state.json --out $OUT/dop --budget-seconds 240

then, here: copy ``$OUT/dop/state.json`` to ``gpu/dop/state.json`` and ``tuned_h200.json`` to
``gpu/dop/tuned_h200.json``, run ``python3 gpu/dop/table.py render``, commit. The next call
resumes where this one stopped (finished scenarios are kept; a scenario cut by the budget goes on
from its measured candidates).

Modes: ``search`` (default) walks the scenario set in priority order (``--scenarios default``,
``full``, ``smoke`` or comma-separated scenario keys); ``sweep`` times every point of the
exhaustive-sweep grid of ``--sweep-scenarios`` (resumable too) to judge the search; ``both`` does
the search first, then sweeps with the time left.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gpu.dop.search import (  # noqa: E402
    FatalMeasurement,
    Search,
    SearchConfig,
    best,
    check_state,
    layout_entry,
    new_state,
    search_quality,
)
from gpu.dop.space import scenario_set  # noqa: E402
from gpu.dop.table import build_table, render_markdown  # noqa: E402

DEFAULT_SWEEP = ("llama2-7b/qkvo/fp16/r16/decode16/distinct,llama2-7b/qkvo/fp16/r16/decode64/skewed,"
                 "llama2-7b/qkvo/fp16/r64/decode4/identical")


def main() -> int:
    ap = argparse.ArgumentParser(description="Dop search on the GPU (resumable)")
    ap.add_argument("--state", type=Path, default=Path("gpu/dop/state.json"), help="state to resume (if it exists)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budget-seconds", type=float, default=240.0, help="wall time of this call, stops cleanly before")
    ap.add_argument("--mode", choices=("search", "sweep", "both"), default="search")
    ap.add_argument("--scenarios", default="default")
    ap.add_argument("--sweep-scenarios", default=DEFAULT_SWEEP)
    ap.add_argument("--dtype", default="fp16", choices=("fp16", "bf16"))
    ap.add_argument("--timed-per-scenario", type=int, default=8)
    ap.add_argument("--table-name", default="tuned_h200.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--new-state", action="store_true", help="ignore --state and start afresh")
    args = ap.parse_args()
    t_start = time.monotonic()
    deadline = t_start + args.budget_seconds
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    logf = (out / "dop.log").open("a")

    def log(msg: str) -> None:
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    import torch

    from gpu.common.meta import collect_metadata
    from gpu.dop.measure import GpuMeasurer, measure_hbm_bytes_per_s

    state = json.loads(args.state.read_text()) if args.state.exists() and not args.new_state else new_state()
    check_state(state)
    meta = collect_metadata(command=" ".join(sys.argv))
    prev = [s["meta"].get("gpu_name") for s in state["sessions"]]
    if prev and prev[-1] != meta.get("gpu_name"):
        log(f"state was measured on {prev[-1]}, this is {meta.get('gpu_name')}: use --new-state or another file")
        return 2
    hbm = measure_hbm_bytes_per_s()
    sid = len(state["sessions"]) + 1
    state["sessions"].append({"id": sid, "meta": meta, "hbm_bytes_per_s": hbm, "mode": args.mode,
                              "budget_s": args.budget_seconds})
    log(f"session {sid}: {meta.get('gpu_name')} torch {meta.get('torch')} triton {meta.get('triton')} "
        f"commit {meta.get('git_commit')}; HBM {hbm / 1e12:.3f} TB/s (copy, read + write)")

    state_path = out / "state.json"

    def save(st: dict) -> None:
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(st, indent=None, separators=(",", ":")) + "\n")
        os.replace(tmp, state_path)

    save(state)
    cfg = SearchConfig(timed_per_scenario=args.timed_per_scenario, seed=args.seed)
    search = Search(state, GpuMeasurer(), cfg, deadline=deadline, save=save, log=log, session=sid)
    status = "complete"
    try:
        if args.mode in ("search", "both"):
            scen = scenario_set(args.scenarios, args.dtype)
            for i, s in enumerate(scen):
                e = layout_entry(state, s)
                if e["done"]:
                    continue
                log(f"[{time.monotonic() - t_start:6.1f}s] {i + 1}/{len(scen)} {s.key()} segments {len(s.seg_lens)}")
                if not search.run_scenario(s):
                    status = "budget reached (resumable)"
                    break
                b = best(e["measurements"])
                log(f"  best {b['key'] if b else None}: {b['us'] if b else float('nan'):.2f} us "
                    f"({e['search_s']:.1f} s)")
                torch.cuda.empty_cache()
        if args.mode in ("sweep", "both") and status == "complete":
            for s in scenario_set(args.sweep_scenarios, args.dtype):
                log(f"[{time.monotonic() - t_start:6.1f}s] sweep {s.key()}")
                if not search.run_sweep(s):
                    status = "budget reached in the sweep (resumable)"
                    break
    except FatalMeasurement as exc:
        status = f"stopped on a CUDA error: {exc}"
        log(status)
    save(state)
    table = build_table(state)
    (out / args.table_name).write_text(json.dumps(table, indent=1) + "\n")
    (out / "quality.json").write_text(json.dumps(search_quality(state), indent=1) + "\n")
    (out / "dop_table.md").write_text(render_markdown(table, state) + "\n")
    log(f"status: {status}; {len(table['entries'])} scenario entries; {time.monotonic() - t_start:.1f} s")
    # short table last (the reply carries the tail of the output)
    print("\nscenario                                            SGMV us   Dop us   bmm us  xSGMV  roofline")
    for k, r in table["entries"].items():
        print(f"{k:50s} {r['sgmv_us'] or float('nan'):8.2f} {r['dop_us']:8.2f} {r['bmm_us'] or float('nan'):8.2f} "
              f"{r.get('speedup_vs_sgmv', float('nan')):6.2f} {r.get('roofline_fraction', float('nan')):8.3f}"
              f"{'' if r['complete'] else '  partial'}")
    q = search_quality(state)
    print(f"cost model Spearman (mean over {q['spearman_layouts']} layouts): {q['spearman_mean']}")
    print(f"status: {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
