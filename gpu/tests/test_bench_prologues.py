"""gpu/bench_prologues.py's pieces under Triton's interpreter on tiny shapes: every variant (the
unfused pair, the GEMM alone, the fused kernel) equals its float64 reference, and the reference
itself is RMSNorm-then-product / silu-then-product as the engine computes them."""

from __future__ import annotations

import math
import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

os.environ.setdefault("TRITON_INTERPRET", "1")  # before any Triton import, as in conftest

from conftest import patch_triton_interpreter_scalars  # noqa: E402

from gpu import bench_prologues as bp  # noqa: E402
from gpu.engine import attention as attn  # noqa: E402
from gpu.kernels import skinny_gemm as sg  # noqa: E402

pytestmark = pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available(),
                                reason="needs a GPU or TRITON_INTERPRET=1")
DEVICE = "cuda" if os.environ.get("TRITON_INTERPRET") != "1" else "cpu"


@pytest.fixture(autouse=True)
def _interpreter(monkeypatch):
    if DEVICE == "cpu":
        patch_triton_interpreter_scalars(monkeypatch)
        monkeypatch.setattr(attn, "FORCE_TRITON", True)
    yield


@pytest.mark.parametrize("kind,k,n", [("norm", 128, 96), ("norm", 96, 64), ("silu", 128, 64)])
def test_variants_match_float64(kind, k, n):
    torch.manual_seed(1)
    cfg = sg.SkinnyConfig.from_name("tsk_n32_k64_w4_s2_sk1")
    m = 3
    xk = k if kind == "norm" else 2 * k
    x = torch.randn(m, xk, device=DEVICE).half()
    d = (1e-3 * torch.randn(m, k, device=DEVICE)).half() if kind == "norm" else None
    g = (1 + 0.1 * torch.randn(k, device=DEVICE)).half() if kind == "norm" else None
    w = (torch.randn(n, k, device=DEVICE) / math.sqrt(k)).half()
    ref = bp.reference(kind, x, d, g, w)
    names = set()
    for name, fn in bp.variants(kind, [cfg], cfg).items():
        r = (x[:, :k] if kind == "silu" else x).double() @ w.double().t() if name == "gemm" else ref
        assert bp.rel(fn(x.clone(), d, g, w), r) < 2e-3, name
        names.add(name)
    assert names == {"unfused", "gemm", f"fused {cfg.name}"}


def test_reference_is_the_unfused_computation():
    torch.manual_seed(2)
    x = torch.randn(2, 8, dtype=torch.float64)
    w = torch.randn(5, 4, dtype=torch.float64)
    gate, up = x[:, :4], x[:, 4:]
    assert torch.allclose(bp.reference("silu", x, None, None, w), (torch.nn.functional.silu(gate) * up) @ w.t())
    g = torch.rand(8, dtype=torch.float64) + 0.5
    w8 = torch.randn(5, 8, dtype=torch.float64)
    r = x * torch.rsqrt((x * x).mean(-1, keepdim=True) + bp.EPS) * g
    assert torch.allclose(bp.reference("norm", x, None, g, w8), r @ w8.t())


@pytest.mark.parametrize("args,msg", [(["--configs", "bogus"], "not a skinny GEMM config name"),
                                      (["--batches", "1,x"], "--batches"), (["--shapes", "qkv,lm"], "unknown")])
def test_bad_arguments_are_usage_errors(args, msg, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        bp.main(["--out", str(tmp_path), *args])
    assert e.value.code == 2 and msg in capsys.readouterr().err
