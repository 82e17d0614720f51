"""scripts/dlora_whatif.py: the scheduler line swapped, the least-requested adapter, and (with the
twin binary) a recorded d04 run under its variants: the simulated scenario files are removed, the
recorded scheduler gives the run's own simulation, and FCFS never changes mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import twin_binary

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import dlora_whatif as dw  # noqa: E402

RUN = ROOT / "traces/repeats/d04-cold-adapter-share90-repeat13"


def test_with_scheduler_replaces_the_top_level_line_only(tmp_path):
    text = "name: x\nscheduler: {kind: dlora}\nengine:\n  scheduler: keep\n"
    want = "name: x\nscheduler: {kind: fcfs}\nengine:\n  scheduler: keep\n"
    assert dw.with_scheduler(text, "{kind: fcfs}", tmp_path) == want
    with pytest.raises(SystemExit, match="no top-level 'scheduler:'"):
        dw.with_scheduler("name: x\n  scheduler: y\n", "{kind: fcfs}", tmp_path / "s.yaml")


def test_coldest_adapter_counts_the_trace(tmp_path):
    (tmp_path / "trace.csv").write_text("request_id,arrival_s,adapter,prompt_tokens,output_tokens\n"
                                        "0,0,a0,1,1\n1,0,a1,1,1\n2,0,a0,1,1\n3,0,,1,1\n4,0,a2,1,1\n")
    assert dw.coldest_adapter(tmp_path) == "a1"  # a1 and a2 once each: the first by name


@pytest.mark.skipif(twin_binary() is None or not RUN.is_dir(), reason="needs the twin binary and the d04 repeat")
def test_variants_on_a_recorded_run(capsys):
    before = sorted(p.name for p in RUN.iterdir())
    assert dw.main([str(RUN), "--bin", str(twin_binary())]) == 0
    assert sorted(p.name for p in RUN.iterdir()) == before  # the variant scenarios are gone again
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith(f"| {RUN.name} |")]
    assert [r.split(" | ")[1] for r in rows] == [v[0] for v in dw.VARIANTS]
    modes = [int(r.rstrip(" |").rsplit("|", 1)[1]) for r in rows]
    assert modes[3] == 0 and modes[0] > 0  # FCFS never merges; dLoRA does on d04
    recorded = dw.simulate(twin_binary(), RUN, dw.VARIANTS[0][1])  # the scenario pins drain_credit: false
    own = json.loads(subprocess.run([str(twin_binary()), "simulate", str(RUN / "scenario.yaml"), "--json"],
                                    capture_output=True, text=True, check=True).stdout)
    assert recorded["requests_per_s"] == own["requests_per_s"] and recorded["mode_changes"] == own["mode_changes"]
