"""The twin's command line as the scripts call it: `loratwin validate` on one run folder."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path


class TwinError(RuntimeError):
    """`loratwin` failed or wrote nothing; the message names the run and carries its stderr."""


def validate(binary: Path | str, run: Path, *extra: str) -> dict:
    """`loratwin validate RUN [EXTRA...] --output X.json` for one run folder: its record, with
    "metrics" ({name: {live, predicted, smape_percent or smape}}) and "saturated"."""
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "v.json"
        r = subprocess.run([str(binary), "validate", str(run), *extra, "--output", str(out)],
                           capture_output=True, text=True)
        if r.returncode != 0 or not out.exists():
            args = " ".join(extra)
            raise TwinError(f"loratwin validate {run}{' ' + args if args else ''} failed: {r.stderr.strip()}")
        data = json.loads(out.read_text())
    rows = data["runs"] if isinstance(data, dict) else data
    return rows[0]
