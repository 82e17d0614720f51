"""scripts/gc_pauses.py: stalled decode-only iterations found against the decode-only ones before
them (a long prefill step is not a stall), SMAPE as validate defines it, the full passes read from
run.json, bad paths refused naming them; and, with the twin built, a recorded run with a pass."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import gc_pauses as gp  # noqa: E402


def it(start, dur, prefill=0):
    return {"start_s": str(start), "duration_s": str(dur), "prefill_tokens": str(prefill)}


def test_stalls_are_long_decode_steps_only():
    rows = [it(i * 0.006, 0.006) for i in range(12)]
    rows.append(it(0.072, 0.080, prefill=4096))  # a long prefill step: not a stall
    rows.append(it(0.152, 0.090))  # a decode step 15x its predecessors: a stall
    rows.append(it(0.242, 0.030))  # 5x but under 50 ms: not one
    assert gp.stalls(rows) == [(0.152, 0.152 + 0.090)]
    assert gp.stalls([it(0, 0.2)]) == []  # nothing before it to compare with


def test_smape_and_passes(tmp_path):
    assert gp.smape(0, 0) == 0 and gp.smape(1, 3) == 100
    (tmp_path / "run.json").write_text(json.dumps({"runtime": {"gc": {"passes": [40, 4, 1], "longest_s": 0.09}}}))
    assert gp.full_passes(tmp_path) == (1, 0.09)
    (tmp_path / "run.json").write_text(json.dumps({"summary": {}}))
    assert gp.full_passes(tmp_path) == (0, 0.0)
    (tmp_path / "run.json").write_text("{")
    with pytest.raises(SystemExit, match="run.json"):
        gp.full_passes(tmp_path)
    with pytest.raises(SystemExit, match="not a run folder"):
        gp.run_dirs([tmp_path / "nowhere"])


TWIN = Path(os.environ.get("LORATWIN_BIN", ROOT / ".build/release/loratwin"))
RUN = ROOT / "traces/repeats/h200-v01-low-uniform-mixed-repeat5"


@pytest.mark.skipif(not TWIN.exists() or not RUN.is_dir(), reason="needs the built twin and the recorded run")
def test_a_recorded_run_with_a_pass(capsys):
    assert gp.main([str(RUN), "--bin", str(TWIN)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| h200-v01-low-uniform-mixed-repeat5 "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "1" and cells[4] == "1"  # one pass, one request left out
    start, ms = cells[3].split(": ")  # one stall: its start and length
    assert 2.0 < float(start) < 3.0 and 80 < float(ms) < 100
    p99_all, p99_kept = (float(x) for x in cells[6].split(" / "))
    assert p99_kept < p99_all
