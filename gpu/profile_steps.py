"""Step profiler: calibration data for the twin's `measured` cost model (docs/profile-format.md,
schema 2).

It drives the live engine's own pieces with synthetic batches -- never a trace replay, so that
the runs the twin is validated on stay out of its calibration -- and times exactly what the
replay loop (gpu/replay.py) times for one iteration:

- step tables: wall time of ``Executor.execute`` (host preparation, the CUDA graph or the eager
  forward, the wait, the sampled tokens back on the host), median over repetitions;
- host_overhead.csv: wall time of the scheduler's pass and ``finish_step`` for N running
  sequences (the rest of an iteration in the replay loop);
- adapter_load.csv: the engine's own loader (disk -> pinned host -> GPU slot), order to done, with
  the loop idle and (``*_busy`` rows) while decode steps run;
- merge.csv: folding a rank-r adapter into the base weights and out again;
- lora_step.csv: a step with LoRA minus the same step without, per kernel, tokens, segments, rank.

Usage (on the GPU machine): python3 gpu/profile_steps.py --out DIR [--model llama-2-7b] [--quick]
Writes DIR/meta.json and the CSV tables; prints a short summary last.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gpu.common.gpu_monitor import GpuMonitor  # noqa: E402
from gpu.common.layouts import VARIED_LAYOUTS, varied_contexts  # noqa: E402
from gpu.common.mixed import PER_KIND, PER_KIND_QUICK  # noqa: E402
from gpu.common.mixed import RANKS as MIXED_RANKS  # noqa: E402
from gpu.common.mixed import compositions as mixed_compositions  # noqa: E402
from gpu.common.runtime_stats import RuntimeStats  # noqa: E402
from gpu.common.timing import Stats  # noqa: E402
from gpu.common.timing import timed as _timed  # noqa: E402
from gpu.common.timing import timed_difference as _timed_difference  # noqa: E402
from gpu.engine.attention import DECODE_HEAD_FAST, DECODE_MAX_SPLITS, DECODE_TARGET_PROGRAMS  # noqa: E402
from gpu.engine.config import EngineConfig, derive_num_gpu_blocks  # noqa: E402
from gpu.engine.executor import (  # noqa: E402
    DEFAULT_DECODE_BLAS,
    DEFAULT_DENSE_LORA_FROM,
    DEFAULT_GRAPH_SIZES,
    DEFAULT_TOKEN_GRAPH_SIZES,
    Executor,
)
from gpu.engine.kv_cache import PagedKVCache, lora_slot_bytes  # noqa: E402
from gpu.engine.loader import AdapterLoader  # noqa: E402
from gpu.engine.lora import LoraSlots, random_adapter, save_adapter  # noqa: E402
from gpu.engine.model import LlamaModel, decode_gemm_settings  # noqa: E402
from gpu.engine.scheduler import AdapterInfo, Request, Scheduler  # noqa: E402
from gpu.engine.weights import PRESETS, random_weights  # noqa: E402

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
# Idle time after each timed step, as a multiple of its duration (--rest; gpu/common/timing.py):
# back-to-back steps held the GPU at its power cap and its clocks below a live run's.
REST = 1.0
_rest = REST  # this run's (main sets it from --rest)
# The tables in the order they are measured (--tables picks among them).
STEP_TABLES = ("step_decode", "step_decode_varied", "step_tokens", "step_tokens_eager", "step_attention", "lora_step",
               "lora_token", "step_mixed", "adapter_load", "merge", "host_overhead")
# Decode-only tables are timed back to back (--decode-rest, default 0), as a live engine runs its
# decode steps (host gaps of about 0.1 ms between 5-10 ms steps). Measured at df88fd4
# (gpu/results/decode-rest-h200-df88fd4): with a rest of 1 the decode graphs of 1-32 sequences
# took 2-6 % longer than back to back at the same SM clock (1980 MHz on both), which the twin
# carried into near-saturated runs as queueing (docs/validation.md, "The 5d28821 lease").
DECODE_TABLES = ("step_decode", "step_decode_varied")
DECODE_REST = 0.0
_decode_rest = DECODE_REST
BLOCK = 16
TIMING = "median_us,p10_us,p90_us,reps"


def complete(measured) -> bool:
    """Whether every table of STEP_TABLES was measured (meta.json ``complete``): a profile
    merge_profile.py may install. Counting them by hand (10) said false for every full profile
    once ``step_tokens_eager`` made them 11."""
    return set(STEP_TABLES) <= set(measured)


def rest_for(table: str) -> float:
    """The rest after each timed step of ``table``: ``_decode_rest`` for decode-only tables."""
    return _decode_rest if table in DECODE_TABLES else _rest


@contextlib.contextmanager
def resting(rest: float):
    """Sets this run's rest for the block and restores it after, also when the block raises."""
    global _rest
    previous = _rest
    _rest = rest
    try:
        yield
    finally:
        _rest = previous


def timed(fn, reps: int, warmup: int = 2) -> Stats:
    """``gpu.common.timing.timed`` with this run's rest after each timed step."""
    return _timed(fn, reps, warmup, rest=_rest)


