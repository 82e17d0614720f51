"""The engine's forward pass on the CPU (float32): the static-buffer decode batch that the CUDA
graphs replay equals the eager step, a prompt split in chunks equals the whole prompt, paged
decode attention equals dense attention, and a merged adapter equals the unmerged one."""


import pytest

torch = pytest.importorskip("torch")

from gpu.engine.attention import paged_decode_torch, prefill_attention  # noqa: E402
from gpu.engine.executor import Executor  # noqa: E402
from gpu.engine.executor import StepSeq as Seq  # noqa: E402
from gpu.engine.kv_cache import PagedKVCache  # noqa: E402
from gpu.engine.lora import ATTN_MODULES, LoraSlots, random_adapter  # noqa: E402
from gpu.engine.model import LlamaModel  # noqa: E402
from gpu.engine.weights import ModelConfig, random_weights  # noqa: E402

TINY = ModelConfig(
    name="tiny",
    hidden_size=64,
    intermediate_size=96,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    vocab_size=97,
    max_position=256,
)
BS = 4




def build(seed=0):
    torch.manual_seed(seed)
    w = random_weights(TINY, torch.float32, "cpu", seed=seed)
    kv = PagedKVCache(TINY, num_blocks=64, block_size=BS, dtype=torch.float32, device="cpu")
    slots = LoraSlots(TINY, max_loras=3, max_rank=8, target_modules=ATTN_MODULES, dtype=torch.float32, device="cpu")
    slots.copy_in(0, random_adapter(TINY, "a", 4, 8.0, ATTN_MODULES, seed=1, dtype=torch.float32))
    slots.copy_in(2, random_adapter(TINY, "b", 8, 8.0, ATTN_MODULES, seed=2, dtype=torch.float32))
    model = LlamaModel(TINY, w, kv, slots)
    ex = Executor(model, block_size=BS, max_model_len=128, use_graphs=False, graph_sizes=(1, 2, 4, 8), max_num_seqs=8)
    return ex


