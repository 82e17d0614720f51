"""`prefill_max_keys` in the step profile: the seeded step_mixed compositions (gpu/common/mixed.py)
and scripts/profile_max_keys.py, which adds the column to a profile measured before it existed."""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import profile_max_keys as pmk  # noqa: E402

from gpu.common import mixed  # noqa: E402

PROFILE = ROOT / "profiles/h200-llama2-7b-3222a4e"


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames or []), list(r)


def _drop_column(src: Path, dst: Path) -> None:
    fields, rows = _rows(src)
    out = [c for c in fields if c != pmk.COLUMN]
    with dst.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=out, lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    """The 3222a4e profile without the column, as it was measured."""
    d = tmp_path / "profile"
    shutil.copytree(PROFILE, d)
    for name in ("step_attention.csv", "step_mixed.csv"):
        _drop_column(PROFILE / name, d / name)
    return d


def test_compositions_are_seeded_and_consistent() -> None:
    a, b = mixed.compositions(["torch", "sgmv"], 5), mixed.compositions(["torch", "sgmv"], 5)
    assert a == b and [c.kind for c in a] == ["torch"] * 5 + ["sgmv"] * 5
    for c in a:
        assert sorted(c.order) == list(range(len(c.decode) + len(c.chunks)))
        assert c.prefill_max_keys == max(n + ctx for n, ctx, _ in c.chunks)
        assert c.prefill_tokens + len(c.decode) <= 4096
    # the kinds share one generator in turn: sgmv's first step continues torch's draws
    alone = mixed.compositions(["sgmv"], 5)
    assert alone[0].chunks == a[0].chunks and (a[5].chunks, a[5].decode) != (alone[0].chunks, alone[0].decode)


def test_the_committed_profile_matches_its_derivation() -> None:
    assert pmk.main([str(PROFILE), "--check"]) == 0


def test_added_to_a_bare_profile_equals_the_committed_column(bare: Path, capsys) -> None:
    assert pmk.main([str(bare), "--check"]) == 0
    assert pmk.COLUMN not in _rows(bare / "step_mixed.csv")[0]  # --check writes nothing
    assert pmk.main([str(bare)]) == 0
    for name in ("step_attention.csv", "step_mixed.csv"):
        assert (bare / name).read_text() == (PROFILE / name).read_text()
    assert not list(bare.glob("*.tmp"))


def test_a_row_unlike_the_generator_is_refused_and_nothing_written(bare: Path, capsys) -> None:
    path = bare / "step_mixed.csv"
    fields, rows = _rows(path)
    rows[40]["prefill_pairs"] = str(float(rows[40]["prefill_pairs"]) + 1)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    before = {p.name: p.read_text() for p in bare.iterdir()}
    assert pmk.main([str(bare)]) == 1
    err = capsys.readouterr().err
    assert "step_mixed.csv:42: column prefill_pairs" in err
    assert {p.name: p.read_text() for p in bare.iterdir()} == before  # step_attention untouched too


def test_an_attention_row_of_more_than_one_chunk_is_refused(bare: Path, capsys) -> None:
    path = bare / "step_attention.csv"
    text = path.read_text().splitlines()
    f = text[2].split(",")
    f[1] = str(float(f[1]) + 0.5)  # prefill_pairs no whole number of cached tokens explains
    text[2] = ",".join(f)
    path.write_text("\n".join(text) + "\n")
    assert pmk.main([str(bare)]) == 1
    assert "step_attention.csv:3: column prefill_pairs" in capsys.readouterr().err


def test_profile_mixed_times_the_generators_compositions(monkeypatch) -> None:
    """profile_mixed on fakes: its rows are the generator's compositions, max keys included."""
    pytest.importorskip("torch")
    from gpu import profile_steps as ps
    from gpu.tests.fake_rig import FakeRig

    class Stats:
        def row(self) -> str:
            return "1.0,1.0,1.0,2"

    rig = FakeRig(kinds=("torch", "sgmv"), device=None)

    monkeypatch.setattr(ps, "timed", lambda *a, **k: Stats())
    monkeypatch.setattr(ps, "mixed_base_us", lambda *a, **k: 1.0)
    rows = list(csv.DictReader(ps.profile_mixed(rig, quick=True)))
    comps = mixed.compositions(rig.kinds, mixed.PER_KIND_QUICK)
    assert len(rows) == len(comps)
    for r, c in zip(rows, comps, strict=True):
        assert r["kernel"] == c.kind and int(r["prefill_max_keys"]) == c.prefill_max_keys
        assert float(r["prefill_pairs"]) == c.prefill_pairs and int(r["decode_seqs"]) == len(c.decode)
        assert int(r["decode_context_tokens"]) == c.decode_context_tokens