def timed_lora(ex, without, with_l, reps: int) -> Stats:
    """The LoRA part of a step: ``ex.execute(with_l)`` minus ``ex.execute(without)`` per repetition,
    the two timed back to back (``gpu.common.timing.timed_difference``) with this run's rest."""
    return _timed_difference(lambda: ex.execute(without), lambda: ex.execute(with_l), reps, rest=_rest)


@dataclass
class Seq:
    """A ScheduledSeq stand-in: what Executor.execute reads."""

    request_id: int
    start_pos: int
    num_tokens: int
    block_table: list[int]
    slot: int | None = None
    samples: bool = True
    adapter: str | None = None


# Host preparation of every step timed_rotating runs (Executor.last_host_s, the figure replay.py
# reports as run.json summary.median_host_prep_ms), by table: meta.json host_prep_ms, to compare
# a profile's steps with a live run's on the host side (docs/validation.md, "Two more leases").
_host_prep: dict[str, list[float]] = {}
_table = ""  # the table being measured (main sets it)


def timed_rotating(rig: Rig, ex: Executor, sets: list[list[Seq]], reps: int, force_eager: bool = False) -> Stats:
    """Times ``ex.execute`` over the input sets in turn (rotated inputs), then drops their requests."""
    k = [0]
    prep = _host_prep.setdefault(_table, [])

    def step():
        ex.execute(sets[k[0] % len(sets)], force_eager=force_eager)
        prep.append(ex.last_host_s)
        k[0] += 1

    st = timed(step, reps=reps)
    for s in sets:
        rig.drop(ex, s)
    return st


