"""Dop's search space: sketches (kernel structure) and low-level details, scenarios, validity. Torch-free.

A *candidate* is one kernel implementation of the whole LoRA operator
``y[rows] += (x[rows] @ A_s^T) @ B_s * scale_s`` for every segment s (the semantics of
``gpu/kernels``). It has two levels:

Sketch (structure):

- ``tiling``: ``"segment"`` launches a column of programs per segment slot (Punica's SGMV: the grid
  is segments x m-groups, programs of short or empty segments find nothing to do); ``"tiles"``
  launches one program per m-tile of the whole batch (tile over tokens: each program finds its
  segment by a prefix sum of the segments' tile counts, so no program is idle).
- ``order``: ``"adapter"`` (adapter-major: one program walks every m-tile of its segment, so it
  loads each weight tile once per segment; expand keeps its B tile in registers across rows) or
  ``"token"`` (token-major: the segment's m-tiles are spread over programs side by side). Only
  meaningful for ``tiling="segment"``; ``"tiles"`` is token-major by construction.
- ``split``: shrink split-K, ``"none"``, ``"atomic"`` (K slices add into an fp32 v by atomics,
  v zeroed first) or ``"two_phase"`` (each slice writes its partial sums to a workspace; a second
  kernel adds them: no atomics, no zeroing, one more launch).
- ``fuse``: ``"separate"`` (shrink kernel, then expand kernel, v through device memory) or
  ``"fused"`` (one kernel computes the rank-r intermediate of its rows on chip and expands it at
  once; ``n_split`` programs share h_out and each recomputes the shrink of its rows).
- ``math``: ``"dot"`` (tensor-core ``tl.dot`` tiles, rows padded to at least 16) or ``"gemv"``
  (multiply-and-sum on the CUDA cores, 1 to 4 rows per tile: no padded rows, for one-row segments).

Details: ``block_m``, ``block_k`` (shrink), ``block_n`` (expand), ``split_k``, ``n_split`` (fused),
``warps_s``/``stages_s`` (shrink or fused kernel), ``warps_e``/``stages_e`` (expand kernel),
``item_fast`` (grid order / swizzle: whether consecutive program ids walk m-tiles first, which
shares a weight tile between neighbouring programs, or the n/K dimension first).

``normalize`` maps a candidate to its canonical form (details a sketch does not use are set to
fixed values) so that equal kernels have equal keys; ``check`` says why a point is invalid or
dominated for a scenario (None if valid).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace

from gpu.kernels.roofline import op_bytes, op_flops
from gpu.kernels.shapes import MODELS, MODULE_SLICES
from gpu.kernels.workloads import WORKLOADS, decode_segment_lengths, prefill_segment_lengths

SPACE_VERSION = 1
"""Bumped when the meaning of a candidate changes (a state of another version is not resumed)."""

SMEM_LIMIT_BYTES = 227 * 1024
"""Shared memory a block can get on the H100/H200 (227 KB, after opting in)."""
NUM_SMS = 132
MAX_GRID_AXIS = 65535
MAX_ACC_PER_THREAD = 128
"""fp32 accumulator (or gemv product) elements per thread above which a tile spills registers."""

SKETCH_CHOICES: dict[str, tuple[str, ...]] = {
    "tiling": ("segment", "tiles"),
    "order": ("adapter", "token"),
    "split": ("none", "atomic", "two_phase"),
    "fuse": ("separate", "fused"),
    "math": ("dot", "gemv"),
}
DETAIL_CHOICES: dict[str, tuple[int, ...]] = {
    "block_m": (1, 2, 4, 16, 32, 64),
    "block_k": (32, 64, 128, 256),
    "block_n": (32, 64, 128, 256),
    "split_k": (1, 2, 4, 8, 16, 32),
    "n_split": (1, 2, 4, 8, 16, 32),
    "warps_s": (1, 2, 4, 8),
    "stages_s": (1, 2, 3, 4),
    "warps_e": (1, 2, 4, 8),
    "stages_e": (1, 2, 3, 4),
    "item_fast": (0, 1),
}
GENES: tuple[str, ...] = (*SKETCH_CHOICES, *DETAIL_CHOICES)


@dataclass(frozen=True)
class Candidate:
    """One point of the space (see the module docstring)."""

    tiling: str = "segment"
    order: str = "token"
    split: str = "none"
    fuse: str = "separate"
    math: str = "dot"
    block_m: int = 16
    block_k: int = 128
    block_n: int = 128
    split_k: int = 1
    n_split: int = 1
    warps_s: int = 4
    stages_s: int = 4
    warps_e: int = 4
    stages_e: int = 2
    item_fast: int = 0

    def key(self) -> str:
        """Stable short text of the candidate (equal for equal kernels after ``normalize``)."""
        c = self
        return (f"{c.tiling[:3]}-{c.order[:3]}-{c.split}-{c.fuse[:3]}-{c.math}-m{c.block_m}k{c.block_k}n{c.block_n}"
                f"-sk{c.split_k}-ns{c.n_split}-w{c.warps_s}s{c.stages_s}-w{c.warps_e}s{c.stages_e}-f{c.item_fast}")

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> Candidate:
        names = {f.name for f in fields(Candidate)}
        return Candidate(**{k: v for k, v in d.items() if k in names})

    def sketch(self) -> str:
        return f"{self.tiling}/{self.order}/{self.split}/{self.fuse}/{self.math}"


@dataclass(frozen=True)
class Scenario:
    """One serving scenario: model module shape, dtype, rank, and a batch of one workload type."""

    model: str
    module: str
    rank: int
    workload: str
    phase: str  # "decode" or "prefill"
    tokens: int
    dtype: str = "fp16"

    @property
    def h_in(self) -> int:
        return MODELS[self.model].module_dims(self.module)[0]

    @property
    def h_out(self) -> int:
        """Output columns of one slice (all of them for a module of one slice)."""
        return MODELS[self.model].module_dims(self.module)[1]

    @property
    def slices(self) -> int:
        """Projections applied as one operator (``qkv``: 3, each ``h_in -> h_out``), else 1."""
        return MODULE_SLICES.get(self.module, 1)

    @property
    def seg_lens(self) -> tuple[int, ...]:
        fn = decode_segment_lengths if self.phase == "decode" else prefill_segment_lengths
        return tuple(fn(self.workload, self.tokens))

    @property
    def elem_bytes(self) -> int:
        return 2

    def key(self) -> str:
        return f"{self.model}/{self.module}/{self.dtype}/r{self.rank}/{self.phase}{self.tokens}/{self.workload}"

    def layout_key(self) -> str:
        """Scenarios with equal layout keys are the same kernel problem (searched once)."""
        sl = f"x{self.slices}slices" if self.slices > 1 else ""
        return f"{self.h_in}x{self.h_out}{sl}/{self.dtype}/r{self.rank}/" + ",".join(map(str, self.seg_lens))

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> Scenario:
        return Scenario(**{f.name: d[f.name] for f in fields(Scenario)})

    @staticmethod
    def from_key(key: str) -> Scenario:
        model, module, dtype, r, pt, workload = key.split("/")
        phase = "decode" if pt.startswith("decode") else "prefill"
        return Scenario(model, module, int(r[1:]), workload, phase, int(pt[len(phase):]), dtype)

    def apply_bytes(self) -> int:
        lens = self.seg_lens
        return self.slices * op_bytes("apply", lens, [self.rank] * len(lens), self.h_in, self.h_out, self.elem_bytes)

    def apply_flops(self) -> int:
        lens = self.seg_lens
        return self.slices * op_flops("apply", lens, [self.rank] * len(lens), self.h_in, self.h_out)


# -- scenario sets ---------------------------------------------------------------------------------

DECODE_BUCKETS = (1, 4, 16, 64)


def scenario_set(name: str, dtype: str = "fp16") -> list[Scenario]:
    """Scenarios in priority order. ``default`` fits about 4 minutes of one H200 call (Llama-2-7B
    q/o shape 4096 -> 4096, ranks 16 and 64, decode 1/4/16/64 and a 512-token prefill chunk);
    ``full`` adds the 2048-token chunk, ranks 8 and 32, and the 13B shape (5120 -> 5120).
    ``qkv`` is ``default``'s scenarios for q, k and v as one sliced operator (module ``qkv``: the
    engine's ``dop`` kind applies them so). ``13b`` is ``default`` on the Llama-2-13B shape (about one
    call). A comma-separated list of scenario keys is also accepted."""
    def block(model: str, rank: int, phases: tuple[tuple[str, int], ...]) -> list[Scenario]:
        return [Scenario(model, "qkvo", rank, w, ph, t, dtype) for ph, t in phases for w in WORKLOADS]

    decode = tuple(("decode", t) for t in DECODE_BUCKETS)
    if name in ("default", "13b"):
        model = "llama2-7b" if name == "default" else "llama2-13b"
        return (block(model, 16, decode) + block(model, 64, decode)
                + block(model, 16, (("prefill", 512),)) + block(model, 64, (("prefill", 512),)))
    if name == "full":
        extra = (block("llama2-7b", 16, (("prefill", 2048),)) + block("llama2-7b", 64, (("prefill", 2048),))
                 + block("llama2-7b", 8, decode) + block("llama2-7b", 32, decode)
                 + block("llama2-13b", 16, decode) + block("llama2-13b", 64, decode))
        return scenario_set("default", dtype) + extra
    if name == "qkv":
        return [replace(s, module="qkv") for s in scenario_set("default", dtype)]
    if name == "smoke":
        return [Scenario("llama2-7b", "qkvo", 16, w, "decode", t, dtype) for t in (1, 16) for w in WORKLOADS]
    return [Scenario.from_key(k.strip()) for k in name.split(",") if k.strip()]


# -- geometry shared by validity, the analytic estimate and the launcher -----------------------------

def next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def block_r(c: Candidate, rank: int) -> int:
    """The rank tile: the whole rank (tensor-core paths need at least 16)."""
    return max(16, next_pow2(rank)) if c.math == "dot" else next_pow2(rank)


def k_per_split(c: Candidate, h_in: int) -> tuple[int, int]:
    """(K range per slice, number of slices) of the shrink."""
    k_blocks = cdiv(h_in, c.block_k)
    sk = max(1, min(c.split_k, k_blocks))
    kps = cdiv(k_blocks, sk) * c.block_k
    return kps, cdiv(h_in, kps)


def m_items(c: Candidate, num_segments: int, tokens: int, max_seg_len: int) -> tuple[int, int]:
    """(programs along the row dimension, m_groups) of a launch: segment slots x m-groups for the
    segment tiling, a bound on the number of m-tiles for the tiles tiling."""
    bound = max(1, min(tokens, max_seg_len))
    if c.tiling == "tiles":
        return min(cdiv(tokens, c.block_m) + num_segments, num_segments * cdiv(bound, c.block_m)), 1
    groups = 1 if c.order == "adapter" else cdiv(bound, c.block_m)
    return num_segments * groups, groups


def normalize(c: Candidate) -> Candidate:
    """Canonical form: details the sketch does not use get fixed values."""
    if c.tiling == "tiles":
        c = replace(c, order="token")
    if c.split == "none":
        c = replace(c, split_k=1)
    elif c.split_k == 1:
        c = replace(c, split="none")
    if c.fuse == "fused":
        c = replace(c, split="none", split_k=1, warps_e=4, stages_e=2)
    else:
        c = replace(c, n_split=1)
    return c


def check(c: Candidate, s: Scenario) -> str | None:
    """Why ``c`` is invalid (or dominated) for ``s``; None if it is a valid point."""
    for g, choices in (*SKETCH_CHOICES.items(), *DETAIL_CHOICES.items()):
        if getattr(c, g) not in choices:
            return f"{g}={getattr(c, g)!r} not in the space"
    if normalize(c) != c:
        return "not in canonical form"
    br = block_r(c, s.rank)
    eb = s.elem_bytes
    lens = s.seg_lens
    max_len = max(lens)
    if c.math == "dot" and c.block_m < 16:
        return "tl.dot needs block_m >= 16"
    if c.math == "gemv" and c.block_m > 4:
        return "gemv path takes 1 to 4 rows per tile"
    if c.block_m > max(16 if c.math == "dot" else 1, next_pow2(max_len)):
        return "dominated: block_m larger than the longest segment"
    k_blocks = cdiv(s.h_in, c.block_k)
    if c.split != "none" and c.split_k > k_blocks // 2:
        return "split_k leaves a slice under two K blocks"
    if c.n_split > 1 and c.n_split > cdiv(s.h_out, c.block_n):
        return "n_split exceeds the number of n-tiles"
    if c.block_n > next_pow2(s.h_out) or c.block_k > next_pow2(s.h_in):
        return "tile larger than the matrix"
    # registers: accumulators and gemv products per thread
    threads_s, threads_e = 32 * c.warps_s, 32 * (c.warps_s if c.fuse == "fused" else c.warps_e)
    if c.math == "dot":  # loaded tiles are staged in shared memory (counted below), accumulators in registers
        per_s = c.block_m * br / threads_s
        per_e = c.block_m * c.block_n / threads_e
    else:
        per_s = c.block_m * c.block_k * br / threads_s
        per_e = c.block_m * br * c.block_n / threads_e
    if per_s > MAX_ACC_PER_THREAD or per_e > MAX_ACC_PER_THREAD:
        return "tile too large for the registers (would spill)"
    if smem_bytes(c, br, eb) > SMEM_LIMIT_BYTES:
        return f"shared memory {smem_bytes(c, br, eb)} B > {SMEM_LIMIT_BYTES} B"
    items, _ = m_items(c, len(lens), s.tokens, max_len)
    if items > MAX_GRID_AXIS:
        return "grid too large"
    if s.slices > 1 and c.fuse == "fused":
        return "a fused kernel cannot run slices"
    if s.slices > 1 and s.h_out % c.block_n:
        return "an n-tile would straddle two slices"
    return None


def smem_bytes(c: Candidate, br: int, eb: int) -> int:
    """Estimate of the shared memory of the largest kernel: pipelined stages of the loaded tiles,
    plus the layout conversion of the expand's fp32 output tile."""
    shrink = c.stages_s * (c.block_m * c.block_k + c.block_k * br) * eb
    stages_e = c.stages_s if c.fuse == "fused" else c.stages_e
    expand = stages_e * (c.block_m * br * 4 + br * c.block_n * eb) + c.block_m * c.block_n * 4
    return shrink + expand if c.fuse == "fused" else max(shrink, expand)


