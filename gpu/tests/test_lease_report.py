"""scripts/lease_report.py: the two rules set down for a lease, on hand-made numbers (no GPU, no
twin), and the lease's runs read from leases.csv."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import lease_report as lr  # noqa: E402


def _rows(graph_seqs: int, ratio: float, seed: int | None, count: int = 20, prefill: int = 0) -> list[dict[str, str]]:
    row = {"decode_sequences": str(graph_seqs), "prefill_tokens": str(prefill), "live_s": str(ratio * 1e-3),
           "predicted_us": "1000"}
    if seed is not None:
        row["seed"] = str(seed)
    return [dict(row) for _ in range(count)]


def test_factors_by_seed_and_all_together():
    sizes = [8, 16, 24]
    rows = _rows(16, 1.10, 0) + _rows(16, 1.00, 1) + _rows(8, 0.95, 0, count=5) + _rows(24, 2.0, 0, prefill=64)
    got = lr.factors_by_seed(rows, sizes)
    assert got[0] == {16: pytest.approx(1.10)} and got[1] == {16: pytest.approx(1.00)}  # 8: under 20 steps
    assert 1.00 <= got[None][16] <= 1.10 and 24 not in got[None]  # steps with prefill are not decode steps
    assert set(lr.factors_by_seed(_rows(16, 1.0, None), sizes)) == {None, 0}  # no seed column: seed 0


@pytest.mark.parametrize("second, verdict", [(1.005, "independent"), (1.015, "neither"), (1.03, "dependent")])
def test_rule1_reads_the_largest_difference_at_graphs_8_to_32(second, verdict):
    by_seed = {None: {}, 0: {8: 1.0, 16: 1.0, 64: 1.5}, 1: {8: 1.0, 16: second, 64: 0.5}}  # 64 is not read
    got, worst = lr.rule1(by_seed)
    assert got == verdict and worst == pytest.approx(second - 1.0)
    assert lr.rule1({None: {8: 1.0}, 0: {8: 1.0}}) == ("one seed", None)


def test_rule2_keeps_the_correction_only_when_it_lowers_ttft():
    assert lr.rule2(8.8, 11.2) == "keep"
    assert lr.rule2(11.2, 11.2) == "turn off" and lr.rule2(12.0, 11.2) == "turn off"


def test_a_pooled_reading_under_the_margin_is_a_tie_that_keeps_the_default():
    # lease 94f6de6-1's pooled Rule 3: 7.2131 with the excess, 7.2128 without
    assert lr.pooled_reading(lr.rule3, 7.2131, 7.2128, "on") == "a tie, on stays"
    assert lr.rule3(7.2131, 7.2128) == "off"  # the rule alone reads the difference
    assert lr.pooled_reading(lr.rule3, 7.35, 7.2, "on") == "off"  # over 0.1 apart: the rule decides
    assert lr.pooled_reading(lr.rule2, 7.2, 11.4, "keep") == "keep"
    assert lr.pooled_reading(lr.rule4, 7.25, 7.2, "on", margin=0.01) == "off"


def test_rule3_and_the_step_rows_it_needs(tmp_path):
    assert lr.rule3(4.1, 4.6) == "on" and lr.rule3(4.6, 4.6) == "off" and lr.rule3(5.8, 5.5) == "off"
    assert lr.rule4(4.1, 4.6) == "on" and lr.rule4(5.1, 4.6) == "off" and lr.rule4(4.6, 4.6) == "off"
    (tmp_path / "adapter_load.csv").write_text("source,bytes,median_us,p10_us,p90_us,reps\nhost,16,1,1,1,1\n")
    assert not lr.has_step_rows(tmp_path) and not lr.has_step_rows(tmp_path / "missing")
    with (tmp_path / "adapter_load.csv").open("a") as f:
        f.write("host_step,16,2000,0,0,6\n")
    assert lr.has_step_rows(tmp_path)


def test_lease_runs_come_from_leases_csv_and_an_unknown_lease_is_named(tmp_path):
    f = tmp_path / "leases.csv"
    f.write_text("run,lease,note\na-repeat,x-1,first\nb-repeat,y-1,\nc-repeat,x-1,\n")
    assert lr.lease_runs(f, "x-1") == [tmp_path / "a-repeat", tmp_path / "c-repeat"]
    with pytest.raises(SystemExit) as e:
        lr.lease_runs(f, "z-9")
    assert "leases.csv" in str(e.value) and "z-9" in str(e.value)


def test_pooled_runs_take_every_named_lease_in_order_and_refuse_an_empty_one(tmp_path):
    f = tmp_path / "leases.csv"
    f.write_text("run,lease,note\na-repeat,x-1,first\nb-repeat,y-1,\nc-repeat,x-1,\n")
    assert lr.pooled_runs(f, ["y-1", "x-1"]) == [tmp_path / "b-repeat", tmp_path / "a-repeat", tmp_path / "c-repeat"]
    with pytest.raises(SystemExit, match="z-9"):
        lr.pooled_runs(f, ["x-1", "z-9"])


@pytest.mark.parametrize("later, verdict", [(1.008, "holds"), (1.015, "neither"), (0.97, "drifts")])
def test_drift_rule_reads_the_largest_difference_at_graphs_8_to_32(later, verdict):
    first = {8: 1.0, 16: 1.0, 64: 1.2}
    got, worst = lr.drift_rule(first, {8: 1.0, 16: later, 64: 0.9})  # 64 is not read
    assert got == verdict and worst == pytest.approx(abs(later - 1.0))
    assert lr.drift_rule({64: 1.0}, {64: 1.1}) == ("no common graph", None)


def test_tagged_loops_are_found_by_the_lease_commit_and_the_profile_gpu(tmp_path):
    folder = tmp_path / "gpu/results/closed-loop-h200-abcdef1"
    for name in ("sgmv-end", "none-end", "sgmv"):
        (folder / name).mkdir(parents=True)
        (folder / name / "steps.csv").write_text("iteration\n")
    (folder / "dop-end").mkdir()  # no steps.csv: not a closed loop
    got = lr.tagged_loops(tmp_path, "abcdef1-1", tmp_path / "profiles/h200-llama2-7b-abcdef1")
    assert [p.name for p in got] == ["none-end", "sgmv-end"]
    assert lr.tagged_loops(tmp_path, "abcdef1-2", tmp_path / "profiles/h100-llama2-7b") == []


def test_halves_pool_the_first_and_second_half_of_four_seeds_or_more():
    sizes = [8, 16]
    rows = _rows(16, 1.00, 0) + _rows(16, 1.02, 1) + _rows(16, 1.04, 2) + _rows(16, 1.06, 3)
    lo, hi, f_lo, f_hi = lr.halves_factors(rows, sizes)
    assert (lo, hi) == ([0, 1], [2, 3])
    assert 1.00 <= f_lo[16] <= 1.02 and 1.04 <= f_hi[16] <= 1.06
    assert lr.halves_factors(_rows(16, 1.0, 0) + _rows(16, 1.0, 1), sizes) is None  # two seeds: rule 1 alone


@pytest.mark.parametrize("later, verdict", [(1.012, "stays"), (1.02, "neither"), (1.035, "too noisy")])
def test_rule1_halves_reads_the_largest_difference_at_graphs_8_to_32(later, verdict):
    got, worst = lr.rule1_halves({8: 1.0, 16: 1.0, 64: 1.3}, {8: 1.0, 16: later, 64: 1.0})  # 64 is not read
    assert got == verdict and worst == pytest.approx(later - 1.0)


HEAD = ("iteration,start_s,live_s,mode,prefill_tokens,decode_sequences,decode_context_tokens,segments,concurrency,"
        "execute_s,seed")


def _loop(folder: Path, times: list[float], series: dict | None = None, seqs: list[int] | None = None) -> Path:
    """A closed loop of seed 0 with one block per concurrency 1, 2, ... (20 decode steps each, the
    blocks starting 2 s apart): the executor takes times[k] a step in block k, the host 100 µs;
    seqs[k] sequences a step (default: the concurrency); optionally a `gpu_monitor` series."""
    folder.mkdir(parents=True)
    lines = [HEAD]
    for k, x in enumerate(times):
        n = (seqs or list(range(1, len(times) + 1)))[k]
        lines += [f"{len(lines) - 1 + i},{2 * k + 0.02 * i:.3f},{x + 1e-4:.6f},unmerged,0,{n},{100 * n},a0:{n},"
                  f"{k + 1},{x:.6f},0" for i in range(20)]
    (folder / "steps.csv").write_text("\n".join(lines) + "\n")
    if series is not None:
        (folder / "meta.json").write_text(json.dumps({"gpu_monitor": {"series": series}}))
    return folder


def test_same_batch_blocks_time_each_block_against_the_first_loop(tmp_path):
    first = _loop(tmp_path / "a", [0.010, 0.020])
    got = lr.same_batch_blocks(first, _loop(tmp_path / "b", [0.0095, 0.0204]))
    assert got["blocks"] == 2 and got["min"] == pytest.approx(0.95) and got["max"] == pytest.approx(1.02)
    assert got["host_us_first"] == pytest.approx(100, rel=1e-3) and "clock_correlation" not in got  # no series
    other = _loop(tmp_path / "c", [0.010, 0.020], seqs=[1, 1])  # another batch at concurrency 2
    assert lr.same_batch_blocks(first, other) is None


def test_same_batch_blocks_correlate_the_time_with_the_clock(tmp_path):
    t = [0.0, 0.5, 2.0, 2.5, 4.0, 4.5]  # two samples in each block
    first = _loop(tmp_path / "a", [0.010, 0.020, 0.030], {"t_s": t, "sm_clock_mhz": [1980.0] * 6})
    slower_where_the_clock_fell = {"t_s": t, "sm_clock_mhz": [1800.0, 1800.0, 1980.0, 1980.0, 2200.0, 2200.0]}
    second = _loop(tmp_path / "b", [0.011, 0.020, 0.027], slower_where_the_clock_fell)
    got = lr.same_batch_blocks(first, second)
    assert got["blocks"] == 3 and got["clock_correlation"] == pytest.approx(1.0)


def test_correction_forms_score_each_form_on_the_other_loop():
    train = {1: 1.10, 8: 0.95, 16: 1.05, 32: 0.95, 64: 1.0}
    got = lr.correction_forms(train, dict(train))  # the same factors again: per graph is exact
    assert got["per graph"] == pytest.approx(0.0)
    assert got["none"] == pytest.approx(0.05) and got["one factor"] == pytest.approx(0.05)  # median 1.0
    assert 0.0 < got["three-graph mean"] < 0.1
    assert lr.correction_forms({64: 1.0}, {64: 1.0}) == {}  # no graph of 8-32


def test_loop_folder_pools_loops_with_their_seeds_apart(tmp_path):
    profile = tmp_path / "prof"
    profile.mkdir()
    (profile / "meta.json").write_text('{"gpu_name": "x"}')
    loops = [_loop(tmp_path / "start", [0.010, 0.020]), _loop(tmp_path / "end", [0.011, 0.021])]
    for lp in loops:
        (lp / "catalogue.csv").write_text("adapter,rank,alpha,target_modules\na0,16,32.0,q_proj\n")
    out = lr.loop_folder(profile, "sgmv", loops, tmp_path / "both")
    assert (out / "meta.json").read_text() == '{"gpu_name": "x"}'
    with (out / "closed_loop/sgmv/steps.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 80 and [r["iteration"] for r in rows] == [str(i) for i in range(80)]
    assert {r["seed"] for r in rows[:40]} == {"0"} and {r["seed"] for r in rows[40:]} == {"10"}
    (loops[1] / "catalogue.csv").write_text("adapter,rank,alpha,target_modules\na0,64,128.0,q_proj\n")
    with pytest.raises(SystemExit, match="another catalogue"):
        lr.loop_folder(profile, "sgmv", loops, tmp_path / "again")


def test_runs_are_grouped_by_the_machine_start_their_logs_name(tmp_path):
    logs = tmp_path / "gpu/results/runs-h200-abcdef1"
    logs.mkdir(parents=True)
    (logs / "a-repeat.log").write_text("machine start: 2026-12-03T05:30:08Z\n{}\n")
    (logs / "b-repeat.log").write_text("machine start: 2026-12-03T07:04:28Z\n{}\n")
    (logs / "c-repeat.log").write_text("machine start: 2026-12-03T05:30:08Z\n")
    (logs / "old-repeat.log").write_text("{}\n")  # before the line existed: left out
    runs = [tmp_path / n for n in ("a-repeat", "b-repeat", "c-repeat", "old-repeat", "no-log-repeat")]
    by = lr.runs_by_start(tmp_path, "abcdef1-1", "h200", runs)
    assert by == {"2026-12-03T05:30:08Z": [runs[0], runs[2]], "2026-12-03T07:04:28Z": [runs[1]]}
    assert lr.machine_start(logs / "old-repeat.log") is None and lr.machine_start(tmp_path / "none.log") is None
