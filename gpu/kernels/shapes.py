"""Projection shapes of Llama-2 targeted by LoRA: q, k, v, o (h -> h), gate, up (h -> inter),
down (inter -> h). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelShape:
    """Hidden and intermediate sizes of one model."""

    name: str
    hidden: int
    intermediate: int

    def module_dims(self, module: str) -> tuple[int, int]:
        """``(h_in, h_out)`` of a target module (``q_proj``... or the classes ``qkvo``, ``gate_up``, ``down``;
        ``qkv``, q, k and v as one sliced operator, gives one slice's)."""
        h, i = self.hidden, self.intermediate
        if module in ("q_proj", "k_proj", "v_proj", "o_proj", "qkvo", "qkv"):
            return h, h
        if module in ("gate_proj", "up_proj", "gate_up"):
            return h, i
        if module in ("down_proj", "down"):
            return i, h
        raise ValueError(f"unknown module {module!r}")


LLAMA2_7B = ModelShape("llama2-7b", 4096, 11008)
LLAMA2_13B = ModelShape("llama2-13b", 5120, 13824)
MODELS: dict[str, ModelShape] = {m.name: m for m in (LLAMA2_7B, LLAMA2_13B)}
MODULE_CLASSES: tuple[str, ...] = ("qkvo", "gate_up", "down")
"""Modules with distinct shapes: q, k, v, o share ``qkvo``; gate and up share ``gate_up``."""
MODULE_SLICES: dict[str, int] = {"qkv": 3}
"""Modules applied as one operator over several slices of one input (``gpu.dop.kernels.dop_apply_sliced``):
``qkv`` is q, k and v of Llama-2 (equal widths: multi-head attention)."""