def test_static_decode_batch_equals_eager_step():
    ex = build()
    g = torch.Generator().manual_seed(5)
    tables = {0: [3, 9, 1, 20, 21], 1: [4, 5, 30, 31, 32], 2: [40, 2, 41, 42, 43]}
    lens = {0: 9, 1: 13, 2: 6}
    slot = {0: None, 1: 0, 2: 2}
    for rid, n in lens.items():
        ex.add_request(rid, torch.randint(0, TINY.vocab_size, (n,), generator=g).tolist())
    ex.execute([Seq(r, slot[r], 0, lens[r], tables[r]) for r in lens])
    seqs = [Seq(r, slot[r], lens[r], 1, tables[r]) for r in lens]
    _, eager = ex.execute(seqs, return_logits=True)
    for r in lens:  # undo the sampled token so the static batch sees the same inputs
        ex.tokens[r].pop()
    ex._fill_static(seqs)
    logits = ex.model.forward(ex._decode_batch(4, True))
    assert torch.allclose(logits[:3], eager, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(logits).all()  # padded rows stay finite


def test_chunked_prefill_equals_whole_prompt():
    ids = torch.randint(0, TINY.vocab_size, (23,), generator=torch.Generator().manual_seed(9)).tolist()
    table = [7, 3, 11, 12, 13, 14]
    ex1 = build()
    ex1.add_request(0, ids)
    _, whole = ex1.execute([Seq(0, 2, 0, 23, table)], return_logits=True)
    ex2 = build()
    ex2.add_request(0, ids)
    ex2.execute([Seq(0, 2, 0, 10, table, samples=False)])
    ex2.execute([Seq(0, 2, 10, 1, table, samples=False)])
    _, last = ex2.execute([Seq(0, 2, 11, 12, table)], return_logits=True)
    assert torch.allclose(whole, last, atol=1e-5, rtol=1e-5)


def test_paged_decode_reference_equals_dense_attention():
    g = torch.Generator().manual_seed(3)
    kc = torch.randn(10, BS, 2, 8, generator=g)
    vc = torch.randn(10, BS, 2, 8, generator=g)
    table = torch.tensor([[6, 1, 8]], dtype=torch.int32)
    n = 11
    q = torch.randn(1, 4, 8, generator=g)
    out = paged_decode_torch(q, kc, vc, table, torch.tensor([n], dtype=torch.int32))
    k = kc[table[0].long()].reshape(-1, 2, 8)[:n]
    v = vc[table[0].long()].reshape(-1, 2, 8)[:n]
    dense = prefill_attention(q, k, v, start_pos=n - 1)
    assert torch.allclose(out, dense, atol=1e-5)


def test_merged_adapter_equals_unmerged_and_unmerge_restores():
    ex = build()
    ids = torch.randint(0, TINY.vocab_size, (12,), generator=torch.Generator().manual_seed(2)).tolist()
    ex.add_request(0, ids)
    table = [1, 2, 3, 4]
    lora = ex.forward_all_logits([Seq(0, 2, 0, 12, table)])
    base = ex.forward_all_logits([Seq(0, None, 0, 12, table)])
    ad = random_adapter(TINY, "b", 8, 8.0, ATTN_MODULES, seed=2, dtype=torch.float32)
    ex.model.lora.merge(ex.model.w, ad)
    merged = ex.forward_all_logits([Seq(0, None, 0, 12, table)])
    ex.model.lora.unmerge(ex.model.w, ad)
    back = ex.forward_all_logits([Seq(0, None, 0, 12, table)])
    assert not torch.allclose(lora, base, atol=1e-3)
    assert torch.allclose(merged, lora, atol=1e-4, rtol=1e-4)
    assert torch.allclose(back, base, atol=1e-4, rtol=1e-4)


def test_token_graph_batch_equals_eager_step():
    """The static-buffer step a token graph replays (rows padded to the token size, attention as
    tiles over the pages) gives the eager step's logits: a mixed step of decode rows (with and
    without adapters) and two chunks, one continuing over cached context."""
    ex = build()
    ex.token_sizes = (16, 32)
    ex._token_buffers(32, 8)
    g = torch.Generator().manual_seed(11)
    tables = {0: [3, 9, 1, 20, 21], 1: [4, 5, 30, 31, 32], 2: [40, 2, 41, 42, 43], 3: [50, 6, 51, 52, 53, 54]}
    lens = {0: 9, 1: 13, 2: 6, 3: 19}
    slot = {0: None, 1: 0, 2: 2, 3: 0}
    for rid, n in lens.items():
        ex.add_request(rid, torch.randint(0, TINY.vocab_size, (n,), generator=g).tolist())
    ex.execute([Seq(r, slot[r], 0, lens[r], tables[r]) for r in (0, 1, 2)])
    ex.execute([Seq(3, slot[3], 0, 7, tables[3], samples=False)])
    for r in (0, 1, 2):
        ex.tokens[r].pop()
    # decode rows of 0..2, request 3's chunk 7..18 (over cached context) and a new prompt (request 4)
    ex.add_request(4, torch.randint(0, TINY.vocab_size, (5,), generator=g).tolist())
    seqs = [Seq(3, slot[3], 7, 12, tables[3]), Seq(0, slot[0], 8, 1, tables[0]), Seq(4, 2, 0, 5, [60, 61]),
            Seq(1, slot[1], 12, 1, tables[1]), Seq(2, slot[2], 5, 1, tables[2])]
    _, eager = ex.execute(seqs, return_logits=True, force_eager=True)
    assert ex.last_path == "eager"
    for s in seqs:
        ex.tokens[s.request_id].pop()
    sampled = ex._fill_tokens(seqs)
    ex.t_dev64.copy_(ex.t_host64)
    ex.t_dev32.copy_(ex.t_host32)
    size = ex.token_bucket(sum(s.num_tokens for s in seqs))
    assert size == 32
    logits = ex.model.forward(ex._token_batch(size, True))
    order = [sampled.index(s) for s in seqs]
    assert torch.allclose(logits[order], eager, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(logits).all()
