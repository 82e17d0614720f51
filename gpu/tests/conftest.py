"""Shared helpers for the scheduler tests (CPU only, no torch)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

# Without a GPU, Triton kernels run in Triton's interpreter; it must be chosen before any test
# module imports triton (the kernel tests also set it, but a module collected earlier may import
# triton first, through gpu.engine).
if "TRITON_INTERPRET" not in os.environ and shutil.which("nvidia-smi") is None:
    os.environ["TRITON_INTERPRET"] = "1"

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gpu.engine.config import EngineConfig  # noqa: E402
from gpu.engine.scheduler import AdapterInfo, Request, Scheduler, StepPlan  # noqa: E402

SMALL = dict(
    max_num_seqs=4,
    max_num_batched_tokens=64,
    chunked_prefill=True,
    block_size=4,
    num_gpu_blocks=64,
    max_model_len=64,
    max_loras=2,
    max_cpu_loras=3,
    scheduler_lookahead=16,
)


def make_config(**overrides: object) -> EngineConfig:
    """A small engine config; keyword arguments override SMALL."""
    d = dict(SMALL)
    d.update(overrides)
    return EngineConfig(**d)  # type: ignore[arg-type]


def make_adapters(*names: str, rank: int = 8) -> dict[str, AdapterInfo]:
    """A catalogue of rank-`rank` adapters on the attention projections."""
    return {n: AdapterInfo(n, rank, 16.0, ("q_proj", "v_proj")) for n in names}


def make_scheduler(adapters: tuple[str, ...] = ("a1", "a2", "a3", "a4"), **overrides: object) -> Scheduler:
    """A scheduler over `make_config(**overrides)` and a catalogue of `adapters`."""
    return Scheduler(make_config(**overrides), make_adapters(*adapters))


def req(rid: int, prompt: int, output: int, adapter: str | None = None, arrival: float = 0.0) -> Request:
    """A request."""
    return Request(rid, arrival, adapter, prompt, output)


def batch(plan: StepPlan) -> list[tuple[int, int]]:
    """The plan as (request_id, tokens) pairs in scheduling order."""
    return [(s.request_id, s.num_tokens) for s in plan.seqs]


def step(s: Scheduler, t: float, dt: float = 1.0) -> tuple[StepPlan, list[Request]]:
    """One scheduling pass at `t` and its token accounting at `t + dt`."""
    plan = s.schedule(t)
    return plan, s.finish_step(plan, t + dt)


@pytest.fixture
def repo_root() -> Path:
    """The repository root."""
    return ROOT


def twin_binary() -> Path | None:
    """The twin CLI: `LORATWIN_BIN`, else .build/release/loratwin, else .build/debug/loratwin."""
    env = os.environ.get("LORATWIN_BIN")
    if env:
        p = Path(env)
        return p if p.is_file() else None
    for rel in (".build/release/loratwin", ".build/debug/loratwin"):
        p = ROOT / rel
        if p.is_file():
            return p
    return None


def patch_triton_interpreter_scalars(monkeypatch) -> None:
    """Triton 3.6's interpreter turns scalar tensors into Python ints with ``int(array)``, which
    NumPy 2.4 refuses for 1-element arrays (a loop bound read from memory hits it): take the item.
    For tests that run Triton kernels on the CPU (TRITON_INTERPRET=1)."""
    import numpy as np
    import triton.runtime.interpreter as interp

    orig = interp._patch_lang_tensor

    def patched(tensor, scope):
        orig(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(np.asarray(self.handle.data).reshape(-1)[0]))

    monkeypatch.setattr(interp, "_patch_lang_tensor", patched)



def fused_forward_logits(monkeypatch, flag: str, spy: str, lora: bool, device: str, values=(False, True),
                         mixed_prompt: int = 0):
    """The engine's decode logits of three sequences of a tiny model (two layers; LoRA on two of
    them when ``lora``) with ``gpu.engine.model.<flag>`` off and on (``values``: the two settings,
    the prefill run with the first), and the keyword arguments of every call to ``model.<spy>``
    made while it was on: ``({False: logits, True: logits}, calls)``. ``mixed_prompt`` > 0: the step
    also prefills a fourth request's prompt of that many tokens (no adapter), a mixed step.
    For the fused-kernel tests (test_fused_prologues.py, test_fused_epilogues.py); on the CPU the
    fp16 tensors count as the skinny GEMM's inputs (Triton's interpreter)."""
    import torch

    from gpu.engine import model as em
    from gpu.engine.executor import Executor
    from gpu.engine.executor import StepSeq as Seq
    from gpu.engine.kv_cache import PagedKVCache
    from gpu.engine.lora import ATTN_MODULES, LoraSlots, random_adapter
    from gpu.engine.weights import ModelConfig, random_weights

    if device == "cpu":
        monkeypatch.setattr(em, "_skinny_rows", lambda x: x.dim() == 2 and 1 <= x.shape[0] <= em.SKINNY_MAX_M
                            and x.dtype == torch.float16)
    cfg = ModelConfig(name="tiny", hidden_size=64, intermediate_size=96, num_layers=2, num_heads=4,
                      num_kv_heads=2, vocab_size=97, max_position=256)
    f16 = torch.float16
    kv = PagedKVCache(cfg, num_blocks=64, block_size=4, dtype=f16, device=device)
    slots = LoraSlots(cfg, max_loras=2, max_rank=8, target_modules=ATTN_MODULES, dtype=f16, device=device)
    slots.copy_in(0, random_adapter(cfg, "a", 4, 8.0, ATTN_MODULES, seed=1, dtype=f16))
    model = em.LlamaModel(cfg, random_weights(cfg, f16, device, seed=0), kv, slots)
    ex = Executor(model, block_size=4, max_model_len=64, use_graphs=False, graph_sizes=(1, 2, 4), max_num_seqs=4)
    g = torch.Generator().manual_seed(4)
    tables = {0: [3, 9, 1, 20], 1: [4, 5, 30, 31], 2: [40, 2, 41, 42]}
    lens = {0: 5, 1: 7, 2: 3}
    slot = {0: 0 if lora else None, 1: None, 2: 0 if lora else None}
    for rid, n in lens.items():
        ex.add_request(rid, torch.randint(0, cfg.vocab_size, (n,), generator=g).tolist())
    monkeypatch.setattr(em, flag, values[0])
    ex.execute([Seq(r, slot[r], 0, lens[r], tables[r]) for r in lens])
    seqs = [Seq(r, slot[r], lens[r], 1, tables[r]) for r in lens]
    if mixed_prompt:
        ex.add_request(3, torch.randint(0, cfg.vocab_size, (mixed_prompt,), generator=g).tolist())
        seqs.append(Seq(3, None, 0, mixed_prompt, [50, 51, 52, 53]))
    calls = []
    real = getattr(em, spy)
    monkeypatch.setattr(em, spy, lambda *a, **k: calls.append(k) or real(*a, **k))
    logits = {}
    for fuse, value in zip((False, True), values, strict=True):
        monkeypatch.setattr(em, flag, value)
        if not fuse:
            calls.clear()  # only the calls of the second setting
        _, logits[fuse] = ex.execute(seqs, return_logits=True)
        for r in list(lens) + ([3] if mixed_prompt else []):  # the same inputs again: undo the sampled token
            ex.tokens[r].pop()
    return logits, calls
