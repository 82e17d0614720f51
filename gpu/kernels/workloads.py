"""Workload shapes of the SGMV papers (Punica, Dop), as segment lengths. Torch-free, deterministic.

- ``distinct``: every request its own adapter (one segment per request).
- ``uniform``: ``ceil(sqrt(n))`` adapters, requests spread as evenly as possible.
- ``skewed``: ``ceil(sqrt(n))`` adapters with Zipf(1.5) popularity: adapter ``j`` gets a share
  proportional to ``1 / (j + 1) ** 1.5`` (each at least one request); a few take most rows.
- ``identical``: one adapter for the whole batch.

Decode: one request is one row (token). Prefill chunks: requests are prompts of
``PREFILL_PROMPT_TOKENS`` tokens, so a chunk of T tokens holds ``T / 256`` prompts, and the
segments are the decode layout of that many requests, each scaled by the prompt length.
"""

from __future__ import annotations

import math

WORKLOADS: tuple[str, ...] = ("distinct", "uniform", "skewed", "identical")
PREFILL_PROMPT_TOKENS = 256
ZIPF_EXPONENT = 1.5


def _split(total: int, weights: list[float]) -> list[int]:
    """Largest-remainder split of ``total`` into ``len(weights)`` parts, each at least 1."""
    n = len(weights)
    if total < n:
        raise ValueError(f"cannot give {n} parts at least one of {total}")
    rest = total - n
    w = sum(weights)
    raw = [rest * x / w for x in weights]
    parts = [math.floor(r) for r in raw]
    order = sorted(range(n), key=lambda i: raw[i] - parts[i], reverse=True)
    for i in order[: rest - sum(parts)]:
        parts[i] += 1
    return [p + 1 for p in parts]


def num_adapters(workload: str, requests: int) -> int:
    """Adapters a batch of ``requests`` uses under ``workload``."""
    if requests < 1:
        raise ValueError(f"requests must be >= 1, got {requests}")
    if workload == "distinct":
        return requests
    if workload in ("uniform", "skewed"):
        return math.ceil(math.sqrt(requests))
    if workload == "identical":
        return 1
    raise ValueError(f"unknown workload {workload!r}; expected one of {WORKLOADS}")


def decode_segment_lengths(workload: str, batch: int) -> list[int]:
    """Rows per segment (largest first for ``skewed``) for a decode batch of ``batch`` tokens."""
    n = num_adapters(workload, batch)
    if workload == "skewed":
        return _split(batch, [1.0 / (j + 1) ** ZIPF_EXPONENT for j in range(n)])
    return _split(batch, [1.0] * n)


def prefill_segment_lengths(workload: str, tokens: int) -> list[int]:
    """Rows per segment for a prefill chunk of ``tokens`` tokens (prompts of 256 tokens)."""
    prompts = max(1, tokens // PREFILL_PROMPT_TOKENS)
    per_prompt = decode_segment_lengths(workload, prompts)
    lens = [n * PREFILL_PROMPT_TOKENS for n in per_prompt]
    lens[0] += tokens - sum(lens)
    return lens


RANK_MIX: tuple[int, ...] = (8, 16, 32, 64, 128)
"""Ranks of a mixed batch: adapter ``j`` has rank ``RANK_MIX[j % 5]``."""


def adapter_ranks(rank_label: str, adapters: int) -> list[int]:
    """Rank of each adapter: ``"mix"`` cycles through ``RANK_MIX``, else the integer label."""
    if rank_label == "mix":
        return [RANK_MIX[j % len(RANK_MIX)] for j in range(adapters)]
    return [int(rank_label)] * adapters
