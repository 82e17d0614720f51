"""gpu/gemm_speed_pick.py on hand-made gemm.csv rows: the fastest Triton config per weight group,
only one that is ok on every row of its group, the baseline summed over the same rows, and a bad
row named by file and line."""

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
    rows = []
    for shape, n in (("qkv", 12288), ("o", 4096)):
        for batch in (1, 8):
            rows.append((shape, n, 4096, batch, "linear_cublaslt", "10.0", "ok"))
            rows.append((shape, n, 4096, batch, "tsk_a", "9.0" if shape == "qkv" else "12.0", "ok"))
            rows.append((shape, n, 4096, batch, "tsk_b", "9.5" if shape == "qkv" else "8.0", "ok"))
    rows.append(("step", "", "", 1, "tsk_a", "1.0", "ok"))  # step rows are not single GEMMs
    return rows


def test_picks_the_fastest_config_per_group(tmp_path, capsys):
    p = pk.pick(pk.read_rows(_write(tmp_path / "g.csv", _rows())))
    assert p["wide"]["config"] == "tsk_a" and p["wide"]["us"] == pytest.approx(18.0)
    assert p["narrow"]["config"] == "tsk_b" and p["narrow"]["baseline_us"] == pytest.approx(20.0)
    assert pk.main([str(tmp_path / "g.csv")]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == "tsk_a,tsk_b" and "(1.111x)" in out.err


def test_a_config_wrong_on_one_row_is_never_picked(tmp_path, capsys):
    rows = [r if not (r[0] == "qkv" and r[3] == 8 and r[4] == "tsk_a") else (*r[:6], "wrong") for r in _rows()]
    p = pk.pick(pk.read_rows(_write(tmp_path / "g.csv", rows)))
    assert p["wide"]["config"] == "tsk_b"
    rows = [r for r in rows if not (r[0] == "o" and r[4].startswith("tsk_") and r[3] == 8)]
    assert pk.main([str(_write(tmp_path / "h.csv", rows))]) == 0
    out = capsys.readouterr()
    assert out.out == "" and "narrow: no Triton config ok on every row" in out.err


def test_a_bad_row_names_file_and_line(tmp_path, capsys):
    rows = _rows()
    rows[2] = (*rows[2][:5], "fast", "ok")
    path = _write(tmp_path / "g.csv", rows)
    assert pk.main([str(path)]) == 1
    assert f"{path}:4: bad n or us_median" in capsys.readouterr().err
