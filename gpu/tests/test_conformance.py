"""Conformance: the engine's scheduler (through the virtual driver) and the Swift twin run the same
seeded scenarios with the linear cost model and must write identical batch logs
(docs/engine-model.md, "Batch log (conformance)").

The twin is `LORATWIN_BIN`, else `.build/release/loratwin`, else `.build/debug/loratwin`. Without
it the twin tests fail, unless `LORATWIN_ALLOW_SKIP=1` (local runs only).

`python3 gpu/tests/test_conformance.py --write DIR [CASE...]` writes the scenarios
(scenario.yaml, trace.csv, adapters.csv) and the engine's batch logs (batch-log.jsonl) under DIR.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gpu.engine.dlora import DLoRAScheduler  # noqa: E402
from gpu.engine.virtual import VirtualResult, run_scenario  # noqa: E402

COST_MODEL = {
    "kind": "linear",
    "base_s": 0.01,
    "per_prefill_token_s": 0.0001,
    "per_decode_seq_s": 0.0005,
    "host_to_gpu_s": 0.003,
    "disk_to_host_s": 0.02,
}
ENGINE_KEYS = (
    "max_num_seqs",
    "max_num_batched_tokens",
    "chunked_prefill",
    "block_size",
    "num_gpu_blocks",
    "max_model_len",
    "max_loras",
    "max_cpu_loras",
    "scheduler_lookahead",
)
DLORA_ENGINE = dict(
    max_num_seqs=8,
    max_num_batched_tokens=256,
    chunked_prefill=True,
    block_size=16,
    num_gpu_blocks=96,
    max_model_len=1024,
    max_loras=2,
    max_cpu_loras=4,
    scheduler_lookahead=256,
)


@dataclass(frozen=True)
class Case:
    """A seeded scenario: engine keys, replicas and the shape of its random trace."""

    name: str
    seed: int
    engine: dict[str, Any]
    replicas: int = 1
    requests: int = 250
    adapters: int = 4
    rate_per_s: float = 30.0
    prompt_tokens: tuple[int, int] = (8, 300)
    output_tokens: tuple[int, int] = (1, 64)
    base_share: float = 0.1
    expects: tuple[str, ...] = field(default=())  # features the case must exercise
    rows: tuple[str, ...] = ()  # a hand-made trace (`id,arrival_s,adapter,prompt,output` rows) instead
    scheduler: str = ""  # the scenario's `scheduler:` value (YAML flow text); empty: absent (fcfs)
    cost_extra: tuple[tuple[str, float], ...] = ()  # cost-model keys added after COST_MODEL's
    weights: tuple[float, ...] = ()  # adapter popularity (default: Zipf-like 1/(k+1))
    shift_after: int = 0  # from this request on, the popularity is reversed (0: no shift)
    absent: tuple[str, ...] = ()  # features the case must not exercise


CASES = (
    Case(
        "conf-0-mini",
        7,
        dict(
            max_num_seqs=4,
            max_num_batched_tokens=48,
            chunked_prefill=True,
            block_size=8,
            num_gpu_blocks=12,
            max_model_len=96,
            max_loras=2,
            max_cpu_loras=3,
            scheduler_lookahead=4,
        ),
        requests=16,
        rate_per_s=20.0,
        prompt_tokens=(4, 60),
        output_tokens=(2, 30),
        base_share=0.15,
        expects=("chunks", "preemptions", "host_hits", "disk_reloads", "slot_evictions", "skips_past"),
    ),
    Case(
        "conf-1-chunked",
        1,
        dict(
            max_num_seqs=8,
            max_num_batched_tokens=256,
            chunked_prefill=True,
            block_size=16,
            num_gpu_blocks=64,
            max_model_len=1024,
            max_loras=2,
            max_cpu_loras=3,
            scheduler_lookahead=256,
        ),
        adapters=4,
        expects=("chunks", "host_hits", "slot_evictions"),
    ),
    Case(
        "conf-2-small-kv",
        2,
        dict(
            max_num_seqs=16,
            max_num_batched_tokens=128,
            chunked_prefill=True,
            block_size=8,
            num_gpu_blocks=40,
            max_model_len=256,
            max_loras=4,
            max_cpu_loras=4,
            scheduler_lookahead=256,
        ),
        adapters=3,
        rate_per_s=40.0,
        prompt_tokens=(8, 120),
        output_tokens=(20, 120),
        expects=("preemptions", "chunks"),
    ),
    Case(
        "conf-3-no-chunking",
        3,
        dict(
            max_num_seqs=12,
            max_num_batched_tokens=512,
            chunked_prefill=False,
            block_size=16,
            num_gpu_blocks=80,
            max_model_len=512,
            max_loras=3,
            max_cpu_loras=4,
            scheduler_lookahead=256,
        ),
        adapters=6,
        output_tokens=(10, 150),
        expects=("preemptions", "host_hits", "disk_reloads"),
    ),
    Case(
        "conf-4-adapter-churn",
        4,
        dict(
            max_num_seqs=8,
            max_num_batched_tokens=256,
            chunked_prefill=True,
            block_size=16,
            num_gpu_blocks=96,
            max_model_len=512,
            max_loras=2,
            max_cpu_loras=8,
            scheduler_lookahead=8,
        ),
        adapters=12,
        prompt_tokens=(8, 560),
        base_share=0.2,
        expects=("rejections", "disk_reloads", "host_hits", "skips_past"),
    ),
    Case(
        "conf-5-two-replicas",
        5,
        dict(
            max_num_seqs=8,
            max_num_batched_tokens=192,
            chunked_prefill=True,
            block_size=16,
            num_gpu_blocks=48,
            max_model_len=512,
            max_loras=3,
            max_cpu_loras=5,
            scheduler_lookahead=64,
        ),
        replicas=2,
        requests=300,
        adapters=8,
        rate_per_s=60.0,
        output_tokens=(10, 100),
        expects=("replicas", "preemptions", "disk_reloads"),
    ),
    # Replica 0 waits for a load; two base-model requests arrive together: the first goes to
    # replica 1 (fewer queued), the second, on a tie, to replica 0. Both replicas then start
    # iterations at the same times, and the log lists replica 0 first (start time, then replica),
    # whatever order the passes ran in.
    Case(
        "conf-6-replica-ties",
        6,
        dict(
            max_num_seqs=8,
            max_num_batched_tokens=256,
            chunked_prefill=True,
            block_size=16,
            num_gpu_blocks=64,
            max_model_len=512,
            max_loras=2,
            max_cpu_loras=3,
            scheduler_lookahead=256,
        ),
        replicas=2,
        adapters=2,
        rows=(
            "0,0.000000,lora-00,8,2",
            "1,0.001000,,8,3",
            "2,0.001000,,8,3",
            "3,0.050000,lora-01,16,4",
            "4,0.050000,lora-01,16,4",
            "5,0.050000,,4,2",
        ),
        expects=("replicas", "same_time_replicas"),
    ),
    # dlora (docs/schedulers.md, draft 2). Every request finishes (test_case_exercises_what_it_is_for);
    # with `adaptive: false` a replica can merge and unmerge for ever (gpu/tests/test_dlora.py).
    Case(
        "dlora-0-skewed",
        20,
        DLORA_ENGINE,
        requests=300,
        rate_per_s=80.0,
        weights=(8.0, 1.0, 1.0, 1.0),
        scheduler="{kind: dlora, drain_credit: false}",
        cost_extra=(("switch_s", 0.015),),
        expects=("merges", "unmerges", "merged_iterations", "drains", "prioritised", "credit_moved", "preemptions"),
    ),
    Case(
        "dlora-1-popularity-shift",
        40,
        DLORA_ENGINE,
        requests=300,
        rate_per_s=80.0,
        weights=(8.0, 1.0, 1.0, 1.0),
        shift_after=150,
        scheduler="{kind: dlora, switch_cost: 0.01, drain_credit: false}",
        expects=("merges", "merges_onto_several", "unmerges", "merged_iterations"),
    ),
    Case(
        "dlora-2-starving-cold-adapter",
        21,
        DLORA_ENGINE,
        requests=300,
        adapters=3,
        rate_per_s=80.0,
        weights=(30.0, 1.0, 1.0),
        base_share=0.0,
        scheduler="{kind: dlora, credit_unit: 100, merge_ratio: 1.0, stay_ratio: 0.25, switch_cost: model, "
                  "drain_credit: false}",
        cost_extra=(("switch_s", 0.015),),
        expects=("merges", "unmerges", "prioritised", "priority_unmerges", "credit_moved"),
    ),
    Case(
        "dlora-3-no-credits",
        47,
        DLORA_ENGINE,
        requests=300,
        rate_per_s=80.0,
        weights=(8.0, 1.0, 1.0, 1.0),
        scheduler="{kind: dlora, credits: false, adaptive: true, drain_credit: false}",
        cost_extra=(("switch_s", 0.015),),
        expects=("merges", "unmerges", "drains", "merged_iterations"),
        absent=("prioritised", "credit_moved"),
    ),
    # `speed: decode`: only decode-only iterations measure each mode's speed.
    Case(
        "dlora-5-decode-speeds",
        20,
        DLORA_ENGINE,
        requests=300,
        rate_per_s=80.0,
        weights=(8.0, 1.0, 1.0, 1.0),
        scheduler="{kind: dlora, speed: decode, drain_credit: false}",
        cost_extra=(("switch_s", 0.015),),
        expects=("merges", "unmerges", "merged_iterations", "prioritised", "credit_moved"),
    ),
    # `drain_credit` (the default since lease 67078bf-1): drains pay the candidates they displace.
    Case(
        "dlora-6-drain-credit",
        20,
        DLORA_ENGINE,
        requests=300,
        rate_per_s=80.0,
        weights=(8.0, 1.0, 1.0, 1.0),
        scheduler="{kind: dlora}",
        cost_extra=(("switch_s", 0.015),),
        expects=("drains", "prioritised", "credit_moved"),
    ),
    # `max_wait_s`: the aging guard prioritises the adapter of a request that waited too long,
    # ending merges and drains (base-model requests among them).
    Case(
        "dlora-7-aging-guard",
        20,
        DLORA_ENGINE,
        requests=300,
        rate_per_s=80.0,
        weights=(8.0, 1.0, 1.0, 1.0),
        scheduler="{kind: dlora, max_wait_s: 1.2, drain_credit: false}",
        cost_extra=(("switch_s", 0.015),),
        expects=("aged", "aged_base", "merges", "unmerges", "prioritised", "priority_unmerges", "credit_moved"),
    ),
    # Draft 1 stalled on this trace (merged while parked requests held every seat); draft 2 drains
    # before merging, and its guard unmerges a merged pass that has nothing to schedule.
    Case(
        "dlora-4-empty-merged-pass",
        20,
        DLORA_ENGINE,
        requests=300,
        rate_per_s=80.0,
        weights=(8.0, 1.0, 1.0, 1.0),
        scheduler="{kind: dlora, credits: false, merge_ratio: 1.0, stay_ratio: 0, adaptive: false, "
                  "drain_credit: false}",
        cost_extra=(("switch_s", 0.015),),
        expects=("merges", "unmerges", "empty_unmerges", "drains"),
        absent=("prioritised",),
    ),
)


# ------------------------------------------------------------------ scenario files
def _number(x: float) -> str:
    text = repr(float(x))
    assert "e" not in text and "inf" not in text, text  # PyYAML reads 1e-05 as a string
    return text


def write_case(case: Case, folder: Path) -> Path:
    """Writes scenario.yaml, trace.csv and adapters.csv for `case` into `folder`; returns the
    scenario's path. Deterministic: the same case always gives the same bytes."""
    rng = random.Random(case.seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"lora-{k:02d}" for k in range(case.adapters)]
    cat = ["adapter,rank,alpha,target_modules"]
    for n in names:
        rank = rng.choice([8, 16, 32, 64])
        cat.append(f"{n},{rank},{2 * rank},q_proj;k_proj;v_proj;o_proj")
    (folder / "adapters.csv").write_text("\n".join(cat) + "\n")
    weights = list(case.weights) if case.weights else [1.0 / (k + 1) for k in range(case.adapters)]  # Zipf-like
    rows = ["request_id,arrival_s,adapter,prompt_tokens,output_tokens", *case.rows]
    t = 0.0
    for rid in range(0 if case.rows else case.requests):
        burst = rng.random() < 0.15
        t += 0.0 if burst else rng.expovariate(case.rate_per_s)
        popular = weights[::-1] if case.shift_after and rid >= case.shift_after else weights
        adapter = "" if rng.random() < case.base_share else rng.choices(names, popular)[0]
        prompt = rng.randint(*case.prompt_tokens)
        output = rng.randint(*case.output_tokens)
        rows.append(f"{rid},{t:.6f},{adapter},{prompt},{output}")
    (folder / "trace.csv").write_text("\n".join(rows) + "\n")
    engine = ", ".join(
        f"{k}: {str(case.engine[k]).lower() if isinstance(case.engine[k], bool) else case.engine[k]}"
        for k in ENGINE_KEYS
    )
    cost = ", ".join(
        f"{k}: {v if isinstance(v, str) else _number(v)}" for k, v in (*COST_MODEL.items(), *case.cost_extra)
    )
    scheduler = f"scheduler: {case.scheduler}\n" if case.scheduler else ""
    scenario = folder / "scenario.yaml"
    scenario.write_text(
        f"name: {case.name}\n"
        f"seed: {case.seed}\n"
        "model: llama-2-7b\n"
        "gpu: h100-sxm-80gb\n"
        f"cost_model: {{{cost}}}\n"
        f"engine: {{{engine}}}\n"
        f"replicas: {case.replicas}\n"
        f"{scheduler}"
        "placement: {kind: all}\n"
        "workload: {trace: trace.csv, catalogue: adapters.csv}\n"
    )
    return scenario


