"""gpu/record_runs.sh refuses, before any device time is spent, a run that does not exist or whose
scenario names another GPU than the machine's (a fake nvidia-smi on PATH; nothing else runs)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, gpu_name: str, *args: str, force: bool = False,
         extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\necho '{gpu_name}'\n")
    smi.chmod(0o755)
    py = bin_dir / "python3"  # any python call means the guard let the run through
    py.write_text("#!/bin/sh\necho PYTHON-CALLED \"$@\"\nexit 0\n")
    py.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OUT": str(tmp_path / "out"),
           "MACHINE_START_FILE": str(tmp_path / "machine-start")}  # not this machine's /tmp
    if force:
        env["FORCE_GPU"] = "1"
    env.update(extra_env or {})
    return subprocess.run(["bash", str(ROOT / "gpu/record_runs.sh"), *args], capture_output=True, text=True, env=env,
                          cwd=ROOT)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_an_h100_scenario_is_refused_on_an_h200_before_the_profile(tmp_path):
    r = _run(tmp_path, "NVIDIA H200", "--profile", "h200-v05-bursty-uniform-rank32", "v05-bursty-uniform-rank32")
    assert r.returncode == 2
    assert "traces/live/v05-bursty-uniform-rank32/scenario.yaml: gpu h100" in r.stderr and "nvidia h200" in r.stderr
    assert "PYTHON-CALLED" not in r.stdout  # no profile, no replay


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_missing_run_is_refused_and_a_matching_one_goes_through(tmp_path):
    r = _run(tmp_path, "NVIDIA H200", "no-such-run")
    assert r.returncode == 2 and "traces/live/no-such-run/scenario.yaml: no such run" in r.stderr
    for run, force in (("h200-v05-bursty-uniform-rank32", False), ("v05-bursty-uniform-rank32", True)):  # on purpose
        r = _run(tmp_path, "NVIDIA H200", run, force=force)
        assert r.returncode == 0, r.stderr
        log = (tmp_path / "out/work/runs" / run / "replay.log").read_text()
        assert f"PYTHON-CALLED gpu/replay.py traces/live/{run}/scenario.yaml" in log


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("tag, args", [("", "--seeds 0,1 --concurrency 9,10"), ("-end", "--seeds 0")])
def test_closed_loop_variants_tag_and_arguments_reach_closed_loop_py(tmp_path, tag, args):
    env = {"CLOSED_LOOP": "1", "CLOSED_LOOP_VARIANTS": "sgmv", "CLOSED_LOOP_ARGS": args}
    if tag:
        env["CLOSED_LOOP_TAG"] = tag  # a second closed loop of the lease, named apart
    r = _run(tmp_path, "NVIDIA H200", extra_env=env)
    assert r.returncode == 0, r.stderr
    logs = sorted(p.name for p in (tmp_path / "out/work").glob("closed-loop-*.log"))
    assert logs == [f"closed-loop-sgmv{tag}.log"]  # one variant, as asked
    log = (tmp_path / f"out/work/closed-loop-sgmv{tag}.log").read_text()
    assert "PYTHON-CALLED gpu/closed_loop.py" in log and f"closed-loop-sgmv{tag} --lora sgmv {args}" in log


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_new_start_loop_runs_on_a_machines_first_call_only_and_the_start_heads_every_log(tmp_path):
    marker = tmp_path / "machine-start"
    env = {"CLOSED_LOOP": "new-start", "CLOSED_LOOP_VARIANTS": "sgmv", "CLOSED_LOOP_TAG": "-start1",
           "MACHINE_START_FILE": str(marker)}
    run = "h200-v05-bursty-uniform-rank32"
    r = _run(tmp_path, "NVIDIA H200", run, extra_env=env)
    assert r.returncode == 0, r.stderr
    start = marker.read_text().strip()
    assert f"== machine start {start} (new" in r.stdout
    loop_log = (tmp_path / "out/work/closed-loop-sgmv-start1.log").read_text()
    assert loop_log.startswith(f"machine start: {start}\n") and "PYTHON-CALLED gpu/closed_loop.py" in loop_log
    run_log = (tmp_path / "out/work/runs" / run / "replay.log").read_text()
    assert run_log.startswith(f"machine start: {start}\n") and "PYTHON-CALLED gpu/replay.py" in run_log
    shutil.rmtree(tmp_path / "out")  # the next call of the same start: no loop, the same id
    r = _run(tmp_path, "NVIDIA H200", run, extra_env={**env, "CLOSED_LOOP_TAG": "-start2"})
    assert r.returncode == 0, r.stderr
    assert "closed loop skipped" in r.stdout and not list((tmp_path / "out/work").glob("closed-loop-*"))
    assert (tmp_path / "out/work/runs" / run / "replay.log").read_text().startswith(f"machine start: {start}\n")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_runs_that_cannot_finish_by_the_deadline_are_skipped_with_a_line(tmp_path):
    runs = ("h200-v05-bursty-uniform-rank32", "h200-v06-azure-conv-zipf")
    env = {"MACHINE_START_FILE": str(tmp_path / "m"), "RUNS_DEADLINE_S": "150", "RUN_SECONDS": "100"}
    r = _run(tmp_path, "NVIDIA H200", *runs, extra_env=env)  # the fake replay takes no time: both fit
    assert r.returncode == 0 and "skipped" not in r.stdout
    r = _run(tmp_path, "NVIDIA H200", *runs, extra_env={**env, "RUNS_DEADLINE_S": "90"})
    assert r.returncode == 0
    assert all(f"== skipped {run} (sgmv): " in r.stdout for run in runs)
