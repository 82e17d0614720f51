"""`loratwin validate` on the committed live runs: the GPU filter and the per-GPU means (the twin's
binary; no torch)."""

from __future__ import annotations

import json
import subprocess

from gpu.tests.test_conformance import ROOT, require_twin


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(require_twin()), "validate", *args], cwd=ROOT, capture_output=True, text=True)


def test_gpu_filter_keeps_only_that_gpus_runs(tmp_path):
    out = tmp_path / "v.json"
    r = run("traces/live", "--gpu", "h200", "--output", str(out))
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())
    names = [row["scenario"] for row in rows["runs"]] if isinstance(rows, dict) else [row["scenario"] for row in rows]
    assert names, "no H200 run validated"
    # Every H200 scenario under traces/live, and nothing recorded on the H100.
    h200 = sorted(p.parent.name for p in (ROOT / "traces/live").glob("*/scenario.yaml")
                  if "gpu: h200" in p.read_text() and (p.parent / "requests.csv").exists())
    assert sorted(names) == sorted(h200)
    assert not any(n.startswith("v0") or n.startswith("v1") or n == "live-example" for n in names)


def test_all_runs_report_per_gpu_means():
    r = run("traces/live")
    assert r.returncode == 0, r.stderr
    assert "mean, h200-141gb (" in r.stdout and "mean, h100-sxm-80gb (" in r.stdout


def test_unknown_gpu_is_an_error():
    r = run("traces/live", "--gpu", "no-such-gpu")
    assert r.returncode != 0
    assert "no-such-gpu" in r.stderr
