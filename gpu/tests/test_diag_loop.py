"""gpu/diag_loop.py: the rotation of conditions, the kept samples, the CSV and the table (no torch);
a run on the CPU with the tiny model (torch only)."""

from __future__ import annotations

import importlib.util

import pytest

from gpu import diag_loop as dl


def test_every_condition_once_per_round_each_after_every_other_equally():
    orders = dl.round_orders(8)
    assert all(sorted(o) == sorted(dl.CONDITIONS) for o in orders)
    assert sorted(o[0] for o in orders[:4]) == sorted(dl.CONDITIONS)  # each leads one round in four
    pairs = [(o[i - 1], o[i]) for o in orders[:4] for i in range(1, 4)]
    assert len(set(pairs)) == len(pairs) == 12  # every ordered pair once: a Williams square
    odd = dl.round_orders(6, ("a", "b", "c"))
    assert all(sorted(o) == ["a", "b", "c"] for o in odd)
    odd_pairs = [(o[i - 1], o[i]) for o in odd for i in range(1, 3)]
    assert all(odd_pairs.count(p) == 2 for p in set(odd_pairs)) and len(set(odd_pairs)) == 6


def test_the_first_two_steps_of_a_burst_are_dropped():
    assert dl.kept([9.0, 8.0, 1.0, 2.0], 4) == [1.0, 2.0]
    with pytest.raises(ValueError, match="burst of 4"):
        dl.kept([1.0, 2.0, 3.0], 4)


def test_rows_and_table_report_medians_and_ratios_to_tight():
    samples = {("tight", "execute"): [0.010, 0.011, 0.009], ("rest1", "execute"): [0.011, 0.011],
               ("gap", "execute"): [0.0105], ("loop", "execute"): [0.012, 0.012],
               ("loop", "iteration"): [0.0125, 0.0125]}
    rows = [dl.COLUMNS] + dl.summary_rows(samples, 8, 512, "sgmv")
    assert rows[1] == "tight,8,512,sgmv,execute,10000.0,9200.0,10800.0,3"
    assert [r.split(",")[0] for r in rows[1:]] == ["tight", "rest1", "gap", "loop", "loop"]
    md = dl.table(rows)
    assert "| 8 | 10000 (1.000) | 11000 (1.100) | 10500 (1.050) | 12000 (1.200) | 12500 (1.250) |" in md
    assert "context 512, LoRA sgmv" in md


def test_a_size_without_tight_has_no_ratio():
    rows = [dl.COLUMNS, "loop,4,128,none,execute,5000.0,4900.0,5100.0,4"]
    assert "| 4 | - | - | - | 5000 | - |" in dl.table(rows)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_runs_on_the_cpu_and_writes_its_files(tmp_path):
    out = tmp_path / "loop"
    rc = dl.main(["--out", str(out), "--model", "tiny-llama", "--device", "cpu", "--sizes", "1,4",
                  "--context", "48", "--rounds", "2", "--burst", "3", "--lora", "torch"])
    assert rc == 0
    rows = (out / "loop.csv").read_text().splitlines()
    assert rows[0] == dl.COLUMNS
    # 2 sizes x (4 conditions + the loop's iteration), each with 2 rounds x 1 kept step
    assert len(rows) == 1 + 2 * 5 and all(r.endswith(",2") for r in rows[1:])
    assert "| 4 |" in (out / "loop.md").read_text()
    assert '"conditions"' in (out / "meta.json").read_text()
    assert not list(out.glob(".*.tmp"))
