"""scripts/park_repeats.sh in a throwaway git checkout: park moves traces/repeats beside the
checkout and the size it reports drops, a second park and a restore over an existing folder refuse,
and restore puts every file back unchanged."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _sh(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "scripts/park_repeats.sh", *args], cwd=repo, capture_output=True, text=True)


def test_park_and_restore_lose_nothing(tmp_path):
    repo = tmp_path / "proj"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts/park_repeats.sh", repo / "scripts")
    runs = repo / "traces/repeats/run-a"
    runs.mkdir(parents=True)
    (runs / "iterations.csv").write_text("x\n" * 5000)
    (repo / "keep.txt").write_text("stays\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    before = _sh(repo, "size").stdout
    assert int(before.split()[0]) > 10000 and "would travel" in before  # the runs, keep.txt and the script

    parked = _sh(repo, "park")
    assert parked.returncode == 0 and not (repo / "traces/repeats").exists()
    assert (tmp_path / ".parked-proj-repeats/run-a/iterations.csv").read_text() == "x\n" * 5000
    assert int(parked.stdout.splitlines()[-1].split()[0]) == int(before.split()[0]) - 10000

    again = _sh(repo, "park")
    assert again.returncode == 1 and "restore first" in again.stderr

    (repo / "traces/repeats").mkdir()
    blocked = _sh(repo, "restore")
    assert blocked.returncode == 1 and "not overwriting" in blocked.stderr
    (repo / "traces/repeats").rmdir()

    assert _sh(repo, "restore").returncode == 0
    assert (runs / "iterations.csv").read_text() == "x\n" * 5000 and not (tmp_path / ".parked-proj-repeats").exists()
    assert _sh(repo, "restore").returncode == 1  # nothing parked
    assert _sh(repo, "bogus").returncode == 2
