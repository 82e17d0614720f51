"""Decode graphs chosen by context (gpu/engine/model.py DECODE_LONG_CONTEXT, gpu/engine/executor.py
``long_graphs``): a step whose longest context reaches the threshold replays the graph captured with
decode attention launched plainly, a shorter one the usual graph, and the path says which; the
switch is inert where it would change nothing (off, no PDL, attention already launched plainly,
no CUDA). On the CPU with stand-in graphs; on a GPU with PDL, the captured long graphs give the
usual graphs' bits."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")

from gpu.engine import attention  # noqa: E402
from gpu.engine import model as em  # noqa: E402
from gpu.engine.executor import Executor  # noqa: E402
from gpu.engine.executor import StepSeq as Seq  # noqa: E402
from gpu.engine.kv_cache import PagedKVCache  # noqa: E402
from gpu.engine.weights import ModelConfig, random_weights  # noqa: E402

TINY = ModelConfig(name="tiny", hidden_size=64, intermediate_size=96, num_layers=2, num_heads=4,
                   num_kv_heads=2, vocab_size=97, max_position=256)


class StandIn:
    """A captured graph's stand-in: counts its replays."""

    def __init__(self) -> None:
        self.replays = 0

    def replay(self) -> None:
        self.replays += 1


def _executor(device: str, dtype=torch.float32, graphs: bool = False) -> Executor:
    kv = PagedKVCache(TINY, num_blocks=64, block_size=4, dtype=dtype, device=device)
    model = em.LlamaModel(TINY, random_weights(TINY, dtype, device, seed=0), kv, None)
    return Executor(model, block_size=4, max_model_len=64, use_graphs=graphs, graph_sizes=(1, 2, 4),
                    max_num_seqs=4, token_graph_sizes=())


def test_the_switch_is_inert_where_it_would_change_nothing(monkeypatch):
    monkeypatch.setattr(em, "DECODE_LONG_CONTEXT", None)
    assert em.decode_long_context() is None
    monkeypatch.setattr(em, "DECODE_LONG_CONTEXT", 1024)
    if not torch.cuda.is_available():
        assert em.decode_long_context() is None  # no CUDA, no PDL
    monkeypatch.setattr(attention, "DECODE_PDL_LAUNCH", False)  # attention plain already
    assert em.decode_long_context() is None
    monkeypatch.setattr(attention, "DECODE_PDL_LAUNCH", True)
    monkeypatch.setattr(em, "DECODE_PDL", False)
    assert em.decode_long_context() is None


def test_pdl_rows_and_the_plain_launch_restored(monkeypatch):
    monkeypatch.setattr(em, "SKINNY_MAX_M", 16)
    monkeypatch.setattr(em, "SKINNY_WIDE_MAX_M", 32)
    monkeypatch.setattr(em, "SKINNY_WIDE_PDL", False)
    assert em.pdl_decode_rows(16) and not em.pdl_decode_rows(17)
    monkeypatch.setattr(em, "SKINNY_WIDE_PDL", True)
    assert em.pdl_decode_rows(32) and not em.pdl_decode_rows(33)
    monkeypatch.setattr(em, "DECODE_LONG_MIN_ROWS", 12)
    assert [r for r in (1, 8, 12, 16, 24, 32) if em.long_graph_rows(r)] == [12, 16, 24, 32]
    monkeypatch.setattr(em, "SKINNY_WIDE_PDL", False)
    assert [r for r in (1, 8, 12, 16, 24, 32) if em.long_graph_rows(r)] == [12, 16]
    monkeypatch.setattr(attention, "DECODE_PDL_LAUNCH", True)
    with pytest.raises(RuntimeError), em.plain_attention_launch():
        assert attention.DECODE_PDL_LAUNCH is False
        raise RuntimeError("a capture that fails")
    assert attention.DECODE_PDL_LAUNCH is True


def test_steps_pick_the_long_graph_from_the_threshold_on():
    ex = _executor("cpu", graphs=True)
    short, long_ = StandIn(), StandIn()
    logits = torch.zeros((4, TINY.vocab_size))
    ex.graphs[(4, False)] = (short, logits, torch.tensor([1, 2, 3, 4]))
    ex.long_graphs[(4, False)] = (long_, logits, torch.tensor([5, 6, 7, 8]))
    ex.long_from = 20
    g = torch.Generator().manual_seed(0)
    for rid in range(3):
        ex.add_request(rid, torch.randint(0, TINY.vocab_size, (30,), generator=g).tolist())
    tables = [list(range(8 * r, 8 * r + 8)) for r in range(3)]
    # contexts 10, 19, 12 (start_pos + 1): under 20, the usual graph
    got = ex.execute([Seq(r, None, p, 1, tables[r]) for r, p in zip(range(3), (9, 18, 11), strict=True)])
    assert (short.replays, long_.replays) == (1, 0) and ex.last_path == "graph4" and got == {0: 1, 1: 2, 2: 3}
    # one context of 20: the long graph
    got = ex.execute([Seq(r, None, p, 1, tables[r]) for r, p in zip(range(3), (9, 19, 11), strict=True)])
    assert (short.replays, long_.replays) == (1, 1) and ex.last_path == "graph4-long" and got == {0: 5, 1: 6, 2: 7}
    ex.long_graphs.clear()  # a size without a long graph (no PDL in its pass): the usual one
    ex.execute([Seq(r, None, 25, 1, tables[r]) for r in range(3)])
    assert (short.replays, long_.replays) == (2, 1) and ex.last_path == "graph4"
    ex.long_from = None  # switched off
    ex.long_graphs[(4, False)] = (long_, logits, torch.tensor([5, 6, 7, 8]))
    ex.execute([Seq(r, None, 25, 1, tables[r]) for r in range(3)])
    assert (short.replays, long_.replays) == (3, 1)


ON_HOPPER = (os.environ.get("TRITON_INTERPRET") != "1" and torch.cuda.is_available()
             and torch.cuda.get_device_capability()[0] >= 9)


@pytest.mark.skipif(not ON_HOPPER, reason="needs a CUDA GPU of compute capability 9.0+")
def test_long_graphs_give_the_usual_graphs_bits(monkeypatch):
    monkeypatch.setattr(em, "DECODE_LONG_CONTEXT", 12)
    monkeypatch.setattr(em, "DECODE_LONG_MIN_ROWS", 2)
    ex = _executor("cuda", torch.float16, graphs=True)
    ex.capture_graphs()
    assert ex.long_from == 12
    assert set(ex.long_graphs) == {(s, False) for s in (2, 4) if em.pdl_decode_rows(s)}
    g = torch.Generator().manual_seed(1)
    for rid in range(3):
        ex.add_request(rid, torch.randint(0, TINY.vocab_size, (40,), generator=g).tolist())
    tables = [list(range(10 * r, 10 * r + 10)) for r in range(3)]
    for pos in (5, 30):  # under and over the threshold
        seqs = [Seq(r, None, pos + r, 1, tables[r]) for r in range(3)]
        out = {}
        for long_from in (10**6, 12):  # the usual graph, then the long one, on the same inputs
            ex.long_from = long_from
            ex._fill_static(seqs, 4)
            logits, _ = ex.replay(4, False)
            out[long_from] = logits[:3].clone()
            assert ex.last_long is (long_from == 12 and pos + 1 >= 12)
        torch.cuda.synchronize()
        assert torch.isfinite(out[12]).all()
        assert torch.equal(out[10**6], out[12])
