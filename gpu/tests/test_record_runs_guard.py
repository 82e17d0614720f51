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
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OUT": str(tmp_path / "out")}
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
