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
