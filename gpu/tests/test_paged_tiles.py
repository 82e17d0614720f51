"""The tiled paged attention of the token graphs (gpu/engine/attention.py) on the CPU: the Triton
kernel (interpreter) against the float64 reference on fresh random inputs -- decode tiles of one
row, prefill tiles starting at 0 and continuing over cached context, pages scattered, unused
table entries -- and the reference against dense causal attention."""

from __future__ import annotations

import math
import os

import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")
torch = pytest.importorskip("torch")

from gpu.engine import attention as A  # noqa: E402


def _case(seed: int, dtype, heads=4, kvh=2, d=16, bs=4):
    g = torch.Generator().manual_seed(seed)
    blocks = 48
    kc = torch.randn(blocks, bs, kvh, d, generator=g).to(dtype)
    vc = torch.randn(blocks, bs, kvh, d, generator=g).to(dtype)
    # three sequences: a decode row at position 21, a chunk of 70 rows from 0, a chunk of 9 rows
    # after 30 cached positions; pages scattered
    perm = torch.randperm(blocks, generator=g).tolist()
    tables = [perm[0:8], perm[8:28], perm[28:40]]
    chunks = [(0, 0, 1, 21), (1, 1, 70, 0), (2, 71, 9, 30)]  # (seq, first row, rows, first position)
    t = 80
    q = torch.randn(t, heads, d, generator=g).to(dtype)
    pos = torch.zeros(t, dtype=torch.int64)
    for _, r0, n, p0 in chunks:
        pos[r0:r0 + n] = torch.arange(p0, p0 + n)
    bt = torch.zeros(4, 20, dtype=torch.int32)
    for i, tb in enumerate(tables):
        bt[i, :len(tb)] = torch.tensor(tb, dtype=torch.int32)
    return q, kc, vc, pos, bt, chunks


def _tables(tiles, extra=3):
    tiles = tiles + [(0, 0, 0)] * extra  # unused entries
    s, r, n = (torch.tensor(c, dtype=torch.int32) for c in zip(*tiles, strict=True))
    return s, r, n


def test_reference_equals_dense_causal_attention():
    q, kc, vc, pos, bt, chunks = _case(1, torch.float64, kvh=4)
    out = torch.zeros_like(q)
    s, r, n = _tables(A.tile_rows([(c[0], c[1], c[2]) for c in chunks], 16))
    A.paged_tiles_torch(q, kc, vc, pos, bt, s, r, n, out)
    bs, d = kc.shape[1], kc.shape[3]
    for seq, r0, rows, p0 in chunks:
        hi = p0 + rows
        idx = bt[seq, :-(-hi // bs)].long()
        k = kc[idx].reshape(-1, 4, d)[:hi]
        v = vc[idx].reshape(-1, 4, d)[:hi]
        for i in range(rows):
            p = p0 + i
            sc = torch.einsum("hd,khd->hk", q[r0 + i], k[:p + 1]) / math.sqrt(d)
            ref = torch.einsum("hk,khd->hd", torch.softmax(sc, -1), v[:p + 1])
            assert torch.allclose(out[r0 + i], ref, atol=1e-10)


@pytest.mark.parametrize("seed", [2, 3])
@pytest.mark.parametrize("block_m", [16, 64])
def test_triton_kernel_equals_float64_reference(seed, block_m, monkeypatch):
    pytest.importorskip("triton")
    if not A.HAVE_TRITON:
        pytest.skip("no Triton")
    from conftest import patch_triton_interpreter_scalars
    from triton.runtime.interpreter import InterpretedFunction

    if not isinstance(A._paged_tiles_kernel, InterpretedFunction) and not torch.cuda.is_available():
        pytest.skip("the kernel was compiled before TRITON_INTERPRET=1 was set")
    patch_triton_interpreter_scalars(monkeypatch)
    q, kc, vc, pos, bt, chunks = _case(seed, torch.float16)
    tiles = A.tile_rows([(c[0], c[1], c[2]) for c in chunks], block_m)
    s, r, n = _tables(tiles)
    out = torch.full_like(q, 7.0)
    A.paged_tiles_triton(q, kc, vc, pos, bt, s, r, n, out, block_m)
    ref = A.paged_tiles_torch(q.double(), kc.double(), vc.double(), pos, bt, s, r, n,
                              torch.zeros_like(q, dtype=torch.float64))
    assert torch.allclose(out.double(), ref, atol=2e-3, rtol=2e-3), (out.double() - ref).abs().max()
    # rows of no tile are left alone
    q2, *_ = _case(seed, torch.float16)
    out2 = torch.full_like(q2, 7.0)
    only_decode = _tables([(0, 0, 1)])
    A.paged_tiles_triton(q2, kc, vc, pos, bt, *only_decode, out2, block_m)
    assert (out2[1:] == 7.0).all()


def test_tile_bounds():
    assert A.tile_rows([(0, 5, 130)], 64) == [(0, 5, 64), (0, 69, 64), (0, 133, 2)]
    # any split of 2048 rows into at most 128 chunks fits the bound
    chunks = [(i, 0, 16) for i in range(127)] + [(127, 0, 2048 - 127 * 16)]
    assert len(A.tile_rows(chunks, A.PREFILL_TILE_M)) <= A.max_prefill_tiles(2048, 128)