# ------------------------------------------------------------------ comparison
def compare_batch_logs(expected: list[str], actual: list[str], tolerance_s: float = 1e-9) -> str | None:
    """None when the logs agree; else a description of the first difference. Fields are compared
    exactly except `start_s`, which may differ by `tolerance_s`."""
    for k, (e_line, a_line) in enumerate(zip(expected, actual, strict=False), start=1):
        try:
            e, a = json.loads(e_line), json.loads(a_line)
        except json.JSONDecodeError as err:
            return f"line {k}: not JSON ({err})\n  engine: {e_line}\n  twin:   {a_line}"
        if set(e) != set(a):
            return f"line {k}: keys {sorted(a)} (twin) != {sorted(e)} (engine)\n  engine: {e_line}\n  twin:   {a_line}"
        for key in ("replica", "iteration", "start_s", "batch", "loads", "preempted", "switch"):
            ev, av = e.get(key), a.get(key)
            if key == "start_s":
                ok = isinstance(av, (int, float)) and abs(float(av) - float(ev)) <= tolerance_s * (1 + 1e-6)
            else:
                ok = ev == av
            if not ok:
                return (
                    f"line {k} (replica {e.get('replica')}, iteration {e.get('iteration')}): "
                    f"{key} differs: engine {ev!r}, twin {av!r}\n  engine: {e_line}\n  twin:   {a_line}"
                )
    if len(expected) != len(actual):
        k = min(len(expected), len(actual)) + 1
        more = "engine" if len(expected) > len(actual) else "twin"
        extra = (expected if more == "engine" else actual)[k - 1]
        return (
            f"line {k}: the {more} log goes on ({len(expected)} engine lines, {len(actual)} twin lines)\n"
            f"  {more}: {extra}"
        )
    return None


