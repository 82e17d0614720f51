"""gpu/common/steps.sh, the step runner of the one-call GPU scripts: each step's output lands in its
own log, its exit status is printed, and the archive is packed again after every step, a failed
one included (so a call stopped half-way still returns what finished). No GPU."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_each_step_is_logged_and_packed(tmp_path):
    script = "ARCHIVE=t.tar.gz; . gpu/common/steps.sh; step ok echo hello; step bad sh -c 'echo oops; exit 3'"
    r = subprocess.run(["bash", "-c", script], cwd=ROOT, env={"OUT": str(tmp_path), "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "rc=0 hello" in r.stdout and "rc=3 oops" in r.stdout
    assert (tmp_path / "work/ok.log").read_text() == "hello\n"
    with tarfile.open(tmp_path / "t.tar.gz") as t:
        assert {"./ok.log", "./bad.log"} <= set(t.getnames())


def test_show_helpers_print_the_tables_and_skip_what_is_missing(tmp_path):
    work = tmp_path / "work"
    (work / "variants-128").mkdir(parents=True)
    (work / "variants-128/variants.md").write_text(
        "# title\n\nintro\n\n| variant | batch 8 |\n| --- | ---: |\n| default | 4.2 |\n\n- notes\n")
    (work / "engine-a").mkdir()
    (work / "engine-a/bench.md").write_text(
        "| 1 | none | 3.8 |\n| 1 | sgmv | 5.0 |\n| 32 | none | 4.5 |\n| 3 | none | 9 |\n")
    script = "ARCHIVE=t.tar.gz; . gpu/common/steps.sh; show_variants 128 2048; show_engine a b"
    r = subprocess.run(["bash", "-c", script], cwd=ROOT, env={"OUT": str(tmp_path), "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True)
    assert r.stdout.splitlines() == ["| variant | batch 8 |", "| --- | ---: |", "| default | 4.2 |", "",
                                     "engine-a", "| 1 | none | 3.8 |", "| 32 | none | 4.5 |", "engine-b"]


def test_lease_script_needs_its_commit_and_a_known_call(tmp_path):
    env = {"OUT": str(tmp_path), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(["bash", "gpu/lease.sh", "first"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "GIT_COMMIT" in r.stderr
    r = subprocess.run(["bash", "gpu/lease.sh", "second"], cwd=ROOT, env={**env, "GIT_COMMIT": "abc"},
                       capture_output=True, text=True)
    assert r.returncode == 2 and "first|rest" in r.stderr
    assert not (tmp_path / "work").exists()  # nothing ran
