"""scripts/queue_windows.py on hand-made request rows (CPU; no twin binary)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("queue_windows", ROOT / "scripts/queue_windows.py")
qw = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(qw)


def req(rid: str, a: float, s: float, t: float, f: float | str) -> dict[str, str]:
    return {"request_id": rid, "arrival_s": str(a), "first_scheduled_s": str(s), "first_token_s": str(t),
            "finish_s": str(f)}


def test_phases_and_unfinished() -> None:
    assert qw.phases(req("0", 1.0, 1.5, 2.0, 5.0)) == (1.0, 0.5, 3.0)
    assert qw.phases(req("0", 1.0, "", "", "")) is None  # type: ignore[arg-type]


def test_windows_group_by_live_arrival() -> None:
    live = {"0": req("0", 0.5, 0.6, 0.7, 2.0), "1": req("1", 1.5, 1.6, 2.5, 4.0), "2": req("2", 7.0, 7.0, 7.1, 8.0)}
    twin = {"0": req("0", 0.5, 0.8, 0.9, 2.5), "1": req("1", 1.5, 2.0, 3.5, 5.0), "2": req("2", 7.0, 7.0, 7.1, "")}
    lines = qw.windows(live, twin, 5.0)
    assert len(lines) == 2  # header + window 0-5; request 2 did not finish in the twin
    cells = lines[1].replace("|", " ").split()
    assert cells[1] == "2"  # two requests
    assert float(cells[2]) == pytest.approx((0.2 + 1.0) / 2, abs=0.005)  # live TTFT mean
    assert float(cells[3]) == pytest.approx((0.4 + 2.0) / 2, abs=0.005)  # twin TTFT mean
    assert float(cells[7]) == pytest.approx((1.6 + 1.5) / 2, abs=0.005)  # twin decode phase


def test_missing_columns_name_the_file(tmp_path: Path) -> None:
    p = tmp_path / "requests.csv"
    p.write_text("request_id,arrival_s\n0,1.0\n")
    with pytest.raises(SystemExit, match="requests.csv: needs the columns"):
        qw.read_requests(p)
    with pytest.raises(SystemExit, match="none.csv"):
        qw.read_requests(tmp_path / "none.csv")


def test_quantiles_interpolate_as_the_metrics_define_them() -> None:
    assert qw.quantile([4.0, 1.0, 3.0, 2.0], 0.5) == pytest.approx(2.5)
    assert qw.quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.9) == pytest.approx(4.6)


def test_ttft_quantiles_show_a_cliff_at_the_median() -> None:
    # live: 5 requests served at once (0.05 s), 5 after a wait (1 s); twin: one more served at once
    live = {str(i): req(str(i), 0.0, 0.0, 0.05 if i < 5 else 1.0, 2.0) for i in range(10)}
    twin = {str(i): req(str(i), 0.0, 0.0, 0.05 if i < 6 else 1.0, 2.0) for i in range(10)}
    lines = qw.ttft_quantiles(live, twin)
    p50 = next(x for x in lines if x.startswith("p50 ")).replace("|", " ").split()
    assert float(p50[1]) == pytest.approx(0.525, abs=1e-3) and float(p50[2]) == pytest.approx(0.05, abs=1e-3)
    p10 = next(x for x in lines if x.startswith("p10 ")).replace("|", " ").split()
    assert float(p10[1]) == float(p10[2]) == pytest.approx(0.05)  # the same below the cliff
    assert lines[-1].endswith("live 50.0 %, twin 60.0 %")
    assert qw.ttft_quantiles(live, {}) == ["no finished request on one side"]
