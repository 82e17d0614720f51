"""LoRA kernels: SGMV in Triton, its references, and the torch-free segment metadata.

Importing this package imports no torch; the torch/Triton names load on first use.

Stable API (see docs/kernels.md):

- ``build_segments(slot_per_row) -> SegmentLayout`` (unpacks as seg_starts, seg_lens, seg_slots),
  ``sort_permutation``, ``pad_layout``, ``layout_from_lengths``: torch-free.
- ``SegmentInfo.from_layout(layout, device, tokens=..., row_index=..., max_seg_len=...)``.
- ``sgmv_shrink(x, a_stack, seg, ranks, v)``, ``sgmv_expand(v, b_stack, seg, ranks, scales, y)``,
  ``lora_apply(x, y, a_stack, b_stack, seg, ranks, scales, kind="sgmv" | "torch" | "bmm")``.
"""

from __future__ import annotations

from typing import Any

from .segments import NO_ADAPTER, SegmentLayout, build_segments, layout_from_lengths, pad_layout, sort_permutation

_LAZY = {
    "SegmentInfo": "ops",
    "sgmv_shrink": "ops",
    "sgmv_expand": "ops",
    "lora_apply": "ops",
    "fp64_apply": "reference",
    "torch_loop_apply": "reference",
    "torch_loop_shrink": "reference",
    "torch_loop_expand": "reference",
    "bmm_apply": "reference",
    "bmm_shrink": "reference",
}

__all__ = [
    "NO_ADAPTER", "SegmentLayout", "build_segments", "layout_from_lengths", "pad_layout", "sort_permutation",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
