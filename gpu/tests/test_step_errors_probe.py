"""scripts/step_errors.py's probe column (a run's host_probe over its profile's step_tokens.csv), the
parts of decode steps and the split by predecessor, on hand-made rows (no torch, no twin)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import step_errors  # noqa: E402


def test_probe_over_profile_is_the_median_of_the_sizes(tmp_path):
    run, prof = tmp_path / "run", tmp_path / "prof"
    run.mkdir()
    prof.mkdir()
    (run / "run.json").write_text(json.dumps({"host_probe": {"tokens": [16, 64, 256],
                                                            "median_us": [5100.0, 5000.0, 8800.0]}}))
    (prof / "step_tokens.csv").write_text("tokens,median_us,p10_us,p90_us,reps\n16,5000,1,1,8\n64,5000,1,1,8\n"
                                          "256,8000,1,1,8\n512,14000,1,1,8\n")
    assert abs(step_errors.probe_ratio(run, prof) - 1.02) < 1e-12  # ratios 1.02, 1.00, 1.10
    (run / "run.json").write_text(json.dumps({"summary": {}}))  # a run recorded before the probe
    assert step_errors.probe_ratio(run, prof) is None


def _row(prefill: int, seqs: int, live_us: float, pred_us: float, **parts: float) -> dict[str, str]:
    r = {"prefill_tokens": str(prefill), "decode_sequences": str(seqs), "live_s": str(live_us / 1e6),
         "predicted_us": str(pred_us)}
    for k in step_errors.PARTS:
        r[k] = str(parts.get(k, 0.0))
    return r


def test_parts_average_the_decode_steps_in_the_range():
    rows = [_row(0, 8, 1100, 1000, decode_floor_us=600), _row(0, 12, 1300, 1200, decode_floor_us=700),
            _row(0, 20, 9999, 9999), _row(64, 8, 9999, 9999)]  # out of range; a step with prefill
    n, live, parts = step_errors.decode_parts(rows, 8, 16)
    assert n == 2 and live == 1200 and parts["predicted_us"] == 1100 and parts["decode_floor_us"] == 650
    assert parts["decode_factor"] == 1  # rows priced before the column existed
    rows[0]["decode_factor"], rows[1]["decode_factor"] = "1.10", "1.00"
    assert abs(step_errors.decode_parts(rows, 8, 16)[2]["decode_factor"] - 1.05) < 1e-12
    assert step_errors.decode_parts(rows, 30, 40) is None


def test_predecessors_are_the_same_graph_another_or_an_eager_step():
    sizes = [1, 4, 8, 16]
    rows = [_row(0, 3, 100, 100), _row(0, 4, 110, 100),  # graph 4 after graph 4
            _row(0, 8, 120, 100),  # graph 8 after graph 4
            _row(32, 2, 100, 100), _row(0, 8, 130, 100)]  # after an eager step
    got = step_errors.by_predecessor(rows, sizes)
    assert got == {"after eager": (1.3, 1), "after other graph": (1.2, 1), "after same graph": (1.1, 1)}


def test_skew_cells_split_each_graph_by_max_minus_mean_context(monkeypatch):
    monkeypatch.setattr(step_errors, "MIN_STEPS", 2)
    sizes = [1, 4, 8, 16]

    def row(seqs: int, total: int, longest: int, ratio: float) -> dict[str, str]:
        r = _row(0, seqs, 1000 * ratio, 1000)
        r.update(decode_context_tokens=str(total), decode_max_context=str(longest))
        return r

    rows = [row(8, 8 * 500, 600, 1.02), row(7, 7 * 500, 700, 1.04),  # graph 8, skew 100 and 200
            row(8, 8 * 500, 1500, 1.10), row(6, 6 * 400, 1400, 1.12),  # graph 8, skew 1000
            row(16, 16 * 300, 2400, 1.5),  # graph 16: one step, under MIN_STEPS
            _row(64, 8, 9999, 1000)]  # a step with prefill tokens: not a decode step
    for r in rows[-1:]:
        r.update(decode_context_tokens="0", decode_max_context="0")
    got = step_errors.by_skew(rows, sizes)
    assert set(got) == {8, 16} and got[16] == {}
    low, high, everything = 0, 2, len(step_errors.SKEW_COLUMNS)
    assert got[8][low] == (1.03, 2) and got[8][high] == (1.11, 2)
    assert got[8][everything] == (1.07, 4) and 1 not in got[8]


def test_time_cells_split_each_graph_by_when_the_step_started(monkeypatch):
    monkeypatch.setattr(step_errors, "MIN_STEPS", 2)

    def row(start: float, ratio: float) -> dict[str, str]:
        r = _row(0, 8, 1000 * ratio, 1000)
        r.update(start_s=str(start), decode_context_tokens="4000", decode_max_context="600")
        return r

    rows = [row(1.0, 1.10), row(9.9, 1.12), row(10.0, 1.00), row(15.0, 1.02), row(75.0, 1.3), row(99.0, 1.5)]
    got = step_errors.by_time(rows, [1, 8])[8]
    last = len(step_errors.TIME_COLUMNS) - 1  # 60 s and later
    assert got[0] == (1.11, 2) and got[1] == (1.01, 2) and got[last] == (1.4, 2)
    assert got[last + 1] == (1.11, 6)  # all together: median of six


def _step(seqs: int, live_us: float, pred_us: float, start: float = 0.0, context: int = 0,
          prefill: int = 0) -> dict[str, str]:
    return {"prefill_tokens": str(prefill), "decode_sequences": str(seqs), "live_s": str(live_us / 1e6),
            "predicted_us": str(pred_us), "start_s": str(start), "decode_context_tokens": str(context),
            "decode_max_context": str(context // max(seqs, 1))}


def test_by_size_keeps_sizes_apart_and_drops_small_ones():
    rows = [_step(17, 1050, 1000) for _ in range(10)] + [_step(24, 1100, 1000) for _ in range(12)]
    rows += [_step(20, 2000, 1000) for _ in range(9)]  # too few steps of 20
    rows += [_step(17, 9999, 1000, prefill=64) for _ in range(10)]  # steps with prefill: not decode-only
    got = step_errors.by_size(rows)
    assert set(got) == {17, 24}
    assert abs(got[17][0] - 1.05) < 1e-9 and got[17][1] == 10
    assert abs(got[24][0] - 1.10) < 1e-9 and got[24][1] == 12


def test_by_context_bins_by_mean_context_per_sequence():
    sizes = [8, 16, 24, 32]
    rows = [_step(20, 1040, 1000, context=20 * 600) for _ in range(10)]  # mean 600: bin 512-767
    rows += [_step(20, 1000, 1000, context=20 * 300) for _ in range(10)]  # mean 300: bin 256-511
    got = step_errors.by_context(rows, sizes)[24]
    assert abs(got[2][0] - 1.04) < 1e-9 and got[2][1] == 10
    assert abs(got[1][0] - 1.00) < 1e-9
    assert got[len(step_errors.CONTEXT_COLUMNS)][1] == 20  # all together


def test_waiting_counts_arrived_and_not_yet_scheduled(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "requests.csv").write_text("request_id,arrival_s,first_scheduled_s\n"
                                      "a,0.0,0.1\nb,0.2,1.0\nc,0.3,0.35\nd,0.5,\n")
    rows = [_step(1, 1, 1, start=t) for t in (0.05, 0.25, 0.32, 0.4, 0.6, 1.5)]
    got = [int(x["waiting"]) for x in step_errors.with_waiting(run, rows)]
    # 0.05: a waits; 0.25: b; 0.32: b, c; 0.4: b; 0.6: b, d (d never scheduled); 1.5: d
    assert got == [1, 1, 2, 1, 2, 1]
    loop = tmp_path / "loop"  # a closed loop: no requests.csv, no queue
    loop.mkdir()
    assert [x["waiting"] for x in step_errors.with_waiting(loop, rows[:2])] == ["0", "0"]
    table = step_errors.by_queue([dict(x, waiting="150") for x in [_step(20, 1060, 1000) for _ in range(10)]],
                                 [8, 16, 24])
    assert abs(table[24][3][0] - 1.06) < 1e-9  # the >= 100 bin


def test_by_concurrency_gives_each_concurrency_and_its_quarters():
    rows = []
    for i in range(80):  # concurrency 16: the first half at 1.0, the second at 1.2
        r = _step(16, 1000 if i < 40 else 1200, 1000)
        r["concurrency"] = "16"
        rows.append(r)
    small = _step(4, 1000, 1000)
    small["concurrency"] = "4"
    rows += [small] * 10  # under 4 x MIN_STEPS: left out
    got = step_errors.by_concurrency(rows)
    assert list(got) == [16]
    med, steps, quarters = got[16]
    assert steps == 80 and 1.0 <= med <= 1.2
    assert [round(q, 6) for q in quarters] == [1.0, 1.0, 1.2, 1.2]


def test_load_kinds_and_by_load(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "iterations.csv").write_text("start_s,duration_s\n0.00,0.01\n0.01,0.01\n0.02,0.01\n0.03,0.01\n")
    loads = [{"ordered_s": 0.0101, "from_disk": False},   # in the second iteration, from the host cache
             {"ordered_s": 0.0201, "from_disk": False},   # third: host and file -> "disk"
             {"ordered_s": 0.0202, "from_disk": True}]
    (run / "run.json").write_text(json.dumps({"loads": loads}))
    kinds = step_errors.load_kinds(run, 4)
    assert kinds == ["none", "host", "disk", "none"]
    rows = [_row(0, 8, 7000, 7100), _row(0, 7, 10000, 7000), _row(512, 7, 20000, 19000), _row(0, 8, 7200, 7100)]
    got = step_errors.by_load(rows, kinds)
    assert got[("decode", "none")] == (0.0, 2)   # -100 and +100
    assert got[("decode", "host")] == (3000.0, 1)
    assert got[("eager", "disk")] == (1000.0, 1)
    try:
        step_errors.load_kinds(run, 3)
        raise AssertionError("a count mismatch was accepted")
    except SystemExit as e:
        assert "iterations.csv" in str(e)


def test_by_token_graph_groups_the_steps_with_prefill_tokens():
    rows = [_row(100, 20, 1050, 1000) for _ in range(10)] + [_row(500, 0, 970, 1000) for _ in range(10)]
    rows += [_row(3000, 0, 1020, 1000) for _ in range(10)] + [_row(0, 8, 2000, 1000) for _ in range(10)]
    rows += [_row(600, 0, 1, 1)]  # one step of graph 1024: under MIN_STEPS, left out
    got = step_errors.by_token_graph(rows, [128, 512, 1024])
    assert set(got) == {128, 512, 0}   # 120 tokens -> 128; 500 -> 512; 3000 beyond the graphs -> 0
    assert abs(got[128][0] - 1.05) < 1e-12 and got[128][1] == 10
    assert abs(got[512][0] - 0.97) < 1e-12 and abs(got[0][0] - 1.02) < 1e-12
