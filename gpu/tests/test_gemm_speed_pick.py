"""gpu/gemm_speed_pick.py on hand-made gemm.csv rows: the Triton config with the fastest step
sequence over the chosen batches, only one ok at every one of them, the baseline summed over the
same batches, and a bad row named by file and line."""

from __future__ import annotations

import csv

import pytest

from gpu import gemm_speed_pick as pk

FIELDS = ("shape", "n", "k", "batch", "variant", "us_median", "status")


def _write(path, rows):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        w.writerows(rows)
    return path


def _rows():
    rows = [("qkv", 12288, 4096, 1, "tsk_b", "1.0", "ok")]  # single GEMMs do not count
    for batch, (base, a, b) in {1: (3600, 3500, 3550), 8: (3680, 3560, 3540), 32: (3600, 4470, 4000)}.items():
        rows += [("step", "", "", batch, "linear_cublaslt", str(base), "ok"),
                 ("step", "", "", batch, "tsk_a", str(a), "ok"), ("step", "", "", batch, "tsk_b", str(b), "ok")]
    return rows


def test_picks_the_fastest_step_over_the_chosen_batches(tmp_path, capsys):
    steps = pk.read_steps(_write(tmp_path / "g.csv", _rows()))
    p = pk.pick(steps, {1, 8})
    assert p["config"] == "tsk_a" and p["us"] == pytest.approx(7060) and p["baseline_us"] == pytest.approx(7280)
    assert pk.pick(steps)["config"] == "tsk_b"  # every batch: batch 32 decides
    assert pk.main([str(tmp_path / "g.csv"), "--batches", "1,8"]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == "tsk_a" and "(1.031x)" in out.err


def test_a_config_wrong_at_one_batch_is_never_picked(tmp_path, capsys):
    rows = [r if not (r[3] == 8 and r[4] == "tsk_a") else (*r[:6], "wrong") for r in _rows()]
    assert pk.pick(pk.read_steps(_write(tmp_path / "g.csv", rows)), {1, 8})["config"] == "tsk_b"
    rows = [r if not (r[3] == 8 and r[4].startswith("tsk_")) else (*r[:5], "", "error") for r in rows]
    assert pk.main([str(_write(tmp_path / "h.csv", rows)), "--batches", "1,8"]) == 0
    out = capsys.readouterr()
    assert out.out == "" and "no Triton config ok at every batch" in out.err


def test_a_bad_row_names_file_and_line(tmp_path, capsys):
    rows = _rows()
    rows[3] = (*rows[3][:5], "fast", "ok")
    path = _write(tmp_path / "g.csv", rows)
    assert pk.main([str(path)]) == 1
    assert f"{path}:5: bad batch or us_median" in capsys.readouterr().err
