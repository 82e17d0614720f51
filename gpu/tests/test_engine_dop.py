"""The engine's "dop" LoRA kind on the CPU (float32, Triton interpreter, tiny model): the same
logits as the dense "torch" kind, with a synthetic tuned table (the Dop kernels run) and without
one (the SGMV fallback); eager steps and the static decode batch the CUDA graphs replay; under the
graph rule the choice depends on the batch size alone. Skipped without torch and Triton."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("triton")


def _interpreted() -> bool:
    """Whether the kernels this test runs were decorated under the interpreter (a module imported
    by an earlier test before TRITON_INTERPRET was set keeps compiled kernels)."""
    import triton.language.standard as std
    from triton.runtime.interpreter import InterpretedFunction

    from gpu.dop import kernels as dk
    from gpu.kernels import triton_sgmv as ts

    return all(isinstance(k, InterpretedFunction) for k in (std.zeros, dk.dop_fused_kernel, ts.sgmv_shrink_kernel))


if os.environ.get("TRITON_INTERPRET") != "1" or not _interpreted():
    pytest.skip("CPU test: run with TRITON_INTERPRET=1 in the environment (Triton kernels were defined before this "
                "module could set it)", allow_module_level=True)

from conftest import patch_triton_interpreter_scalars  # noqa: E402

from gpu.dop.space import Candidate, Scenario, normalize  # noqa: E402
from gpu.engine.executor import Executor  # noqa: E402
from gpu.engine.executor import StepSeq as Seq  # noqa: E402
from gpu.engine.kv_cache import PagedKVCache  # noqa: E402
from gpu.engine.lora import ATTN_MODULES, LoraSlots, random_adapter  # noqa: E402
from gpu.engine.model import LlamaModel  # noqa: E402
from gpu.engine.weights import ModelConfig, random_weights  # noqa: E402

TINY = ModelConfig(name="tiny", hidden_size=64, intermediate_size=96, num_layers=2, num_heads=4, num_kv_heads=2,
                   vocab_size=97, max_position=256)
BS = 4


@pytest.fixture(autouse=True)
def _interpreter_scalars(monkeypatch):
    patch_triton_interpreter_scalars(monkeypatch)
    yield


def _entry(workload: str, phase: str, tokens: int, c: Candidate) -> tuple[str, dict]:
    s = Scenario("llama2-7b", "qkvo", 16, workload, phase, tokens)
    return s.key(), {"scenario": s.to_dict(), "config": normalize(c).to_dict(), "config_key": normalize(c).key()}


def write_table(path) -> dict:
    """A small table in ``gpu/dop/table.py``'s format (only the fields the dispatcher reads are
    needed), one sketch per workload type so that different calls run different kernels."""
    entries = dict([
        _entry("uniform", "decode", 4, Candidate("tiles", "token", "two_phase", "separate", "dot", 16, 32, 32, 2, 1,
                                                 4, 2, 4, 2, 0)),
        _entry("distinct", "decode", 4, Candidate("segment", "adapter", "none", "fused", "gemv", 1, 32, 32, 1, 2,
                                                  4, 2, 4, 2, 0)),
        _entry("identical", "decode", 16, Candidate("segment", "adapter", "none", "separate", "dot", 16, 32, 32, 1,
                                                    1, 4, 2, 4, 2, 1)),
        _entry("skewed", "prefill", 512, Candidate("segment", "token", "atomic", "separate", "dot", 16, 32, 32, 2,
                                                   1, 4, 2, 4, 2, 0)),
        _entry("uniform", "prefill", 512, Candidate("segment", "token", "none", "separate", "gemv", 2, 32, 32, 1, 1,
                                                    4, 2, 4, 2, 0)),
    ])
    table = {"schema_version": 1, "entries": entries}
    path.write_text(json.dumps(table))
    return table


def build(kind: str, table=None, seed: int = 0, dop_slices: bool = True) -> Executor:
    torch.manual_seed(seed)
    w = random_weights(TINY, torch.float32, "cpu", seed=seed)
    kv = PagedKVCache(TINY, num_blocks=64, block_size=BS, dtype=torch.float32, device="cpu")
    slots = LoraSlots(TINY, max_loras=3, max_rank=8, target_modules=ATTN_MODULES, dtype=torch.float32, device="cpu",
                      kind=kind, tuned_table=table, dop_slices=dop_slices)
    slots.copy_in(0, random_adapter(TINY, "a", 4, 8.0, ATTN_MODULES, seed=1, dtype=torch.float32))
    slots.copy_in(2, random_adapter(TINY, "b", 8, 8.0, ATTN_MODULES, seed=2, dtype=torch.float32))
    slots.copy_in(1, random_adapter(TINY, "c", 8, 16.0, ATTN_MODULES, seed=3, dtype=torch.float32))
    model = LlamaModel(TINY, w, kv, slots)
    return Executor(model, block_size=BS, max_model_len=128, use_graphs=False, graph_sizes=(1, 2, 4, 8),
                    max_num_seqs=8)


TABLES = {0: [3, 9, 1, 20, 21], 1: [4, 5, 30, 31, 32], 2: [40, 2, 41, 42, 43], 3: [6, 7, 8, 10, 11]}
LENS = {0: 9, 1: 13, 2: 6, 3: 11}
SLOT = {0: None, 1: 0, 2: 2, 3: 2}
# decode steps' adapter mixes: skewed (1 + 2 rows), distinct, identical with rank 4 only (the
# stacks are sliced to rank 4)
DECODE_MIXES = (SLOT, {0: None, 1: 0, 2: 2, 3: 1}, {0: None, 1: 0, 2: None, 3: 0})


def _steps(ex: Executor):
    """A prefill step of four prompts (two adapters and none), then three decode steps; returns the
    logits of each step (eager path)."""
    g = torch.Generator().manual_seed(5)
    for rid, n in LENS.items():
        ex.add_request(rid, torch.randint(0, TINY.vocab_size, (n,), generator=g).tolist())
    out = [ex.execute([Seq(r, SLOT[r], 0, LENS[r], TABLES[r]) for r in LENS], return_logits=True)[1]]
    for step, mix in enumerate(DECODE_MIXES):
        out.append(ex.execute([Seq(r, mix[r], LENS[r] + step, 1, TABLES[r]) for r in LENS], return_logits=True)[1])
    return out


@pytest.fixture(scope="module")
def reference():
    return _steps(build("torch"))


@pytest.mark.parametrize("with_table,dop_slices", [(True, True), (True, False), (False, True)])
def test_dop_kind_equals_torch_kind_eager(tmp_path, reference, with_table: bool, dop_slices: bool) -> None:
    table = tmp_path / "tuned.json"
    if with_table:
        write_table(table)
    ex = build("dop", table, dop_slices=dop_slices)
    slots = ex.model.lora
    assert slots.dop_slices == dop_slices
    assert slots.kind == "dop"
    assert (slots.dop is not None) == with_table, slots.dop_status
    got = _steps(ex)
    for a, b in zip(got, reference, strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), (a - b).abs().max()
    # eager calls were classified from the batch and the table's kernels ran (without a table:
    # no lookup, the SGMV kernels)
    choices = set(slots.dop_choices.values())
    assert choices and "sgmv" not in choices if with_table else not choices
    assert all(not k[5] for k in slots.dop_choices)  # no graph-rule call on the eager path
    if with_table:
        assert {(k[3], k[4]) for k in slots.dop_choices} == {
            ("uniform", 8), ("skewed", 8), ("distinct", 8), ("identical", 4)}
        assert len(choices) == 3  # three sketches of the table ran
    calls = slots.dop_sliced_calls
    if with_table and dop_slices:
        # q | k | v (64 | 32 | 32 columns) as one sliced call where the candidate's 32-column tiles
        # fit; the "distinct" entry is a fused kernel, which cannot slice: three calls there
        assert calls["sliced"] > 0 and calls["separate"] > 0, calls
    elif dop_slices:
        assert calls["sliced"] == 0 and calls["separate"] > 0, calls  # no table: the SGMV kernels
    else:
        assert calls == {"sliced": 0, "separate": 0}


def test_qkv_slots_share_one_b_tensor() -> None:
    """q, k and v keep their B^T slots side by side in ``BT_qkv`` (the sliced expand reads it as one
    matrix): ``BT[m]`` are views of it, and a copy-in lands in both."""
    ex = build("torch")
    slots = ex.model.lora
    qs, kvs = TINY.q_size, TINY.kv_size
    assert slots.qkv_bounds == (qs, qs + kvs)
    for li in range(TINY.num_layers):
        cat = slots.BT_qkv[li]
        assert cat.shape == (3, 8, qs + 2 * kvs)
        for m, c0, c1 in (("q_proj", 0, qs), ("k_proj", qs, qs + kvs), ("v_proj", qs + kvs, qs + 2 * kvs)):
            assert slots.BT[li][m].untyped_storage().data_ptr() == cat.untyped_storage().data_ptr()
            assert torch.equal(slots.BT[li][m], cat[:, :, c0:c1])
        assert cat[0, :4].abs().sum() > 0 and bool((cat[0, 4:] == 0).all())  # adapter "a" has rank 4


@pytest.mark.parametrize("cand", [
    Candidate(split="atomic", block_k=32, block_n=32, split_k=2),
    Candidate(split="none", block_k=32, block_n=32),
    Candidate(split="two_phase", block_k=16, block_n=32, split_k=4),
    Candidate(math="gemv", block_m=2, split="two_phase", block_k=32, block_n=16, split_k=2),
    Candidate(tiling="tiles", split="atomic", block_k=32, block_n=32, split_k=2, item_fast=1),
    Candidate(order="adapter", math="gemv", block_m=1, split="none", block_k=32, block_n=32),
], ids=lambda c: normalize(c).key())
def test_sliced_operator_equals_the_float64_reference_per_slice(cand: Candidate) -> None:
    """``dop_apply_sliced`` on q | k | v of 64 | 32 | 32 columns, mixed ranks below the slot rank,
    slots in a random order, NaN-poisoned scratch: each slice as the float64 reference of its
    own A and columns of B."""
    from gpu.dop.kernels import dop_apply_sliced, make_scratch
    from gpu.kernels.ops import SegmentInfo
    from gpu.kernels.reference import fp64_apply
    from gpu.kernels.segments import layout_from_lengths

    c = normalize(cand)
    g = torch.Generator().manual_seed(11)
    lens, R, h = [3, 1, 5], 8, 64
    bounds, h_out = (64, 96), 128
    seg = SegmentInfo.from_layout(layout_from_lengths(lens, [4, 0, 2]), "cpu", tokens=sum(lens))
    a = torch.randn(3, 6, R, h, generator=g) / 8
    b = torch.randn(6, R, h_out, generator=g) / 3
    ranks = torch.tensor([8, 2, 4, 8, 6, 8], dtype=torch.int32)
    scales = torch.rand(6, generator=g) + 0.5
    x = torch.randn(sum(lens), h, generator=g)
    y = torch.randn(sum(lens), h_out, generator=g)
    sc = make_scratch(c, x.shape[0], h, R, "cpu", slices=3)
    for t in (sc.v, sc.ws):
        if t is not None:
            t.fill_(float("nan"))
    out = dop_apply_sliced(x, y.clone(), a, b, seg, ranks, scales, c, bounds, sc)
    for j, (c0, c1) in enumerate(((0, 64), (64, 96), (96, 128))):
        ref, _ = fp64_apply(x, y[:, c0:c1], a[j], b[:, :, c0:c1], seg, ranks, scales)
        assert torch.allclose(out[:, c0:c1].double(), ref, atol=1e-4, rtol=1e-4), (j, (out[:, c0:c1] - ref).abs().max())


def test_slices_fit_and_refusals() -> None:
    from gpu.dop.kernels import dop_apply_sliced, slices_fit

    c = normalize(Candidate(split="atomic", block_k=32, block_n=32, split_k=2))
    assert slices_fit(c, (64, 96), 128)
    assert not slices_fit(c, (64, 80), 128)  # a 32-column tile would straddle k | v
    assert not slices_fit(normalize(Candidate(fuse="fused", math="gemv", block_m=1)), (64, 96), 128)
    assert not slices_fit(c, (96, 64), 128) and not slices_fit(c, (32, 64, 96), 128)
    with pytest.raises(ValueError, match="cannot run slices"):
        dop_apply_sliced(torch.zeros(2, 64), torch.zeros(2, 128), torch.zeros(3, 1, 8, 64), torch.zeros(1, 8, 128),
                         None, None, None, c, (64, 80))


def test_static_decode_batch_under_graph_rule(tmp_path) -> None:
    """The static batch the executor captures (segment metadata marked ``dop_graph``) gives the
    eager step's logits, and its choice does not move with the batch's adapter mix."""
    write_table(tmp_path / "tuned.json")
    ex = build("dop", tmp_path / "tuned.json")
    size = 4
    ex.s_seg[size] = ex._seg([-1] * size)  # what capture_graphs sets up (no CUDA graph on the CPU)
    ex.s_seg[size].dop_graph = True
    g = torch.Generator().manual_seed(9)
    for rid, n in LENS.items():
        ex.add_request(rid, torch.randint(0, TINY.vocab_size, (n + 1,), generator=g).tolist())
    slots = ex.model.lora
    mixes = ({0: None, 1: 0, 2: 2, 3: 2}, {0: 0, 1: 0, 2: 0, 3: 0}, {0: 2, 1: 0, 2: None, 3: 1})
    graph_keys = set()
    for mix in mixes:
        seqs = [Seq(r, mix[r], LENS[r], 1, TABLES[r]) for r in LENS]
        _, eager = ex.execute(seqs, return_logits=True, force_eager=True)
        for r in LENS:
            ex.tokens[r].pop()
        ex._fill_static(seqs, size)
        before = set(slots.dop_choices)
        logits = ex.model.forward(ex._decode_batch(size, True))
        graph_keys |= {k for k in set(slots.dop_choices) - before if k[5]} | {k for k in slots.dop_choices if k[5]}
        assert torch.allclose(logits[:4], eager, atol=1e-4, rtol=1e-4)
    # one class per module shape, whatever the mix: size 4, graph_workload, the slots' max rank
    assert {(k[2], k[3], k[4]) for k in graph_keys} == {(4, "uniform", 8)}
    assert len({slots.dop_choices[k] for k in graph_keys}) == 1
    c = [slots.dop_choice(64, 64, size, ex.s_seg[size]) for _ in mixes]
    assert all(x == c[0] for x in c) and c[0][1] == 8


@pytest.mark.parametrize("dop_slices", [False, True])
def test_choice_is_made_once_per_step_and_shape(tmp_path, monkeypatch, dop_slices: bool) -> None:
    """An eager step classifies its batch once per module shape, not once per layer and module
    (2 layers x q, k, v, o here; the shapes are q/o 64x64 and k/v 64x32; with slices, q | k | v is
    one call under the q projection's shape and three slices, o one of one slice)."""
    import gpu.dop.dispatch as dispatch

    write_table(tmp_path / "tuned.json")
    ex = build("dop", tmp_path / "tuned.json", dop_slices=dop_slices)
    calls = []
    real = dispatch.classify
    monkeypatch.setattr(dispatch, "classify", lambda lens: calls.append(tuple(lens)) or real(lens))
    g = torch.Generator().manual_seed(3)
    for rid, n in LENS.items():
        ex.add_request(rid, torch.randint(0, TINY.vocab_size, (n + 1,), generator=g).tolist())
    mix = {0: None, 1: 0, 2: 2, 3: 2}
    seqs = [Seq(r, mix[r], LENS[r], 1, TABLES[r]) for r in LENS]
    ex.execute(seqs, force_eager=True)
    shapes = {(TINY.hidden_size, TINY.num_heads * TINY.head_dim, 1)}
    shapes.add((TINY.hidden_size, TINY.num_heads * TINY.head_dim, 3) if dop_slices
               else (TINY.hidden_size, TINY.num_kv_heads * TINY.head_dim, 1))
    assert len(calls) == len(shapes) < TINY.num_layers * len(ATTN_MODULES)
    assert ex.model.lora.dop_sliced_calls["sliced"] == (2 if dop_slices else 0)  # one per layer
    ex.execute(seqs, force_eager=True)  # a new step: decided afresh
    assert len(calls) == 2 * len(shapes)


def test_replay_warm_up_compiles_the_variants_of_each_rank_and_workload(tmp_path) -> None:
    """gpu/replay.py's warm_dop: eager steps at every catalogue rank and workload type, before the
    clock; the slots' ranks and the executor's requests are as they were afterwards."""
    from gpu.replay import warm_dop

    write_table(tmp_path / "tuned.json")
    ex = build("dop", tmp_path / "tuned.json")
    slots = ex.model.lora
    before = list(slots.slot_rank)
    seconds = warm_dop(ex, slots, [4, 8], TINY.vocab_size, list(range(20)), BS)
    assert seconds > 0
    assert slots.slot_rank == before
    assert not [rid for rid in ex.tokens if rid <= -10]
    eager = [k for k in slots.dop_choices if not k[5]]
    assert {k[4] for k in eager} == {4, 8}  # both ranks, none of the empty slot's rank 1
    assert {k[3] for k in eager} >= {"identical", "uniform", "skewed"}


def _token_graph_vs_torch_eager(ex: Executor, size: int, seed: int, monkeypatch) -> None:
    """A mixed step (a continuation chunk and three decode rows of three adapters and none)
    through ``ex``'s token-graph static batch of ``size``, every kernel Triton (interpreted),
    against the torch kind's eager step on the same requests."""
    from gpu.engine import attention as attn_mod

    ref = build("torch")
    g = torch.Generator()
    for e in (ex, ref):
        g.manual_seed(seed)
        for rid, n in LENS.items():
            e.add_request(rid, torch.randint(0, TINY.vocab_size, (n + 1,), generator=g).tolist())
        e.execute([Seq(r, SLOT[r], 0, LENS[r], TABLES[r], samples=False) for r in (0, 1, 2)])
        e.execute([Seq(3, SLOT[3], 0, 4, TABLES[3], samples=False)])
    seqs = [Seq(3, 1, 4, 7, TABLES[3]), Seq(0, 2, LENS[0], 1, TABLES[0]), Seq(1, 0, LENS[1], 1, TABLES[1]),
            Seq(2, None, LENS[2], 1, TABLES[2])]
    _, want = ref.execute(seqs, return_logits=True, force_eager=True)
    monkeypatch.setattr(attn_mod, "FORCE_TRITON", True)
    sampled = ex._fill_tokens(seqs, size)
    logits = ex.model.forward(ex._token_batch(size, True))
    order = [sampled.index(s) for s in seqs]
    assert torch.allclose(logits[order], want, atol=1e-3, rtol=1e-3), (logits[order] - want).abs().max()


@pytest.mark.parametrize("kind", ["sgmv", "dop"])
def test_token_graph_batch_with_triton_kernels(tmp_path, monkeypatch, kind: str) -> None:
    """The token graphs' static batch with tiled attention over the pages and the segment kernels
    on the graph's static metadata (bound by the token size, rows unsorted, padding rows without
    adapter): the torch kind's logits."""
    write_table(tmp_path / "tuned.json")
    ex = build(kind, tmp_path / "tuned.json")
    ex._token_buffers(32, 8)
    ex.t_seg[32] = ex._seg([-1] * 32)
    ex.t_seg[32].dop_graph = True
    _token_graph_vs_torch_eager(ex, 32, 13, monkeypatch)


def test_large_token_graphs_apply_lora_densely(monkeypatch) -> None:
    """With the "sgmv" kind, token graphs of at least ``dense_lora_from`` tokens get no segment
    metadata and apply LoRA densely on the same slots: the same logits as the torch kind's step."""
    ex = build("sgmv")
    ex.token_sizes = (16, 32)
    ex._token_buffers(32, 8)
    ex.dense_lora_from = 32
    ex._token_segments()
    assert set(ex.t_seg) == {16}  # 16: the SGMV kernels; 32: dense
    assert ex._token_batch(32, True).lora_seg is None and ex._token_batch(16, True).lora_seg is ex.t_seg[16]
    _token_graph_vs_torch_eager(ex, 32, 17, monkeypatch)
