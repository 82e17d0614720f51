"""scripts/lease_report.py: the two rules set down for a lease, on hand-made numbers (no GPU, no
twin), and the lease's runs read from leases.csv."""

from __future__ import annotations

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


def test_lease_runs_come_from_leases_csv_and_an_unknown_lease_is_named(tmp_path):
    f = tmp_path / "leases.csv"
    f.write_text("run,lease,note\na-repeat,x-1,first\nb-repeat,y-1,\nc-repeat,x-1,\n")
    assert lr.lease_runs(f, "x-1") == [tmp_path / "a-repeat", tmp_path / "c-repeat"]
    with pytest.raises(SystemExit) as e:
        lr.lease_runs(f, "z-9")
    assert "leases.csv" in str(e.value) and "z-9" in str(e.value)


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
