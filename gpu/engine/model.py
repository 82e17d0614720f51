"""The Llama-architecture decoder the live engine runs (RMSNorm, rotary, MHA/GQA, SwiGLU).

One forward pass takes a flat batch of tokens: first ``num_decode`` decode tokens (one per
sequence, attention over the paged cache with the Triton kernel), then the prefill chunks
(attention with SDPA). With no prefill chunks the pass depends only on tensor shapes and is
captured as a CUDA graph by the executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .attention import paged_decode, prefill_attention
from .kv_cache import PagedKVCache
from .lora import LoraSlots
from .weights import ModelConfig, ModelWeights


@dataclass
class PrefillChunk:
    """Tokens ``tok_start .. tok_start + num_tokens - 1`` of the flat batch are positions
    ``start_pos ..`` of one sequence; ``block_table`` (device int64) is needed when start_pos > 0."""

    tok_start: int
    num_tokens: int
    start_pos: int
    block_table: torch.Tensor | None = None


@dataclass
class ForwardBatch:
    input_ids: torch.Tensor  # [T] int64
    positions: torch.Tensor  # [T] int64
    slot_mapping: torch.Tensor  # [T] int64: flat KV slot of each token
    num_decode: int = 0
    decode_block_tables: torch.Tensor | None = None  # [num_decode, max_blocks] int32
    decode_context_lens: torch.Tensor | None = None  # [num_decode] int32
    prefills: list[PrefillChunk] = field(default_factory=list)
    lora_slots: torch.Tensor | None = None  # [T] int64, -1 = base model
    logits_idx: torch.Tensor | None = None  # tokens whose logits are wanted (None: all)


def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return w * xf.to(x.dtype)


class Rotary:
    """cos/sin tables as Hugging Face Llama computes them (non-interleaved halves)."""

    def __init__(self, cfg: ModelConfig, dtype: torch.dtype, device: str | torch.device) -> None:
        d = cfg.head_dim
        inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64, device=device).float() / d))
        pos = torch.arange(cfg.max_position, device=device).float()
        freqs = torch.outer(pos, inv)
        emb = torch.cat([freqs, freqs], dim=-1)
        self.cos = emb.cos().to(dtype)
        self.sin = emb.sin().to(dtype)

    def apply(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """x ``[T, heads, D]``."""
        cos = self.cos[positions][:, None, :]
        sin = self.sin[positions][:, None, :]
        half = x.shape[-1] // 2
        rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rot * sin


class LlamaModel:
    def __init__(self, cfg: ModelConfig, weights: ModelWeights, kv: PagedKVCache,
                 lora: LoraSlots | None = None) -> None:
        self.cfg = cfg
        self.w = weights
        self.kv = kv
        self.lora = lora
        dev = weights.embed.device
        self.dtype = weights.embed.dtype
        self.rotary = Rotary(cfg, self.dtype, dev)

    def _lora_add(self, layer: int, module: str, x: torch.Tensor, y: torch.Tensor, mask, cols=None) -> None:
        if self.lora is None or mask is None or module not in self.lora.target_modules:
            return
        d = self.lora.delta(layer, module, x, mask)
        if cols is None:
            y.add_(d)
        else:
            y[:, cols[0]:cols[1]].add_(d)

    @torch.inference_mode()
    def forward(self, b: ForwardBatch) -> torch.Tensor:
        cfg = self.cfg
        hq, hkv, d = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        qs, kvs = cfg.q_size, cfg.kv_size
        inter = cfg.intermediate_size
        nd = b.num_decode
        mask = None
        if self.lora is not None and b.lora_slots is not None:
            mask = self.lora.slot_mask(b.lora_slots)
        x = F.embedding(b.input_ids, self.w.embed)
        for li, lw in enumerate(self.w.layers):
            h = rms_norm(x, lw.attn_norm, cfg.rms_norm_eps)
            qkv = F.linear(h, lw.wqkv)
            if mask is not None:
                self._lora_add(li, "q_proj", h, qkv, mask, (0, qs))
                self._lora_add(li, "k_proj", h, qkv, mask, (qs, qs + kvs))
                self._lora_add(li, "v_proj", h, qkv, mask, (qs + kvs, qs + 2 * kvs))
            q = qkv[:, :qs].view(-1, hq, d)
            k = qkv[:, qs:qs + kvs].view(-1, hkv, d)
            v = qkv[:, qs + kvs:].reshape(-1, hkv, d)
            q = self.rotary.apply(q, b.positions)
            k = self.rotary.apply(k, b.positions)
            self.kv.write(li, b.slot_mapping, k, v)
            attn = torch.empty_like(q)
            if nd > 0:
                paged_decode(q[:nd], self.kv.k[li], self.kv.v[li], b.decode_block_tables,
                             b.decode_context_lens, out=attn[:nd])
            for c in b.prefills:
                s, n = c.tok_start, c.num_tokens
                if c.start_pos == 0:
                    kk, vv = k[s:s + n], v[s:s + n]
                else:
                    kk, vv = self.kv.gather(li, c.block_table, c.start_pos + n)
                attn[s:s + n] = prefill_attention(q[s:s + n], kk, vv, c.start_pos)
            attn = attn.view(-1, qs)
            o = F.linear(attn, lw.wo)
            self._lora_add(li, "o_proj", attn, o, mask)
            x = x + o
            h = rms_norm(x, lw.mlp_norm, cfg.rms_norm_eps)
            gu = F.linear(h, lw.w_gate_up)
            self._lora_add(li, "gate_proj", h, gu, mask, (0, inter))
            self._lora_add(li, "up_proj", h, gu, mask, (inter, 2 * inter))
            a = F.silu(gu[:, :inter]) * gu[:, inter:]
            dn = F.linear(a, lw.w_down)
            self._lora_add(li, "down_proj", a, dn, mask)
            x = x + dn
        if b.logits_idx is not None:
            x = x[b.logits_idx]
        x = rms_norm(x, self.w.final_norm, cfg.rms_norm_eps)
        return F.linear(x, self.w.lm_head)