def read_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------ features
def features(result: VirtualResult) -> set[str]:
    """The behaviours a run exercised (so that a case cannot silently stop testing them)."""
    found: set[str] = set()
    starts: dict[float, set[int]] = {}
    for e in result.batch_log:
        starts.setdefault(e.start_s, set()).add(e.replica)
    if any(len(v) > 1 for v in starts.values()):
        found.add("same_time_replicas")
    if any(e.preempted for e in result.batch_log):
        found.add("preemptions")
    if any(r.status == "rejected" for r in result.requests):
        found.add("rejections")
    if len({e.replica for e in result.batch_log}) > 1:
        found.add("replicas")
    by_id = {r.request_id: r for r in result.requests}
    total: dict[int, int] = {}
    for e in result.batch_log:
        for rid, n in e.batch:
            total[rid] = total.get(rid, 0) + n
            if n < by_id[rid].prompt_tokens and total[rid] < by_id[rid].prompt_tokens:
                found.add("chunks")
    seen: set[tuple[int, str]] = set()
    for _, replica, order, _ in result.loads:
        key = (replica, order.adapter)
        if key in seen:
            found.add("slot_evictions")  # loaded again: it had lost its slot
            found.add("disk_reloads" if order.from_disk else "host_hits")
        seen.add(key)
    # A request admitted before an earlier-arrived one that waited for its adapter.
    firsts = sorted(
        (r for r in result.requests if r.first_scheduled_s is not None), key=lambda r: (r.arrival_s, r.request_id)
    )
    if any(a.first_scheduled_s > b.first_scheduled_s for a, b in zip(firsts, firsts[1:], strict=False)):  # type: ignore[operator]
        found.add("skips_past")
    # dlora (docs/schedulers.md).
    merged_onto = {e.switch.split()[1] for e in result.batch_log if e.switch and e.switch.startswith("merge ")}
    if merged_onto:
        found.add("merges")
    if len(merged_onto) > 1:
        found.add("merges_onto_several")
    if any(e.switch and e.switch.startswith("unmerge ") for e in result.batch_log):
        found.add("unmerges")
    if any(it.mode == "merged" for it in result.iterations):
        found.add("merged_iterations")
    for sched in result.schedulers:
        if isinstance(sched, DLoRAScheduler):
            if sched.prioritised_passes:
                found.add("prioritised")
            if sched.drain_passes:
                found.add("drains")
            if sched.priority_unmerges:
                found.add("priority_unmerges")
            if sched.empty_unmerges:
                found.add("empty_unmerges")
            if sched.aged_passes:
                found.add("aged")
            if sched.aged_base_passes:
                found.add("aged_base")
            if any(v != (len(sched.adapters) - 1) * sched.params.credit_unit for v in sched.credit.values()):
                found.add("credit_moved")
    return found


