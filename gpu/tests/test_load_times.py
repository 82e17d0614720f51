"""scripts/load_times.py: the loads of a run grouped by source and size with their medians, the
iterations that start a load against their neighbours (every one, and the clean windows only),
the profile the scenario names, and a folder without run.json refused naming it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import load_times as lt  # noqa: E402


def it(dur_ms, loads=0, prefill=0, seqs=4):
    return {"duration_s": str(dur_ms / 1e3), "adapter_loads": str(loads), "prefill_tokens": str(prefill),
            "decode_seqs": str(seqs)}


def test_load_iterations_every_and_clean():
    rows = [it(6.0) for _ in range(3)] + [it(7.0, loads=1)] + [it(6.0) for _ in range(3)]
    rows += [it(20.0, prefill=512), it(8.0, loads=1), it(6.0)]  # a load next to a prefill step: not "every"
    every, clean = lt.load_iterations(rows)
    assert every == [pytest.approx(1.0)] and clean == [pytest.approx(1.0)]
    rows[1] = it(6.0, seqs=5)  # the window's batch changes: no longer clean, still "every"
    every, clean = lt.load_iterations(rows)
    assert every == [pytest.approx(1.0)] and clean == []


def test_load_table_and_profile(tmp_path):
    loads = [{"from_disk": False, "bytes": 1 << 24, "ordered_s": 1.0, "done_s": 1.009, "h2d_ms": 5.0},
             {"from_disk": False, "bytes": 1 << 24, "ordered_s": 2.0, "done_s": 2.011, "h2d_ms": 6.0},
             {"from_disk": True, "bytes": 1 << 25, "ordered_s": 3.0, "done_s": 3.020, "h2d_ms": 4.0}]
    (tmp_path / "run.json").write_text(json.dumps({"loads": loads}))
    table = lt.load_table(tmp_path)
    assert [(s, b, n) for s, b, n, _, _ in table] == [("disk", 1 << 25, 1), ("host", 1 << 24, 2)]
    assert table[1][3] == pytest.approx(10.0) and table[1][4] == pytest.approx(5.5)
    prof = tmp_path / "prof"
    prof.mkdir()
    (prof / "adapter_load.csv").write_text("source,bytes,median_us,p10_us,p90_us,reps\nhost,16777216,4000,0,0,12\n")
    (tmp_path / "scenario.yaml").write_text("cost_model: {kind: measured, profile: prof, kernel: sgmv}\n")
    assert lt.profile_dir(tmp_path) == prof.resolve()
    assert lt.profile_rows(prof) == {("host", 1 << 24): 4000.0}
    with pytest.raises(SystemExit, match="not a run folder"):
        lt.main([str(prof)])


def test_to_the_pass_rounds_the_price_up_to_the_live_steps():
    # Iterations end every 10 ms; a load ordered at 0.101 with a 4 ms price completes within the
    # step that ordered it and is seen at its end (0.110); one with a 12 ms price at the next (0.120).
    ends = [0.1 + 0.01 * k for k in range(10)]
    loads = [{"ordered_s": 0.101, "done_s": 0.1102},   # seen at the end of the ordering step
             {"ordered_s": 0.121, "done_s": 0.1405}]   # the live load took two passes
    wait, same = lt.to_the_pass(loads, 0.004, ends)
    assert wait == pytest.approx(9.0) and same == 1    # 9 ms to the pass; the second in the wrong one
    wait, same = lt.to_the_pass(loads, 0.012, ends)
    assert wait == pytest.approx(19.0) and same == 1   # now the first is a pass late
    assert lt.to_the_pass(loads, 1.0, ends) == (pytest.approx(float("nan"), nan_ok=True), 0)  # past the run


def test_ordering_excess_is_the_ordering_decode_steps_excess_over_its_neighbours():
    def row(start, dur_ms, prefill=0, seqs=8):
        return {"start_s": str(start), "duration_s": str(dur_ms / 1e3), "prefill_tokens": str(prefill),
                "decode_seqs": str(seqs)}
    rows = [row(0.00, 7.5), row(0.01, 10.5, seqs=7), row(0.02, 7.5, seqs=7),   # +3 ms over 7.5
            row(0.03, 20.0, prefill=512), row(0.05, 9.0), row(0.06, 7.0, seqs=3)]
    loads = [{"ordered_s": 0.0101},   # ordered in the second step: +3.0
             {"ordered_s": 0.0301},   # in a step with prefill tokens: left out
             {"ordered_s": 0.0501},   # neighbours: one with prefill, one with 5 sequences fewer: none
             {"ordered_s": 0.0001}]   # the first step has no step before it: left out
    assert lt.ordering_excess(loads, rows) == [pytest.approx(3.0)]


def test_diagnostic_profile_is_a_copy_with_step_rows_or_nothing(tmp_path):
    src = tmp_path / "prof"
    (src / "closed_loop").mkdir(parents=True)
    (src / "closed_loop" / "steps.csv").write_text("x\n")
    (src / "adapter_load.csv").write_text("source,bytes,median_us,p10_us,p90_us,reps\nhost,16,4000,0,0,12\n"
                                          "host_step,16,999,0,0,6\n")
    pooled = {("host", 16): [1.0, 2.0, 3.0], ("host", 32): [3.0], ("disk", 16): [0.5], ("disk", 32): [-0.1, 0.3]}
    dest = tmp_path / "diag"
    lt.write_diagnostic_profile(src, dest, pooled)
    lines = (dest / "adapter_load.csv").read_text().splitlines()
    assert "host,16,4000,0,0,12" in lines and "host_step,16,999,0,0,6" not in lines  # old step rows replaced
    assert "host_step,16,2000.000,0,0,3" in lines and "disk_step,32,100.000,0,0,2" in lines
    assert (dest / "closed_loop" / "steps.csv").exists() and not (tmp_path / "diag.tmp").exists()
    with pytest.raises(SystemExit, match="fewer than two sizes of disk"):
        lt.write_diagnostic_profile(src, tmp_path / "none", {("host", 16): [1.0], ("host", 32): [2.0]})
    assert not (tmp_path / "none").exists()
