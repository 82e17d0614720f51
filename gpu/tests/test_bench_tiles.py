"""gpu/bench_tiles.py as a dry run on the CPU (Triton interpreter, a small head shape, no timing):
every configuration is checked against the float64 reference and written to tiles.csv, and the
engine's default configuration is found in tiles.json -- so that a device call does not find the
script's mistakes."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from gpu import bench_tiles as bt  # noqa: E402
from gpu.engine import attention as A  # noqa: E402


def test_dry_run(tmp_path, monkeypatch):
    from triton.runtime.interpreter import InterpretedFunction

    if not isinstance(A._paged_tiles_kernel, InterpretedFunction):
        pytest.skip("the kernel was compiled before TRITON_INTERPRET=1 was set")
    from conftest import patch_triton_interpreter_scalars

    patch_triton_interpreter_scalars(monkeypatch)
    monkeypatch.setattr(bt, "H", 2)
    monkeypatch.setattr(bt, "D", 16)
    monkeypatch.setattr(bt, "CASES", {"prompt40": [(40, 0)], "chunk20_after30": [(20, 30)],
                                      "decode3": [(1, 20)] * 3})
    calls = []
    monkeypatch.setattr(bt, "rotating_median_us", lambda fn, sets, reps=20: (fn(0), calls.append(1), 10.0)[2])
    assert bt.main(["--out", str(tmp_path), "--quick", "--device", "cpu", "--pool", "64"]) == 0
    rows = (tmp_path / "tiles.csv").read_text().splitlines()
    assert rows[0].startswith("case,block_m")
    # 2 prompt cases x 3 quick configurations + the decode case x its one 16-row configuration
    assert len(rows) == 1 + 2 * 3 + 1 and all(r.endswith(",ok") for r in rows[1:]), rows
    meta = json.loads((tmp_path / "tiles.json").read_text())
    for name in ("prompt40", "chunk20_after30", "decode3"):
        case = meta["cases"][name]
        assert case["engine_default"] is not None and case["best"]["us"] == 10.0
        assert case["engine_default"]["rel_err"] < 2e-2
    assert len(calls) == 7
