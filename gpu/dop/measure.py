"""Checking and timing candidates on the GPU (torch, Triton; the search calls it through ``Measurer``).

- Check: every candidate runs first on *fresh* random inputs of the scenario's exact shapes (so the
  compiled kernel is the one that is timed), with its scratch (v, workspace) poisoned with NaN,
  and is compared with the float64 reference of ``gpu.kernels.reference.fp64_apply``:
  ``||y - y_ref|| / ||y_ref|| <= 4u`` (u = 2^-11 fp16, 2^-8 bf16, as ``gpu/check_kernels.py``),
  every value finite. A wrong candidate is reported (and logged by the search), never timed.
- Time: CUDA-graph replays of one rotation over several independent input sets (x, y, v and the
  adapters' slots; at least 128 MiB a repetition where 32 sets allow it, more than 2.5x the L2),
  CUDA events, median over at least 20 repetitions after warm-up (``gpu.common.timing``). The
  segment bounds are the layout's own (tight: segment count and longest segment), the same for
  SGMV, the gathered bmm and every candidate.
- A scenario of several slices (module ``qkv``: q, k and v as one operator) times each candidate
  through ``dop_apply_sliced`` over A ``[slices, S, r, h_in]`` and B ``[S, r, slices x h_out]``, and
  the baselines as one call per slice (Punica's way); the check compares every slice with its own
  float64 reference.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from gpu.common.timing import time_calls
from gpu.kernels.ops import SegmentInfo, lora_apply
from gpu.kernels.reference import fp64_apply
from gpu.kernels.segments import layout_from_lengths

from .kernels import dop_apply, dop_apply_sliced, make_scratch
from .space import Candidate, Scenario

UNIT_ROUNDOFF = {"fp16": 2.0**-11, "bf16": 2.0**-8}
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
ROTATION_BYTES = 128 << 20
MAX_SETS = 32
BMM_MAX_BYTES = 1 << 30


@dataclass
class Outcome:
    """Result of checking (and, if right, timing) one candidate."""

    ok: bool
    us: float | None = None
    p10_us: float | None = None
    p90_us: float | None = None
    rel_err: float | None = None
    reason: str | None = None
    first_call_s: float | None = None  # the first (checked) call, compile included
    fatal: bool = False  # a CUDA error: the context is unusable, the run must stop


class _Inputs:
    """Timing inputs of one scenario: rotated sets sharing one slot stack per weight."""

    def __init__(self, s: Scenario, device: str) -> None:
        dt = DTYPES[s.dtype]
        lens = s.seg_lens
        n_ad = len(lens)
        self.tokens = T = s.tokens
        self.n_sets = n_sets = max(2, min(MAX_SETS, math.ceil(ROTATION_BYTES / s.apply_bytes())))
        S = n_sets * n_ad
        k = s.slices
        self.a = torch.randn(k, S, s.rank, s.h_in, device=device, dtype=dt) * s.h_in**-0.5
        if k == 1:
            self.a = self.a[0]
        self.b = torch.randn(S, s.rank, k * s.h_out, device=device, dtype=dt) * (0.01 * s.rank**-0.5)
        self.ranks = torch.full((S,), s.rank, dtype=torch.int32, device=device)
        self.scales = torch.ones(S, dtype=torch.float32, device=device)
        self.xs = [torch.randn(T, s.h_in, device=device, dtype=dt) for _ in range(n_sets)]
        self.ys = [torch.randn(T, k * s.h_out, device=device, dtype=dt) for _ in range(n_sets)]
        self.segs = [SegmentInfo.from_layout(layout_from_lengths(lens, [j * n_ad + i for i in range(n_ad)]),
                                             device, tokens=T) for j in range(n_sets)]


class GpuMeasurer:
    """Checks and times candidates of one scenario at a time (``prepare`` switches scenario)."""

    def __init__(self, device: str = "cuda", budget_ms: float = 40.0, seed: int = 1234) -> None:
        self.device = device
        self.budget_ms = budget_ms
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.scenario: Scenario | None = None
        self.inputs: _Inputs | None = None

    def prepare(self, s: Scenario) -> None:
        if self.scenario == s:
            return
        self.inputs = None
        torch.cuda.empty_cache()
        self.inputs = _Inputs(s, self.device)
        self.scenario = s

    # -- baselines ------------------------------------------------------------------------------
    def baselines(self, s: Scenario) -> dict:
        """SGMV of gpu/kernels (its config.py tiling, not tuned per scenario) and the gathered bmm,
        timed like the candidates; SGMV is checked against the reference first."""
        self.prepare(s)
        inp = self.inputs
        out: dict = {}
        ok, err, _ = self._check(s, partial(_per_slice, s, lambda x, y, a, b, seg, rk, sc, v=None: lora_apply(
            x, y, a, b, seg, rk, sc, kind="sgmv", v=v)))
        out["sgmv_rel_err"] = err
        if ok:
            vs = [torch.empty(inp.tokens, s.rank, device=self.device, dtype=torch.float32) for _ in range(inp.n_sets)]
            t = self._time([partial(_per_slice, s, partial(lora_apply, kind="sgmv", v=vs[j]), inp.xs[j], inp.ys[j],
                                    inp.a, inp.b, inp.segs[j], inp.ranks, inp.scales) for j in range(inp.n_sets)])
            out.update(sgmv_us=t.median_us, sgmv_p10_us=t.p10_us, sgmv_p90_us=t.p90_us)
        if s.slices * s.tokens * s.rank * (s.h_in + s.h_out) * 2 <= BMM_MAX_BYTES:
            t = self._time([partial(_per_slice, s, partial(lora_apply, kind="bmm"), inp.xs[j], inp.ys[j], inp.a,
                                    inp.b, inp.segs[j], inp.ranks, inp.scales) for j in range(inp.n_sets)])
            out.update(bmm_us=t.median_us, bmm_p10_us=t.p10_us, bmm_p90_us=t.p90_us)
        out["rotation_sets"] = inp.n_sets
        return out

    # -- candidates -----------------------------------------------------------------------------
    def measure(self, c: Candidate, s: Scenario) -> Outcome:
        """Check ``c`` on fresh inputs; time it if it is right."""
        self.prepare(s)
        inp = self.inputs
        t0 = time.perf_counter()
        try:
            ok, err, why = self._check(s, lambda x, y, a, b, seg, rk, sc: _apply(
                s, x, y, a, b, seg, rk, sc, c, self._poisoned_scratch(c, s)))
        except Exception as exc:  # noqa: BLE001 - compile errors (resources), launch errors
            return Outcome(False, reason=f"check raised {type(exc).__name__}: {str(exc)[:300]}",
                           fatal=_is_cuda_error(exc))
        first = time.perf_counter() - t0
        if not ok:
            return Outcome(False, rel_err=err, reason=why, first_call_s=first)
        try:
            scratch = [make_scratch(c, inp.tokens, s.h_in, s.rank, self.device, slices=s.slices)
                       for _ in range(inp.n_sets)]
            t = self._time([partial(_apply, s, inp.xs[j], inp.ys[j], inp.a, inp.b, inp.segs[j], inp.ranks,
                                    inp.scales, c, scratch[j]) for j in range(inp.n_sets)])
        except Exception as exc:  # noqa: BLE001
            return Outcome(False, rel_err=err, reason=f"timing raised {type(exc).__name__}: {str(exc)[:300]}",
                           first_call_s=first, fatal=_is_cuda_error(exc))
        return Outcome(True, t.median_us, t.p10_us, t.p90_us, err, None, first)

    def _poisoned_scratch(self, c: Candidate, s: Scenario):
        sc = make_scratch(c, s.tokens, s.h_in, s.rank, self.device, slices=s.slices)
        for t in (sc.v, sc.ws):
            if t is not None:
                t.fill_(float("nan"))
        return sc

    def _check(self, s: Scenario, fn: Callable) -> tuple[bool, float | None, str | None]:
        """Run ``fn`` once on fresh random inputs of the scenario's shapes; compare with fp64."""
        dt = DTYPES[s.dtype]
        lens = s.seg_lens
        n_ad = len(lens)
        g = self.gen
        dev = self.device
        # fresh slots in a stack of 2 n_ad, used in a random order: a wrong slot index shows
        perm = torch.randperm(2 * n_ad, generator=g, device=dev).tolist()
        seg = SegmentInfo.from_layout(layout_from_lengths(lens, perm[:n_ad]), dev, tokens=s.tokens)
        k = s.slices
        a = torch.randn(k, 2 * n_ad, s.rank, s.h_in, generator=g, device=dev, dtype=torch.float32).mul_(
            s.h_in**-0.5).to(dt)
        b = torch.randn(2 * n_ad, s.rank, k * s.h_out, generator=g, device=dev, dtype=torch.float32).mul_(
            s.rank**-0.5).to(dt)
        x = torch.randn(s.tokens, s.h_in, generator=g, device=dev, dtype=torch.float32).to(dt)
        y = torch.randn(s.tokens, k * s.h_out, generator=g, device=dev, dtype=torch.float32).to(dt)
        ranks = torch.full((2 * n_ad,), s.rank, dtype=torch.int32, device=dev)
        scales = (torch.rand(2 * n_ad, generator=g, device=dev) + 0.5).float()
        cols = [(j * s.h_out, (j + 1) * s.h_out) for j in range(k)]
        ref = torch.cat([fp64_apply(x, y[:, c0:c1], a[j], b[:, :, c0:c1], seg, ranks, scales)[0]
                         for j, (c0, c1) in enumerate(cols)], dim=1)
        if k == 1:
            a = a[0]
        out = fn(x, y.clone(), a, b, seg, ranks, scales)
        if out.is_cuda:
            torch.cuda.synchronize()
        if not bool(torch.isfinite(out).all()):
            return False, None, "non-finite output"
        err = float((out.double() - ref).norm() / ref.norm())
        tol = 4 * UNIT_ROUNDOFF[s.dtype]
        if not err <= tol:
            return False, err, f"relative error {err:.3e} > {tol:.3e}"
        return True, err, None

    def _time(self, calls: list[Callable]):
        return time_calls(calls, "graph", budget_ms=self.budget_ms)


