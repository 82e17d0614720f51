"""scripts/dop_live.py on tiny hand-made run folders and a profile (CPU; the twin's binary is
replaced by a stand-in)."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("dop_live", ROOT / "scripts/dop_live.py")
dop_live = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dop_live)

REQ = ("request_id", "adapter", "arrival_s", "first_scheduled_s", "first_token_s", "finish_s", "prompt_tokens",
       "output_tokens", "preemptions", "status")
ITER = ("replica", "iteration", "start_s", "duration_s", "prefill_tokens", "decode_seqs", "num_seqs",
        "distinct_adapters", "mode", "adapter_loads", "preemptions")
PAIR = (("v04", "identical", "run", "run-dop"),)


def write_run(d: Path, kind: str, date: str, commit: str, finish: tuple[float, float], eager_s: float,
              decode_s: float) -> None:
    """Two finished requests (10 and 30 output tokens, arrivals 0 and 1 s) and one rejected; one
    eager iteration and two decode iterations."""
    d.mkdir(parents=True)
    with open(d / "requests.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(REQ)
        w.writerow([0, "a0", 0.0, 0.0, 0.5, finish[0], 100, 10, 0, "finished"])
        w.writerow([1, "a0", 1.0, 1.0, 1.5, finish[1], 100, 30, 0, "finished"])
        w.writerow([2, "a0", 1.5, "", "", "", 9999, 0, 0, "rejected"])
    with open(d / "iterations.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(ITER)
        w.writerow([0, 0, 0.0, eager_s, 100, 0, 1, 1, "unmerged", 0, 0])
        w.writerow([0, 1, 0.5, decode_s, 0, 1, 1, 1, "unmerged", 0, 0])
        w.writerow([0, 2, 0.6, 3 * decode_s, 0, 2, 2, 1, "unmerged", 0, 0])
    (d / "run.json").write_text(json.dumps({
        "date": date, "git_commit": commit, "trace": {"sha256": "abc"},
        "lora": {"kind": kind, "dop": {"choices": [
            {"tokens": 1, "workload": "uniform", "rank": 64, "graph": True, "choice": "k1"},
            {"tokens": 128, "workload": "identical", "rank": 16, "graph": False, "choice": "k2"}]}}}))


def make_pair(live: Path, sgmv_commit: str = "abc1234", sgmv_date: str = "2026-12-01T14:45:00Z") -> None:
    # sgmv: makespan 4 s (last finish 4), 40 tokens -> 10 tok/s; dop: last finish 5 -> 8 tok/s.
    write_run(live / "run", "sgmv", sgmv_date, sgmv_commit, (3.0, 4.0), 0.050, 0.010)
    write_run(live / "run-dop", "dop", "2026-12-01T14:55:00Z", "abc1234", (3.0, 5.0), 0.060, 0.012)


def test_live_metrics_follow_docs_metrics(tmp_path: Path) -> None:
    make_pair(tmp_path)
    m = dop_live.live_metrics(tmp_path / "run")
    assert m["output_tokens_per_s"] == pytest.approx(40 / 4)  # finished requests only, over the makespan
    assert m["requests_per_s"] == pytest.approx(2 / 4)
    assert m["ttft_mean"] == pytest.approx(0.5)
    assert m["e2e_mean"] == pytest.approx((3.0 + 3.0) / 2)
    assert m["decode_step_mean"] == pytest.approx((0.010 + 0.030) / 2)  # no prefill token
    assert m["mixed_step_mean"] == pytest.approx(0.050)


def test_ratio_and_same_lease_in_table(tmp_path: Path) -> None:
    make_pair(tmp_path)
    rows = dop_live.load_pairs(tmp_path, PAIR)
    s, d = rows[0][3], rows[0][4]
    assert dop_live.ratio(d["output_tokens_per_s"], s["output_tokens_per_s"]) == pytest.approx(0.8)
    table = dop_live.live_table(rows)
    assert "| v04 | identical | yes (abc1234, 10 min apart) | 10 / 8 (0.800) |" in table[2]
    assert "50.0 / 60.0 (1.200)" in table[2]  # eager step ms


def test_other_lease_is_labelled(tmp_path: Path) -> None:
    make_pair(tmp_path, sgmv_commit="2039ec5", sgmv_date="2026-12-01T13:26:00Z")
    ok, text = dop_live.same_lease(*dop_live.load_pairs(tmp_path, PAIR)[0][3:])
    assert not ok and text.startswith("no:") and "2039ec5" in text
    # Same commit but more than 30 minutes apart: not one lease either.
    assert not dop_live.same_lease({"git_commit": "x", "date": "2026-12-01T13:00:00Z"},
                                   {"git_commit": "x", "date": "2026-12-01T14:00:00Z"})[0]


def test_missing_run_names_the_file(tmp_path: Path) -> None:
    make_pair(tmp_path)
    (tmp_path / "run-dop" / "iterations.csv").unlink()
    with pytest.raises(dop_live.RunError, match=r"missing file: .*run-dop/iterations\.csv"):
        dop_live.load_pairs(tmp_path, PAIR)
    shutil.rmtree(tmp_path / "run-dop")
    with pytest.raises(dop_live.RunError, match=r"missing run folder: .*run-dop"):
        dop_live.load_pairs(tmp_path, PAIR)


def test_twin_table_with_a_stand_in(tmp_path: Path) -> None:
    make_pair(tmp_path)
    rows = dop_live.load_pairs(tmp_path, PAIR)

    def twin(run: Path, kernel: str) -> dict:
        live = 8.0 if run.name.endswith("-dop") else 10.0
        pred = {"sgmv": 20.0, "dop": 21.0}[kernel]
        return {"output_tokens_per_s": {"live": live, "predicted": pred}, "saturated": True,
                "mixed_step_mean": {"predicted": 0.05}, "decode_step_mean": {"predicted": 0.01}}

    lines, notes = dop_live.twin_table(rows, twin)
    assert lines[2].startswith("| v04 | yes/yes | 0.800 | 1.050 | 20 (10) | 21 (8) |")
    assert notes == []


def test_eager_lora_fits_parse() -> None:
    text = ("step_mixed.csv kernel dop (LoRA in eager steps over the eager model; error of the whole step)\n"
            "  fit    us = 1.425e+04*1 + -0.5562*tokens   (30 points)\n"
            "step_mixed.csv kernel sgmv (LoRA ...)\n"
            "  fit    us = 1.561e+04*1 + -0.6139*tokens   (29 points)\n")
    assert dop_live.eager_lora_fits(text) == {"dop": (14250.0, -0.5562), "sgmv": (15610.0, -0.6139)}


def test_profile_table_and_missing_profile_file(tmp_path: Path) -> None:
    p = tmp_path / "prof"
    p.mkdir()
    with open(p / "lora_step.csv", "w") as f:
        f.write("kernel,tokens,segments,rank,median_us\n")
        for k, us in (("sgmv", 1000.0), ("dop", 1100.0)):
            for t, s, r in dop_live.DECODE_POINTS + dop_live.EAGER_POINTS:
                f.write(f"{k},{t},{s},{r},{us}\n")
    with open(p / "step_decode.csv", "w") as f:
        f.write("seqs,context_tokens,median_us\n")
        for n in (32, 128):
            f.write(f"{n},128,8000\n{n},512,11000\n")  # 9000 us at 256 tokens of context
    (p / "step_tokens.csv").write_text("tokens,median_us\n512,9000\n2048,9000\n")
    (p / "step_mixed.csv").write_text("kernel,tokens,median_us\n")
    lines = dop_live.profile_table(p)
    assert "| 9.00 | 1.00 (10%) | 1.10 (11%) | 1.10 |" in lines[2]
    (p / "step_decode.csv").unlink()
    with pytest.raises(dop_live.RunError, match="missing file: .*step_decode.csv"):
        dop_live.profile_table(p)


def test_write_block_replaces_only_the_block(tmp_path: Path) -> None:
    doc = tmp_path / "d.md"
    doc.write_text(f"head\n{dop_live.BEGIN}\nold\n{dop_live.END}\ntail\n")
    dop_live.write_block(doc, "new\n")
    assert doc.read_text() == f"head\n{dop_live.BEGIN}\nnew\n{dop_live.END}\ntail\n"
    doc.write_text("no markers\n")
    with pytest.raises(dop_live.RunError, match="block"):
        dop_live.write_block(doc, "x\n")


def test_searched_table_sets_the_new_table_beside_the_old_and_the_twins_two_kernels(tmp_path: Path) -> None:
    make_pair(tmp_path)  # run-dop: decode steps 12 / 36 ms; run (stands in for the earlier table): 10 / 30
    runs = (("v04", "identical", "run-dop", "run"),)
    calls = []

    def twin(run: Path, kernel: str) -> dict:
        calls.append((run.name, kernel))
        step = {"sgmv": 0.020, "dop": 0.018}[kernel]
        return {"decode_step_mean": {"predicted": step}, "ttft_mean": {"predicted": step * 10},
                "output_tokens_per_s": {"predicted": 100.0 if kernel == "sgmv" else 102.0}}

    lines = dop_live.searched_table(tmp_path, twin, runs)
    assert lines[2] == ("| v04 | identical | 24.00 / 20.00 (1.200) | 0.500 / 0.500 | 20.00 / 18.00 (0.900) "
                        "| 0.200 / 0.180 (0.500) | 1.020 |")
    assert calls == [("run-dop", "sgmv"), ("run-dop", "dop")]  # both kernels on the new run's trace
    bare = dop_live.searched_table(tmp_path, None, runs)
    assert bare[2] == "| v04 | identical | 24.00 / 20.00 (1.200) | 0.500 / 0.500 |"
    with pytest.raises(dop_live.RunError, match="missing run folder: .*gone"):
        dop_live.searched_table(tmp_path, None, (("v01", "uniform", "gone", "run"),))
