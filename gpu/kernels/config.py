"""Launch configuration (tiling) of the SGMV kernels, from Python ints only. Torch-free.

Everything here is decided from shapes and bounds that are fixed for a captured CUDA graph (token
count, buffer rank, number of segment slots, a bound on the segment length), never from the data
in the segment tensors, so one configuration serves every layout replayed through one graph.

Tiling choices (both kernels are memory-bound: LoRA ranks are 8 to 128, so each byte of x or y
meets at most 2 * 128 flops, under the H100's ~250 flop/byte ridge):

- ``block_r``: the whole rank in one tile, ``max(16, next_pow2(max_rank))`` (``tl.dot`` needs 16).
  Rows past a slot's true rank are masked, so a rank-8 adapter in a rank-128 buffer reads 8 rows.
- ``block_m``: 16 rows (the smallest tensor-core tile) when no segment can exceed 64 rows (every
  decode batch of up to 64 tokens), else 64. A segment longer than a tile spans several m-tiles,
  taken by ``m_groups`` programs side by side, each looping over its share with a stride of
  ``m_groups`` tiles, so the grid never depends on the actual lengths (and any bound is correct:
  it only sets how many programs share a segment). Measured on the H100 (commit 702adf8, graph
  bounds of 64 rows): 64-row tiles made the decode expand of 64 one-row segments 3x slower than
  16-row tiles (gate_up, mixed ranks: 197 us vs 63 us), since 63 of 64 rows of each tile are masked.
- shrink ``block_k``: 128 along h_in (16 KB per x+A stage at rank 64), 64 at rank 128 to keep the
  staged tiles and the [block_m, 128] fp32 accumulator small; 4 pipeline stages.
- shrink split-K: h_in (4096 to 13824) is long and r short, so one program per (segment, m-tile)
  gives too few programs to fill 132 SMs at decode sizes (a batch of one adapter: one program
  streaming all of A). The K range is cut into ``split_k`` slices so that the grid reaches about
  ``TARGET_PROGRAMS``; partial sums meet in an fp32 ``v`` through atomic adds (relaxed). Slices
  keep at least ``MIN_K_BLOCKS`` blocks each, so the atomics stay a small fraction of the traffic.
  Prefill chunks (segments that may exceed 64 rows) already have many m-tiles: they split only as
  far as fits one wave (``NUM_SMS // programs``), since their atomics grow with the token count and
  a partial second wave cost up to 35% in the split-K sweep (down, 4096 tokens, rank 64: split 2
  40.7 us, split 3 54.5 us; ``gpu/results/kernels/bench_sweep.json``).
- expand: K is the rank (one tile), so no split; each program owns a [block_m, block_n] tile of y
  (read once, written once, no atomics). ``block_n`` 128, or 256 when the rank is at most 32 (fewer,
  larger programs for thin B tiles).
"""

from __future__ import annotations

from dataclasses import dataclass

NUM_SMS_H100 = 132
TARGET_PROGRAMS = 4 * NUM_SMS_H100
MIN_K_BLOCKS = 2


def next_pow2(n: int) -> int:
    """Smallest power of two >= n (n >= 1)."""
    return 1 << max(0, (n - 1).bit_length())


def cdiv(a: int, b: int) -> int:
    """Ceiling division of non-negative ints."""
    return -(-a // b)


@dataclass(frozen=True)
class ShrinkConfig:
    """Tiles and grid of the shrink kernel (x [T, h_in] -> v [T, r])."""

    block_m: int
    block_k: int
    block_r: int
    split_k: int
    k_per_split: int
    m_groups: int
    num_warps: int
    num_stages: int

    def grid(self, max_segments: int) -> tuple[int, int, int]:
        """Launch grid: (K slices, m-tile groups, segment slots)."""
        return (self.split_k, self.m_groups, max_segments)


@dataclass(frozen=True)
class ExpandConfig:
    """Tiles and grid of the expand kernel (v [T, r] -> y [T, h_out] +=)."""

    block_m: int
    block_n: int
    block_r: int
    m_groups: int
    num_warps: int
    num_stages: int

    def grid(self, h_out: int, max_segments: int) -> tuple[int, int, int]:
        """Launch grid: (n-tiles, m-tile groups, segment slots)."""
        return (cdiv(h_out, self.block_n), self.m_groups, max_segments)


def _block_m(seg_len_bound: int) -> int:
    return 16 if seg_len_bound <= 64 else 64


def shrink_config(tokens: int, h_in: int, max_rank: int, max_segments: int, max_seg_len: int | None = None,
                  split_k: int | None = None) -> ShrinkConfig:
    """Shrink tiling for a launch over ``max_segments`` segment slots of at most ``max_seg_len`` rows.

    ``split_k`` overrides the heuristic (benchmark sweeps).
    """
    bound = max(1, min(tokens, max_seg_len if max_seg_len is not None else tokens))
    block_m = _block_m(bound)
    block_r = max(16, next_pow2(max_rank))
    block_k = 64 if block_r >= 128 else 128
    m_groups = cdiv(bound, block_m)
    k_blocks = cdiv(h_in, block_k)
    if split_k is None:
        base = max(1, max_segments * m_groups)
        if bound <= 64:
            split_k = cdiv(TARGET_PROGRAMS, base)
        else:
            split_k = NUM_SMS_H100 // base
        split_k = max(1, min(split_k, k_blocks // MIN_K_BLOCKS))
    split_k = max(1, min(split_k, k_blocks))
    k_per_split = cdiv(k_blocks, split_k) * block_k
    split_k = cdiv(h_in, k_per_split)
    return ShrinkConfig(block_m, block_k, block_r, split_k, k_per_split, m_groups, num_warps=4, num_stages=4)


def expand_config(tokens: int, h_out: int, max_rank: int, max_segments: int,
                  max_seg_len: int | None = None) -> ExpandConfig:
    """Expand tiling for a launch over ``max_segments`` segment slots of at most ``max_seg_len`` rows."""
    bound = max(1, min(tokens, max_seg_len if max_seg_len is not None else tokens))
    block_m = _block_m(bound)
    block_r = max(16, next_pow2(max_rank))
    block_n = 256 if block_r <= 32 else 128
    num_warps = 8 if block_m * block_n >= 64 * 128 else 4
    return ExpandConfig(block_m, block_n, block_r, cdiv(bound, block_m), num_warps=num_warps, num_stages=2)
