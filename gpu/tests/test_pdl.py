"""Programmatic dependent launch in the decode pass (gpu/kernels/skinny_gemm.py, "Dependent launch";
gpu/engine/model.py DECODE_PDL).

On a GPU of compute capability 9.0 or more: the skinny GEMM launched with PDL, with and without its
L2 prefetch (none, part of K, more than K, a W whose rows are not 16-byte aligned), gives the same
bits as without and the float64 product within the skinny GEMM's bound; a chain of the decode pass's
kernels (add_rms_norm, the GEMMs, rope and cache write, decode attention, silu_mul), every buffer
reused from layer to layer so that a kernel started too early would read or overwrite another's data,
captured in a CUDA graph and replayed on fresh inputs, gives the same bits with PDL as without (with
decode attention's loop pipelined by STAGES and by hand; with the rotary embedding inside decode
attention, its first tile loaded before its wait or not, at 1-32 rows with the wide rows'
configs). On
the CPU: PDL is refused with a clear error and never chosen. Skipped without torch and Triton."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from gpu.engine import model as engine_model  # noqa: E402
from gpu.engine.attention import paged_decode, paged_decode_rope, rope_and_cache  # noqa: E402
from gpu.engine.model import add_rms_norm, silu_mul  # noqa: E402
from gpu.kernels.skinny_gemm import SkinnyConfig, pdl_supported, skinny_gemm  # noqa: E402

ON_HOPPER = (os.environ.get("TRITON_INTERPRET") != "1" and torch.cuda.is_available()
             and pdl_supported("cuda"))
needs_hopper = pytest.mark.skipif(not ON_HOPPER, reason="needs a CUDA GPU of compute capability 9.0+")
CFG = SkinnyConfig.from_name(engine_model.SKINNY_CONFIG)
TOL = 2e-3  # test_skinny_gemm.py's bound: fp32 accumulation, one fp16 rounding


def test_pdl_refused_off_hopper():
    if ON_HOPPER:
        pytest.skip("this machine has PDL")
    x = torch.zeros((2, 64), dtype=torch.float16)
    w = torch.zeros((32, 64), dtype=torch.float16)
    assert not pdl_supported("cpu")
    with pytest.raises(ValueError, match="pdl needs a CUDA device"):
        skinny_gemm(x, w, CFG, pdl=True)


def test_prefetch_k_must_not_be_negative():
    x = torch.zeros((2, 64), dtype=torch.float16)
    w = torch.zeros((32, 64), dtype=torch.float16)
    with pytest.raises(ValueError, match="prefetch_k must be >= 0"):
        skinny_gemm(x, w, CFG, prefetch_k=-1)


def test_pdl_pass_needs_decode_rows_on_cuda(monkeypatch):
    monkeypatch.setattr(engine_model, "DECODE_PDL", True)
    b = engine_model.ForwardBatch.__new__(engine_model.ForwardBatch)
    b.prefills, b.tiles, b.num_decode = [], None, 4
    x = torch.zeros((4, 64), dtype=torch.float16)  # a CPU tensor: never PDL
    assert not engine_model._pdl_pass(x, b)


def test_wide_passes_take_pdl_only_with_skinny_wide_pdl(monkeypatch):
    class Rows:  # a decode input of 20 rows on a CUDA device with PDL, without needing one
        is_cuda, shape, dtype, device = True, (20, 64), torch.float16, "cuda"

    monkeypatch.setattr(engine_model, "DECODE_PDL", True)
    monkeypatch.setattr(engine_model, "DECODE_PDL_CUBLAS", False)
    monkeypatch.setattr(engine_model, "pdl_supported", lambda device: True)
    monkeypatch.setattr(engine_model, "_skinny_rows", lambda x: False)
    monkeypatch.setattr(engine_model, "_wide_rows", lambda x: True)
    b = engine_model.ForwardBatch.__new__(engine_model.ForwardBatch)
    b.prefills, b.tiles, b.num_decode = [], None, 20
    monkeypatch.setattr(engine_model, "SKINNY_WIDE_PDL", True)
    assert engine_model._pdl_pass(Rows(), b)
    monkeypatch.setattr(engine_model, "SKINNY_WIDE_PDL", False)
    assert not engine_model._pdl_pass(Rows(), b)
    monkeypatch.setattr(engine_model, "_skinny_rows", lambda x: True)  # 16 rows or fewer keep PDL
    assert engine_model._pdl_pass(Rows(), b)


def _rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    return float((a.double() - ref).norm() / ref.norm())


@needs_hopper
@pytest.mark.parametrize("m", [1, 8, 16])
@pytest.mark.parametrize("n,k,name", [
    (4096, 4096, engine_model.SKINNY_CONFIG),
    (1000, 11008, engine_model.SKINNY_CONFIG),  # an N tail; K = 86 x 128
    (4096, 4096, "tsk_n64_k128_w4_s4_sk2_ab"),  # split-K, the transposed product
])
@pytest.mark.parametrize("prefetch_k", [0, 1024, 1 << 20])
def test_skinny_gemm_pdl_same_bits(m, n, k, name, prefetch_k):
    cfg = SkinnyConfig.from_name(name)
    g = torch.Generator(device="cuda").manual_seed(m * 7 + n + k + prefetch_k % 97)
    x = torch.randn((m, k), device="cuda", dtype=torch.float16, generator=g)
    w = torch.randn((n, k), device="cuda", dtype=torch.float16, generator=g) * 0.02
    plain = skinny_gemm(x, w, cfg)
    pdl = skinny_gemm(x, w, cfg, pdl=True, prefetch_k=prefetch_k)
    torch.cuda.synchronize()
    assert torch.equal(plain, pdl)
    assert _rel(pdl, x.double() @ w.double().T) <= TOL


@needs_hopper
def test_skinny_gemm_pdl_unaligned_rows_skip_the_prefetch():
    g = torch.Generator(device="cuda").manual_seed(3)
    x = torch.randn((8, 4095), device="cuda", dtype=torch.float16, generator=g)
    w_full = torch.randn((512, 4096), device="cuda", dtype=torch.float16, generator=g) * 0.02
    w = w_full[:, 1:]  # rows start 2 bytes past a 16-byte boundary
    out = skinny_gemm(x, w, CFG, pdl=True, prefetch_k=1024)
    assert torch.equal(out, skinny_gemm(x, w, CFG))
    assert _rel(out, x.double() @ w.double().T) <= TOL


def _chain(bufs: dict, pdl: bool, cfg: SkinnyConfig = CFG, rope_fused: bool = False) -> torch.Tensor:
    """Four layers of the decode pass's kernels over the same buffers (norm, qkv, rope and cache
    write, attention, o, norm, gate_up, silu, down), as gpu/engine/model.py runs them: the GEMMs
    with ``cfg``, the rotary embedding and cache write inside decode attention with ``rope_fused``
    (paged_decode_rope)."""
    x = bufs["x"].clone()
    pending = None
    h_, kvh, d = 8, 8, 64
    qs = h_ * d
    pre = 1024 if pdl else 0
    for li in range(4):
        h = add_rms_norm(x, pending, bufs["g"], 1e-5, pdl=pdl)
        qkv = skinny_gemm(h, bufs["wqkv"][li], cfg, pdl=pdl, prefetch_k=pre)
        if rope_fused:
            attn = paged_decode_rope(qkv, bufs["cos"], bufs["sin"], bufs["slots"], bufs["kc"][li], bufs["vc"][li],
                                     bufs["bt"], bufs["ctx"], h_, pdl=pdl).view(-1, qs)
        else:
            q, _, _ = rope_and_cache(qkv, bufs["pos"], bufs["cos"], bufs["sin"], bufs["slots"], bufs["kc"][li],
                                     bufs["vc"][li], h_, kvh, d, pdl=pdl)
            attn = paged_decode(q, bufs["kc"][li], bufs["vc"][li], bufs["bt"], bufs["ctx"], pdl=pdl).view(-1, qs)
        o = skinny_gemm(attn, bufs["wo"][li], cfg, pdl=pdl, prefetch_k=pre)
        h = add_rms_norm(x, o, bufs["g"], 1e-5, pdl=pdl)
        gu = skinny_gemm(h, bufs["wgu"][li], cfg, pdl=pdl, prefetch_k=pre)
        a = silu_mul(gu, pdl=pdl)
        pending = skinny_gemm(a, bufs["wdown"][li], cfg, pdl=pdl, prefetch_k=pre)
    return add_rms_norm(x, pending, bufs["g"], 1e-5, pdl=pdl)


@needs_hopper
@pytest.mark.parametrize("batch", [1, 16])
@pytest.mark.parametrize("attention_prefetch", [False, True])
@pytest.mark.parametrize("attention_pdl", ["early", "late_trigger", "plain_launch"])
def test_decode_chain_in_a_graph_same_bits(batch, attention_prefetch, attention_pdl, monkeypatch):
    # attention_prefetch: decode attention's hand-pipelined loop, which reads the context lengths and
    # block tables before its gdc_wait (attention.DECODE_PREFETCH); attention_pdl: it lets o_proj's
    # GEMM launch after its loop rather than at its start (attention.DECODE_LATE_TRIGGER), or it is
    # launched without PDL itself (attention.DECODE_PDL_LAUNCH False)
    from gpu.engine import attention

    monkeypatch.setattr(attention, "DECODE_PREFETCH", attention_prefetch)
    monkeypatch.setattr(attention, "DECODE_LATE_TRIGGER", attention_pdl == "late_trigger")
    monkeypatch.setattr(attention, "DECODE_PDL_LAUNCH", attention_pdl != "plain_launch")
    _check_chain(batch, lambda bufs, pdl: _chain(bufs, pdl))


@needs_hopper
@pytest.mark.parametrize("batch,cfg_name", [(1, engine_model.SKINNY_CONFIG), (16, engine_model.SKINNY_CONFIG),
                                            (32, "tsk_n64_k128_w4_s4_sk1_ab"), (24, "tsk_n64_k128_w4_s4_sk2_ab")])
@pytest.mark.parametrize("prewait", [False, True])
def test_fused_rope_chain_in_a_graph_same_bits(batch, cfg_name, prewait, monkeypatch):
    # The rotary embedding inside decode attention (paged_decode_rope), whose first context tile may
    # be loaded before its gdc_wait (attention.DECODE_PREWAIT_TILE); the wide rows' configs too
    from gpu.engine import attention

    monkeypatch.setattr(attention, "DECODE_PREWAIT_TILE", prewait)
    cfg = SkinnyConfig.from_name(cfg_name)
    _check_chain(batch, lambda bufs, pdl: _chain(bufs, pdl, cfg, rope_fused=True))


def _check_chain(batch: int, chain) -> None:
    """``chain(bufs, pdl)`` captured in a CUDA graph without and with PDL, replayed on three fresh
    inputs (the caches reset before each): the same bits, finite."""
    dev, hid, inter, layers, bs, ctx = "cuda", 512, 1024, 4, 16, 40
    g = torch.Generator(device=dev).manual_seed(batch)

    def rnd(*shape, s=1.0):
        return torch.randn(shape, device=dev, dtype=torch.float16, generator=g) * s

    blocks_per_seq = -(-ctx // bs)
    bufs = {
        "x": rnd(batch, hid), "g": 1 + rnd(hid, s=0.1),
        "wqkv": [rnd(3 * hid, hid, s=0.05) for _ in range(layers)],
        "wo": [rnd(hid, hid, s=0.05) for _ in range(layers)],
        "wgu": [rnd(2 * inter, hid, s=0.05) for _ in range(layers)],
        "wdown": [rnd(hid, inter, s=0.05) for _ in range(layers)],
        "pos": torch.full((batch,), ctx - 1, device=dev, dtype=torch.int64),
        "bt": torch.arange(batch * blocks_per_seq, device=dev, dtype=torch.int32).view(batch, blocks_per_seq),
        "ctx": torch.full((batch,), ctx, device=dev, dtype=torch.int32),
    }
    bufs["slots"] = bufs["bt"][:, (ctx - 1) // bs].long() * bs + (ctx - 1) % bs
    ang = torch.arange(4096, device=dev, dtype=torch.float32)[:, None] * 1e-3 * torch.arange(1, 65, device=dev)
    bufs["cos"], bufs["sin"] = ang.cos().half(), ang.sin().half()
    cache0 = [rnd(batch * blocks_per_seq, bs, 8, 64) for _ in range(2 * layers)]
    outs = {}
    for pdl in (False, True):
        bufs["kc"] = [c.clone() for c in cache0[:layers]]
        bufs["vc"] = [c.clone() for c in cache0[layers:]]
        chain(bufs, pdl)  # compile and make the workspaces before capture
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = chain(bufs, pdl)
        got = []
        for seed in range(3):  # fresh inputs into the graph's buffers
            gg = torch.Generator(device=dev).manual_seed(100 + seed)
            bufs["x"].copy_(torch.randn(bufs["x"].shape, device=dev, dtype=torch.float16, generator=gg))
            for i, c in enumerate(cache0):
                (bufs["kc"] + bufs["vc"])[i].copy_(c)
            graph.replay()
            got.append(out.clone())
        torch.cuda.synchronize()
        outs[pdl] = got
    for a, b in zip(outs[False], outs[True], strict=True):
        assert torch.isfinite(a).all()
        assert torch.equal(a, b)
