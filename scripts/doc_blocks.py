"""Generated blocks in the docs: the text between a BEGIN and an END marker, rewritten by the
scripts that produce it (dop_live.py, schedulers_live.py, live_repeats.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def replace_block(text: str, begin: str, end: str, body: str, name: str = "document") -> str:
    """``text`` with the part between ``begin`` and the next ``end`` replaced by ``body`` (markers
    kept, each on its own line). ValueError naming ``name`` when a marker is missing."""
    i = text.find(begin)
    j = text.find(end, i + len(begin)) if i >= 0 else -1
    if i < 0 or j < 0:
        raise ValueError(f"{name}: no generated block ({begin} ... {end})")
    return text[:i + len(begin)] + "\n" + body.rstrip("\n") + "\n" + text[j:]


def write_block(doc: Path, begin: str, end: str, body: str) -> None:
    """Rewrite the generated block of ``doc`` in place, atomically (temp file + os.replace): a
    failure leaves the file as it was."""
    new = replace_block(doc.read_text(), begin, end, body, str(doc))
    fd, tmp = tempfile.mkstemp(dir=doc.parent, prefix=f".{doc.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(new)
        os.replace(tmp, doc)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
