"""scripts/step_errors.py's probe column: a run's host_probe over its profile's step_tokens.csv
(no torch, no twin)."""

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
