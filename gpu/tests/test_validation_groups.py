"""scripts/validation_groups.py on a hand-made validate CSV and run folders (CPU, no torch)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("validation_groups", ROOT / "scripts/validation_groups.py")
vg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vg)


def _write(tmp: Path, runs: dict[str, str | None]) -> Path:
    for name, commit in runs.items():
        (tmp / "runs" / name).mkdir(parents=True)
        if commit:
            (tmp / "runs" / name / "run.json").write_text(json.dumps({"git_commit": commit}))
    csv = tmp / "v.csv"
    lines = ["scenario,saturated,cost_model,metric,live,predicted,smape_percent"]
    for i, name in enumerate(runs):
        lines.append(f"{name},false,measured,ttft_mean,1,1,{10.0 * (i + 1)}")
        lines.append(f"{name},false,measured,tpot_mean,1,1,{1.0 + i}")
    csv.write_text("\n".join(lines) + "\n")
    return csv


def test_groups_by_commit_merge_and_prefix(tmp_path, capsys):
    csv = _write(tmp_path, {"d01": "aaa", "d02": "aaa", "v01": "bbb", "v02": None})
    assert vg.main([str(csv), "--runs", str(tmp_path / "runs"), "--merge", "both=aaa,bbb"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in out[2:]}
    assert set(rows) == {"aaa", "bbb", "both", "?"}
    # aaa: d01 (10) and d02 (20) -> TTFT mean 15.0; TPOT 1 and 2 -> 1.5
    assert "| aaa | 2 | - | 15.0 | - |" in rows["aaa"] and "| 1.5 |" in rows["aaa"]
    # both: d01, d02, v01 -> (10 + 20 + 30) / 3
    assert "| both | 3 | - | 20.0 |" in rows["both"]
    assert "| ? | 1 | - | 40.0 |" in rows["?"]
    assert vg.main([str(csv), "--runs", str(tmp_path / "runs"), "--prefix", "v"]) == 0
    names = [line.split(" | ")[0].lstrip("| ") for line in capsys.readouterr().out.splitlines()[2:]]
    assert sorted(names) == ["?", "bbb"]
    # --exclude drops the runs whose name starts with it: d02 goes, aaa keeps d01 (10) alone
    assert vg.main([str(csv), "--runs", str(tmp_path / "runs"), "--exclude", "d02", "--exclude", "v0"]) == 0
    out = capsys.readouterr().out.splitlines()[2:]
    assert [line.split(" | ")[0].lstrip("| ") for line in out] == ["aaa"]
    assert "| aaa | 1 | - | 10.0 |" in out[0]


def test_bad_input_is_named(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("scenario,metric\nd01,ttft_mean\n")
    assert vg.main([str(bad)]) == 2
    assert "bad.csv: line 1: missing column(s) smape_percent" in capsys.readouterr().err
    assert vg.main([str(tmp_path / "none.csv")]) == 2


def test_a_full_sha_groups_with_its_short_form(tmp_path, capsys):
    # one lease passed GIT_COMMIT whole, the others short: both are the commit's first 7 characters
    csv = _write(tmp_path, {"d01": "61ed086", "d02": "61ed08617240a07d74eba4d521c8bf8e5d5b1560"})
    assert vg.main([str(csv), "--runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out.splitlines()[2:]
    assert len(out) == 1 and "| 61ed086 | 2 | - | 15.0 |" in out[0]


def test_median_instead_of_mean(tmp_path, capsys):
    csv = _write(tmp_path, {"d01": "aaa", "d02": "aaa", "d03": "aaa"})  # TTFT 10, 20, 30; TPOT 1, 2, 3
    (tmp_path / "v.csv").write_text((tmp_path / "v.csv").read_text().replace(",30.0\n", ",90.0\n"))
    assert vg.main([str(csv), "--runs", str(tmp_path / "runs")]) == 0
    assert "| aaa | 3 | - | 40.0 |" in capsys.readouterr().out  # mean of 10, 20, 90
    assert vg.main([str(csv), "--runs", str(tmp_path / "runs"), "--median"]) == 0
    assert "| aaa | 3 | - | 20.0 |" in capsys.readouterr().out


def test_check_fails_a_group_over_a_threshold_and_names_the_file(tmp_path, capsys):
    csv = _write(tmp_path, {"d01": "aaa", "d02": "aaa", "v01": "bbb"})
    runs = ["--runs", str(tmp_path / "runs")]
    goals = tmp_path / "goals.yaml"
    goals.write_text("# comment\nttft_mean: 16\ntpot_mean: 10\n")
    # aaa: TTFT mean (10 + 20) / 2 = 15 <= 16: passes
    assert vg.main([str(csv), *runs, "--check", f"aaa={goals}"]) == 0
    assert "every metric within its threshold" in capsys.readouterr().out
    # bbb: TTFT mean 30 > 16: fails, naming the group, the metric and the file
    assert vg.main([str(csv), *runs, "--check", f"bbb={goals}"]) == 1
    err = capsys.readouterr().err
    assert "bbb: ttft_mean 30.0 % over 16 %" in err and str(goals) in err
    # a merged group of both commits: (10 + 20 + 30) / 3 = 20 > 16
    assert vg.main([str(csv), *runs, "--merge", "all=aaa,bbb", "--check", f"all={goals}"]) == 1
    # a group without runs, a threshold that is not a number, a missing file: errors, not passes
    assert vg.main([str(csv), *runs, "--check", f"zzz={goals}"]) == 1
    assert "no run in that group" in capsys.readouterr().err
    goals.write_text("ttft_mean: ten\n")
    assert vg.main([str(csv), *runs, "--check", f"aaa={goals}"]) == 1
    assert "field 'ttft_mean'" in capsys.readouterr().err
    assert vg.main([str(csv), *runs, "--check", f"aaa={tmp_path / 'none.yaml'}"]) == 1
    assert "none.yaml" in capsys.readouterr().err


def test_bands_count_the_pairs_inside_per_group(tmp_path, capsys):
    for name, commit in {"d01": "aaa", "d02": "aaa", "v01": "bbb"}.items():
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "run.json").write_text(json.dumps({"git_commit": commit}))
    csv = tmp_path / "v.csv"
    head = "scenario,saturated,cost_model,metric,live,predicted,smape_percent,band_p5,band_p50,band_p95"
    csv.write_text("\n".join([
        head,
        "d01,false,measured,ttft_mean,1.0,1.0,0,0.9,1.0,1.1",  # inside
        "d01,false,measured,tpot_mean,2.0,1.0,66,0.9,1.0,1.1",  # above
        "d02,false,measured,ttft_mean,1.1,1.0,10,0.9,1.0,1.1",  # on the edge: inside
        "d02,false,measured,tpot_mean,1.0,1.0,0,,,",  # no band: not counted
        "v01,false,measured,ttft_mean,0.5,1.0,66,0.9,1.0,1.1",  # below
    ]) + "\n")
    assert vg.main([str(csv), "--runs", str(tmp_path / "runs"), "--merge", "all=aaa,bbb", "--bands"]) == 0
    out = capsys.readouterr().out
    assert "| aaa | 2 of 3 | 67 |" in out and "| bbb | 0 of 1 | 0 |" in out and "| all | 2 of 4 | 50 |" in out
    # a CSV without bands: named, exit 2
    plain = _write(tmp_path / "p", {"x": "ccc"})
    assert vg.main([str(plain), "--runs", str(tmp_path / "p" / "runs"), "--bands"]) == 2
    assert "no band_p5 / band_p95 values" in capsys.readouterr().err
