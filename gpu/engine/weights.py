"""Model shapes and base weights of the live engine's Llama-architecture decoder.

The engine keeps one fused layout per layer: ``wqkv`` (q, k, v rows stacked), ``wo``,
``w_gate_up`` (gate rows then up rows) and ``w_down``, plus the two RMSNorm weights.
Weights are either random (seeded; latency does not depend on values) or read from a local
folder holding a Hugging Face Llama checkpoint (``config.json`` + ``*.safetensors``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a Llama-architecture decoder."""

    name: str = "llama-2-7b"
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_layers: int = 32
    num_heads: int = 32
    num_kv_heads: int = 32
    vocab_size: int = 32000
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_position: int = 4096

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def q_size(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_kv_heads * self.head_dim

    def module_dims(self, module: str) -> tuple[int, int]:
        """(in_features, out_features) of a LoRA target module."""
        h, i = self.hidden_size, self.intermediate_size
        return {
            "q_proj": (h, self.q_size),
            "k_proj": (h, self.kv_size),
            "v_proj": (h, self.kv_size),
            "o_proj": (self.q_size, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }[module]

    def num_params(self) -> int:
        """Parameters, embeddings and LM head included."""
        h, i, v = self.hidden_size, self.intermediate_size, self.vocab_size
        per_layer = h * (self.q_size + 2 * self.kv_size) + self.q_size * h + 3 * h * i + 2 * h
        return self.num_layers * per_layer + 2 * v * h + h

    def weight_bytes(self, dtype_bytes: int = 2) -> int:
        return self.num_params() * dtype_bytes

    def weight_bytes_read_per_step(self, dtype_bytes: int = 2) -> int:
        """Bytes of weights a decode step must read: everything but the embedding table
        (only a few rows of it are gathered)."""
        return (self.num_params() - self.vocab_size * self.hidden_size) * dtype_bytes

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * dtype_bytes

    def matmul_flops_per_token(self) -> int:
        """2 * (weights touched by one token's matmuls), LM head included."""
        h, i = self.hidden_size, self.intermediate_size
        per_layer = h * (self.q_size + 2 * self.kv_size) + self.q_size * h + 3 * h * i
        return 2 * (self.num_layers * per_layer + self.vocab_size * h)

    def to_dict(self) -> dict:
        return asdict(self)


LLAMA2_7B = ModelConfig()
LLAMA2_13B = ModelConfig(
    name="llama-2-13b", hidden_size=5120, intermediate_size=13824, num_layers=40,
    num_heads=40, num_kv_heads=40,
)
# A toy shape for CPU tests of the replay loop (not a real model).
TINY = ModelConfig(name="tiny-llama", hidden_size=64, intermediate_size=96, num_layers=2, num_heads=4,
                   num_kv_heads=2, vocab_size=97, max_position=4096)
PRESETS = {"llama-2-7b": LLAMA2_7B, "llama-2-13b": LLAMA2_13B, "tiny-llama": TINY}


def config_from_hf(path: str | Path) -> ModelConfig:
    """Read a Hugging Face Llama ``config.json``."""
    cfg = json.loads((Path(path) / "config.json").read_text())
    theta = cfg.get("rope_theta")
    if theta is None:
        theta = (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0)
    scaling = cfg.get("rope_scaling") or (cfg.get("rope_parameters") or {})
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    if rope_type not in ("default", None):
        raise ValueError(f"{path}/config.json: rope type {rope_type!r} not supported (only default)")
    heads = cfg["num_attention_heads"]
    return ModelConfig(
        name=cfg.get("_name_or_path") or Path(path).name,
        hidden_size=cfg["hidden_size"],
        intermediate_size=cfg["intermediate_size"],
        num_layers=cfg["num_hidden_layers"],
        num_heads=heads,
        num_kv_heads=cfg.get("num_key_value_heads") or heads,
        vocab_size=cfg["vocab_size"],
        rms_norm_eps=cfg.get("rms_norm_eps", 1e-5),
        rope_theta=float(theta),
        max_position=cfg.get("max_position_embeddings", 4096),
    )


@dataclass
class LayerWeights:
    attn_norm: torch.Tensor  # [h]
    wqkv: torch.Tensor  # [q + 2 kv, h]
    wo: torch.Tensor  # [h, q]
    mlp_norm: torch.Tensor  # [h]
    w_gate_up: torch.Tensor  # [2 i, h]
    w_down: torch.Tensor  # [h, i]


@dataclass
class ModelWeights:
    embed: torch.Tensor  # [vocab, h]
    layers: list[LayerWeights]
    final_norm: torch.Tensor  # [h]
    lm_head: torch.Tensor  # [vocab, h]

    def nbytes(self) -> int:
        total = self.embed.nbytes + self.final_norm.nbytes + self.lm_head.nbytes
        for lw in self.layers:
            total += sum(t.nbytes for t in (lw.attn_norm, lw.wqkv, lw.wo, lw.mlp_norm, lw.w_gate_up, lw.w_down))
        return total


def random_weights(cfg: ModelConfig, dtype: torch.dtype, device: str | torch.device, seed: int = 0) -> ModelWeights:
    """Seeded random weights, each matrix N(0, 1/in_features) so that every projection keeps
    the scale of its input: activations stay finite through any depth in fp16."""
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(seed)

    def mat(out_f: int, in_f: int) -> torch.Tensor:
        w = torch.empty(out_f, in_f, dtype=dtype, device=device)
        w.normal_(0.0, 1.0 / math.sqrt(in_f), generator=gen)
        return w

    h, i = cfg.hidden_size, cfg.intermediate_size
    layers = []
    for _ in range(cfg.num_layers):
        layers.append(LayerWeights(
            attn_norm=torch.ones(h, dtype=dtype, device=device),
            wqkv=mat(cfg.q_size + 2 * cfg.kv_size, h),
            # Residual branches scaled down by sqrt(2 * layers) so the residual stream grows slowly.
            wo=mat(h, cfg.q_size).mul_(1.0 / math.sqrt(2 * cfg.num_layers)),
            mlp_norm=torch.ones(h, dtype=dtype, device=device),
            w_gate_up=mat(2 * i, h),
            w_down=mat(h, i).mul_(1.0 / math.sqrt(2 * cfg.num_layers)),
        ))
    embed = torch.empty(cfg.vocab_size, h, dtype=dtype, device=device).normal_(0.0, 1.0, generator=gen)
    return ModelWeights(
        embed=embed, layers=layers, final_norm=torch.ones(h, dtype=dtype, device=device),
        lm_head=mat(cfg.vocab_size, h),
    )


def load_hf_weights(path: str | Path, cfg: ModelConfig, dtype: torch.dtype, device: str | torch.device) -> ModelWeights:
    """Read a Hugging Face Llama checkpoint (``*.safetensors``) into the fused layout."""
    import torch
    from safetensors import safe_open

    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{path}: no *.safetensors files")
    tensors: dict[str, torch.Tensor] = {}
    for f in files:
        with safe_open(str(f), framework="pt", device="cpu") as fh:
            for key in fh.keys():
                tensors[key.removeprefix("model.")] = fh.get_tensor(key)

    def get(name: str) -> torch.Tensor:
        if name not in tensors:
            raise KeyError(f"{path}: tensor {name!r} missing")
        return tensors[name].to(device=device, dtype=dtype)

    layers = []
    for li in range(cfg.num_layers):
        p = f"layers.{li}."
        layers.append(LayerWeights(
            attn_norm=get(p + "input_layernorm.weight"),
            wqkv=torch.cat([get(p + "self_attn.q_proj.weight"), get(p + "self_attn.k_proj.weight"),
                            get(p + "self_attn.v_proj.weight")], 0).contiguous(),
            wo=get(p + "self_attn.o_proj.weight"),
            mlp_norm=get(p + "post_attention_layernorm.weight"),
            w_gate_up=torch.cat([get(p + "mlp.gate_proj.weight"), get(p + "mlp.up_proj.weight")], 0).contiguous(),
            w_down=get(p + "mlp.down_proj.weight"),
        ))
    embed = get("embed_tokens.weight")
    lm_head = get("lm_head.weight") if "lm_head.weight" in tensors else embed
    return ModelWeights(embed=embed, layers=layers, final_norm=get("norm.weight"), lm_head=lm_head)
