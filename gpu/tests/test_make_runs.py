"""traces/live/make_runs.sh with run names: an unknown name is refused before anything is written
(the twin's binary; no torch)."""

from __future__ import annotations

import os
import subprocess

from gpu.tests.test_conformance import ROOT, require_twin


def test_unknown_run_name_is_refused_and_nothing_written():
    before = {p: p.stat().st_mtime_ns for p in (ROOT / "traces/live").glob("h200-*/scenario.yaml")}
    r = subprocess.run(["bash", "traces/live/make_runs.sh", "--gpu", "h200", "h200-v99-no-such-run"], cwd=ROOT,
                       capture_output=True, text=True, env={**os.environ, "LORATWIN": str(require_twin())})
    assert r.returncode == 2 and "no run 'h200-v99-no-such-run' in the h200 set" in r.stderr
    assert {p: p.stat().st_mtime_ns for p in (ROOT / "traces/live").glob("h200-*/scenario.yaml")} == before
