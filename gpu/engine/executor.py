"""Runs the scheduler's StepPlan as one forward pass of the model.

- Token ids: the executor keeps each request's ids (prompt, then every sampled token), so a
  request preempted by recompute is prefilled again from the same ids.
- A step whose sequences all compute one token (decode steps, or a one-token chunk) replays a
  CUDA graph captured for the smallest bucket >= the batch size (rows padded: padded rows write
  to and read from the KV cache's scratch block, with no adapter).
- A step with a prefill chunk of ``T`` tokens in all (decode rows included) replays a *token
  graph*, captured for the smallest of ``token_graph_sizes`` >= T (rows padded the same way), when
  T is at most the largest: its attention runs as the tiled kernel over the pages (decode rows and
  chunks alike, gpu/engine/attention.py), so that its launch depends only on shapes. Launched
  eagerly, such a step costs the host about a thousand kernel launches from Python, which took
  longer than the GPU work up to about a thousand tokens (docs/engine.md, "Eager steps").
- Other steps run eagerly: decode rows first, then the prefill chunks (FlashAttention-2).
- Sampling is greedy (argmax); end-of-sequence is ignored (the scheduler forces output lengths).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from .attention import PREFILL_TILE_M, max_prefill_tiles, tile_rows
from .lora import build_segment_info
from .model import (
    AttnTiles,
    ForwardBatch,
    LlamaModel,
    PrefillChunk,
    decode_long_context,
    greedy,
    long_graph_rows,
    plain_attention_launch,
)


@dataclass
class StepSeq:
    """One sequence's share of a step as ``Executor.execute`` reads it: the scheduler's
    ``ScheduledSeq`` without its bookkeeping, for scripts and tests that drive the executor
    directly."""

    request_id: int
    slot: int | None
    start_pos: int
    num_tokens: int
    block_table: list[int]
    samples: bool = True


DEFAULT_GRAPH_SIZES = (1, 2, 4, 8, 12, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128)
# Token graphs: finer steps at the low end, where the host, not the GPU, set an eager step's time;
# 128-token steps above 512 (at most a quarter of padding, an eighth from 1024 on). Sizes above
# the engine's max_num_batched_tokens are dropped.
DEFAULT_TOKEN_GRAPH_SIZES = (16, 32, 64, 128, 192, 256, 384, 512, 640, 768, 896, 1024, 1152, 1280, 1408, 1536,
                             1664, 1792, 1920, 2048)
# Token graphs of at least this many tokens apply LoRA densely (the "torch" kind's path, on the same
# slot buffers) even with the "sgmv" and "dop" kinds: in the token graphs of 32bd308 the dense path
# cost 1.3-2.0 ms at 512 tokens and 4.9-5.8 ms at 2048 against SGMV's 3.1-4.2 and 7.4-8.8 ms (rank
# 16, 8 slots of rank 64; profiles/h200-llama2-7b-32bd308/lora_step.csv), while SGMV was as fast
# or faster below 128 tokens. None: the kind's kernels at every size.
DEFAULT_DENSE_LORA_FROM = 512
# The BLAS library torch is told to prefer while the decode graphs are captured (the graphs keep the
# kernels chosen then; eager steps and token graphs use torch's default). gpu/bench_gemm.py on the
# H200 (gpu/results/gemm-h200-5d2fdc4/): Llama-2-7B's decode GEMM sequence took 3.592 ms under
# "cublaslt" against 3.824 ms with the default at batch 32, 3.653 against 3.826 at 64, and the same
# (within 0.1 %) at batch 1-16. None: torch's default.
DEFAULT_DECODE_BLAS = "cublaslt"


@contextlib.contextmanager
def preferred_blas(name: str | None, strict: bool = False):
    """Makes torch prefer the BLAS library ``name`` ("cublas" or "cublaslt") inside the block and
    restores the previous choice after it, also when the block raises. None changes nothing; so
    does a machine without CUDA unless ``strict`` (then torch is asked anyway, and raises what it
    raises when it cannot set ``name``: gpu/bench_gemm.py records that as the variant's reason)."""
    if name is None or (not strict and not torch.cuda.is_available()):
        yield
        return
    previous = torch.backends.cuda.preferred_blas_library()
    torch.backends.cuda.preferred_blas_library(name)
    try:
        yield
    finally:
        torch.backends.cuda.preferred_blas_library(previous)


def next_size(sizes: tuple[int, ...], n: int) -> int | None:
    """The smallest of the sorted ``sizes`` that is at least ``n`` (None: none is)."""
    return next((s for s in sizes if s >= n), None)


class Executor:
    def __init__(self, model: LlamaModel, block_size: int, max_model_len: int, use_graphs: bool = True,
                 graph_sizes: tuple[int, ...] = DEFAULT_GRAPH_SIZES, max_num_seqs: int = 128,
                 token_graph_sizes: tuple[int, ...] = DEFAULT_TOKEN_GRAPH_SIZES,
                 max_num_batched_tokens: int | None = None,
                 dense_lora_from: int | None = DEFAULT_DENSE_LORA_FROM,
                 decode_blas: str | None = DEFAULT_DECODE_BLAS) -> None:
        self.model = model
        self.decode_blas = decode_blas
        self.kv = model.kv
        self.block_size = block_size
        self.max_blocks = -(-max_model_len // block_size)
        self.device = model.w.embed.device
        self.tokens: dict[int, list[int]] = {}
        self.use_graphs = use_graphs
        self.graph_sizes = tuple(sorted(s for s in graph_sizes if s <= max(max_num_seqs, 1)))
        if not self.graph_sizes or self.graph_sizes[-1] < max_num_seqs:
            self.graph_sizes = tuple(sorted(set(self.graph_sizes) | {max_num_seqs}))
        g = self.graph_sizes[-1]
        dev = self.device
        self.s_ids = torch.zeros(g, dtype=torch.int64, device=dev)
        self.s_pos = torch.zeros(g, dtype=torch.int64, device=dev)
        self.s_slots = torch.full((g,), self.kv.scratch_slot, dtype=torch.int64, device=dev)
        self.s_lora = torch.full((g,), -1, dtype=torch.int64, device=dev)
        self.s_bt = torch.full((g, self.max_blocks), self.kv.scratch_block, dtype=torch.int32, device=dev)
        self.s_ctx = torch.ones(g, dtype=torch.int32, device=dev)
        self.graphs: dict[tuple[int, bool], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        # decode graphs captured with decode attention launched plainly, for steps whose longest
        # context reaches model.DECODE_LONG_CONTEXT (only the sizes model.long_graph_rows names)
        self.long_graphs: dict[tuple[int, bool], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        self.long_from: int | None = None  # the threshold the long graphs were captured for
        self.static_max_ctx = 1  # the longest context _fill_static last wrote
        self.last_long = False  # whether the last replay took a long graph
        self.sgmv = model.lora is not None and model.lora.kind in ("sgmv", "dop")  # segment metadata needed
        self.dop = model.lora is not None and model.lora.kind == "dop"
        self.s_seg: dict[int, object] = {}  # static SGMV segment info per graph size
        self.last_host_s = 0.0  # host time to prepare the last step's inputs
        self.last_path = ""
        # token graphs (steps with prefill chunks): static inputs in two device buffers, filled
        # from two pinned host buffers with one copy each
        cap = max_num_batched_tokens if max_num_batched_tokens is not None else max(token_graph_sizes, default=0)
        self.token_sizes = tuple(sorted(t for t in set(token_graph_sizes) if 0 < t <= cap))
        self.token_graphs: dict[tuple[int, bool], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        self.t_seg: dict[int, object] = {}
        self.t_smax = 0  # most sequences a token graph holds (0: no token graphs)
        self.dense_lora_from = dense_lora_from
        if self.token_sizes:
            self._token_buffers(self.token_sizes[-1], min(max(max_num_seqs, 1), self.token_sizes[-1]))

    # ---------------------------------------------------------------- requests
    def add_request(self, request_id: int, prompt_ids: list[int]) -> None:
        self.tokens[request_id] = list(prompt_ids)

    def drop(self, request_id: int) -> None:
        self.tokens.pop(request_id, None)

    # ---------------------------------------------------------------- token graphs
    def _token_buffers(self, tmax: int, smax: int) -> None:
        nb = self.max_blocks
        npre = max_prefill_tiles(tmax, smax)
        self.t_smax = smax
        # int64: ids, positions, slot mapping, LoRA slot per row, logits rows
        n64 = 4 * tmax + smax
        # int32: block tables, decode tiles (seq, row, rows), prefill tiles (seq, row, rows)
        n32 = smax * nb + 3 * smax + 3 * npre
        pin = self.device.type == "cuda"
        self.t_host64 = torch.zeros(n64, dtype=torch.int64, pin_memory=pin)
        self.t_host32 = torch.zeros(n32, dtype=torch.int32, pin_memory=pin)
        self.t_dev64 = torch.zeros(n64, dtype=torch.int64, device=self.device)
        self.t_dev32 = torch.zeros(n32, dtype=torch.int32, device=self.device)

        def views(b64, b32):
            o = {}
            for i, name in enumerate(("ids", "pos", "slots", "lora")):
                o[name] = b64[i * tmax:(i + 1) * tmax]
            o["lidx"] = b64[4 * tmax:]
            o["bt"] = b32[:smax * nb].view(smax, nb)
            k = smax * nb
            for name, n in (("dseq", smax), ("drow", smax), ("dlen", smax), ("pseq", npre), ("prow", npre),
                            ("plen", npre)):
                o[name] = b32[k:k + n]
                k += n
            return o

        self.t_h = {k: v.numpy() for k, v in views(self.t_host64, self.t_host32).items()}
        self.t_d = views(self.t_dev64, self.t_dev32)

    def token_bucket(self, tokens: int) -> int | None:
        """The token graph a step of ``tokens`` replays (None: none holds it)."""
        return next_size(self.token_sizes, tokens)

    def _token_batch(self, size: int, use_lora: bool) -> ForwardBatch:
        d = self.t_d
        s = min(self.t_smax, size)
        npre = max_prefill_tiles(size, s)
        tiles = AttnTiles(d["bt"][:s], (d["dseq"][:s], d["drow"][:s], d["dlen"][:s]),
                          (d["pseq"][:npre], d["prow"][:npre], d["plen"][:npre]))
        return ForwardBatch(
            input_ids=d["ids"][:size], positions=d["pos"][:size], slot_mapping=d["slots"][:size],
            lora_slots=d["lora"][:size] if use_lora else None,
            lora_seg=self.t_seg.get(size) if use_lora else None,
            logits_idx=d["lidx"][:s], tiles=tiles,
        )

    def _fill_tokens(self, seqs, size: int | None = None) -> list:
        """Writes a step's rows (decode rows first, then the chunks) and tile tables into the
        static inputs of the token graphs; padding after them. Returns the sampling sequences in
        the order of their logits rows."""
        h = self.t_h
        bs = self.block_size
        h["ids"][:] = 0
        h["pos"][:] = 0
        h["slots"][:] = self.kv.scratch_slot
        h["lora"][:] = -1
        h["lidx"][:] = 0
        h["bt"][:] = self.kv.scratch_block
        for k in ("dseq", "drow", "dlen", "pseq", "prow", "plen"):
            h[k][:] = 0
        ordered = [s for s in seqs if s.num_tokens == 1] + [s for s in seqs if s.num_tokens != 1]
        row = 0
        nd = 0
        chunks = []
        sampled = []
        for i, s in enumerate(ordered):
            n = s.num_tokens
            p = np.arange(s.start_pos, s.start_pos + n)
            table = np.asarray(s.block_table, dtype=np.int64)
            h["ids"][row:row + n] = self.tokens[s.request_id][s.start_pos:s.start_pos + n]
            h["pos"][row:row + n] = p
            h["slots"][row:row + n] = table[p // bs] * bs + p % bs
            if s.slot is not None:
                h["lora"][row:row + n] = s.slot
            h["bt"][i, :len(table)] = table
            if n == 1:
                h["dseq"][nd], h["drow"][nd], h["dlen"][nd] = i, row, 1
                nd += 1
            else:
                chunks.append((i, row, n))
            if s.samples:
                h["lidx"][len(sampled)] = row + n - 1
                sampled.append(s)
            row += n
        for j, (i, r0, n) in enumerate(tile_rows(chunks, PREFILL_TILE_M)):
            h["pseq"][j], h["prow"][j], h["plen"][j] = i, r0, n
        self.t_dev64.copy_(self.t_host64, non_blocking=True)
        self.t_dev32.copy_(self.t_host32, non_blocking=True)
        if size is not None and size in self.t_seg:
            self.t_seg[size].update(self._seg(h["lora"][:size].tolist()))
        return sampled

    def _token_step(self, seqs, size: int, use_lora: bool, return_logits: bool, t0: float):
        sampled_seqs = self._fill_tokens(seqs, size)
        self.last_host_s = time.perf_counter() - t0
        g, logits, toks = self.token_graphs[(size, use_lora)]
        g.replay()
        self._wait()
        return self._collect(seqs, sampled_seqs, toks, logits, return_logits)

    # ---------------------------------------------------------------- graphs
    def _decode_batch(self, size: int, use_lora: bool) -> ForwardBatch:
        return ForwardBatch(
            input_ids=self.s_ids[:size], positions=self.s_pos[:size], slot_mapping=self.s_slots[:size],
            num_decode=size, decode_block_tables=self.s_bt[:size], decode_context_lens=self.s_ctx[:size],
            lora_slots=self.s_lora[:size] if use_lora else None,
            lora_seg=self.s_seg.get(size) if use_lora else None,
        )

    def _seg(self, slots: list[int], tight: bool = False):
        """Segment metadata of a batch (None for the torch kind). ``tight``: bound the segment
        length by the batch's longest segment instead of its row count (eager "dop" steps, whose
        launch grids then fit the batch; a graph's bound stays its size)."""
        if not self.sgmv:
            return None
        bound = max(Counter(slots).values(), default=1) if tight else None
        return build_segment_info(slots, self.model.lora.max_loras, self.device, max_seg_len=bound)

    def capture_graphs(self) -> float:
        """Captures one graph per (bucket, with/without LoRA), decode buckets and token buckets.
        Returns the seconds it took."""
        t0 = time.perf_counter()
        variants = [False] + ([True] if self.model.lora is not None else [])
        pool = torch.cuda.graph_pool_handle()
        self._fill_static([])
        if self.sgmv:
            for size in self.graph_sizes:
                self.s_seg[size] = self._seg([-1] * size)
                if self.dop:  # Dop dispatch by the graph's size alone (gpu/engine/lora.py)
                    self.s_seg[size].dop_graph = True
        with preferred_blas(self.decode_blas):
            for size in reversed(self.graph_sizes):
                for use_lora in variants:
                    self.graphs[(size, use_lora)] = self._capture(self._decode_batch(size, use_lora), pool)
            self.long_graphs.clear()
            self.long_from = decode_long_context()
            if self.long_from is not None:
                with plain_attention_launch():
                    for size in reversed(self.graph_sizes):
                        if not long_graph_rows(size):  # too few rows, or no PDL in its pass
                            continue
                        for use_lora in variants:
                            self.long_graphs[(size, use_lora)] = self._capture(self._decode_batch(size, use_lora),
                                                                               pool)
        if self.token_sizes:
            self._fill_tokens([])
            self._token_segments()
            for size in reversed(self.token_sizes):
                for use_lora in variants:
                    self.token_graphs[(size, use_lora)] = self._capture(self._token_batch(size, use_lora), pool)
        torch.cuda.synchronize()
        return time.perf_counter() - t0

    def _token_segments(self) -> None:
        """Static segment metadata of the token graphs that apply LoRA with the kind's kernels
        (those under ``dense_lora_from`` tokens); a token graph without it applies LoRA densely."""
        self.t_seg.clear()
        if not self.sgmv:
            return
        for size in self.token_sizes:
            if self.dense_lora_from is not None and size >= self.dense_lora_from:
                continue
            self.t_seg[size] = self._seg([-1] * size)
            if self.dop:
                self.t_seg[size].dop_graph = True

    def _capture(self, batch: ForwardBatch, pool):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):  # compiles and warms every kernel the capture will record
                greedy(self.model.forward(batch))
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g, pool=pool):
            logits = self.model.forward(batch)
            toks = greedy(logits)
        return g, logits, toks

    def bucket(self, n: int) -> int | None:
        """The decode graph a batch of ``n`` sequences replays (None: none holds it)."""
        return next_size(self.graph_sizes, n)

    def _fill_static(self, seqs, size: int | None = None) -> None:
        """Writes the decode rows of ``seqs`` (and padding after them) into the static inputs."""
        g = self.graph_sizes[-1]
        ids = np.zeros(g, dtype=np.int64)
        pos = np.zeros(g, dtype=np.int64)
        slots = np.full(g, self.kv.scratch_slot, dtype=np.int64)
        lora = np.full(g, -1, dtype=np.int64)
        bt = np.full((g, self.max_blocks), self.kv.scratch_block, dtype=np.int32)
        ctx = np.ones(g, dtype=np.int32)
        bs = self.block_size
        for i, s in enumerate(seqs):
            p = s.start_pos
            ids[i] = self.tokens[s.request_id][p]
            pos[i] = p
            slots[i] = s.block_table[p // bs] * bs + p % bs
            if s.slot is not None:
                lora[i] = s.slot
            bt[i, :len(s.block_table)] = s.block_table
            ctx[i] = p + 1
        self.static_max_ctx = int(ctx[:len(seqs)].max()) if len(seqs) else 1
        self.s_ids.copy_(torch.from_numpy(ids))
        self.s_pos.copy_(torch.from_numpy(pos))
        self.s_slots.copy_(torch.from_numpy(slots))
        self.s_lora.copy_(torch.from_numpy(lora))
        self.s_bt.copy_(torch.from_numpy(bt))
        self.s_ctx.copy_(torch.from_numpy(ctx))
        if size is not None and size in self.s_seg:
            self.s_seg[size].update(self._seg(lora[:size].tolist()))

    def replay(self, size: int, use_lora: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Replays the decode graph of ``size`` rows over the static inputs as _fill_static last
        wrote them: the long graph (decode attention launched plainly) where one was captured and
        their longest context reaches ``long_from``."""
        entry = None
        if self.long_from is not None and self.static_max_ctx >= self.long_from:
            entry = self.long_graphs.get((size, use_lora))
        self.last_long = entry is not None
        g, logits, toks = entry if entry is not None else self.graphs[(size, use_lora)]
        g.replay()
        return logits, toks

    # ---------------------------------------------------------------- one step
    def _wait(self) -> None:
        """Waits for the step on an event (which releases the GIL, unlike a blocking copy), so
        that the adapter loader's thread runs while the GPU computes."""
        if self.device.type == "cuda":
            ev = torch.cuda.Event()
            ev.record()
            ev.synchronize()

    def execute(self, seqs, return_logits: bool = False, force_eager: bool = False):
        """Runs one step over ``seqs`` (ScheduledSeq-like: request_id, slot, start_pos,
        num_tokens, block_table, samples). Appends each sampled token to its request's ids and
        returns ``{request_id: token}`` (and the logits of the sampled rows when asked)."""
        if not seqs:
            return ({}, None) if return_logits else {}
        t0 = time.perf_counter()
        use_lora = self.model.lora is not None and any(s.slot is not None for s in seqs)
        all_one = all(s.num_tokens == 1 for s in seqs)
        size = self.bucket(len(seqs)) if all_one else None
        if self.use_graphs and not force_eager and size is not None and (size, use_lora) in self.graphs:
            self._fill_static(seqs, size)
            self.last_host_s = time.perf_counter() - t0
            logits, toks = self.replay(size, use_lora)
            self._wait()
            toks_l = toks[:len(seqs)].tolist()
            sampled = {}
            for s, t in zip(seqs, toks_l, strict=True):
                if s.samples:
                    sampled[s.request_id] = t
            rows = [i for i, s in enumerate(seqs) if s.samples]
            out_logits = logits[rows].float().clone() if return_logits else None
            self.last_path = f"graph{size}" + ("-long" if self.last_long else "")
        elif (self.use_graphs and not force_eager and not all_one and len(seqs) <= self.t_smax
              and (tsize := self.token_bucket(sum(s.num_tokens for s in seqs))) is not None
              and (tsize, use_lora) in self.token_graphs):
            sampled, out_logits = self._token_step(seqs, tsize, use_lora, return_logits, t0)
            self.last_path = f"tok{tsize}"
        else:
            sampled, out_logits = self._eager(seqs, use_lora, return_logits, t0)
            self.last_path = "eager"
        for rid, t in sampled.items():
            self.tokens[rid].append(t)
        return (sampled, out_logits) if return_logits else sampled

    def _eager(self, seqs, use_lora: bool, return_logits: bool, t0: float):
        bs = self.block_size
        dev = self.device
        decode = [s for s in seqs if s.num_tokens == 1]
        prefill = [s for s in seqs if s.num_tokens != 1]
        ordered = decode + prefill
        ids: list[int] = []
        pos: list[int] = []
        slots: list[int] = []
        lora: list[int] = []
        sample_rows: list[int] = []
        chunks: list[PrefillChunk] = []
        for s in ordered:
            toks = self.tokens[s.request_id]
            start = len(ids)
            for p in range(s.start_pos, s.start_pos + s.num_tokens):
                ids.append(toks[p])
                pos.append(p)
                slots.append(s.block_table[p // bs] * bs + p % bs)
            lora.extend([-1 if s.slot is None else s.slot] * s.num_tokens)
            if s.samples:
                sample_rows.append(len(ids) - 1)
            if s.num_tokens != 1:
                bt = None
                if s.start_pos > 0:
                    bt = torch.tensor(s.block_table, dtype=torch.int64, device=dev)
                chunks.append(PrefillChunk(start, s.num_tokens, s.start_pos, bt))
        nd = len(decode)
        dbt = dctx = None
        if nd:
            width = max(len(s.block_table) for s in decode)
            bt_np = np.full((nd, width), self.kv.scratch_block, dtype=np.int32)
            for i, s in enumerate(decode):
                bt_np[i, :len(s.block_table)] = s.block_table
            dbt = torch.from_numpy(bt_np).to(dev)
            dctx = torch.tensor([s.start_pos + 1 for s in decode], dtype=torch.int32, device=dev)
        batch = ForwardBatch(
            input_ids=torch.tensor(ids, dtype=torch.int64, device=dev),
            positions=torch.tensor(pos, dtype=torch.int64, device=dev),
            slot_mapping=torch.tensor(slots, dtype=torch.int64, device=dev),
            num_decode=nd, decode_block_tables=dbt, decode_context_lens=dctx, prefills=chunks,
            lora_slots=torch.tensor(lora, dtype=torch.int64, device=dev) if use_lora else None,
            lora_seg=self._seg(lora, tight=self.dop) if use_lora else None,
            logits_idx=torch.tensor(sample_rows, dtype=torch.int64, device=dev) if sample_rows else None,
        )
        self.last_host_s = time.perf_counter() - t0
        if not sample_rows:
            batch.logits_idx = torch.zeros(1, dtype=torch.int64, device=dev)
            self.model.forward(batch)
            return {}, None
        logits = self.model.forward(batch)
        toks_d = greedy(logits)
        self._wait()
        return self._collect(seqs, [s for s in ordered if s.samples], toks_d, logits, return_logits)

    @staticmethod
    def _collect(seqs, sampled_seqs, toks_d, logits, return_logits: bool):
        """The sampled tokens on the host, ``{request_id: token}`` (``sampled_seqs`` in the order of
        their rows of ``toks_d`` / ``logits``), and with ``return_logits`` those rows in the
        caller's order of ``seqs`` (a copy)."""
        toks = toks_d[:len(sampled_seqs)].tolist()
        sampled = {s.request_id: t for s, t in zip(sampled_seqs, toks, strict=True)}
        out_logits = None
        if return_logits:
            order = {s.request_id: i for i, s in enumerate(sampled_seqs)}
            out_logits = logits[[order[s.request_id] for s in seqs if s.samples]].float()
        return sampled, out_logits

    def forward_all_logits(self, seqs) -> torch.Tensor:
        """Eager pass that returns the logits of every token (checks only); samples nothing."""
        bs = self.block_size
        dev = self.device
        ids, pos, slots, lora, chunks = [], [], [], [], []
        use_lora = self.model.lora is not None and any(s.slot is not None for s in seqs)
        for s in seqs:
            toks = self.tokens[s.request_id]
            start = len(ids)
            for p in range(s.start_pos, s.start_pos + s.num_tokens):
                ids.append(toks[p])
                pos.append(p)
                slots.append(s.block_table[p // bs] * bs + p % bs)
            lora.extend([-1 if s.slot is None else s.slot] * s.num_tokens)
            bt = torch.tensor(s.block_table, dtype=torch.int64, device=dev) if s.start_pos > 0 else None
            chunks.append(PrefillChunk(start, s.num_tokens, s.start_pos, bt))
        batch = ForwardBatch(
            input_ids=torch.tensor(ids, dtype=torch.int64, device=dev),
            positions=torch.tensor(pos, dtype=torch.int64, device=dev),
            slot_mapping=torch.tensor(slots, dtype=torch.int64, device=dev),
            prefills=chunks,
            lora_slots=torch.tensor(lora, dtype=torch.int64, device=dev) if use_lora else None,
            lora_seg=self._seg(lora, tight=self.dop) if use_lora else None,
        )
        return self.model.forward(batch).float()
