"""scripts/live_repeats.py on hand-made metrics and folders (CPU; no twin binary)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("live_repeats", ROOT / "scripts/live_repeats.py")
lr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lr)


def metrics(commit: str, ttft: float, twin_ttft: float, modes: float) -> dict:
    m = {k: {"live": 1.0, "predicted": 1.0, "smape": 0.0} for _, k in lr.METRICS}
    m["ttft_mean"] = {"live": ttft, "predicted": twin_ttft, "smape": lr.smape(ttft, twin_ttft)}
    m["mode_changes"] = {"live": modes, "predicted": modes, "smape": 0.0}
    return {**m, "commit": commit}


def test_smape_matches_the_twin_convention() -> None:
    assert lr.smape(0, 0) == 0.0
    assert lr.smape(1.0, 3.0) == pytest.approx(100.0)
    assert lr.smape(0, 2.0) == pytest.approx(200.0)


def test_table_live_vs_live_and_twin_means() -> None:
    rows = [("a-repeat", "a", metrics("c1", 1.0, 1.2, 2), metrics("c2", 1.1, 1.2, 0)),
            ("b-repeat", "b", metrics("c1", 2.0, 2.0, 4), metrics("c2", 2.0, 1.0, 4)),
            ("b-repeat2", "b", metrics("c1", 2.0, 2.0, 4), metrics("c3", 2.0, 2.0, 4))]
    lines = lr.table(rows)
    col = [c for c, _ in lr.METRICS].index("TTFT mean") + 2  # after run and commits
    modes = [c for c, _ in lr.METRICS].index("mode changes") + 2

    def cell(line: str, i: int) -> str:
        return [c.strip() for c in line.strip("|").split("|")][i]

    assert cell(lines[2], 1) == "c1 / c2"
    assert float(cell(lines[2], col)) == pytest.approx(lr.smape(1.0, 1.1), abs=0.05)
    assert float(cell(lines[2], modes)) == pytest.approx(200.0)  # 2 against 0
    assert cell(lines[4], 0) == "b-repeat2"
    mean_live, mean_first, mean_rep = lines[5], lines[6], lines[7]
    assert float(cell(mean_live, col)) == pytest.approx(lr.smape(1.0, 1.1) / 3, abs=0.05)
    # b's first recording counts once although it is repeated twice
    assert float(cell(mean_first, col)) == pytest.approx(lr.smape(1.0, 1.2) / 2, abs=0.05)
    assert float(cell(mean_rep, col)) == pytest.approx((lr.smape(1.1, 1.2) + lr.smape(2.0, 1.0)) / 3, abs=0.05)


def test_lease_table_pairs_only_one_lease(tmp_path: Path) -> None:
    recs = [("x-repeat", "x", metrics("c", 1.0, 1.0, 2)), ("x-repeat2", "x", metrics("c", 1.2, 1.0, 4)),
            ("x-repeat3", "x", metrics("c", 1.0, 1.0, 4)), ("y-repeat", "y", metrics("c", 5.0, 5.0, 0))]
    lease_of = {"x-repeat": "L1", "x-repeat2": "L2", "x-repeat3": "L2", "y-repeat": "L2"}
    lines = lr.lease_table(recs, lease_of)
    assert len(lines) == 3 and lines[2].startswith("| x-repeat2 / x-repeat3 | lease L2 |")
    assert lr.lease_table(recs, {}) == []
    (tmp_path / "leases.csv").write_text("run,lease,note\nx-repeat,L1,\nx-repeat2,,\n")
    with pytest.raises(SystemExit, match=r"leases.csv:3: field 'run' or 'lease' is empty"):
        lr.leases(tmp_path)
    (tmp_path / "leases.csv").write_text("run,lease,note\nx-repeat,L1,first\n")
    assert lr.leases(tmp_path) == {"x-repeat": "L1"}


def test_pairs_need_a_first_recording(tmp_path: Path) -> None:
    live, rep = tmp_path / "live", tmp_path / "repeats"
    for d in (live / "x", rep / "x-repeat", rep / "y-repeat"):
        d.mkdir(parents=True)
        (d / "run.json").write_text("{}")
    with pytest.raises(SystemExit, match="repeats/y-repeat repeats no run"):
        lr.pairs(live, rep)
    (live / "y").mkdir()
    (live / "y" / "run.json").write_text("{}")
    assert [p[0] for p in lr.pairs(live, rep)] == ["x", "y"]
    (rep / "z").mkdir()
    (rep / "z" / "run.json").write_text("{}")
    with pytest.raises(SystemExit, match="repeats/z repeats no run"):  # no -repeat suffix
        lr.pairs(live, rep)
    assert lr.pairs(live, tmp_path / "none") == []
