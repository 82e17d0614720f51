"""Every Python file of gpu/ and scripts/ compiles (CI has no torch, so the GPU scripts' own tests
skip there; a syntax error -- such as a ``global`` after the name's first use -- would otherwise
first show on the GPU machine, in device time)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(p for d in ("gpu", "scripts") for p in (ROOT / d).rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_compiles(path: Path) -> None:
    compile(path.read_text(), str(path), "exec")
