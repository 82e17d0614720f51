"""gpu/closed_loop.py: the seeded workload, the closed loop over the real (torch-free) Scheduler
with a stand-in executor, the steps CSV, a CPU run of the whole script, and the twin pricing its
steps (when the release binary is there)."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpu import closed_loop as cl
from gpu.engine.config import EngineConfig
from gpu.engine.scheduler import AdapterInfo

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import live_batches  # noqa: E402

NAMES = [f"a{i}" for i in range(4)]
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


def test_draws_are_seeded_clipped_and_spread_over_the_adapters():
    a = cl.Workload(3, 450, 128, NAMES)
    b = cl.Workload(3, 450, 128, NAMES)
    da = [a.draw() for _ in range(2000)]
    assert da == [b.draw() for _ in range(2000)]
    assert da != [cl.Workload(4, 450, 128, NAMES).draw() for _ in range(2000)]
    assert all(cl.PROMPT_RANGE[0] <= d.prompt_tokens <= cl.PROMPT_RANGE[1] for d in da)
    assert all(cl.OUTPUT_RANGE[0] <= d.output_tokens <= cl.OUTPUT_RANGE[1] for d in da)
    prompts = sorted(d.prompt_tokens for d in da)
    assert 400 <= prompts[len(prompts) // 2] <= 500  # the median asked for
    counts = {n: sum(d.adapter == n for d in da) for n in NAMES}
    assert min(counts.values()) > 400 and sum(counts.values()) == 2000
    assert {d.adapter for d in (cl.Workload(0, 100, 10, []).draw() for _ in range(20))} == {None}
    with pytest.raises(ValueError):
        cl.Workload(0, 0, 10, NAMES)


class FakeEngine:
    """Token ids in, ids out: what ClosedLoop needs of the executor, with a clock that a step
    advances by a fixed time."""

    def __init__(self) -> None:
        self.t = 0.0
        self.next_id = 0
        self.live: set[int] = set()
        self.dropped: list[int] = []
        self.batches: list[int] = []

    def clock(self) -> float:
        return self.t

    def add(self, length: int) -> int:
        self.next_id += 1
        self.live.add(self.next_id)
        return self.next_id

    def drop(self, rid: int) -> None:
        assert rid in self.live, rid
        self.live.discard(rid)
        self.dropped.append(rid)

    def execute(self, seqs) -> None:
        assert all(s.request_id in self.live for s in seqs)
        self.batches.append(len(seqs))
        self.t += 0.001 * (1 + len(seqs))


def _loop(n: int, engine: FakeEngine, seed: int = 1) -> cl.ClosedLoop:
    cfg = EngineConfig(max_num_seqs=n, max_num_batched_tokens=4096, num_gpu_blocks=20000, max_model_len=2576,
                       max_loras=8, max_cpu_loras=8)
    infos = {a: AdapterInfo(a, 16, 32.0, TARGETS) for a in NAMES}
    return cl.ClosedLoop(cfg, infos, n, cl.Workload(seed, 60, 20, NAMES), engine.execute, engine.add,
                         engine.drop, clock=engine.clock)


def test_the_loop_keeps_n_requests_and_replaces_those_that_finish():
    eng = FakeEngine()
    loop = _loop(6, eng)
    kept = cl.run_concurrency(loop, warmup=10, steps=300)
    assert len(kept) == 300 and loop.iteration == 310
    assert len(loop.open) == 6 == len(eng.live)  # topped up before each pass; finished ones dropped
    assert len(eng.dropped) > 20 and len(loop.requests) == 6 + len(eng.dropped)
    decode_only = [b for b, _ in kept if b.prefill_tokens == 0]
    mixed = [b for b, _ in kept if b.prefill_tokens > 0]
    assert decode_only and mixed  # turnover brings prefill steps among the decode ones
    assert max(b.decode_sequences for b in decode_only) == 6
    assert all(b.decode_sequences + b.prefill_sequences <= 6 for b, _ in kept)
    for b, execute_s in kept:  # the row is the iteration; execute is inside it
        assert 0 < execute_s <= b.live_s
        assert sum(n for _, n in b.segments) == b.prefill_tokens + b.decode_sequences
        assert b.decode_max_context * b.decode_sequences >= b.decode_context_tokens
    starts = [b.start_s for b, _ in kept]
    assert starts == sorted(starts)
    loop.close()
    assert not eng.live


def test_steps_csv_is_the_steps_format_with_two_more_columns_and_the_trace_is_ordered():
    eng = FakeEngine()
    loops = []
    rows = []
    for n in (2, 5):
        loop = _loop(n, eng, seed=n)
        loop.t0 = 0.0  # one origin, as main gives them
        rows += [(b, e, n) for b, e in cl.run_concurrency(loop, 3, 40)]
        loops.append(loop)
    text = cl.steps_csv(rows)
    got = list(csv.DictReader(text.splitlines()))
    assert list(got[0]) == list(live_batches.COLUMNS) + list(cl.EXTRA_COLUMNS)
    assert [int(r["iteration"]) for r in got] == list(range(80))
    assert {r["concurrency"] for r in got} == {"2", "5"}
    requests = [r for lp in loops for r in lp.requests]
    trace = list(csv.DictReader(cl.trace_csv(requests).splitlines()))
    arrivals = [float(r["arrival_s"]) for r in trace]
    assert arrivals == sorted(arrivals) and len({r["request_id"] for r in trace}) == len(trace)
    assert cl.catalogue_csv(NAMES, 32).splitlines()[1] == "a0,32,64.0,q_proj;k_proj;v_proj;o_proj"
    assert "cost_model: analytic" in cl.scenario_yaml("llama-2-7b", "h200", "sgmv", 2576, 1000)


def test_the_twin_prices_the_loops_steps(tmp_path):
    """scenario.yaml, trace.csv, catalogue.csv and steps.csv as main writes them, priced by
    `loratwin profile price` with a committed profile, and compared by scripts/step_errors.py."""
    twin = Path(os.environ.get("LORATWIN_BIN", ROOT / ".build/release/loratwin"))
    profile = ROOT / "profiles/h200-llama2-7b-a70f021"
    if not twin.exists() or not profile.exists():
        pytest.skip("needs the twin's release binary and the a70f021 profile")
    eng = FakeEngine()
    loop = _loop(12, eng)
    loop.t0 = 0.0
    rows = [(b, e, 12) for b, e in cl.run_concurrency(loop, 5, 60)]
    d = tmp_path / "cl"
    d.mkdir()
    (d / "steps.csv").write_text(cl.steps_csv(rows))
    (d / "trace.csv").write_text(cl.trace_csv(loop.requests))
    (d / "catalogue.csv").write_text(cl.catalogue_csv(NAMES, 16))
    (d / "scenario.yaml").write_text(cl.scenario_yaml("llama-2-7b", "h200", "sgmv", 2576, 20000))
    out = d / "priced.csv"
    r = subprocess.run([str(twin), "profile", "price", str(d / "scenario.yaml"), str(d / "steps.csv"),
                        "--profile", str(profile), "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    priced = list(csv.DictReader(out.open()))
    assert len(priced) == 60 and all(float(x["predicted_us"]) > 1000 for x in priced)
    assert priced[0]["concurrency"] == "12"  # extra columns copied through
    # step_errors reads the folder as it is (no live run to reconstruct), with --profile
    r = subprocess.run([sys.executable, str(ROOT / "scripts/step_errors.py"), str(d), "--profile", str(profile),
                        "--twin", str(twin), "--by-skew"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "| cl | h200-llama2-7b-a70f021 | 12 |" in r.stdout
    import shutil

    shutil.copytree(d, tmp_path / "cl2")  # two folders: a row each, and one over the steps of both
    r = subprocess.run([sys.executable, str(ROOT / "scripts/step_errors.py"), str(d), str(tmp_path / "cl2"),
                        "--profile", str(profile), "--twin", str(twin)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stdout.splitlines() if x.startswith("| cl") or x.startswith("| all")]
    assert [x.split(" | ")[0] for x in lines] == ["| cl", "| cl2", "| all 2 runs"]
    # the same steps twice: the pooled medians are each run's (no probe without a run.json)
    assert lines[0].split(" | ")[2:] == lines[1].split(" | ")[2:] == lines[2].split(" | ")[2:]
    assert lines[2].split(" | ")[1] == profile.name
    r = subprocess.run([sys.executable, str(ROOT / "scripts/step_errors.py"), str(d), "--twin", str(twin)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "--profile" in (r.stderr + r.stdout)


def _tiny(out, *extra: str) -> list[str]:
    """gpu/closed_loop.py's arguments for a run of the tiny model on the CPU, with short prompts and
    outputs, then `extra`."""
    return ["--out", str(out), "--model", "tiny-llama", "--device", "cpu", "--prompt-median", "20",
            "--output-median", "8", *extra]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_runs_on_the_cpu_and_writes_its_files(tmp_path):
    out = tmp_path / "cl"
    rc = cl.main(_tiny(out, "--concurrency", "1,3", "--lora", "torch", "--adapters", "2", "--steps", "6",
                       "--warmup", "2"))
    assert rc == 0
    rows = list(csv.DictReader((out / "steps.csv").open()))
    assert len(rows) == 12 and {r["concurrency"] for r in rows} == {"1", "3"}
    assert all(float(r["live_s"]) >= float(r["execute_s"]) > 0 for r in rows)
    for f in ("scenario.yaml", "trace.csv", "catalogue.csv", "meta.json"):
        assert (out / f).exists(), f
    assert '"kernel": "torch"' in (out / "meta.json").read_text()
    assert not list(out.glob(".*.tmp")) and not list(tmp_path.glob(".cl.*"))  # no staging folder left


def test_a_folder_with_files_in_it_is_refused_before_anything_runs(tmp_path):
    out = tmp_path / "cl"
    out.mkdir()
    (out / "steps.csv").write_text("an earlier run\n")
    with pytest.raises(SystemExit) as e:
        cl.main(["--out", str(out), "--device", "cpu"])
    assert e.value.code == 2 and (out / "steps.csv").read_text() == "an earlier run\n"


def test_the_dop_kernel_without_a_tuned_table_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(SystemExit) as e:
        cl.main(["--out", str(tmp_path / "cl"), "--device", "cpu", "--lora", "dop",
                 "--dop-table", str(tmp_path / "none.json")])
    assert e.value.code == 2 and not (tmp_path / "cl").exists()


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_num_blocks_bounds_the_schedulers_pool_and_is_recorded(tmp_path):
    out = tmp_path / "cl"
    rc = cl.main(_tiny(out, "--concurrency", "2", "--lora", "none", "--steps", "4", "--warmup", "1",
                       "--num-blocks", "64"))
    assert rc == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["num_blocks"] == 64 and meta["pool_blocks"] >= 64
    assert meta["runtime"]["gc"]["passes"] == [0, 0, 0] and "quiet" in meta["runtime"]["gc"]
    assert "num_gpu_blocks: 64" in (out / "scenario.yaml").read_text()
    with pytest.raises(SystemExit) as e:  # more than the pool: refused, nothing written
        cl.main(["--out", str(tmp_path / "big"), "--model", "tiny-llama", "--device", "cpu",
                 "--num-blocks", str(10**9)])
    assert e.value.code == 2 and not (tmp_path / "big").exists()


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_seeds_run_one_after_another_and_are_told_apart(tmp_path):
    out = tmp_path / "cl"
    rc = cl.main(_tiny(out, "--concurrency", "1,2", "--lora", "none", "--steps", "3", "--warmup", "1",
                       "--seeds", "3,5"))
    assert rc == 0
    rows = list(csv.DictReader((out / "steps.csv").open()))
    assert [(r["seed"], r["concurrency"]) for r in rows] == [("3", "1")] * 3 + [("3", "2")] * 3 + [
        ("5", "1")] * 3 + [("5", "2")] * 3
    assert [int(r["iteration"]) for r in rows] == list(range(12))
    for bad in ("3,3", "x"):
        with pytest.raises(SystemExit):
            cl.main(["--out", str(tmp_path / "bad"), "--device", "cpu", "--seeds", bad])
    assert not (tmp_path / "bad").exists()