def _apply(s: Scenario, x, y, a, b, seg, ranks, scales, c: Candidate, scratch):
    """Candidate ``c`` on a scenario of one slice (``dop_apply``) or several (``dop_apply_sliced``)."""
    if s.slices == 1:
        return dop_apply(x, y, a, b, seg, ranks, scales, c, scratch)
    bounds = tuple(j * s.h_out for j in range(1, s.slices))
    return dop_apply_sliced(x, y, a, b, seg, ranks, scales, c, bounds, scratch)


def _per_slice(s: Scenario, fn: Callable, x, y, a, b, seg, ranks, scales):
    """A one-slice operator ``fn(x, y, a, b, seg, ranks, scales)`` once per slice of a scenario (the
    baselines: SGMV and the gathered bmm, as Punica applies q, k and v); returns y."""
    if s.slices == 1:
        return fn(x, y, a, b, seg, ranks, scales)
    for j in range(s.slices):
        c0, c1 = j * s.h_out, (j + 1) * s.h_out
        fn(x, y[:, c0:c1], a[j], b[:, :, c0:c1], seg, ranks, scales)
    return y


def _is_cuda_error(exc: Exception) -> bool:
    text = str(exc)
    return "CUDA error" in text or "illegal memory access" in text or "cudaError" in text


def measure_hbm_bytes_per_s() -> float:
    """HBM bandwidth: a 1 GiB device-to-device copy, bytes read + written (``gpu.common.peaks``)."""
    from gpu.common.peaks import measure_hbm

    return measure_hbm()
