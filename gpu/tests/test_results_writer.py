"""gpu/common/results.py: a kernel bench's rows written as CSV and JSON (no temp file left, missing
values empty) and printed one line a row."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from gpu.common.results import KERNEL_FIELDS, print_rows, write_rows


def test_write_rows_writes_both_files_and_no_temp(tmp_path: Path) -> None:
    rows = [{"shape": "qkv", "m": 1, "variant": "gemm", "status": "ok", "us": 27.5, "pct_copy_bw": 88.0},
            {"shape": "qkv", "m": 1, "variant": "fused x", "status": "wrong", "rel_err": 0.5}]
    write_rows(tmp_path / "out", "bench", KERNEL_FIELDS, rows, {"meta": {"gpu": "g"}, "rows": rows})
    got = list(csv.DictReader(open(tmp_path / "out" / "bench.csv")))
    assert [r["variant"] for r in got] == ["gemm", "fused x"]
    assert got[0]["us"] == "27.5" and got[0]["rel_err"] == "" and got[1]["us"] == ""
    assert json.loads((tmp_path / "out" / "bench.json").read_text())["meta"] == {"gpu": "g"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bench.csv", "bench.json"]


def test_print_rows(capsys) -> None:
    print_rows([{"shape": "o", "m": 16, "variant": "unfused", "status": "ok", "us": 12.25, "pct_copy_bw": 80.0,
                 "rel_err": 1e-4},
                {"shape": "o", "m": 16, "variant": "fused y", "status": "error"}], 4.25e12)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "copy bandwidth 4.25 TB/s; us per call (% of copy bandwidth)"
    assert out[1].startswith("o        m= 16 unfused") and "12.2 us  80.0%" in out[1] and "err=1.0e-04" in out[1]
    assert "error" in out[2] and out[2].endswith("err=nan")
