"""scripts/schedulers_live.py: its pieces on hand-made rows (CPU), and its tables on the committed
d0* runs with the twin's binary."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from gpu.tests.test_conformance import require_twin

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("schedulers_live", ROOT / "scripts/schedulers_live.py")
sl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sl)


def it(start: float, dur: float, prefill: int, decode: int, mode: str) -> dict:
    return {"start_s": str(start), "duration_s": str(dur), "prefill_tokens": str(prefill),
            "decode_seqs": str(decode), "mode": mode}


def test_split_name_knows_every_variant() -> None:
    assert sl.split_name("d04-cold-adapter-share90") == ("d04-cold-adapter-share90", "")
    assert sl.split_name("d04-cold-adapter-share90-draincredit") == ("d04-cold-adapter-share90", "-draincredit")
    assert sl.split_name("d02-identical-heavy-share95-fcfs") == ("d02-identical-heavy-share95", "-fcfs")
    # The bound applies to dLoRA with credits only.
    assert [k for k, (_, credits) in sl.VARIANTS.items() if credits] == ["", "-draincredit"]


def test_mode_stats_counts_merges_and_merged_iterations() -> None:
    rows = [it(0, 1, 0, 1, "unmerged"), it(1, 1, 0, 1, "merged"), it(2, 1, 0, 1, "merged"),
            it(3, 1, 0, 1, "unmerged"), it(4, 1, 0, 1, "merged")]
    assert sl.mode_stats(rows) == (2, 3)


def test_speed_ratio_replays_the_engines_moving_average() -> None:
    # Unmerged: 100 tok/s, then 200 -> 0.8 * 100 + 0.2 * 200 = 120. Merged: 600 tok/s.
    rows = [it(0.0, 1.0, 90, 10, "unmerged"), it(1.0, 1.0, 0, 600, "merged"), it(2.0, 1.0, 190, 10, "unmerged"),
            it(3.0, 1.0, 0, 100, "unmerged")]
    assert sl.speed_ratio_max(rows, 0.0, 0.5) == 1.0  # nothing finished yet: s unknown, 1
    assert sl.speed_ratio_max(rows, 0.0, 2.0) == pytest.approx(6.0)  # 600 / 100
    # Largest over the window [2.5, 3.0]: 600 / 120 = 5 at 3.0 (the last iteration ends at 4.0).
    assert sl.speed_ratio_max(rows, 2.5, 3.0) == pytest.approx(5.0)
    assert sl.speed_ratio_max(rows, 0.0, 10.0) == pytest.approx(6.0)
    assert sl.bound_passes(5.0, 32) == 320


def test_waits_and_cold_wait(tmp_path: Path) -> None:
    p = tmp_path / "requests.csv"
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["request_id", "adapter", "arrival_s", "first_scheduled_s"])
        w.writerows([[0, "a0", 0.0, 5.0], [1, "a0", 1.0, 2.0], [2, "a1", 0.0, 3.0], [3, "a2", 1.0, ""]])
    assert max(sl.waits(p), key=lambda x: x[1]) == ("a0", 5.0, 5.0)
    assert sl.cold_wait(p) == 3.0  # a0 is the most requested; a2's request never ran


def _requests(folder: Path, rows: list[list]) -> None:
    folder.mkdir(parents=True)
    with open(folder / "requests.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["request_id", "adapter", "arrival_s", "first_scheduled_s", "finish_s"])
        w.writerows(rows)


def test_e2e_p99_interpolates_and_cold_waits_table_orders_the_recordings(tmp_path: Path) -> None:
    live, rep = tmp_path / "live", tmp_path / "repeats"
    # E2E 1..100 s over 100 requests (one unfinished, left out): p99 at pos 98.01 -> 99.01
    rows = [[i, "a0", 0.0, 0.0, float(i + 1)] for i in range(100)] + [[100, "a1", 0.0, 4.0, ""]]
    _requests(live / "d09-x-fcfs", rows)
    assert sl.e2e_p99(live / "d09-x-fcfs" / "requests.csv") == pytest.approx(99.01)
    # the first recording, then repeat, repeat2 and repeat10 in that order (not by name)
    for name, wait in (("d09-x-fcfs-repeat10", 7.0), ("d09-x-fcfs-repeat2", 2.0), ("d09-x-fcfs-repeat", 1.0)):
        _requests(rep / name, [[0, "a0", 0.0, 0.0, 1.0], [1, "a0", 0.0, 0.0, 2.0], [2, "a1", 1.0, 1.0 + wait, 9.0]])
    _requests(live / "d09-x", [[0, "a0", 0.0, 0.0, 1.0]])  # one recording only: no row
    table = sl.cold_waits_table(live, rep).splitlines()
    assert len(table) == 3
    assert table[2].startswith("| d09-x | unmerged (FCFS) | 4 | 3.00 (1.00 - 7.00) | 4.00, 1.00, 2.00, 7.00 |")


def test_candidate_wait_counts_the_stretch_in_the_candidate_batch(tmp_path: Path) -> None:
    # max_num_seqs 1: only the oldest waiting request is a candidate. Passes start at 0, 1, ..., 5.
    # r0 (a0) arrives at 0 and runs at 0; r1 (a1) arrives at 0, is the candidate from pass 1 and runs
    # at pass 4 (passes 1, 2, 3 in between, 2 and 3 merged); r2 (a0) arrives at 0.5 and runs at 2 in
    # a merged pass, ahead of r1, never the candidate (r1 is older and waits until 4).
    p = tmp_path / "requests.csv"
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["request_id", "adapter", "arrival_s", "first_scheduled_s"])
        w.writerows([[0, "a0", 0.0, 0.0], [1, "a1", 0.0, 4.0], [2, "a0", 0.5, 2.0], [3, "a1", 4.5, 5.0]])
    rows = [it(t, 1.0, 0, 1, "merged" if t in (2, 3) else "unmerged") for t in range(6)]
    c = sl.candidate_wait(p, rows, 1)
    assert c == {"adapter": "a1", "seconds": 3.0, "passes": 3, "t0": 1.0, "t1": 4.0, "merged": 2}
    # with two seats, r1 is a candidate from pass 0 (r0 and r1 the two oldest waiting)
    c2 = sl.candidate_wait(p, rows, 2)
    assert (c2["t0"], c2["seconds"], c2["passes"], c2["merged"]) == (0.0, 4.0, 4, 2)


def test_replace_block_keeps_the_markers() -> None:
    doc = f"head\n{sl.BEGIN}\nold\n{sl.END}\ntail\n"
    assert sl.replace_block(doc, "new") == f"head\n{sl.BEGIN}\nnew\n{sl.END}\ntail\n"
    with pytest.raises(ValueError):
        sl.replace_block("no markers", "new")
    text = sl.DOC.read_text()
    assert text.count(sl.BEGIN) == 1 and text.count(sl.END) >= 1


def test_tables_cover_every_recorded_run() -> None:
    body = sl.render(str(require_twin()))
    first, second, third = body.split("\n\n")
    runs = sorted(p.parent.name for p in (ROOT / "traces/live").glob("d0*/requests.csv"))
    assert len(first.splitlines()) == 2 + len(runs)
    credit_runs = [r for r in runs if sl.VARIANTS[sl.split_name(r)[1]][1]]
    assert len(second.splitlines()) == 2 + len(credit_runs)
    assert len(third.splitlines()) == 2 + len(runs)
    assert sum(line.endswith("| - | - (no credits) | - |") for line in third.splitlines()) == len(runs) - len(
        credit_runs)


def test_repeat_base_names_the_first_recording() -> None:
    assert sl.repeat_base("d04-cold-adapter-share90-repeat") == "d04-cold-adapter-share90"
    assert sl.repeat_base("d04-cold-adapter-share90-fcfs-repeat12") == "d04-cold-adapter-share90-fcfs"
    assert sl.repeat_base("d04-cold-adapter-share90") == "d04-cold-adapter-share90"
    assert sl.repeat_base("d04-x-repeatable") == "d04-x-repeatable"  # not a repeat's suffix


def test_mode_changes_table_groups_recordings_in_order(tmp_path: Path, monkeypatch) -> None:
    live, rep = tmp_path / "live", tmp_path / "repeats"
    names = {live: ["d04-c", "d04-c-fcfs", "d04-c-nocredit"], rep: ["d04-c-repeat10", "d04-c-repeat",
                                                                    "d04-c-repeat2", "d04-c-fcfs-repeat"]}
    counts = {"d04-c": (8, 12), "d04-c-repeat": (10, 10), "d04-c-repeat2": (12, 12), "d04-c-repeat10": (12, 10),
              "d04-c-nocredit": (2, 2), "d04-c-fcfs": (0, 0), "d04-c-fcfs-repeat": (0, 0)}
    for parent, runs in names.items():
        for n in runs:
            (parent / n).mkdir(parents=True)
            (parent / n / "requests.csv").write_text("request_id\n")
    # repeat and repeat10 priced with a profile that has a closed loop, repeat2 with one that has none
    for prof, looped in (("p-loop", True), ("p-none", False)):
        (tmp_path / prof / ("closed_loop/sgmv" if looped else "")).mkdir(parents=True, exist_ok=True)
        if looped:
            (tmp_path / prof / "closed_loop/sgmv/steps.csv").write_text("iteration\n")
    for n, prof in (("d04-c-repeat", "p-loop"), ("d04-c-repeat10", "p-loop"), ("d04-c-repeat2", "p-none")):
        (rep / n / "scenario.yaml").write_text(f"cost_model: {{kind: measured, profile: ../../{prof}, kernel: sgmv}}\n")
    seen = []

    def fake_validate(_bin, run):
        seen.append(run.name)
        live_n, twin_n = counts[run.name]
        return {"metrics": {"mode_changes": {"live": live_n, "predicted": twin_n}}}

    monkeypatch.setattr(sl.twin_cli, "validate", fake_validate)
    sums: dict = {}
    lines = sl.mode_changes_table("bin", live, rep, sums).splitlines()
    assert lines[2] == "| d04-c | dLoRA | 4 | 8/12, 10/10, 12/12, 12/10 | 42 / 44 | 2 |"  # repeat, 2, 10 in order
    assert lines[3] == "| d04-c | dLoRA, no credits | 1 | 2/2 | 2 / 2 | 1 |"
    assert "fcfs" not in " ".join(seen)  # FCFS never switches: not counted
    assert lines[-2] == "| all | | 5 | | 44 / 46 (SMAPE 4.4 %) | 3 |"
    assert lines[-1] == "| priced with their lease's closed loop | | 2 | | 22 / 20 (SMAPE 9.5 %) | 1 |"
    assert sums["all"][:3] == (5, 44, 46) and sums["all"][3] == pytest.approx(200 * 2 / 90)
    assert sums["priced with their lease's closed loop"][:3] == (2, 22, 20)


def test_smape_of_sums() -> None:
    assert sl.smape_of_sums(0, 0) == 0.0
    assert sl.smape_of_sums(132, 130) == pytest.approx(200 * 2 / 262)
    assert sl.smape_of_sums(120, 108) == pytest.approx(10.526, abs=1e-3)