class Rig:
    """The engine on the GPU, with a pool of KV blocks handed out to synthetic sequences."""

    def __init__(self, model_name: str, device: str, graph_sizes: tuple[int, ...], util: float,
                 dop_table: Path | None = None, token_graphs: bool = True,
                 dense_lora_from: int | None = DEFAULT_DENSE_LORA_FROM,
                 decode_blas: str | None = DEFAULT_DECODE_BLAS) -> None:
        self.cfg = PRESETS[model_name]
        self.dtype = torch.float16 if device == "cuda" else torch.float32
        self.device = device
        self.weights = random_weights(self.cfg, self.dtype, device, seed=0)
        total = torch.cuda.mem_get_info()[1] if device == "cuda" else 4 * 2**30
        slot_bytes = lora_slot_bytes(self.cfg, 64, TARGETS)
        # "dop" (the Dop tuned table's kernels) is profiled only when a table exists (docs/dop.md).
        self.dop_table = dop_table if dop_table is not None and Path(dop_table).exists() else None
        kinds = ("torch", "sgmv") + (("dop",) if self.dop_table is not None else ())
        # Two or three slot sets (one per executor) and graph pools: keep a wider margin.
        ec = EngineConfig(gpu_memory_utilization=util, max_loras=8 * len(kinds))
        self.num_blocks = derive_num_gpu_blocks(ec, total, self.weights.nbytes(), slot_bytes,
                                                self.cfg.kv_bytes_per_token())
        self.kv = PagedKVCache(self.cfg, self.num_blocks, BLOCK, self.dtype, device)
        for t in self.kv.k + self.kv.v:  # never time on zeros
            t.normal_()
        self.slots = {k: LoraSlots(self.cfg, 8, 64, TARGETS, self.dtype, device, kind=k,
                                   tuned_table=self.dop_table if k == "dop" else None) for k in kinds}
        # a "dop" set without a usable dispatcher would time SGMV under the name dop: left out
        self.kinds = [k for k, s in self.slots.items() if s.kind == k and (k != "dop" or s.dop is not None)]
        if dop_table is None or self.dop_table is None:
            self.dop_note = f"dop not profiled: no tuned table at {dop_table}"
        else:
            self.dop_note = f"dop: {self.slots['dop'].dop_status}" + ("" if "dop" in self.kinds else "; not profiled")
        self.graph_sizes = tuple(graph_sizes)
        self.ex = {}
        for k in self.kinds:
            model = LlamaModel(self.cfg, self.weights, self.kv, self.slots[k])
            self.ex[k] = Executor(model, BLOCK, 4096 + 2 * BLOCK, use_graphs=device == "cuda",
                                  graph_sizes=graph_sizes, max_num_seqs=max(graph_sizes),
                                  token_graph_sizes=DEFAULT_TOKEN_GRAPH_SIZES if token_graphs else (),
                                  max_num_batched_tokens=4096, dense_lora_from=dense_lora_from,
                                  decode_blas=decode_blas)
        self.dense_lora_from = dense_lora_from
        self.decode_blas = decode_blas
        # the token graphs the steps with prefill chunks replay (none on the CPU)
        self.token_sizes = self.ex[self.kinds[0]].token_sizes if device == "cuda" else ()
        self.next_id = 0
        self.next_block = 0
        self.gen = torch.Generator().manual_seed(1)

    def warm(self) -> dict[str, float]:
        out = {}
        for k, ex in self.ex.items():
            seqs = self.prefill_seqs(ex, [512], slot=None)
            ex.execute(seqs)
            seqs = self.prefill_seqs(ex, [512], slot=0)
            ex.execute(seqs)
            out[k] = ex.capture_graphs() if ex.use_graphs else 0.0
        return out

    def blocks(self, n: int) -> list[int]:
        """n blocks from the pool, cycling (sequences alias blocks only when the pool is short)."""
        out = [(self.next_block + i) % self.num_blocks for i in range(n)]
        self.next_block = (self.next_block + n) % self.num_blocks
        return out

    def new_request(self, ex: Executor, length: int) -> int:
        rid = self.next_id
        self.next_id += 1
        ex.add_request(rid, torch.randint(0, self.cfg.vocab_size, (length + 1,), generator=self.gen).tolist())
        return rid

    def decode_seqs(self, ex: Executor, n: int, context: int, slots: list[int | None] | None = None) -> list[Seq]:
        seqs = []
        for i in range(n):
            rid = self.new_request(ex, context)
            bt = self.blocks(-(-(context + 1) // BLOCK))
            seqs.append(Seq(rid, context, 1, bt, slot=None if slots is None else slots[i]))
        return seqs

    def prefill_seqs(self, ex: Executor, chunks: list[int], context: int = 0, slot=None) -> list[Seq]:
        seqs = []
        for i, n in enumerate(chunks):
            rid = self.new_request(ex, context + n)
            bt = self.blocks(-(-(context + n) // BLOCK))
            s = slot[i] if isinstance(slot, list) else slot
            seqs.append(Seq(rid, context, n, bt, slot=s))
        return seqs

    def fill_slots(self, kind: str, ranks: list[int], prefix: str, seeds: list[int]) -> None:
        """A random adapter of rank ``ranks[i]`` (alpha 2 r, seed ``seeds[i]``, named
        ``{prefix}{rank}_{i}``) in slot i of the kind's slots, then a device sync."""
        for slot, (r, seed) in enumerate(zip(ranks, seeds, strict=True)):
            ha = random_adapter(self.cfg, f"{prefix}{r}_{slot}", r, 2.0 * r, TARGETS, seed=seed,
                                dtype=self.dtype, device=self.device)
            self.slots[kind].copy_in(slot, ha)
        if self.device == "cuda":
            torch.cuda.synchronize()

    def drop(self, ex: Executor, seqs: list[Seq]) -> None:
        for s in seqs:
            ex.drop(s.request_id)


def profile_decode(rig: Rig, quick: bool) -> list[str]:
    ex = rig.ex[rig.kinds[0]]
    rows = ["seqs,context_tokens," + TIMING]
    # Every CUDA-graph size, not only the powers of two: interpolating 8..16 for the graph of 12
    # (and 32..64 for 40-56, 64..128 for 80-112) priced those steps 5-16 % short in every live run
    # (scripts/step_errors.py, docs/validation.md "Step by step").
    seqs_grid = rig.graph_sizes if not quick else (1, 12, 16)
    ctx_grid = (128, 512, 1024, 2048, 4096) if not quick else (128, 1024)
    for n in seqs_grid:
        for c in ctx_grid:
            sets = [rig.decode_seqs(ex, n, c) for _ in range(3)]  # rotate inputs
            st = timed_rotating(rig, ex, sets, reps=12 if not quick else 5)
            rows.append(f"{n},{c},{st.row()}")
    return rows


# step_decode_varied's batches: graph sizes 8 and 32 (two and one programs per sequence and head)
# joined after 5d28821, where the live runs' decode steps ran 5-8 % under the twin's price
# (docs/validation.md, "The 5d28821 lease"), and the two_level layout with them. After 2ce38ba the
# shuffled and live_like layouts (docs/validation.md, "What remains (H200)": spread's tail is small
# at 32 and 128 sequences and full at 40 and 64, and the live graph-32 batches look like spread).
# Graph 24 after a70f021: the live decode steps of graphs 12-24 ran 6-9 % over their prices in
# every lease, graph 24 the most, and the tail had no row there (docs/validation.md, "Lease
# a70f021-1").
VARIED_SIZES = (4, 8, 12, 16, 24, 32, 40, 64, 128)


def interleaved_tables(rig: Rig, contexts: list[int]) -> list[list[int]]:
    """Block tables whose blocks are dealt round-robin over the sequences, as a live engine's
    blocks end up (sequences grow one block at a time, side by side); the grid gives each
    sequence consecutive blocks."""
    need = [-(-(c + 1) // BLOCK) for c in contexts]
    pool = rig.blocks(sum(need))
    tables: list[list[int]] = [[] for _ in contexts]
    k = 0
    for depth in range(max(need)):
        for i, n in enumerate(need):
            if depth < n:
                tables[i].append(pool[k])
                k += 1
    return tables


def profile_decode_varied(rig: Rig, quick: bool) -> list[str]:
    """Decode steps unlike the grid's rows: contexts of mixed lengths, and blocks scattered over
    the cache. The twin fits the tail of skewed batches on the ``spread`` and ``one_long`` rows
    (docs/profile-format.md), and on ``two_level`` from the profiles after 5d28821; the
    ``scattered`` rows stay a check of the grid. Graph sizes 4 and
    12 (four and two programs per sequence and head, ``decode_splits``) join 16-128 (one) so that
    the fit sees every split count the live engine uses: at 32bd308 the live steps of graph 12 ran
    7 % over the twin, and no row of the fit had two programs (docs/validation.md)."""
    ex = rig.ex[rig.kinds[0]]
    rows = ["seqs,layout,context_tokens,max_context," + TIMING]
    sizes = [g for g in VARIED_SIZES if g in rig.graph_sizes] if not quick else [16]
    for n in sizes:
        for layout in VARIED_LAYOUTS:
            ctx = varied_contexts(n, layout)
            sets = []
            for _ in range(3):  # rotate inputs
                tables = interleaved_tables(rig, ctx)
                sets.append([Seq(rig.new_request(ex, c), c, 1, bt) for c, bt in zip(ctx, tables, strict=True)])
            st = timed_rotating(rig, ex, sets, reps=12 if not quick else 3)
            rows.append(f"{n},{layout},{sum(c + 1 for c in ctx)},{max(ctx) + 1},{st.row()}")
    return rows


def token_grid(rig: Rig, quick: bool) -> tuple[int, ...]:
    """step_tokens' token counts: every token-graph size (the twin reads the curve at the graph a
    step replays) and the eager sizes above them; without token graphs, the old grid from one
    token (steps of one-token chunks, forced eager)."""
    if rig.token_sizes:
        grid = tuple(sorted(set(rig.token_sizes) | {3072, 4096}))
        return grid if not quick else (16, 256, 4096)
    return (1, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


def token_chunks(t: int) -> list[int]:
    """Prompt chunks of t tokens in all: 256 each (and the rest); one-token ones under 16."""
    if t < 16:
        return [1] * t
    return [256] * (t // 256) + ([t % 256] if t % 256 else [])


def profile_tokens(rig: Rig, quick: bool, eager: bool = False) -> list[str]:
    """Steps of fresh prompt chunks, no LoRA, by tokens: as the engine runs them (the token
    graph of the next size up, where one fits), or forced eager (``eager``; the comparison in
    docs/engine.md). Without token graphs both are the eager path."""
    ex = rig.ex[rig.kinds[0]]
    rows = ["tokens," + TIMING]
    for t in token_grid(rig, quick):
        sets = [rig.prefill_seqs(ex, token_chunks(t)) for _ in range(2)]
        st = timed_rotating(rig, ex, sets, reps=8 if not quick else 3, force_eager=eager or not rig.token_sizes)
        rows.append(f"{t},{st.row()}")
    return rows


def profile_attention(rig: Rig, quick: bool) -> list[str]:
    ex = rig.ex[rig.kinds[0]]
    # prefill_max_keys: the keys the chunk's last tile walks (context + chunk), docs/profile-format.md
    rows = ["tokens,prefill_pairs,decode_seqs,decode_context_tokens,prefill_max_keys," + TIMING]
    cases = [(256, 0, 0, 0), (1024, 0, 0, 0), (2048, 0, 0, 0), (4096, 0, 0, 0), (512, 1024, 0, 0), (1024, 2048, 0, 0),
             (512, 0, 16, 512), (512, 0, 64, 512), (512, 0, 16, 2048), (512, 0, 64, 2048), (256, 1024, 32, 1024),
             (2048, 0, 128, 256)]
    for n, c, d, k in cases:
        seqs = rig.decode_seqs(ex, d, k) + rig.prefill_seqs(ex, [n], context=c)
        st = timed(lambda seqs=seqs: ex.execute(seqs), reps=8 if not quick else 3)
        pairs = n * (c + (n + 1) / 2)
        rows.append(f"{n + d},{pairs},{d},{d * (k + 1)},{c + n},{st.row()}")
        rig.drop(ex, seqs)
    return rows


def profile_lora(rig: Rig, quick: bool) -> list[str]:
    rows = ["kernel,tokens,segments,rank," + TIMING]
    ranks = (8, 16, 32, 64)
    for kind in rig.kinds:
        ex = rig.ex[kind]
        for r in ranks:
            rig.fill_slots(kind, [r] * 8, "p", [100 + slot + r for slot in range(8)])
            for t in (1, 8, 32, 128, 512, 2048):
                for segs in (1, 2, 4, 8):
                    s_eff = min(segs, t)
                    slot_of = [i * s_eff // t for i in range(t)] if t <= 128 else None
                    if t <= 128:
                        with_l = rig.decode_seqs(ex, t, 256, slots=slot_of)
                        without = rig.decode_seqs(ex, t, 256)
                    else:
                        chunk = min(256, t // s_eff)
                        n_chunks = t // chunk
                        owner = [i * s_eff // n_chunks for i in range(n_chunks)]
                        with_l = rig.prefill_seqs(ex, [chunk] * n_chunks, slot=owner)
                        without = rig.prefill_seqs(ex, [chunk] * n_chunks)
                    reps = (10 if t <= 128 else 5) if not quick else 3
                    extra = timed_lora(ex, without, with_l, reps)
                    rows.append(f"{kind},{t},{segs},{r},{extra.row()}")
                    rig.drop(ex, with_l)
                    rig.drop(ex, without)
    return rows


# Token-graph sizes of lora_token (those under the engine's dense_lora_from that the rig captured).
LORA_TOKEN_SIZES = (16, 64, 128, 256, 384)


def profile_lora_token(rig: Rig, quick: bool) -> list[str]:
    """LoRA in steps with a prefill chunk, through the token graphs that run the kind's kernels:
    per token-graph size T (under ``dense_lora_from``), segments S and rank, one prompt chunk of
    T - (S - 1) tokens and S - 1 decode rows (context 256), each on its own adapter slot, timed
    with and without adapters (the difference per repetition, as lora_step). lora_step measures
    1-128 tokens through the decode graphs and larger counts through token graphs that may apply
    LoRA densely; this is the path of a live step with a short prompt chunk. No rows without
    token graphs (the CPU rig)."""
    rows = ["kernel,tokens,segments,rank," + TIMING]
    sizes = [t for t in LORA_TOKEN_SIZES if t in rig.token_sizes
             and (rig.dense_lora_from is None or t < rig.dense_lora_from)]
    if quick:
        sizes = sizes[:2]
    for kind in rig.kinds:
        ex = rig.ex[kind]
        for r in (16, 64):
            rig.fill_slots(kind, [r] * 8, "t", [200 + slot + r for slot in range(8)])
            for t in sizes:
                for segs in (1, 2, 4, 8):
                    n = t - (segs - 1)
                    with_l = (rig.prefill_seqs(ex, [n], slot=0)
                              + rig.decode_seqs(ex, segs - 1, 256, slots=list(range(1, segs))))
                    without = rig.prefill_seqs(ex, [n]) + rig.decode_seqs(ex, segs - 1, 256)
                    reps = 8 if not quick else 3
                    rows.append(f"{kind},{t},{segs},{r},{timed_lora(ex, without, with_l, reps).row()}")
                    rig.drop(ex, with_l)
                    rig.drop(ex, without)
    return rows


MIXED_COLUMNS = ("kernel,tokens,prefill_tokens,prefill_chunks,continuation_chunks,prefill_pairs,decode_seqs,"
                 "decode_context_tokens,decode_max_context,prefill_max_keys,segments,max_rank,first_us,base_us,"
                 + TIMING)


def profile_mixed(rig: Rig, quick: bool) -> list[str]:
    """Eager steps made like the live engine's: decode rows with their own contexts and adapters
    (unsorted), one to three prompt chunks, some continuing over cached context, LoRA on. Each
    composition is new: `first_us` is its first execution (new shapes), the timing columns the
    repetitions after it, and `base_us` the median of the same step with no adapter on any row
    (LoRA off: the eager model's own calibration rows, and the LoRA's cost measured directly)."""
    rows = [MIXED_COLUMNS]
    ranks = MIXED_RANKS
    comps = mixed_compositions(rig.kinds, PER_KIND_QUICK if quick else PER_KIND)
    for kind in rig.kinds:
        ex = rig.ex[kind]
        rig.fill_slots(kind, list(ranks), "mix", [300 + slot for slot in range(len(ranks))])
        for comp in (c for c in comps if c.kind == kind):
            seqs = []
            for context, slot in comp.decode:
                seqs += rig.decode_seqs(ex, 1, context, slots=[slot])
            for n, c, slot in comp.chunks:
                seqs += rig.prefill_seqs(ex, [n], context=c, slot=slot)
            seqs = [seqs[i] for i in comp.order]
            t0 = time.perf_counter()
            ex.execute(seqs)
            first = (time.perf_counter() - t0) * 1e6
            st = timed(lambda seqs=seqs, ex=ex: ex.execute(seqs), reps=4 if not quick else 2, warmup=0)
            base = mixed_base_us(ex, seqs, reps=4 if not quick else 2)
            dec = [q for q in seqs if q.num_tokens == 1]
            pre = [q for q in seqs if q.num_tokens != 1]
            pairs = sum(q.num_tokens * (q.start_pos + (q.num_tokens + 1) / 2) for q in pre)
            used = {q.slot for q in seqs if q.slot is not None}
            rows.append(f"{kind},{sum(q.num_tokens for q in seqs)},{sum(q.num_tokens for q in pre)},{len(pre)},"
                        f"{sum(1 for q in pre if q.start_pos > 0)},{pairs},{len(dec)},"
                        f"{sum(q.start_pos + 1 for q in dec)},{max((q.start_pos + 1 for q in dec), default=0)},"
                        f"{max((q.start_pos + q.num_tokens for q in pre), default=0)},{len(used)},"
                        f"{max((ranks[u] for u in used), default=0)},{first:.3f},{base:.3f},{st.row()}")
            rig.drop(ex, seqs)
    return rows


def mixed_base_us(ex, seqs, reps: int) -> float:
    """Median of ``seqs``' step with every row's adapter taken off (restored after): the same
    composition without LoRA, after one untimed run (its shapes may be new without LoRA)."""
    slots = [q.slot for q in seqs]
    try:
        for q in seqs:
            q.slot = None
        ex.execute(seqs)
        return timed(lambda: ex.execute(seqs), reps=reps, warmup=0).median
    finally:
        for q, slot in zip(seqs, slots, strict=True):
            q.slot = slot


# The busy rows' decode batch: the loads of a live run overlap decode steps; 8 sequences of 512
# tokens is a middle-sized step (about 7 ms on the H200).
BUSY_SEQS, BUSY_CONTEXT = 8, 512


def busy_load_us(loader: AdapterLoader, ex, seqs: list[Seq], name: str, slot: int,
                 from_disk: bool) -> tuple[float, float]:
    """Order to completion of one load while the executor runs decode steps back to back, as the
    replay loop does while a load is in flight (its worker thread then shares the GIL with the
    loop, its copies the GPU with the steps). A watcher thread sees the completion (the worker's
    return and the copy's end event) within 0.2 ms, so that the steps' length does not round it
    up: the twin adds the wait for the next pass itself. Second: how much longer the step that
    orders the load runs than the median of the three steps before it (the replay orders a load
    and launches its step in one pass; in the d6fff0f recordings such a decode-only step ran 1.2-3.4
    ms longer than its neighbours for a load from the host cache, 0.1-0.4 ms from the file,
    docs/validation.md "Lease d6fff0f-1"). Both in µs."""
    before = []
    for _ in range(3):
        t0 = time.perf_counter()
        ex.execute(seqs)
        before.append(time.perf_counter() - t0)
    done_at: list[float] = []
    loader.start(name, slot, from_disk)
    rec, fut = loader.pending[-1]

    def watch() -> None:
        while True:
            if fut.done():
                end = fut.result()[1]
                if end is None or end.query():
                    done_at.append(time.perf_counter())
                    return
            time.sleep(0.0002)

    watcher = threading.Thread(target=watch, name="load-watcher")
    watcher.start()
    t0 = time.perf_counter()
    ex.execute(seqs)  # the step of the pass that ordered the load, as in the replay loop
    ordering = time.perf_counter() - t0
    while watcher.is_alive():
        ex.execute(seqs)
    watcher.join()
    while loader.busy():  # the record, off the loader's queue
        loader.poll()
    return (done_at[0] - rec.ordered_s) * 1e6, (ordering - statistics.median(before)) * 1e6


def profile_loads(rig: Rig, quick: bool) -> list[str]:
    """Rows ``host`` / ``disk``: the loader alone, the loop idle (host: order to completion; disk:
    the file read into pinned memory). Rows ``host_busy`` / ``disk_busy`` (after e82f051): order to
    completion, from the host cache or from the file, while decode steps run (``busy_load_us``):
    live loads took two to three times the idle ``host`` time (docs/validation.md, "After lease
    e82f051-1"), and the twin prices loads from these rows when a profile has them. Rows
    ``host_step`` / ``disk_step`` (after d6fff0f): how much longer the step that orders such a load
    runs than the steps before it (µs, may be negative by noise), which the twin adds to that step."""
    rows = ["source,bytes," + TIMING]
    slots = rig.slots[rig.kinds[0]]
    ex = rig.ex[rig.kinds[0]]
    with tempfile.TemporaryDirectory(prefix="lora-profile-") as td:
        files = {}
        for r in (8, 16, 32, 64):
            ha = random_adapter(rig.cfg, f"load{r}", r, 2.0 * r, TARGETS, seed=7 + r, dtype=rig.dtype, device="cpu")
            files[ha.name] = Path(td) / f"{ha.name}.safetensors"
            save_adapter(ha, files[ha.name])
        loader = AdapterLoader(slots, files, max_cpu_loras=64)
        for name in files:
            host, disk = Stats(), Stats()
            nbytes = 0
            # 12 repetitions (4 until 3270652, whose disk->host fit had a leave-one-out error of 93 %:
            # p90 5-8x the median over 4 reads); the table takes a few seconds.
            for rep in range(12 if not quick else 2):
                for from_disk in (True, False):
                    loader.start(name, rep % 8, from_disk)
                    done = []
                    while not done:
                        time.sleep(0.0002)  # as the replay loop idles: leave the GIL to the loader thread
                        done = loader.poll()
                    rec = done[0]
                    nbytes = rec.nbytes
                    total_us = (rec.done_s - rec.ordered_s) * 1e6
                    if from_disk:
                        disk.samples_us.append(rec.disk_s * 1e6)
                    else:
                        host.samples_us.append(total_us)
            rows.append(f"host,{nbytes},{host.row()}")
            rows.append(f"disk,{nbytes},{disk.row()}")
        seqs = rig.decode_seqs(ex, BUSY_SEQS, BUSY_CONTEXT)
        for _ in range(2):  # warm: the batch's graph replayed once before anything is timed
            ex.execute(seqs)
        for name in files:
            busy = {k: Stats() for k in ("host_busy", "disk_busy", "host_step", "disk_step")}
            for rep in range(6 if not quick else 1):
                for src in ("disk", "host"):
                    total_us, step_us = busy_load_us(loader, ex, seqs, name, rep % 8, src == "disk")
                    busy[f"{src}_busy"].samples_us.append(total_us)
                    busy[f"{src}_step"].samples_us.append(step_us)
            nbytes = loader.done[-1].nbytes
            rows += [f"{k},{nbytes},{st.row()}" for k, st in busy.items()]
        rig.drop(ex, seqs)
        loader.close()
    return rows


def profile_merge(rig: Rig, quick: bool) -> list[str]:
    rows = ["op,rank," + TIMING]
    slots = rig.slots[rig.kinds[0]]
    for r in (8, 16, 32, 64):
        ha = random_adapter(rig.cfg, f"m{r}", r, 2.0 * r, TARGETS, seed=50 + r, dtype=rig.dtype, device=rig.device)
        merge, unmerge = Stats(), Stats()
        for _ in range(5 if not quick else 2):
            for op, st in (("merge", merge), ("unmerge", unmerge)):
                t0 = time.perf_counter()
                (slots.merge if op == "merge" else slots.unmerge)(rig.weights, ha)
                if rig.device == "cuda":
                    torch.cuda.synchronize()
                st.samples_us.append((time.perf_counter() - t0) * 1e6)
        rows.append(f"merge,{r},{merge.row()}")
        rows.append(f"unmerge,{r},{unmerge.row()}")
    return rows


def profile_host(quick: bool) -> list[str]:
    """Scheduler pass + finish_step for N running decode requests (CPU only)."""
    rows = ["seqs," + TIMING]
    for n in (1, 8, 32, 64, 128):
        cfg = EngineConfig(max_num_seqs=128, num_gpu_blocks=100000, max_loras=8, max_cpu_loras=8)
        adapters = {f"a{i}": AdapterInfo(f"a{i}", 16, 32.0, TARGETS) for i in range(8)}
        sched = Scheduler(cfg, adapters)
        for i in range(n):
            sched.add_request(Request(i, 0.0, None, 32, 4000), 0.0)
        plan = sched.schedule(0.0)
        sched.finish_step(plan, 0.0)  # all admitted: decode from here on
        st = Stats()
        for _ in range(200 if not quick else 20):
            t0 = time.perf_counter()
            plan = sched.schedule(0.0)
            sched.finish_step(plan, 0.0)
            st.samples_us.append((time.perf_counter() - t0) * 1e6)
        rows.append(f"{n},{st.row()}")
    return rows


def versions() -> dict:
    v = {"torch": torch.__version__, "cuda": torch.version.cuda or ""}
    try:
        import triton

        v["triton"] = triton.__version__
    except Exception:  # noqa: BLE001
        v["triton"] = ""
    if torch.cuda.is_available():
        v["gpu"] = torch.cuda.get_device_name(0)
        try:
            import subprocess

            v["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                         capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:  # noqa: BLE001
            v["driver"] = ""
    else:
        v["gpu"], v["driver"] = "cpu", ""
    return v


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="llama-2-7b")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="small grids and few repetitions (a smoke test)")
    ap.add_argument("--memory-utilization", type=float, default=0.80)
    ap.add_argument("--rest", type=float, default=REST,
                    help="idle time after each timed step, as a multiple of its duration (0: back to back)")
    ap.add_argument("--decode-rest", type=float, default=DECODE_REST,
                    help=f"--rest for the decode-only tables {', '.join(DECODE_TABLES)} "
                         f"(default {DECODE_REST}: back to back)")
    ap.add_argument("--dense-lora-from", type=int, default=DEFAULT_DENSE_LORA_FROM,
                    help="token graphs of at least this many tokens apply LoRA densely (0: the kind's kernels always)")
    ap.add_argument("--decode-blas", default=DEFAULT_DECODE_BLAS, choices=("default", "cublas", "cublaslt"),
                    help="BLAS library preferred while the decode graphs are captured (default: torch's own)")
    ap.add_argument("--no-token-graphs", action="store_true",
                    help="profile the engine without token graphs (steps with prefill chunks eager)")
    ap.add_argument("--tables", default="",
                    help="comma-separated tables to measure (default: all); a partial profile is for "
                         "experiments (say, step_decode at two --rest values), not for merge_profile.py")
    ap.add_argument("--dop-table", type=Path,
                    default=Path(os.environ.get("DOP_TABLE", str(ROOT / "gpu" / "dop" / "tuned_h200.json"))),
                    help="Dop tuned table: kernel 'dop' is profiled when it exists (env DOP_TABLE)")
    args = ap.parse_args()
    global _rest, _decode_rest, _table
    _rest = args.rest
    _decode_rest = args.decode_rest
    only = {t for t in args.tables.split(",") if t}
    if only - set(STEP_TABLES):
        ap.error(f"--tables: unknown {sorted(only - set(STEP_TABLES))}; known: {', '.join(STEP_TABLES)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sizes = tuple(s for s in DEFAULT_GRAPH_SIZES if s <= 128)
    rig = Rig(args.model, args.device, sizes, args.memory_utilization, dop_table=args.dop_table,
              token_graphs=not args.no_token_graphs, dense_lora_from=args.dense_lora_from or None,
              decode_blas=None if args.decode_blas == "default" else args.decode_blas)
    print(rig.dop_note, flush=True)
    capture = rig.warm()
    tables = {}
    seconds = {}
    windows = {}  # table -> [start, end] seconds on the monitor's clock (meta gpu_monitor.series)
    monitor = GpuMonitor().start() if args.device == "cuda" else None
    # no automatic collector pass while the tables are timed, as in the replay since e82f051
    # (gpu/common/runtime_stats.py quiet_gc): a full pass would land in one timed step
    runtime = RuntimeStats(args.device == "cuda", quiet_gc=True).start()
    t_mon = time.perf_counter()
    measure = {"step_decode": lambda: profile_decode(rig, args.quick),
               "step_decode_varied": lambda: profile_decode_varied(rig, args.quick),
               "step_tokens": lambda: profile_tokens(rig, args.quick),
               "step_tokens_eager": lambda: profile_tokens(rig, args.quick, eager=True),
               "step_attention": lambda: profile_attention(rig, args.quick),
               "lora_step": lambda: profile_lora(rig, args.quick),
               "lora_token": lambda: profile_lora_token(rig, args.quick),
               "step_mixed": lambda: profile_mixed(rig, args.quick),
               "adapter_load": lambda: profile_loads(rig, args.quick),
               "merge": lambda: profile_merge(rig, args.quick),
               "host_overhead": lambda: profile_host(args.quick)}
    for name in STEP_TABLES:
        if only and name not in only:
            continue
        fn = measure[name]
        _table = name
        t = time.perf_counter()
        try:
            with resting(rest_for(name)):
                tables[name] = fn()
            windows[name] = [round(t - t_mon, 3), round(time.perf_counter() - t_mon, 3)]
            tmp = out / f".{name}.csv.tmp"  # each table as soon as it is measured
            tmp.write_text("\n".join(tables[name]) + "\n")
            os.replace(tmp, out / f"{name}.csv")
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            print(f"table {name} failed; the profile is incomplete", flush=True)
        seconds[name] = time.perf_counter() - t
        print(f"{name}: {len(tables.get(name, [])) - 1} rows in {seconds[name]:.1f} s", flush=True)
    runtime_doc = runtime.stop()
    if monitor is not None:
        monitor.stop()
    meta = {
        "schema_version": 2,
        **versions(),
        "dtype": "float16" if args.device == "cuda" else "float32",
        "model": args.model,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": os.environ.get("GIT_COMMIT", ""),
        "command": " ".join(["python3", "gpu/profile_steps.py"] + sys.argv[1:]),
        "timing": "wall clock around Executor.execute (what gpu/replay.py times), median of repetitions",
        "rest": _rest,  # idle after each timed step, times its duration
        "decode_rest": _decode_rest,  # the same for the decode-only tables (DECODE_TABLES)
        "kv_blocks": rig.num_blocks,
        # The engine's decode-attention split rule (gpu/engine/attention.py): the twin needs it to
        # price the longest sequence of a decode batch (docs/profile-format.md).
        "decode_attention": {"target_programs": DECODE_TARGET_PROGRAMS, "max_splits": DECODE_MAX_SPLITS,
                             "heads": rig.cfg.num_heads, "head_fast": DECODE_HEAD_FAST},
        # Decode batches run as the CUDA graph of the next size up (padding rows are cheap).
        "graph_sizes": list(DEFAULT_GRAPH_SIZES),
        # Steps with prefill chunks of up to the largest run as the token graph of the next size
        # up (gpu/engine/executor.py): the twin reads step_tokens there (docs/step-cost.md).
        **({"token_graph_sizes": list(rig.token_sizes)} if rig.token_sizes else {}),
        # token graphs of at least this many tokens apply LoRA densely, whatever the kind
        "dense_lora_from": rig.dense_lora_from if rig.token_sizes else None,
        # the BLAS library preferred while the decode graphs were captured (None: torch's default)
        "decode_blas": rig.decode_blas,
        # the weight GEMMs' routing by rows and PDL (gpu/engine/model.py), as the tables were timed
        "decode_gemm": decode_gemm_settings(),
        "graph_capture_s": capture,
        "lora_kernels": rig.kinds,
        "dop": {"table": str(args.dop_table), "profiled": "dop" in rig.kinds, "note": rig.dop_note,
                "slices": rig.slots["dop"].dop_slices if "dop" in rig.slots else None,
                "graph_workload": rig.slots["dop"].graph_workload if "dop" in rig.slots else None,
                "choices": ([{"key": list(map(str, k)), "choice": v} for k, v in rig.slots["dop"].dop_choices.items()]
                            if "dop" in rig.kinds else [])},
        "seconds": seconds,
        "host_prep_ms": {t: round(statistics.median(v) * 1e3, 4) for t, v in _host_prep.items() if v},
        # Clocks, power and temperature while the tables were measured, and each table's window
        # on the same clock, to compare with a live run's (run.json gpu_monitor).
        "gpu_monitor": {**(monitor.summary(t_mon) if monitor is not None
                           else {"available": False, "reason": "not CUDA"}),
                        "table_windows_s": windows},
        "complete": complete(tables),
        "runtime": runtime_doc,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"profile written to {out} in {time.perf_counter() - t0:.0f} s; kernels {rig.kinds}; blocks {rig.num_blocks}")
    # failure: a table asked for (all by default) that did not come out
    return 0 if all(t in tables for t in STEP_TABLES if not only or t in only) else 1


if __name__ == "__main__":
    sys.exit(main())
