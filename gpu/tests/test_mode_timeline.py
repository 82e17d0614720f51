"""scripts/mode_timeline.py: mode changes read from iterations.csv and paired live / twin."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import mode_timeline as mt  # noqa: E402


def test_changes_start_from_unmerged_and_keep_only_the_switches(tmp_path):
    f = tmp_path / "iterations.csv"
    rows = ["replica,iteration,start_s,mode", "0,0,0.0,unmerged", "0,1,1.0,merged", "0,2,1.5,merged",
            "0,3,2.0,unmerged", "0,4,3.0,unmerged", "0,5,4.0,merged"]
    f.write_text("\n".join(rows) + "\n")
    assert mt.changes(f) == [(1.0, "merged"), (2.0, "unmerged"), (4.0, "merged")]


def test_pairs_take_the_nearest_change_of_the_same_kind_within_the_window():
    live = [(10.0, "merged"), (10.5, "unmerged"), (20.0, "merged"), (20.2, "unmerged")]
    twin = [(10.3, "merged"), (10.4, "unmerged"), (12.0, "merged"), (12.1, "unmerged"), (21.5, "merged")]
    pairs, live_only, twin_only = mt.pair(live, twin, window=1.0)
    assert pairs == [(10.0, 10.3, "merged"), (10.5, 10.4, "unmerged")]
    assert live_only == [(20.0, "merged"), (20.2, "unmerged")]  # 21.5 is 1.5 s away
    assert twin_only == [(12.0, "merged"), (12.1, "unmerged"), (21.5, "merged")]
    pairs, live_only, twin_only = mt.pair(live, twin, window=2.0)
    assert pairs[-1] == (20.0, 21.5, "merged") and live_only == [(20.2, "unmerged")]
    assert twin_only == [(12.0, "merged"), (12.1, "unmerged")]  # 8 s from any live change
