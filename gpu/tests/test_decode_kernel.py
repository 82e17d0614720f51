"""Decode attention over the paged KV cache on the CPU (Triton's interpreter): the decode kernel
(one head a program) and its reduce kernel against the float64 reference on fresh random inputs --
contexts of 1 token to several tiles, pages scattered, every split count, multi-head and
grouped-query shapes, both launch orders, the loop pipelined by Triton's stages and by hand
(PREFETCH)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")
torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
interp = pytest.importorskip("triton.runtime.interpreter")

from gpu.engine import attention as A  # noqa: E402


@pytest.fixture(autouse=True)
def _scalar_bounds(monkeypatch):
    """The interpreter holds a program id, and what is loaded through it, as a one-element array,
    which NumPy 2 will not turn into a Python int for `range(lo, hi, TILE)` (compiled kernels do
    not see this). Index one-element arrays by their element while these tests run."""
    original = interp._patch_lang_tensor

    def patched(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(np.asarray(self.handle.data).reshape(-1)[0]))

    monkeypatch.setattr(interp, "_patch_lang_tensor", patched)


def _case(seed: int, heads: int, kvh: int, d: int = 16, bs: int = 4, contexts=(1, 9, 30, 17)):
    g = torch.Generator().manual_seed(seed)
    blocks = 64
    kc = torch.randn(blocks, bs, kvh, d, generator=g)
    vc = torch.randn(blocks, bs, kvh, d, generator=g)
    b = len(contexts)
    q = torch.randn(b, heads, d, generator=g)
    ctx = torch.tensor(contexts, dtype=torch.int32)
    bt = torch.randperm(blocks, generator=g)[: b * 8].view(b, 8).to(torch.int32)  # scattered pages
    ref = A.paged_decode_torch(q.double(), kc.double(), vc.double(), bt, ctx)
    return q, kc, vc, bt, ctx, ref


@pytest.mark.parametrize("heads, kvh", [(4, 4), (8, 2)])
@pytest.mark.parametrize("splits", [1, 2, 4])
def test_decode_kernels_match_float64(heads, kvh, splits):
    q, kc, vc, bt, ctx, ref = _case(heads * 10 + splits, heads, kvh)
    out = torch.full_like(q, float("nan"))
    A.paged_decode_triton(q, kc, vc, bt, ctx, out=out, splits=splits, tile=8)
    assert not torch.isnan(out).any()
    assert float((out.double() - ref).norm() / ref.norm()) < 1e-5  # float32 inputs


def test_head_fast_order_matches_float64():
    q, kc, vc, bt, ctx, ref = _case(3, 4, 4)
    out = A.paged_decode_triton(q, kc, vc, bt, ctx, splits=2, tile=8, head_fast=True)
    assert float((out.double() - ref).norm() / ref.norm()) < 1e-5


@pytest.mark.parametrize("heads, kvh", [(4, 4), (8, 2)])
@pytest.mark.parametrize("splits", [1, 2, 4, 8])
@pytest.mark.parametrize("tile", [4, 8, 16])
def test_the_hand_pipelined_loop_matches_float64(heads, kvh, splits, tile):
    # contexts of 1, 9, 30, 17 and 32 tokens over 8 pages of 4: one to eight tiles a program, splits
    # that end mid-tile, and (8 splits of 1 token's context) empty splits
    q, kc, vc, bt, ctx, ref = _case(heads * 100 + splits * 10 + tile, heads, kvh, contexts=(1, 9, 30, 17, 32))
    out = torch.full_like(q, float("nan"))
    A.paged_decode_triton(q, kc, vc, bt, ctx, out=out, splits=splits, tile=tile, prefetch=True)
    assert not torch.isnan(out).any()
    assert float((out.double() - ref).norm() / ref.norm()) < 1e-5


@pytest.mark.parametrize("batch, expect", [(2, 4), (5, 16)])
def test_large_batches_take_the_large_tile(monkeypatch, batch, expect):
    # DECODE_TILE_LARGE from DECODE_LARGE_BATCH sequences (4 here), DECODE_TILE below; head dims
    # over 64 keep the tile as it is (d = 16 doubles it: 2 x 2, 2 x 8)
    monkeypatch.setattr(A, "DECODE_TILE", 2)
    monkeypatch.setattr(A, "DECODE_TILE_LARGE", 8)
    monkeypatch.setattr(A, "DECODE_LARGE_BATCH", 4)
    seen = []
    kernel = A._paged_decode_kernel

    class Spy:
        def __getitem__(self, grid):
            def launch(*args, **kw):
                seen.append(kw["TILE"])
                return kernel[grid](*args, **kw)
            return launch

    monkeypatch.setattr(A, "_paged_decode_kernel", Spy())
    q, kc, vc, bt, ctx, ref = _case(10 + batch, 4, 4, contexts=(1, 9, 30, 17, 32)[:batch])
    out = A.paged_decode_triton(q, kc, vc, bt, ctx, splits=1, prefetch=True)
    assert seen == [expect]
    assert float((out.double() - ref).norm() / ref.norm()) < 1e-5


@pytest.mark.parametrize("heads, kvh", [(4, 4), (8, 2)])
@pytest.mark.parametrize("splits", [1, 2, 8])
@pytest.mark.parametrize("tile", [4, 8])
def test_rope_in_the_kernel_is_rope_and_cache_then_attention(heads, kvh, splits, tile):
    # the new token at position context - 1; contexts of 1 (only the new token), 9, 30, 17, 32 over
    # pages of 4, so the new token falls in every place of a tile and of a split
    g = torch.Generator().manual_seed(heads * 100 + splits * 10 + tile)
    d, bs, blocks = 16, 4, 64
    contexts = (1, 9, 30, 17, 32)
    b = len(contexts)
    kc = torch.randn(blocks, bs, kvh, d, generator=g)
    vc = torch.randn(blocks, bs, kvh, d, generator=g)
    bt = torch.randperm(blocks, generator=g)[: b * 8].view(b, 8).to(torch.int32)
    ctx = torch.tensor(contexts, dtype=torch.int32)
    pos = ctx.long() - 1
    slots = bt[torch.arange(b), pos // bs].long() * bs + pos % bs
    qkv = torch.randn(b, (heads + 2 * kvh) * d, generator=g)
    inv = 1.0 / (10000.0 ** (torch.arange(0, d, 2).float() / d))
    emb = torch.outer(torch.arange(64).float(), inv).repeat(1, 2)
    cos, sin = emb.cos(), emb.sin()
    kc_ref, vc_ref = kc.clone(), vc.clone()
    q, _, _ = A.rope_and_cache(qkv, pos, cos, sin, slots, kc_ref, vc_ref, heads, kvh, d)
    ref = A.paged_decode_torch(q.double(), kc_ref.double(), vc_ref.double(), bt, ctx)
    out = A.paged_decode_rope(qkv, cos, sin, slots, kc, vc, bt, ctx, heads, splits=splits, tile=tile)
    assert out.shape == (b, heads, d)
    assert float((out.double() - ref).norm() / ref.norm()) < 1e-5
    # the new keys and values are written, once, where rope_and_cache writes them; nothing else
    assert torch.allclose(kc, kc_ref, atol=1e-6) and torch.equal(vc, vc_ref)


def test_rope_in_the_kernel_refuses_what_does_not_fit():
    kc = torch.zeros(8, 4, 2, 16)
    args = (torch.zeros(8, 64), torch.zeros(8, 64), torch.zeros(3, dtype=torch.int64), kc, kc,
            torch.zeros(3, 2, dtype=torch.int32), torch.ones(3, dtype=torch.int32))
    with pytest.raises(ValueError, match="qkv must be"):
        A.paged_decode_rope(torch.zeros(3, 100), *args, heads=4)
    with pytest.raises(ValueError, match="hand-pipelined"):
        A.paged_decode_rope(torch.zeros(3, (4 + 4) * 16), *args, heads=4, prefetch=False)
