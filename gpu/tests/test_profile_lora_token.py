"""gpu/profile_steps.py lora_token: LoRA through the token graphs that run the kind's kernels,
on a fake rig (no GPU): the steps' shapes, slots and sizes, and the difference it records."""

from __future__ import annotations

import csv

import pytest

pytest.importorskip("torch")

from gpu import profile_steps as ps  # noqa: E402
from gpu.tests.fake_rig import FakeRig  # noqa: E402


def _rig(token_sizes, dense_from):
    return FakeRig(token_sizes=token_sizes, dense_lora_from=dense_from)


def test_sizes_under_the_dense_threshold_and_the_steps_shapes(monkeypatch):

    def fake_difference(base, treated, reps, warmup=2, rest=0.0):
        ex = rig.ex["sgmv"]
        base()
        assert all(slot is None for _, _, slot in ex.steps[-1])  # the base step has no adapter
        treated()
        assert any(slot is not None for _, _, slot in ex.steps[-1])
        return ps.Stats([250.0] * reps)

    monkeypatch.setattr(ps, "_timed_difference", fake_difference)
    rig = _rig((16, 32, 64, 128, 256, 384, 512, 640), 512)
    rows = list(csv.DictReader(ps.profile_lora_token(rig, quick=False)))
    # sizes: the table's sizes the rig captured, under dense_lora_from (512 is dense)
    assert sorted({int(r["tokens"]) for r in rows}) == [16, 64, 128, 256, 384]
    assert {(int(r["segments"]), int(r["rank"])) for r in rows} == {(s, r) for s in (1, 2, 4, 8) for r in (16, 64)}
    assert all(float(r["median_us"]) == 250.0 for r in rows)  # with adapters minus without
    for step in rig.ex["sgmv"].steps:
        chunk = [x for x in step if x[1] > 1]
        decode = [x for x in step if x[1] == 1]
        assert len(chunk) == 1 and chunk[0][0] == 0  # one prompt chunk from scratch
        assert sum(n for _, n, _ in step) in (16, 64, 128, 256, 384)  # exactly a graph size
        assert all(ctx == 256 for ctx, _, _ in decode)
        slots = [s for _, _, s in step]
        assert slots == [None] * len(step) or slots == list(range(len(step)))  # one adapter per row


def test_no_token_graphs_no_rows(monkeypatch):
    rows = ps.profile_lora_token(_rig((), 512), quick=False)
    assert rows == ["kernel,tokens,segments,rank," + ps.TIMING]
    # without a dense threshold every captured size in the table's list is measured
    monkeypatch.setattr(ps, "_timed_difference", lambda base, treated, reps, rest=0.0: ps.Stats([5.0] * reps))
    rows = list(csv.DictReader(ps.profile_lora_token(_rig((16, 64, 2048), None), quick=True)))
    assert sorted({int(r["tokens"]) for r in rows}) == [16, 64]


def test_fill_slots_names_seeds_and_ranks(monkeypatch):
    made = []
    monkeypatch.setattr(ps, "random_adapter", lambda cfg, name, r, alpha, targets, seed, dtype, device:
                        made.append((name, r, alpha, seed)) or name)
    copied = []

    class Slots:
        def copy_in(self, slot, ha) -> None:
            copied.append((slot, ha))

    class Me:
        cfg = dtype = None
        device = "cpu"
        slots = {"sgmv": Slots()}

    ps.Rig.fill_slots(Me(), "sgmv", [8, 64], "mix", [300, 301])
    assert made == [("mix8_0", 8, 16.0, 300), ("mix64_1", 64, 128.0, 301)]
    assert copied == [(0, "mix8_0"), (1, "mix64_1")]
    with pytest.raises(ValueError):
        ps.Rig.fill_slots(Me(), "sgmv", [8, 64], "mix", [300])


def test_lora_step_times_each_cell_as_a_paired_difference(monkeypatch):
    rig = _rig((), 512)
    pairs = []

    def fake_difference(base, treated, reps, warmup=2, rest=0.0):
        ex = rig.ex["sgmv"]
        base()
        plain = ex.steps[-1]
        treated()
        pairs.append((plain, ex.steps[-1]))
        return ps.Stats([250.0] * reps)

    monkeypatch.setattr(ps, "_timed_difference", fake_difference)
    rows = list(csv.DictReader(ps.profile_lora(rig, quick=False)))
    assert len(rows) == len(pairs) == 4 * 6 * 4  # ranks x tokens x segments
    assert all(float(r["median_us"]) == 250.0 for r in rows)
    for plain, lora in pairs:
        assert all(slot is None for _, _, slot in plain)  # the base step: no adapter
        assert any(slot is not None for _, _, slot in lora) and len(plain) == len(lora)
