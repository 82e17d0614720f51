"""The Triton skinny GEMM (gpu/kernels/skinny_gemm.py) against the float64 product, on the CPU under
TRITON_INTERPRET=1 (tiny shapes) or on a GPU: row counts M of 1..33 (BLOCK_M 16, 32 and 64, rows
masked), N and K tails that are not multiples of the blocks, split-K with empty K slices, the
split-K counters reset by the last program (two launches in a row on the same buffers give the same
result and leave the counters at zero), and clear errors for inputs that do not fit.
Skipped without torch and Triton.

Tolerance: relative L2 error against float64 at most 2e-3. The product is accumulated in fp32 and
rounded once to fp16 (relative error up to 2^-11 = 4.9e-4 per element, about 3e-4 in L2), so 2e-3
leaves room for the accumulation order but not for a lost or doubled K slice (an error of order 1)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("triton")

if os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available():
    pytest.skip("needs a GPU or TRITON_INTERPRET=1 before Triton is imported", allow_module_level=True)

from conftest import patch_triton_interpreter_scalars  # noqa: E402

from gpu.kernels.skinny_gemm import (  # noqa: E402
    MAX_M,
    SkinnyConfig,
    SkinnyWorkspace,
    block_m,
    cached_workspace,
    skinny_gemm,
    unavailable_reason,
)

DEVICE = "cuda" if os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
TOL = 2e-3
SCALE = 0.02  # weights randn x this, as gpu/bench_gemm.py makes them

# (N, K, config): N tails (100 = 3 x 32 + 4, 100 = 64 + 36), K tails (80 = 2 x 32 + 16, 200 = 3 x 64 + 8),
# even K (128), split-K with a partly masked last slice (K 200 in 2 slices of 128) and with empty
# slices (K 40 in 4 slices of 32: slices 2 and 3 load nothing and contribute zero partials)
CASES = [
    (100, 80, SkinnyConfig(32, 32, 4, 2, 1)),
    (100, 128, SkinnyConfig(64, 32, 4, 3, 1)),
    (100, 200, SkinnyConfig(32, 64, 4, 2, 2)),
    (96, 128, SkinnyConfig(32, 32, 4, 2, 2)),
    (100, 40, SkinnyConfig(64, 32, 4, 2, 4)),
    (64, 96, SkinnyConfig(16, 16, 4, 2, 3)),
    (100, 80, SkinnyConfig(64, 32, 4, 2, 1, swap_ab=True)),  # the transposed product, N and K tails
    (100, 200, SkinnyConfig(32, 64, 4, 2, 2, swap_ab=True)),  # and with split-K
    # tiles through tensor descriptors (_tma): zero-filled boxes past M, N and K instead of masks
    (100, 80, SkinnyConfig(32, 32, 4, 2, 1, tma=True)),
    (100, 200, SkinnyConfig(32, 64, 4, 2, 2, swap_ab=True, tma=True)),
    (100, 40, SkinnyConfig(64, 32, 4, 2, 4, swap_ab=True, tma=True)),
]


@pytest.fixture(autouse=True)
def _interpreter_scalars(monkeypatch):
    if DEVICE == "cpu":
        patch_triton_interpreter_scalars(monkeypatch)
    yield


def _inputs(m: int, n: int, k: int, seed: int, dtype=torch.float16):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, k, generator=g).to(dtype)
    w = (torch.randn(n, k, generator=g) * SCALE).to(dtype)
    return x.to(DEVICE), w.to(DEVICE)


def _rel_err(y: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> float:
    ref = x.double() @ w.double().t()
    return float((y.double() - ref).norm() / ref.norm())


@pytest.mark.parametrize("m", [1, 3, 16, 17, 33])
@pytest.mark.parametrize("n,k,cfg", CASES, ids=[f"n{n}_k{k}_{c.name}" for n, k, c in CASES])
def test_matches_float64(m, n, k, cfg):
    x, w = _inputs(m, n, k, seed=1000 * m + n + k)
    y = skinny_gemm(x, w, cfg)
    assert y.shape == (m, n) and y.dtype == torch.float16 and y.device == x.device
    assert _rel_err(y, x, w) <= TOL, (_rel_err(y, x, w), cfg.name)
    if cfg.split_k > 1:  # the same buffers again: the last programs reset the counters
        ws = cached_workspace(m, n, cfg, x.device)
        assert int(ws.counts.abs().sum()) == 0
        y2 = skinny_gemm(x, w, cfg)
        assert torch.equal(y, y2)
        assert int(ws.counts.abs().sum()) == 0


# Balanced launches (the kernel's BALANCED): N rows shared evenly over `programs` programs, each a
# tile of the next power of two over its share, the rows past it masked. 100 rows over 8 programs:
# shares of 12 and 13 in 16-row tiles (none starting on a tile boundary); over 3: 33-34 in 64-row
# tiles; 10 rows over 16 programs: six programs with no rows at all.
@pytest.mark.parametrize("m", [1, 17, 32])
@pytest.mark.parametrize("n,k,programs,ab", [(100, 80, 8, False), (100, 80, 8, True), (100, 200, 3, True),
                                             (10, 64, 16, False)])
def test_balanced_programs_match_float64(m, n, k, programs, ab):
    cfg = SkinnyConfig(16, 32, 4, 2, 1, swap_ab=ab, balanced=True)
    x, w = _inputs(m, n, k, seed=31 * m + n + programs)
    y = torch.full((m, n), float("nan"), dtype=torch.float16, device=DEVICE)
    skinny_gemm(x, w, cfg, out=y, programs=programs)
    assert not torch.isnan(y).any()  # every row written, by exactly the program that holds it
    assert _rel_err(y, x, w) <= TOL, (_rel_err(y, x, w), cfg.name)


def test_balanced_tiling():
    c = SkinnyConfig(64, 128, 4, 4, 1, swap_ab=True, balanced=True)
    assert c.name == "tsk_n64_k128_w4_s4_sk1_ab_bal" and SkinnyConfig.from_name(c.name) == c
    # Llama-2-7B's weights over the H200's 132 SMs: 94 rows of qkv a program in a 128-row tile,
    # 167 of gate_up in 256 (K step halved to keep the stages within BALANCED_SMEM), 32 of o / down
    assert c.balanced_tiling(12288, 132) == (128, 128)
    assert c.balanced_tiling(22016, 132) == (256, 64)
    assert c.balanced_tiling(4096, 132) == (64, 128)
    with pytest.raises(ValueError, match="split_k must be 1"):
        SkinnyConfig(64, 128, 4, 4, 2, balanced=True)
    x, w = _inputs(2, 16, 32, seed=1)
    with pytest.raises(ValueError, match="programs >= 1"):
        skinny_gemm(x, w, c, programs=0)


def test_split_k_replay_on_own_buffers_and_fresh_inputs():
    cfg = SkinnyConfig(32, 32, 4, 2, 3)
    m, n, k = 5, 100, 150
    ws = SkinnyWorkspace.make(m, n, cfg, DEVICE)
    out = torch.empty(m, n, dtype=torch.float16, device=DEVICE)
    for seed in range(3):
        x, w = _inputs(m, n, k, seed)
        y = skinny_gemm(x, w, cfg, out=out, workspace=ws)
        assert y is out
        assert _rel_err(out, x, w) <= TOL
        assert ws.counts.shape == (4,) and int(ws.counts.abs().sum()) == 0


def test_strided_x():
    cfg = SkinnyConfig(32, 32, 4, 2, 2)
    g = torch.Generator().manual_seed(7)
    wide = torch.randn(6, 160, generator=g).half().to(DEVICE)
    x = wide[:, 16:112]  # [6, 96], row stride 160
    w = (torch.randn(70, 96, generator=g) * SCALE).half().to(DEVICE)
    assert _rel_err(skinny_gemm(x, w, cfg), x, w) <= TOL


def test_tma_refuses_rows_it_cannot_describe():
    """A _tma config needs rows contiguous along K and 16-byte aligned: a column-sliced x whose
    rows start 8 bytes into a line is refused, by name, not read wrongly."""
    cfg = SkinnyConfig(32, 32, 4, 2, 1, tma=True)
    g = torch.Generator().manual_seed(9)
    wide = torch.randn(6, 160, generator=g).half().to(DEVICE)
    w = (torch.randn(70, 96, generator=g) * SCALE).half().to(DEVICE)
    assert _rel_err(skinny_gemm(wide[:, 16:112], w, cfg), wide[:, 16:112], w) <= TOL  # 32-byte offset: fine
    with pytest.raises(ValueError, match="TMA.*16-byte"):
        skinny_gemm(wide[:, 4:100], w, cfg)
    with pytest.raises(ValueError, match="TMA.*16-byte"):
        skinny_gemm(wide[:, 16:112].t().contiguous().t(), w, cfg)


@pytest.mark.skipif(DEVICE == "cpu", reason="Triton 3.6's interpreter gets tl.dot of bf16 tiles wrong (errors ~1e10)")
def test_bf16():
    xb, wb = _inputs(4, 70, 96, seed=8, dtype=torch.bfloat16)
    yb = skinny_gemm(xb, wb, SkinnyConfig(32, 32, 4, 2, 1))
    assert yb.dtype == torch.bfloat16 and _rel_err(yb, xb, wb) <= 1e-2  # bf16 rounds to 2^-8


def test_config_names_and_tiles():
    c = SkinnyConfig(64, 256, 4, 4, 2)
    assert c.name == "tsk_n64_k256_w4_s4_sk2" and SkinnyConfig.from_name(c.name) == c
    ab = SkinnyConfig(64, 128, 4, 4, 1, swap_ab=True)
    assert ab.name == "tsk_n64_k128_w4_s4_sk1_ab" and SkinnyConfig.from_name(ab.name) == ab
    tma = SkinnyConfig(64, 128, 4, 4, 2, swap_ab=True, tma=True)
    assert tma.name == "tsk_n64_k128_w4_s4_sk2_ab_tma" and SkinnyConfig.from_name(tma.name) == tma
    assert SkinnyConfig.from_name("tsk_n32_k64_w4_s3_sk1_tma") == SkinnyConfig(32, 64, 4, 3, 1, tma=True)
    with pytest.raises(ValueError, match="TMA"):
        SkinnyConfig(64, 128, balanced=True, tma=True)
    assert [block_m(m) for m in (1, 15, 16, 17, 32, 33, 64)] == [16, 16, 16, 32, 32, 64, 64]
    assert c.k_per_split(4096) == 2048 and c.even_k(4096)
    assert SkinnyConfig(64, 256, 4, 4, 4).k_per_split(11008) == 11 * 256  # 43 steps: 11, 11, 11, 10
    assert not SkinnyConfig(64, 256, 4, 4, 4).even_k(11008) and SkinnyConfig(64, 256, 4, 4, 1).even_k(11008)
    for bad in ("tsk_n64_k256_w4_s4", "n64_k256_w4_s4_sk1", "tsk_n64_k256_w4_s4_skx", "tsk_n64_k256_w4_s4_sk1_ba"):
        with pytest.raises(ValueError, match="config name"):
            SkinnyConfig.from_name(bad)
    with pytest.raises(ValueError, match="power of two"):
        SkinnyConfig(48, 256)
    with pytest.raises(ValueError, match="power of two"):
        SkinnyConfig(64, 8)
    with pytest.raises(ValueError, match="split_k"):
        SkinnyConfig(64, 256, split_k=0)
    assert unavailable_reason(DEVICE) is None


def test_shapes_that_do_not_fit_raise_value_error():
    cfg = SkinnyConfig(32, 32, 4, 2, 2)
    x, w = _inputs(3, 64, 48, seed=3)
    cases = [
        ((x[0], w), "2-D"),
        ((x, w[:, :32]), "disagree on K"),
        ((x.new_zeros(0, 48), w), "M=0"),
        ((x.new_zeros(MAX_M + 1, 48), w), f"M={MAX_M + 1}"),
        ((x.float(), w.float()), "float16 or bfloat16"),
        ((x, w.bfloat16()), "float16 or bfloat16"),
    ]
    for args, msg in cases:
        with pytest.raises(ValueError, match=msg):
            skinny_gemm(*args, cfg)
    with pytest.raises(ValueError, match="out must be"):
        skinny_gemm(x, w, cfg, out=torch.empty(3, 63, dtype=torch.float16, device=DEVICE))
    with pytest.raises(ValueError, match="workspace does not fit"):
        skinny_gemm(x, w, cfg, workspace=SkinnyWorkspace.make(3, 64, SkinnyConfig(32, 32, 4, 2, 4), DEVICE))
