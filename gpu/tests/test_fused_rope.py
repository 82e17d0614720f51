"""The engine's forward pass with the rotary embedding and the cache write inside decode attention
(gpu/engine/model.py DECODE_FUSED_ROPE_MAX_ROWS, attention.paged_decode_rope), under Triton's interpreter on
the CPU or on a GPU: the decode logits equal those of rope_and_cache then attention, with and
without LoRA, and the fused kernel ran once a layer."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

os.environ.setdefault("TRITON_INTERPRET", "1")  # before any Triton import, as in conftest

from conftest import fused_forward_logits, patch_triton_interpreter_scalars  # noqa: E402

from gpu.engine import model as em  # noqa: E402

DEVICE = "cuda" if os.environ.get("TRITON_INTERPRET") != "1" else "cpu"


@pytest.fixture(autouse=True)
def _interpreter(monkeypatch):
    if DEVICE == "cpu":
        patch_triton_interpreter_scalars(monkeypatch)
        # on the CPU the pass counts as one the kernel takes (it runs under the interpreter)
        monkeypatch.setattr(em, "_rope_fused", lambda x, b: x.shape[0] <= em.DECODE_FUSED_ROPE_MAX_ROWS
                            and not b.prefills and b.tiles is None and b.num_decode == x.shape[0])
    yield


@pytest.mark.parametrize("lora", [False, True])
def test_forward_with_rope_in_attention_gives_the_logits_of_rope_and_cache(monkeypatch, lora):
    calls = []
    real = em.paged_decode_rope
    monkeypatch.setattr(em, "paged_decode_rope", lambda *a, **k: calls.append(1) or real(*a, **k))
    logits, _ = fused_forward_logits(monkeypatch, "DECODE_FUSED_ROPE_MAX_ROWS", "add_rms_norm", lora, DEVICE,
                                     values=(0, 16))
    assert len(calls) == 2  # two layers, the fused pass only
    ref = logits[False].double()
    rel = float((logits[True].double() - ref).norm() / ref.norm())
    assert rel <= 5e-3, rel


def test_passes_over_the_row_limit_keep_rope_and_cache(monkeypatch):
    calls = []
    real = em.paged_decode_rope
    monkeypatch.setattr(em, "paged_decode_rope", lambda *a, **k: calls.append(1) or real(*a, **k))
    fused_forward_logits(monkeypatch, "DECODE_FUSED_ROPE_MAX_ROWS", "add_rms_norm", False, DEVICE, values=(0, 2))
    assert calls == []  # three rows, over 2
