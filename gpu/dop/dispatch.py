"""Run-time choice of a Dop candidate from the tuned table, by nearest scenario key. Torch-free
(``apply`` imports the kernels on first use).

The engine knows, per step, the module shape, the rank of its slot buffers and the batch's
segment lengths. ``classify`` names the workload type of a layout (one segment: identical; every
segment one row: distinct; else skewed when the largest segment is at least twice the smallest,
uniform otherwise); ``lookup`` takes the table entry at the smallest distance (same dtype and
shape first, then rank, phase, token count and workload type; weights below), among the entries
whose candidate fits the actual rank (shared-memory and register limits of ``space.check``).
A call of several slices (q, k and v as one operator, ``slices=3``) prefers entries searched as such
(module ``qkv``); a table without them answers with its nearest one-slice entry, which the engine
runs sliced where it can.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from .space import Candidate, Scenario, check

DEFAULT_TABLE = Path(__file__).with_name("tuned_h200.json")
W_DTYPE, W_SHAPE, W_RANK, W_PHASE, W_TOKENS, W_WORKLOAD = 100.0, 8.0, 2.0, 4.0, 1.0, 1.0
W_SLICES = 50.0  # an entry of another slice count only where none of the call's count is near


def classify(seg_lens: Sequence[int]) -> str:
    """Workload type of a layout (segments of length 0 ignored)."""
    lens = [n for n in seg_lens if n > 0]
    if len(lens) <= 1:
        return "identical"
    if max(lens) == 1:
        return "distinct"
    return "skewed" if max(lens) >= 2 * min(lens) else "uniform"


class Dispatcher:
    """Nearest-key lookup over a tuned table (``table.build_table``'s format)."""

    def __init__(self, table: dict) -> None:
        self.entries = [(Scenario.from_dict(e["scenario"]), Candidate.from_dict(e["config"]), k)
                        for k, e in table.get("entries", {}).items()]
        self._cache: dict[tuple, tuple[Candidate, str, float] | None] = {}

    @staticmethod
    def from_file(path: Path | str = DEFAULT_TABLE) -> Dispatcher:
        return Dispatcher(json.loads(Path(path).read_text()))

    def lookup(self, h_in: int, h_out: int, rank: int, seg_lens: Sequence[int],
               dtype: str = "fp16", slices: int = 1) -> tuple[Candidate, str, float] | None:
        """(candidate, table key it came from, distance), or None when the table is empty."""
        lens = tuple(n for n in seg_lens if n > 0) or (1,)
        tokens = sum(lens)
        return self.choose(h_in, h_out, rank, tokens, classify(lens), "decode" if tokens <= 64 else "prefill", dtype,
                           slices)

    def choose(self, h_in: int, h_out: int, rank: int, tokens: int, workload: str, phase: str,
               dtype: str = "fp16", slices: int = 1) -> tuple[Candidate, str, float] | None:
        """``lookup`` for a scenario given by its token count and workload type (the engine's CUDA
        graphs know only their batch size, see ``gpu/engine/lora.py``); ``h_out`` is one slice's.
        Memoised per argument tuple."""
        ck = (h_in, h_out, rank, tokens, workload, phase, dtype, slices)
        if ck in self._cache:
            return self._cache[ck]
        best = None
        for s, c, key in self.entries:
            d = (W_DTYPE * (s.dtype != dtype)
                 + W_SHAPE * (abs(math.log2(s.h_in / h_in)) + abs(math.log2(s.h_out / h_out)))
                 + W_RANK * abs(math.log2(s.rank / rank)) + W_PHASE * (s.phase != phase)
                 + W_TOKENS * abs(math.log2(s.tokens / tokens)) + W_WORKLOAD * (s.workload != workload)
                 + W_SLICES * (s.slices != slices))
            if best is not None and d >= best[2]:
                continue
            # the candidate must fit this rank (block_r changes its shared memory and registers)
            probe = Scenario(s.model, s.module, rank, s.workload, s.phase, s.tokens, s.dtype)
            why = check(c, probe)
            if why is not None and not why.startswith("dominated"):
                continue
            best = (c, key, d)
        self._cache[ck] = best
        return best

    def apply(self, x, y, a_stack, b_stack, seg, ranks, scales, dtype: str = "fp16"):
        """``y += LoRA delta`` with the candidate chosen for this batch (host layout needed)."""
        from .kernels import dop_apply

        if seg.host is None:
            raise ValueError("Dop dispatch needs the host layout (SegmentInfo.host)")
        hit = self.lookup(x.shape[1], y.shape[1], a_stack.shape[1], seg.host.seg_lens, dtype)
        if hit is None:
            from gpu.kernels.ops import lora_apply

            return lora_apply(x, y, a_stack, b_stack, seg, ranks, scales)
        return dop_apply(x, y, a_stack, b_stack, seg, ranks, scales, hit[0])
