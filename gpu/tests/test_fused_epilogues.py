"""The skinny GEMM's epilogues (gpu/kernels/skinny_gemm.py, "Epilogues"), under Triton's
interpreter on the CPU or on a GPU: residual_gemm adds the product to the residual in place as
the unfused pass rounds it and writes r * g and the row sums of squares (one part an N tile,
stored, the same bits each run); scaled_gemm over those is
add_rms_norm then the product, and with glu silu_mul of it (against float64 of the unfused
reference); bad inputs raise ValueError; and the engine's forward pass with FUSE_EPILOGUES gives
the unfused logits without LoRA, and takes the unfused path when LoRA is on."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

os.environ.setdefault("TRITON_INTERPRET", "1")  # before any Triton import, as in conftest

from conftest import fused_forward_logits, patch_triton_interpreter_scalars  # noqa: E402

from gpu.engine import model as em  # noqa: E402
from gpu.kernels.skinny_gemm import (  # noqa: E402
    SkinnyConfig,
    norm_prep,
    residual_gemm,
    scaled_gemm,
    ss_parts,
)

DEVICE = "cuda" if os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
TOL = 2e-3
EPS = 1e-5
CFGS = [SkinnyConfig(32, 32, 4, 2, 1), SkinnyConfig(16, 64, 4, 3, 1),  # K tails at K = 96 and 64 / 96
        # the wide batches' forms: the product transposed, K split (the last slice partly or wholly
        # masked: K 96 in 3 slices of 32, or in 2 of 64), the tile's last program running the epilogue
        SkinnyConfig(32, 32, 4, 2, 1, swap_ab=True), SkinnyConfig(32, 32, 4, 2, 3, swap_ab=True),
        SkinnyConfig(16, 64, 4, 2, 2)]


@pytest.fixture(autouse=True)
def _interpreter_scalars(monkeypatch):
    if DEVICE == "cpu":
        patch_triton_interpreter_scalars(monkeypatch)
    yield


def _rel(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y.double() - ref).norm() / ref.norm())


def _data(m: int, k: int, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(m, k, generator=g).half().to(DEVICE)
    gw = (1 + 0.1 * torch.randn(k, generator=g)).half().to(DEVICE)
    w = (torch.randn(n, k, generator=g) * 0.05).half().to(DEVICE)
    return g, r, gw, w


@pytest.mark.parametrize("m", [1, 5, 16, 20])
@pytest.mark.parametrize("cfg", CFGS, ids=[c.name for c in CFGS])
def test_norm_prep_then_scaled_gemm_is_rms_norm_then_the_product(m, cfg):
    _, r, gw, w = _data(m, 96, 70, m * 3 + cfg.block_n)
    hg = torch.empty_like(r)
    ss = torch.full((m + 2,), -1.0, dtype=torch.float32, device=DEVICE)  # only ss[:m] is written
    norm_prep(r, gw, hg, ss)
    rd = r.double()
    assert torch.allclose(ss[:m].double(), (rd * rd).sum(1), rtol=1e-5)
    assert torch.all(ss[m:] == -1.0)
    assert torch.equal(hg, (r.float() * gw.float()).half())
    y = scaled_gemm(hg, w, cfg, ss, EPS)
    ref = em.rms_norm(r, gw, EPS).double() @ w.double().t()
    assert y.shape == (m, 70) and _rel(y, ref) <= TOL


@pytest.mark.parametrize("m", [1, 9, 24])
@pytest.mark.parametrize("cfg", CFGS, ids=[c.name for c in CFGS])
def test_scaled_gemm_with_glu_is_silu_mul_of_the_normed_product(m, cfg):
    _, r, gw, w = _data(m, 96, 2 * 40, m + cfg.block_k)
    hg = torch.empty_like(r)
    ss = torch.zeros(m, dtype=torch.float32, device=DEVICE)
    norm_prep(r, gw, hg, ss)
    a = scaled_gemm(hg, w, cfg, ss, EPS, glu=True)
    gu = em.rms_norm(r, gw, EPS).double() @ w.double().t()
    ref = torch.nn.functional.silu(gu[:, :40]) * gu[:, 40:]
    assert a.shape == (m, 40) and _rel(a, ref) <= TOL


@pytest.mark.parametrize("m", [1, 5, 16, 32])
@pytest.mark.parametrize("cfg", CFGS, ids=[c.name for c in CFGS])
def test_residual_gemm_updates_the_residual_and_the_next_norms_inputs(m, cfg):
    g, res, gw, _ = _data(m, 70, 1, 11 * m + cfg.block_n)  # the residual [M, N], N = 70
    x = torch.randn(m, 96, generator=g).half().to(DEVICE)
    w = (torch.randn(70, 96, generator=g) * 0.05).half().to(DEVICE)
    res0 = res.clone()
    hg = torch.empty_like(res)
    tiles = ss_parts(70, cfg)
    assert tiles == -(-70 // cfg.block_n)
    ss = torch.full((tiles + 1, m + 2), -1.0, dtype=torch.float32, device=DEVICE)
    parts = residual_gemm(x, w, cfg, res, gw, hg, ss)
    assert parts.shape == (tiles, m + 2) and parts.data_ptr() == ss.data_ptr()
    assert torch.all(ss[tiles] == -1.0) and torch.all(ss[:, m:] == -1.0)  # only the parts' rows are written
    y_ref = x.double() @ w.double().t()
    # res0 + y, y rounded to fp16 first: within one fp16 rounding of the exact sum per element
    exact = res0.double() + y_ref
    assert (res.double() - exact).abs().max() <= 2e-3 * exact.abs().max()
    rd = res.double()
    for t in range(tiles):  # part t: the row sums of squares over N tile t's columns
        cols = rd[:, t * cfg.block_n:(t + 1) * cfg.block_n]
        assert torch.allclose(parts[t, :m].double(), (cols * cols).sum(1), rtol=1e-5)
    assert torch.equal(hg, (res.float() * gw.float()).half())
    # and the next GEMM over them is the unfused add_rms_norm then the product
    w2 = (torch.randn(24, 70, generator=g) * 0.05).half().to(DEVICE)
    ref = em.rms_norm(res, gw, EPS).double() @ w2.double().t()
    assert _rel(scaled_gemm(hg, w2, cfg, parts, EPS), ref) <= TOL


@pytest.mark.parametrize("cfg", [CFGS[0], CFGS[3]], ids=[CFGS[0].name, CFGS[3].name])
def test_ss_parts_are_stored_not_added_and_give_the_same_bits_each_run(cfg):
    # Until 8c64e5e the parts were fp32 atomics into one vector, in whatever order the tiles
    # finished: on a GPU the logits moved by about 1e-3 from one run to the next. Stored parts,
    # summed in one order by the GEMM that reads them, give the same bits (on a GPU, where it
    # matters, and under the interpreter).
    g, res0, gw, _ = _data(20, 160, 1, 5)
    x = torch.randn(20, 96, generator=g).half().to(DEVICE)
    w = (torch.randn(160, 96, generator=g) * 0.05).half().to(DEVICE)
    w2 = (torch.randn(48, 160, generator=g) * 0.05).half().to(DEVICE)
    outs = []
    for fill in (100.0, -7.0):  # whatever the buffer held before
        res, hg = res0.clone(), torch.empty_like(res0)
        ss = torch.full((ss_parts(160, cfg), 20), fill, dtype=torch.float32, device=DEVICE)
        parts = residual_gemm(x, w, cfg, res, gw, hg, ss)
        outs.append((res, hg, parts.clone(), scaled_gemm(hg, w2, cfg, parts, EPS)))
    rd = outs[0][0].double()
    assert torch.allclose(outs[0][2].double().sum(0), (rd * rd).sum(1), rtol=1e-5)
    for a, b in zip(outs[0], outs[1], strict=True):
        assert torch.equal(a, b)


def test_ss_atomic_adds_into_one_part_so_it_must_start_at_zero():
    _, res, gw, _ = _data(3, 64, 1, 5)
    x = torch.randn(3, 32).half().to(DEVICE)
    w = (torch.randn(64, 32) * 0.05).half().to(DEVICE)
    hg = torch.empty_like(res)
    ss = torch.full((2, 3), 100.0, dtype=torch.float32, device=DEVICE)
    parts = residual_gemm(x, w, CFGS[0], res, gw, hg, ss, ss_atomic=True)  # two N tiles of 32, one part
    rd = res.double()
    assert parts.shape == (1, 3)
    assert torch.allclose(ss[0].double(), 100.0 + (rd * rd).sum(1), rtol=1e-5)
    assert torch.all(ss[1] == 100.0)


def test_epilogue_inputs_that_do_not_fit():
    x = torch.randn(3, 64).half().to(DEVICE)
    w = torch.randn(8, 64).half().to(DEVICE)
    gw = torch.ones(8).half().to(DEVICE)
    res = torch.randn(3, 8).half().to(DEVICE)
    ss = torch.zeros(3, dtype=torch.float32, device=DEVICE)
    w70 = torch.randn(70, 64).half().to(DEVICE)  # three N tiles of 32: three parts
    gw70, res70 = torch.ones(70).half().to(DEVICE), torch.randn(3, 70).half().to(DEVICE)
    cfg = CFGS[0]
    bad = [
        (lambda: scaled_gemm(x, w, SkinnyConfig(32, 32, 4, 2, 2, tma=True), ss, EPS), "no TMA"),
        (lambda: scaled_gemm(x, w, SkinnyConfig(32, 32, 4, 2, 1, swap_ab=True, balanced=True), ss, EPS), "balanced"),
        (lambda: scaled_gemm(x, w[:, :32], cfg, ss, EPS), "K=64"),
        (lambda: scaled_gemm(x, w, cfg, ss[:2], EPS), "3 or more"),
        (lambda: scaled_gemm(x, w, cfg, ss.view(3, 1)[:, :0], EPS), "3 or more"),
        (lambda: scaled_gemm(x, w, cfg, ss.double(), EPS), "float32"),
        (lambda: scaled_gemm(x, w[:7], cfg, ss, EPS, glu=True), r"\[2 N, K\]"),
        (lambda: scaled_gemm(x.float(), w, cfg, ss, EPS), "float16"),
        (lambda: scaled_gemm(x.t().contiguous().t(), w, cfg, ss, EPS), "contiguous rows"),
        (lambda: residual_gemm(x, w, cfg, res[:, :4], gw, torch.empty_like(res), ss), r"\[3, 8\]"),
        (lambda: residual_gemm(x, w, cfg, res, gw, res, ss), "different tensors"),
        (lambda: residual_gemm(x, w, cfg, res, gw[:4], torch.empty_like(res), ss), "g"),
        (lambda: residual_gemm(x, w70, cfg, res70, gw70, torch.empty_like(res70), ss), r"\[3 or more, 3 or more\]"),
        (lambda: norm_prep(x, gw, torch.empty_like(x), ss), "g"),
    ]
    for call, msg in bad:
        with pytest.raises(ValueError, match=msg):
            call()


@pytest.mark.parametrize("lora", [False, True])
def test_forward_with_fused_epilogues_gives_the_unfused_logits(monkeypatch, lora):
    logits, calls = fused_forward_logits(monkeypatch, "FUSE_EPILOGUES", "residual_gemm", lora, DEVICE)
    # o_proj and down_proj of both layers in the fused pass; none where LoRA is on
    assert len(calls) == (0 if lora else 2 * 2)
    ref = logits[False].double()
    assert _rel(logits[True], ref) <= 5e-3, _rel(logits[True], ref)