# ------------------------------------------------------------------ the twin
def twin_binary() -> Path | None:
    env = os.environ.get("LORATWIN_BIN")
    if env:
        return Path(env)
    for rel in (".build/release/loratwin", ".build/debug/loratwin"):
        if (ROOT / rel).is_file():
            return ROOT / rel
    return None


def require_twin() -> Path:
    """The twin binary, or a failure (a skip with LORATWIN_ALLOW_SKIP=1) saying how to get it."""
    binary = twin_binary()
    if binary is not None and binary.is_file():
        return binary
    where = f"LORATWIN_BIN={binary}" if binary else "LORATWIN_BIN unset, no .build/release or .build/debug loratwin"
    message = (
        f"the twin binary is missing ({where}); build it with `swift build -c release` or point LORATWIN_BIN "
        "at it (set LORATWIN_ALLOW_SKIP=1 to skip this test locally)"
    )
    if os.environ.get("LORATWIN_ALLOW_SKIP") == "1":
        pytest.skip(message)
    pytest.fail(message)


def run_twin(binary: Path, scenario: Path, log: Path) -> None:
    proc = subprocess.run(
        [str(binary), "simulate", str(scenario), "--batch-log", str(log)],
        cwd=scenario.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"`loratwin simulate {scenario.name} --batch-log {log.name}` exited {proc.returncode}:\n"
            f"{proc.stderr[-4000:]}"
        )
    if not log.is_file():
        pytest.fail(f"the twin wrote no batch log at {log}")


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_twin_matches_engine(case: Case, tmp_path: Path) -> None:
    binary = require_twin()
    scenario = write_case(case, tmp_path)
    run_scenario(scenario, tmp_path / "engine.jsonl")
    run_twin(binary, scenario, tmp_path / "twin.jsonl")
    diff = compare_batch_logs(read_lines(tmp_path / "engine.jsonl"), read_lines(tmp_path / "twin.jsonl"))
    assert diff is None, f"{case.name}: twin and engine disagree (files in {tmp_path})\n{diff}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_exercises_what_it_is_for(case: Case, tmp_path: Path) -> None:
    result = run_scenario(write_case(case, tmp_path))
    found = features(result)
    missing = set(case.expects) - found
    assert not missing, f"{case.name} no longer exercises {sorted(missing)}"
    unwanted = set(case.absent) & found
    assert not unwanted, f"{case.name} exercises {sorted(unwanted)}, which it must not"
    finished = [r for r in result.requests if r.status == "finished"]
    expected = len(case.rows) if case.rows else case.requests
    assert len(finished) + sum(r.status == "rejected" for r in result.requests) == expected
    assert all(r.generated == r.output_tokens for r in finished)


