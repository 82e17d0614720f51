"""gpu/bench_epilogues.py's pieces under Triton's interpreter on tiny shapes (or on a GPU): every
variant (the unfused launches, the GEMM alone, the fused kernel with each configuration) equals its
float64 reference, a wrong kernel is caught by the check, and the layer sums add the right rows."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

os.environ.setdefault("TRITON_INTERPRET", "1")  # before any Triton import, as in conftest

from conftest import patch_triton_interpreter_scalars  # noqa: E402

from gpu import bench_epilogues as be  # noqa: E402
from gpu.engine import attention as attn  # noqa: E402
from gpu.kernels import skinny_gemm as sg  # noqa: E402

pytestmark = pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available(),
                                reason="needs a GPU or TRITON_INTERPRET=1")
DEVICE = torch.device("cuda" if os.environ.get("TRITON_INTERPRET") != "1" else "cpu")


@pytest.fixture(autouse=True)
def _interpreter(monkeypatch):
    if DEVICE.type == "cpu":
        patch_triton_interpreter_scalars(monkeypatch)
        monkeypatch.setattr(attn, "FORCE_TRITON", True)
    yield


@pytest.mark.parametrize("kind,k,n", [("norm", 128, 96), ("glu", 96, 64), ("resid", 128, 64)])
def test_every_variant_matches_float64(kind, k, n):
    torch.manual_seed(1)
    cfg = sg.SkinnyConfig.from_name("tsk_n32_k64_w4_s2_sk1")
    glu = sg.SkinnyConfig.from_name("tsk_n16_k64_w4_s2_sk1")
    w = (torch.randn(n, k) / k ** 0.5).half().to(DEVICE)
    names = []
    for name, fn in be.variants(kind, [cfg], [glu], cfg).items():
        names.append(name)
        if name.endswith(" linear") and DEVICE.type == "cpu":
            continue  # F.linear in fp16 on the CPU is not cuBLAS (errors of a few %); checked on the GPU
        err = be.check(kind, name, fn, be.Inputs(kind, 3, k, n, DEVICE), w)
        assert err <= 2e-3, (name, err)
    expect = {"unfused", "gemm", "unfused linear", "gemm linear", f"fused {cfg.name}"}
    expect |= {f"fused {glu.name}"} if kind == "glu" else set()
    assert set(names) == expect


def test_a_wrong_result_is_caught():
    torch.manual_seed(2)
    w = (torch.randn(64, 128) / 128 ** 0.5).half().to(DEVICE)
    cfg = sg.SkinnyConfig.from_name("tsk_n32_k64_w4_s2_sk1")

    def off_by_a_row(inp, w):
        y = sg.scaled_gemm(inp.hg, w, cfg, inp.ss, be.EPS)
        y[0] = 0
        return y

    assert be.check("norm", "fused broken", off_by_a_row, be.Inputs("norm", 3, 128, 64, DEVICE), w) > be.WRONG


def test_layer_sums_take_the_best_fused_row_of_each_shape():
    rows = []
    for shape in be.SHAPES:
        rows += [{"shape": shape, "m": 1, "status": "ok", "variant": "unfused", "us": 10.0},
                 {"shape": shape, "m": 1, "status": "ok", "variant": "gemm", "us": 7.0},
                 {"shape": shape, "m": 1, "status": "ok", "variant": "fused a", "us": 9.0},
                 {"shape": shape, "m": 1, "status": "ok", "variant": "fused b", "us": 8.0},
                 {"shape": shape, "m": 1, "status": "wrong", "variant": "fused c", "us": 1.0}]
    (line,) = be.layer_sums(rows, [1])
    # layer: 4 x 10 / 4 x 8 / 4 x 7; step: 32 x layer + lm_head
    assert line == ("m=1: layer unfused 40.0 us, fused (best of each) 32.0, GEMMs alone 28.0; "
                    "step 1.290 / 1.032 / 0.903 ms")
    assert be.layer_sums(rows[:-5], [1]) == ["m=1: some variant missing, no sums"]


def test_programs_count_n_tiles_and_half_for_the_fused_gate_up():
    cfg = sg.SkinnyConfig.from_name("tsk_n32_k128_w4_s6_sk1")
    assert be.programs("glu", "unfused", 22016, cfg) == 688
    assert be.programs("glu", "fused tsk_n32_k128_w4_s6_sk1", 22016, cfg) == 344
    assert be.programs("glu", "fused tsk_n16_k128_w4_s6_sk1", 22016, cfg) == 688
    assert be.programs("resid", "fused tsk_n64_k128_w4_s4_sk1", 4096, cfg) == 64
    assert be.programs("norm", "gemm", 32000, cfg) == 1000