# -- launches and an analytic estimate (the cost model's prior and one of its features) --------------

def launches(c: Candidate) -> int:
    """Kernel launches of one apply (a memset for atomic split-K counts as one)."""
    if c.fuse == "fused":
        return 1
    return 2 + (1 if c.split != "none" else 0)


def grid_programs(c: Candidate, s: Scenario) -> tuple[int, int]:
    """(shrink-or-fused programs, expand programs)."""
    lens = s.seg_lens
    items, _ = m_items(c, len(lens), s.tokens, max(lens))
    if c.fuse == "fused":
        return c.n_split * items, 0
    _, sk = k_per_split(c, s.h_in)
    return s.slices * sk * items, s.slices * cdiv(s.h_out, c.block_n) * items


def analytic_us(c: Candidate, s: Scenario, hbm_bytes_per_s: float = 4.3e12) -> float:
    """A rough time model: per launch, a fixed cost plus the bytes it moves over the bandwidth that
    its programs can draw (one SM draws about 1/60 of the chip's; fewer programs, less bandwidth),
    with the re-reads each sketch implies (weights per m-tile, x per n-split, v per n-tile)."""
    lens = s.seg_lens
    eb = s.elem_bytes
    r = s.rank
    rows = sum(lens)
    segs = len(lens)
    tiles = sum(cdiv(n, c.block_m) for n in lens)
    padded_rows = tiles * c.block_m
    a_bytes = segs * r * s.h_in * eb
    b_bytes = segs * r * s.h_out * eb
    p_main, p_exp = grid_programs(c, s)
    idle = p_main - (tiles * (p_main // max(1, m_items(c, segs, s.tokens, max(lens))[0])))

    def t(nbytes: float, programs: int) -> float:
        share = min(1.0, max(programs, 1) / 60.0)
        return 2.5 + nbytes / (hbm_bytes_per_s * share) * 1e6

    rereads = tiles / segs if c.order == "token" or c.tiling == "tiles" else 1.0
    compute_pad = padded_rows / rows if c.math == "dot" else 1.0
    if c.fuse == "fused":
        nbytes = c.n_split * (rows * s.h_in * eb + a_bytes) + b_bytes * rereads + 2 * rows * s.h_out * eb
        return t(nbytes * compute_pad ** 0.25, p_main) + 0.02 * max(idle, 0)
    _, sk = k_per_split(c, s.h_in)
    k = s.slices  # each slice reads x and its own weights, writes its own v and y columns
    v_bytes = rows * r * 4 * (sk if c.split == "two_phase" else 1)
    shrink = t(k * (rows * s.h_in * eb + a_bytes * rereads + v_bytes), p_main)
    expand = t(k * (v_bytes / max(1, sk if c.split == "two_phase" else 1) * cdiv(s.h_out, c.block_n)
                    + b_bytes * rereads + 2 * rows * s.h_out * eb), p_exp)
    extra = 2.0 if c.split != "none" else 0.0
    return (shrink + expand) * compute_pad ** 0.25 + extra


# -- random points, mutation, crossover -------------------------------------------------------------

def random_candidate(rng: random.Random, s: Scenario, tries: int = 200) -> Candidate | None:
    """A uniformly drawn valid candidate (rejection sampling), or None."""
    for _ in range(tries):
        d = {g: rng.choice(ch) for g, ch in (*SKETCH_CHOICES.items(), *DETAIL_CHOICES.items())}
        c = repair(Candidate(**d), s)
        if check(c, s) is None:
            return c
    return None


def repair(c: Candidate, s: Scenario) -> Candidate:
    """Nudge a candidate towards validity: the sketch decides which details make sense."""
    c = normalize(c)
    lens = s.seg_lens
    cap = next_pow2(max(lens))
    if c.math == "dot":
        bm = min(max(16, c.block_m), max(16, cap))
    else:
        bm = min(c.block_m, 4, cap)
    return normalize(replace(c, block_m=bm))


def mutate(c: Candidate, rng: random.Random, s: Scenario) -> Candidate:
    """Change one gene: a sketch dimension (with probability 0.3) or one detail."""
    if rng.random() < 0.3:
        g = rng.choice(tuple(SKETCH_CHOICES))
        choices = [v for v in SKETCH_CHOICES[g] if v != getattr(c, g)]
        new = replace(c, **{g: rng.choice(choices)})
        if g == "split" and new.split != "none" and new.split_k == 1:
            new = replace(new, split_k=rng.choice((2, 4, 8)))
    else:
        g = rng.choice(tuple(DETAIL_CHOICES))
        ch = DETAIL_CHOICES[g]
        i = ch.index(getattr(c, g))
        # neighbouring values most of the time (local search), any value sometimes
        j = i + rng.choice((-1, 1)) if rng.random() < 0.7 else rng.randrange(len(ch))
        new = replace(c, **{g: ch[min(max(j, 0), len(ch) - 1)]})
    return repair(new, s)


def crossover(a: Candidate, b: Candidate, rng: random.Random, s: Scenario) -> Candidate:
    """Sketch from one parent (whole), each detail from either parent."""
    base, other = (a, b) if rng.random() < 0.5 else (b, a)
    d = base.to_dict()
    for g in DETAIL_CHOICES:
        if rng.random() < 0.5:
            d[g] = getattr(other, g)
    return repair(Candidate(**d), s)


def sgmv_like(s: Scenario) -> Candidate:
    """The point of this space closest to gpu/kernels' SGMV tiling (config.py's heuristic)."""
    lens = s.seg_lens
    bound = max(lens)
    bm = 16 if bound <= 64 else 64
    br = max(16, next_pow2(s.rank))
    bk = 64 if br >= 128 else 128
    k_blocks = cdiv(s.h_in, bk)
    m_groups = cdiv(bound, bm)
    base = max(1, len(lens) * m_groups)
    sk = cdiv(4 * NUM_SMS, base) if bound <= 64 else NUM_SMS // base
    sk = max(1, min(sk, k_blocks // 2))
    sk = max(x for x in DETAIL_CHOICES["split_k"] if x <= sk)
    bn = 256 if br <= 32 else 128
    return normalize(Candidate(tiling="segment", order="token", split="atomic" if sk > 1 else "none",
                               fuse="separate", math="dot", block_m=bm, block_k=bk, block_n=bn, split_k=sk,
                               warps_s=4, stages_s=4, warps_e=8 if bm * bn >= 64 * 128 else 4, stages_e=2))


def seed_candidates(s: Scenario) -> list[Candidate]:
    """Hand-written starting points covering the sketches (invalid ones are filtered by the caller)."""
    base = sgmv_like(s)
    sk = max(base.split_k, 2)
    return [
        base,
        replace(base, tiling="tiles", split="two_phase", split_k=sk),
        normalize(replace(base, fuse="fused", n_split=8, block_n=128, warps_s=4, stages_s=3)),
        normalize(replace(base, math="gemv", block_m=1, block_k=256, split="atomic", split_k=sk,
                          block_n=128, warps_s=4, warps_e=4)),
        normalize(replace(base, math="gemv", block_m=1, block_k=256, fuse="fused", n_split=16, block_n=64,
                          warps_s=4, stages_s=2)),
        replace(base, order="adapter", item_fast=1),
    ]


# -- features for the cost model ----------------------------------------------------------------------

def features(c: Candidate, s: Scenario) -> list[float]:
    """Numeric features of a (candidate, scenario) pair: one-hot sketch, log2 details, the
    scenario's shape, and derived quantities (grid sizes, waves, launches, analytic estimate)."""
    f: list[float] = []
    for g, ch in SKETCH_CHOICES.items():
        f += [1.0 if getattr(c, g) == v else 0.0 for v in ch]
    for g in DETAIL_CHOICES:
        f.append(math.log2(getattr(c, g) + (1 if g == "item_fast" else 0)))
    lens = s.seg_lens
    f += [math.log2(s.tokens), math.log2(len(lens)), math.log2(max(lens)), math.log2(s.rank),
          math.log2(s.h_in), math.log2(s.h_out)]
    p_main, p_exp = grid_programs(c, s)
    tiles = sum(cdiv(n, c.block_m) for n in lens)
    f += [math.log2(max(1, p_main)), math.log2(max(1, p_exp)), p_main / NUM_SMS, p_exp / NUM_SMS,
          float(launches(c)), tiles * c.block_m / sum(lens), math.log(analytic_us(c, s)),
          math.log2(s.apply_bytes()), math.log2(s.slices)]
    return f


def feature_names() -> list[str]:
    names = [f"{g}={v}" for g, ch in SKETCH_CHOICES.items() for v in ch]
    names += [f"log2 {g}" for g in DETAIL_CHOICES]
    names += ["log2 tokens", "log2 segments", "log2 max_seg_len", "log2 rank", "log2 h_in", "log2 h_out",
              "log2 programs", "log2 expand programs", "waves", "expand waves", "launches", "row padding",
              "log analytic_us", "log2 bytes", "log2 slices"]
    return names


def all_sketches() -> Iterator[tuple[str, ...]]:
    """Every sketch, (tiling, order, split, fuse, math), in the order of SKETCH_CHOICES."""
    return itertools.product(*SKETCH_CHOICES.values())


def sweep_grid(s: Scenario) -> list[Candidate]:
    """The exhaustive-sweep grid: every sketch with a reduced set of details (valid points only,
    canonical, deduplicated). Used to judge the search on a few scenarios."""
    out: dict[str, Candidate] = {}
    for tiling, order, split, fuse, mth in all_sketches():
        details = itertools.product(
            (16, 64) if mth == "dot" else (1, 4),  # block_m
            (64, 256),  # block_k
            (64, 256),  # block_n
            (1,) if split == "none" else (4, 16),  # split_k
            (1,) if fuse == "separate" else (4, 16),  # n_split
        )
        for bm, bk, bn, sk, ns in details:
            w = 4
            c = repair(Candidate(tiling, order, split, fuse, mth, bm, bk, bn, sk, ns, w, 3, w, 2, 0), s)
            if check(c, s) is None:
                out.setdefault(c.key(), c)
    return list(out.values())