def test_cases_are_deterministic(tmp_path: Path) -> None:
    for case in CASES[:2]:
        a, b = write_case(case, tmp_path / "a" / case.name), write_case(case, tmp_path / "b" / case.name)
        for name in ("scenario.yaml", "trace.csv", "adapters.csv"):
            assert (a.parent / name).read_bytes() == (b.parent / name).read_bytes()
        run_scenario(a, tmp_path / "a.jsonl")
        run_scenario(b, tmp_path / "b.jsonl")
        assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


GOLDEN = Path(__file__).resolve().parent / "data" / "conformance"


def test_golden_mini_case_is_reproduced(tmp_path: Path) -> None:
    """gpu/tests/data/conformance/conf-0-mini holds the smallest case and the engine's batch log
    (a fixture the twin's own tests can use). Regenerate it with `--write gpu/tests/data/conformance`
    when docs/engine-model.md changes on purpose."""
    case = CASES[0]
    scenario = write_case(case, tmp_path)
    run_scenario(scenario, tmp_path / "batch-log.jsonl")
    for name in ("scenario.yaml", "trace.csv", "adapters.csv", "batch-log.jsonl"):
        golden = GOLDEN / case.name / name
        assert golden.read_bytes() == (tmp_path / name).read_bytes(), f"{golden} differs from a fresh run"


