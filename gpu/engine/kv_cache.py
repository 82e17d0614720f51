"""Paged KV cache: fixed-size blocks of ``block_size`` tokens per layer.

Layout per layer: ``k[layer]`` and ``v[layer]`` are ``[num_blocks + 1, block_size, kv_heads,
head_dim]``. Block ids ``0 .. num_blocks - 1`` belong to the scheduler (it allocates and frees
them; preemption by recompute just drops a request's blocks there). The extra last block is a
scratch block that padded rows of a CUDA-graph batch write into and read from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .weights import ModelConfig

if TYPE_CHECKING:
    import torch

def lora_slot_bytes(cfg: ModelConfig, rank: int, target_modules: tuple[str, ...], dtype_bytes: int = 2) -> int:
    """Bytes of one rank-``rank`` adapter on ``target_modules`` (A and B, every layer)."""
    per_layer = 0
    for m in target_modules:
        fin, fout = cfg.module_dims(m)
        per_layer += rank * (fin + fout)
    return per_layer * cfg.num_layers * dtype_bytes


class PagedKVCache:
    """The KV tensors of every layer, and the helpers that address them."""

    def __init__(self, cfg: ModelConfig, num_blocks: int, block_size: int, dtype: torch.dtype,
                 device: str | torch.device) -> None:
        import torch

        self.cfg = cfg
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.scratch_block = num_blocks
        shape = (num_blocks + 1, block_size, cfg.num_kv_heads, cfg.head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(cfg.num_layers)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(cfg.num_layers)]

    @property
    def scratch_slot(self) -> int:
        """Flat token slot of the scratch block (where padded rows write)."""
        return self.scratch_block * self.block_size

    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.k) + sum(t.nbytes for t in self.v)

    def write(self, layer: int, slot_mapping: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store new keys/values ``[T, kv_heads, head_dim]`` at flat slots ``[T]``
        (``block * block_size + offset``). Graph-capturable."""
        kf = self.k[layer].view(-1, self.cfg.num_kv_heads, self.cfg.head_dim)
        vf = self.v[layer].view(-1, self.cfg.num_kv_heads, self.cfg.head_dim)
        kf.index_copy_(0, slot_mapping, k)
        vf.index_copy_(0, slot_mapping, v)

    def gather(self, layer: int, block_table: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of the first ``length`` positions of one sequence, ``[length, kv_heads,
        head_dim]``, gathered from its blocks (prefill of a chunk that starts past position 0)."""
        nb = -(-length // self.block_size)
        idx = block_table[:nb]
        k = self.k[layer][idx].reshape(-1, self.cfg.num_kv_heads, self.cfg.head_dim)[:length]
        v = self.v[layer][idx].reshape(-1, self.cfg.num_kv_heads, self.cfg.head_dim)[:length]
        return k, v


def slot_mapping_for(block_table: list[int], start_pos: int, num_tokens: int, block_size: int) -> list[int]:
    """Flat slots of positions ``start_pos .. start_pos + num_tokens - 1`` (torch-free)."""
    out = []
    for p in range(start_pos, start_pos + num_tokens):
        out.append(block_table[p // block_size] * block_size + p % block_size)
    return out
