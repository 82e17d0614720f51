"""Measured ceilings of the GPU, taken in the same run as the numbers they bound.

- HBM bandwidth: a large device-to-device copy (1 GiB), counting bytes read plus bytes written.
- Tensor-core peak: a large square matmul (8192^3) in fp16 and bf16 on random data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .timing import time_calls


@dataclass(frozen=True)
class Peaks:
    """Measured ceilings: bytes/s and flop/s (median of timed repetitions)."""

    hbm_bytes_per_s: float
    fp16_flops_per_s: float
    bf16_flops_per_s: float

    def flops_per_s(self, dtype: str) -> float:
        """Tensor peak for ``"fp16"`` or ``"bf16"``."""
        return self.bf16_flops_per_s if dtype == "bf16" else self.fp16_flops_per_s


def measure_hbm(nbytes: int = 1 << 30) -> float:
    """Bytes read + written per second of a device-to-device copy of ``nbytes``."""
    src = torch.randn(nbytes // 2, device="cuda", dtype=torch.float16)
    dst = torch.empty_like(src)
    t = time_calls([lambda: dst.copy_(src)], "eager", min_reps=20, max_reps=30)
    return 2 * nbytes / (t.median_us * 1e-6)


def measure_matmul(dtype: torch.dtype, n: int = 8192) -> float:
    """Flop/s of an ``n``-cube matmul on random data."""
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    c = torch.empty(n, n, device="cuda", dtype=dtype)
    t = time_calls([lambda: torch.matmul(a, b, out=c)], "eager", min_reps=20, max_reps=30, warmup=5)
    return 2 * n**3 / (t.median_us * 1e-6)


def measure_peaks() -> Peaks:
    """Measure HBM bandwidth and fp16 / bf16 tensor peaks."""
    return Peaks(measure_hbm(), measure_matmul(torch.float16), measure_matmul(torch.bfloat16))