@pytest.mark.parametrize("case", CASES[::2], ids=lambda c: c.name)
def test_python_cli_against_in_process(case: Case, tmp_path: Path) -> None:
    """Python against Python: the CLI the twin is compared with, in a fresh process, against
    the in-process driver; and the comparison finds no difference between them."""
    scenario = write_case(case, tmp_path)
    run_scenario(scenario, tmp_path / "in-process.jsonl")
    proc = subprocess.run(
        [sys.executable, "-m", "gpu.engine.virtual", str(scenario), "--batch-log", str(tmp_path / "cli.jsonl")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    diff = compare_batch_logs(read_lines(tmp_path / "in-process.jsonl"), read_lines(tmp_path / "cli.jsonl"))
    assert diff is None, diff


LOG = [
    '{"replica": 0, "iteration": 0, "start_s": 0.000000000, "batch": [[1, 8]], "loads": ["a"], "preempted": []}',
    '{"replica": 0, "iteration": 1, "start_s": 0.010800000, "batch": [[1, 1], [2, 4]], "loads": [], "preempted": []}',
    '{"replica": 1, "iteration": 0, "start_s": 0.010800000, "batch": [[3, 4]], "loads": [], "preempted": [7]}',
]


def test_compare_accepts_equal_logs_and_start_within_a_nanosecond() -> None:
    assert compare_batch_logs(LOG, list(LOG)) is None
    nudged = LOG[1].replace("0.010800000", "0.010800001")
    assert compare_batch_logs(LOG, [LOG[0], nudged, LOG[2]]) is None
    spaced = json.dumps(json.loads(LOG[2]), separators=(",", ":"))
    assert compare_batch_logs(LOG, [LOG[0], LOG[1], spaced]) is None


@pytest.mark.parametrize(
    ("twin", "words"),
    [
        ([LOG[0], LOG[1].replace("0.010800000", "0.010800003"), LOG[2]], "line 2 (replica 0, iteration 1): start_s"),
        ([LOG[0], LOG[1].replace("[2, 4]", "[2, 3]"), LOG[2]], "line 2 (replica 0, iteration 1): batch"),
        ([LOG[0], LOG[1].replace("[[1, 1], [2, 4]]", "[[2, 4], [1, 1]]"), LOG[2]], "line 2"),
        ([LOG[0].replace('["a"]', "[]"), LOG[1], LOG[2]], "line 1 (replica 0, iteration 0): loads"),
        ([LOG[0], LOG[1], LOG[2].replace("[7]", "[]")], "line 3 (replica 1, iteration 0): preempted"),
        ([LOG[0], LOG[2], LOG[1]], "line 2 (replica 0, iteration 1): replica"),
        ([LOG[0], LOG[1]], "line 3: the engine log goes on"),
        ([*LOG, LOG[2]], "line 4: the twin log goes on"),
        ([LOG[0], "{oops", LOG[2]], "line 2: not JSON"),
    ],
)
def test_compare_reports_the_first_difference(twin: list[str], words: str) -> None:
    diff = compare_batch_logs(LOG, twin)
    assert diff is not None and diff.startswith(words), diff


def main(argv: list[str]) -> int:
    """`--write DIR [CASE...]`: write the cases (all by default) and the engine's batch logs
    under DIR/<case>/."""
    if len(argv) < 2 or argv[0] != "--write":
        print("usage: python3 gpu/tests/test_conformance.py --write DIR [CASE...]", file=sys.stderr)
        return 2
    for case in CASES:
        if argv[2:] and case.name not in argv[2:]:
            continue
        folder = Path(argv[1]) / case.name
        run_scenario(write_case(case, folder), folder / "batch-log.jsonl")
        print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
