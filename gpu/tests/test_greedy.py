"""Greedy sampling's argmax (gpu/engine/model.py ``greedy``, TRITON_ARGMAX): the Triton kernel, under
Triton's interpreter on the CPU or on a GPU, gives torch's ``argmax(-1)`` on fresh random logits of
fp16 and fp32 (vocabularies that are and are not powers of two, several steps of ARGMAX_BLOCK a
row), the first index where a maximum repeats (within a step and across steps), rows of -inf and
rows with NaN (counted as +inf); switched off, it is torch's."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

os.environ.setdefault("TRITON_INTERPRET", "1")  # before any Triton import, as in conftest

from gpu.engine import attention  # noqa: E402
from gpu.engine import model as em  # noqa: E402

DEVICE = "cuda" if os.environ.get("TRITON_INTERPRET") != "1" else "cpu"


@pytest.fixture(autouse=True)
def _triton(monkeypatch):
    monkeypatch.setattr(em, "TRITON_ARGMAX", True)
    if DEVICE == "cpu":
        monkeypatch.setattr(attention, "FORCE_TRITON", True)
    yield


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("rows,vocab,block", [(1, 1000, 32768), (5, 1024, 256), (3, 997, 128), (8, 4000, 512)])
def test_greedy_is_torch_argmax_on_random_logits(monkeypatch, dtype, rows, vocab, block):
    monkeypatch.setattr(em, "ARGMAX_BLOCK", block)  # 997 / 128: eight steps, the last one short
    g = torch.Generator().manual_seed(rows * vocab + block)
    for _ in range(3):
        x = (torch.randn((rows, vocab), generator=g) * 4).to(dtype).to(DEVICE)
        got = em.greedy(x)
        assert got.dtype == torch.int64 and got.shape == (rows,)
        assert torch.equal(got, x.argmax(-1))


def test_greedy_takes_the_first_of_equal_maxima_and_handles_inf_and_nan(monkeypatch):
    monkeypatch.setattr(em, "ARGMAX_BLOCK", 64)
    x = torch.zeros((5, 300), dtype=torch.float16)
    x[0, [10, 70, 299]] = 3.0  # equal maxima in different steps: the first
    x[1, [5, 6]] = 2.0  # within one step
    x[2] = float("-inf")  # nothing above -inf: index 0, as torch
    x[3, 200] = float("nan")  # NaN counts as +inf: its index
    x[4, [100, 150]] = float("inf")
    x[4, 250] = float("nan")  # +inf first, then NaN: the first of them (torch would take the NaN)
    got = em.greedy(x.to(DEVICE)).cpu()
    assert got.tolist() == [10, 5, 0, 200, 100]
    assert torch.equal(got[:4], x[:4].argmax(-1))


def test_greedy_off_is_torch(monkeypatch):
    monkeypatch.setattr(em, "TRITON_ARGMAX", False)
    x = torch.randn((4, 50)).to(DEVICE)
    assert torch.equal(em.greedy(x), x.argmax(-1))
    empty = torch.empty((0, 50)).to(DEVICE)
    monkeypatch.setattr(em, "TRITON_ARGMAX", True)
    assert em.greedy(empty).shape == (0,)
