"""The skinny GEMM's prologues (gpu/kernels/skinny_gemm.py, "Prologues"), under Triton's
interpreter on the CPU or on a GPU: norm_gemm is add_rms_norm then the product, silu_gemm is
silu_mul then the product (against float64 of the unfused reference), the residual and the
intermediate they write when asked equal the unfused ones, bad inputs raise ValueError; and the
engine's forward pass with FUSE_PROLOGUES gives the logits of the unfused pass, with and without
LoRA (h written for the adapters)."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

os.environ.setdefault("TRITON_INTERPRET", "1")  # before any Triton import, as in conftest

from conftest import fused_forward_logits, patch_triton_interpreter_scalars  # noqa: E402

from gpu.engine import model as em  # noqa: E402
from gpu.kernels.skinny_gemm import SkinnyConfig, norm_gemm, silu_gemm  # noqa: E402

DEVICE = "cuda" if os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
TOL = 2e-3
CFGS = [SkinnyConfig(32, 32, 4, 2, 1), SkinnyConfig(16, 64, 4, 3, 1)]  # K tails at K = 96 and 64 / 96


@pytest.fixture(autouse=True)
def _interpreter_scalars(monkeypatch):
    if DEVICE == "cpu":
        patch_triton_interpreter_scalars(monkeypatch)
    yield


def _rel(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y.double() - ref).norm() / ref.norm())


@pytest.mark.parametrize("m", [1, 5, 16])
@pytest.mark.parametrize("cfg", CFGS, ids=[c.name for c in CFGS])
@pytest.mark.parametrize("with_d", [True, False])
def test_norm_gemm_is_add_rms_norm_then_the_product(m, cfg, with_d):
    g = torch.Generator().manual_seed(m * 7 + cfg.block_n)
    k, n = 96, 70
    x = torch.randn(m, k, generator=g).half().to(DEVICE)
    d = torch.randn(m, k, generator=g).half().to(DEVICE) if with_d else None
    gw = (1 + 0.1 * torch.randn(k, generator=g)).half().to(DEVICE)
    w = (torch.randn(n, k, generator=g) * 0.05).half().to(DEVICE)
    x0 = x.clone()
    res_ref = x.clone()
    h_ref = em.rms_norm(res_ref.add_(d) if with_d else res_ref, gw, 1e-5)
    for want_h in (False, True):
        y, res, h = norm_gemm(x, d, gw, 1e-5, w, cfg, want_h=want_h)
        assert _rel(y, h_ref.double() @ w.double().t()) <= TOL
        assert torch.equal(x, x0)  # x is never written
        assert torch.equal(res, res_ref) and (res is x) == (not with_d)
        if want_h:
            assert (h.double() - h_ref.double()).abs().max() <= 2e-3 * h_ref.abs().max()
        else:
            assert h is None


@pytest.mark.parametrize("m", [1, 9])
@pytest.mark.parametrize("cfg", CFGS, ids=[c.name for c in CFGS])
def test_silu_gemm_is_silu_mul_then_the_product(m, cfg):
    g = torch.Generator().manual_seed(m + cfg.block_k)
    k, n = 96, 40
    gu = torch.randn(m, 2 * k, generator=g).half().to(DEVICE)
    w = (torch.randn(n, k, generator=g) * 0.05).half().to(DEVICE)
    a_ref = torch.nn.functional.silu(gu[:, :k].double()) * gu[:, k:].double()
    y, a = silu_gemm(gu, w, cfg, want_h=True)
    assert _rel(y, a_ref @ w.double().t()) <= TOL
    assert _rel(a, a_ref) <= TOL
    assert silu_gemm(gu, w, cfg)[1] is None


def test_prologue_inputs_that_do_not_fit():
    x = torch.randn(3, 64).half().to(DEVICE)
    w = torch.randn(8, 64).half().to(DEVICE)
    gw = torch.ones(64).half().to(DEVICE)
    cfg = CFGS[0]
    bad = [
        (lambda: norm_gemm(x, None, gw, 1e-5, w, SkinnyConfig(32, 32, 4, 2, 2)), "without split-K"),
        (lambda: norm_gemm(x, None, gw, 1e-5, w, SkinnyConfig(32, 32, 4, 2, 1, swap_ab=True)), "swap_ab"),
        (lambda: norm_gemm(x, x[:2], gw, 1e-5, w, cfg), "d"),
        (lambda: norm_gemm(x, None, gw[:32], 1e-5, w, cfg), "g must be"),
        (lambda: norm_gemm(x, None, gw, 1e-5, w[:, :32], cfg), "K=64"),
        (lambda: norm_gemm(x.float(), None, gw, 1e-5, w.float(), cfg), "float16"),
        (lambda: norm_gemm(x.t(), None, gw, 1e-5, w, cfg), "contiguous rows"),
        (lambda: silu_gemm(x[:, :63], w, cfg), r"\[M, 2 K\]"),
        (lambda: silu_gemm(x, w, cfg), "K=32"),
    ]
    for call, msg in bad:
        with pytest.raises(ValueError, match=msg):
            call()


@pytest.mark.parametrize("lora", [False, True])
def test_forward_with_fused_prologues_gives_the_unfused_logits(monkeypatch, lora):
    logits, calls = fused_forward_logits(monkeypatch, "FUSE_PROLOGUES", "norm_gemm", lora, DEVICE)
    # the fused pass only; h only where LoRA reads it
    assert [k["want_h"] for k in calls] == [lora] * (2 * 2)
    ref = logits[False].double()
    assert _rel(logits[True], ref) <= 5e-3, _rel(logits[True], ref)
