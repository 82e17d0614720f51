"""GPU correctness check of every LoRA kernel against a float64 reference, on random cases.

Run on the GPU machine (writes a log and a JSON summary):

    python3 gpu/check_kernels.py --cases 400 --seed 1 --out gpu/results/kernels

Each case draws fresh random inputs: a Llama-2 7B or 13B projection shape (q/k/v/o, gate/up,
down), fp16 or bf16, a decode batch (1-64 rows) or a prefill chunk (65-4096 rows), slot buffers of
rank 16/32/64/128 with per-slot ranks from 8 up to the buffer's (different inside one batch), and
a random segment layout: empty segments, one-row segments, repeated slots, rows with no adapter
(slot -1), rows past the last segment, row-strided (non-contiguous) x and y, unsorted batches read
through a row index, and graph-capture bounds (padded segment slots). Slot rows past each rank hold
NaN for SGMV (which must never read them) and zeros for the references (which need zero padding).

Pass criteria, all per case and kernel:
- ``||y - y_ref|| / ||y_ref|| <= 4u`` (u = 2^-11 fp16, 2^-8 bf16: 1.95e-3 / 1.56e-2). The inputs are
  exact in both computations; the kernels round twice to the storage format (v before the expand
  GEMM, y after the add) plus fp32 accumulation, which gives about 0.8u norm-wise for independent
  roundings; 4u leaves a margin of about 5 while a wrong slot, row, rank mask or scale is an error
  of order 1.
- SGMV shrink output ``v`` (fp32): relative error <= 1e-4 (fp32 accumulation of exact products).
- Every value finite; rows without an adapter and columns outside y's view bit-for-bit unchanged.
- Graph replay: one capture replayed over several layouts, each checked as above.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from gpu.common.meta import collect_metadata  # noqa: E402
from gpu.kernels.ops import SegmentInfo, lora_apply, sgmv_expand, sgmv_shrink  # noqa: E402
from gpu.kernels.reference import bmm_apply, fp64_apply, torch_loop_apply  # noqa: E402
from gpu.kernels.segments import (  # noqa: E402
    NO_ADAPTER,
    build_segments,
    layout_from_lengths,
    pad_layout,
    sort_permutation,
)
from gpu.kernels.shapes import MODELS, ModelShape  # noqa: E402

UNIT_ROUNDOFF = {"fp16": 2.0**-11, "bf16": 2.0**-8}
Y_TOL = {k: 4 * u for k, u in UNIT_ROUNDOFF.items()}
V_TOL = 1e-4
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
BMM_MAX_BYTES = 1 << 30
DEVICE = "cuda"
SMALL_MODELS = {"tiny": ModelShape("tiny", 128, 384)}


@dataclass
class CaseSpec:
    """A random case, as recorded in the log."""

    case: int
    model: str
    module: str
    h_in: int
    h_out: int
    dtype: str
    tokens: int
    buffer_rank: int
    slot_ranks: list[int]
    seg_lens: list[int]
    seg_slots: list[int]
    unsorted: bool
    strided: bool
    graph_bounds: bool
    errors: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def random_layout(rng: random.Random, tokens: int, num_slots: int) -> tuple[list[int], list[int]]:
    """Segment lengths (some 0, at least one of 1 row when possible) and slots covering <= tokens rows."""
    covered = tokens if rng.random() < 0.8 else rng.randint(max(1, tokens // 2), tokens)
    nseg = rng.randint(1, min(covered, rng.choice([4, 16, 64])))
    cuts = sorted(rng.sample(range(1, covered), nseg - 1)) if nseg > 1 else []
    lens = [b - a for a, b in zip([0, *cuts], [*cuts, covered], strict=True)]
    if nseg >= 2 and rng.random() < 0.5:  # force a one-row segment
        i = rng.randrange(nseg - 1)
        lens[i + 1] += lens[i] - 1
        lens[i] = 1
    for _ in range(rng.choice([0, 0, 1, 3])):  # empty segments
        lens.insert(rng.randint(0, len(lens)), 0)
    slots = [NO_ADAPTER if rng.random() < 0.08 else rng.randrange(num_slots) for _ in lens]
    return lens, slots


def make_case(rng: random.Random, case: int) -> CaseSpec:
    models = SMALL_MODELS if DEVICE == "cpu" else MODELS
    model = models[rng.choice(sorted(models))]
    module = rng.choice(MODULES)
    h_in, h_out = model.module_dims(module)
    tokens = rng.randint(1, 64) if rng.random() < 0.75 else rng.choice([rng.randint(65, 512), rng.randint(513, 4096)])
    if DEVICE == "cpu":
        tokens = min(tokens, 200)
    buffer_rank = rng.choice([16, 32, 64, 128])
    num_slots = rng.randint(1, 12)
    slot_ranks = [rng.randint(min(8, buffer_rank), buffer_rank) if rng.random() < 0.5
                  else rng.choice([r for r in (8, 16, 32, 64, 128) if r <= buffer_rank]) for _ in range(num_slots)]
    lens, slots = random_layout(rng, tokens, num_slots)
    return CaseSpec(case, model.name, module, h_in, h_out, rng.choice(["fp16", "bf16"]), tokens, buffer_rank,
                    slot_ranks, lens, slots, unsorted=rng.random() < 0.25, strided=rng.random() < 0.5,
                    graph_bounds=rng.random() < 0.3)


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    if not torch.isfinite(out).all():
        return float("inf")
    den = ref.norm().item()
    return (out.double() - ref).norm().item() / (den if den > 0 else 1.0)


def build_tensors(spec: CaseSpec, g: torch.Generator):
    dt = DTYPES[spec.dtype]
    dev = DEVICE
    S, R = len(spec.slot_ranks), spec.buffer_rank
    a = (torch.randn(S, R, spec.h_in, generator=g, device=dev) * spec.h_in**-0.5).to(dt)
    b = (torch.randn(S, R, spec.h_out, generator=g, device=dev) * R**-0.5).to(dt)
    a0, b0 = a.clone(), b.clone()
    for s, r in enumerate(spec.slot_ranks):
        a[s, r:] = float("nan")
        b[s, r:] = float("nan")
        a0[s, r:] = 0
        b0[s, r:] = 0
    pad = 8 if spec.strided else 0
    xw = torch.randn(spec.tokens, spec.h_in + 2 * pad, generator=g, device=dev).to(dt)
    yw = torch.randn(spec.tokens, spec.h_out + 2 * pad, generator=g, device=dev).to(dt)
    x = xw[:, pad:pad + spec.h_in]
    ranks = torch.tensor(spec.slot_ranks, dtype=torch.int32, device=dev)
    scales = (torch.rand(S, generator=g, device=dev) * 1.75 + 0.25).float()
    return a, b, a0, b0, x, yw, pad, ranks, scales


def segment_info(spec: CaseSpec, rng: random.Random) -> SegmentInfo:
    layout = layout_from_lengths(spec.seg_lens, spec.seg_slots)
    row_index = None
    if spec.unsorted:
        sorted_slots = layout.row_slots(spec.tokens)
        shuffled = sorted_slots[:]
        rng.shuffle(shuffled)
        perm, _ = sort_permutation(shuffled)
        layout = build_segments([shuffled[p] for p in perm])
        row_index = perm
    max_seg_len = None
    if spec.graph_bounds:
        layout = pad_layout(layout, max(layout.num_segments, spec.tokens))
        max_seg_len = spec.tokens
    return SegmentInfo.from_layout(layout, DEVICE, tokens=spec.tokens, row_index=row_index, max_seg_len=max_seg_len)


def check_case(spec: CaseSpec, rng: random.Random, g: torch.Generator) -> None:
    a, b, a0, b0, x, yw, pad, ranks, scales = build_tensors(spec, g)
    seg = segment_info(spec, rng)
    y0w = yw.clone()
    y_view = slice(pad, pad + spec.h_out)
    y_ref, v_ref = fp64_apply(x, y0w[:, y_view], a0, b0, seg, ranks, scales)
    covered = torch.tensor([s >= 0 for s in seg.row_slots.tolist()], device=DEVICE)
    tol = Y_TOL[spec.dtype]

    def judge(name: str, out_w: torch.Tensor) -> None:
        out = out_w[:, y_view]
        e = rel_err(out, y_ref)
        spec.errors[name] = e
        if not e <= tol:
            spec.failures.append(f"{name}: rel err {e:.3g} > {tol:.3g}")
        if not torch.equal(out_w[~covered], y0w[~covered]):
            spec.failures.append(f"{name}: rows without an adapter changed")
        if pad and (not torch.equal(out_w[:, :pad], y0w[:, :pad]) or not torch.equal(out_w[:, -pad:], y0w[:, -pad:])):
            spec.failures.append(f"{name}: columns outside y's view changed")

    # SGMV, shrink then expand, v poisoned with NaN first.
    v = torch.full((spec.tokens, spec.buffer_rank), float("nan"), dtype=torch.float32, device=DEVICE)
    sgmv_shrink(x, a, seg, ranks, v)
    mask = torch.zeros_like(v, dtype=torch.bool)
    rows_slots = seg.row_slots.tolist()
    for i, s in enumerate(rows_slots):
        if s >= 0:
            mask[i, : spec.slot_ranks[s]] = True
    ev = rel_err(v[mask], v_ref[mask]) if mask.any() else 0.0
    spec.errors["sgmv_shrink_v"] = ev
    if not ev <= V_TOL:
        spec.failures.append(f"sgmv_shrink_v: rel err {ev:.3g} > {V_TOL:.3g}")
    ys = y0w.clone()
    sgmv_expand(v, b, seg, ranks, scales, ys[:, y_view])
    judge("sgmv_apply", ys)
    ys = y0w.clone()
    lora_apply(x, ys[:, y_view], a, b, seg, ranks, scales, kind="sgmv")
    judge("sgmv_lora_apply", ys)
    yt = y0w.clone()
    torch_loop_apply(x, yt[:, y_view], a0, b0, seg, spec.slot_ranks, scales.tolist())
    judge("torch_apply", yt)
    if spec.tokens * spec.buffer_rank * (spec.h_in + spec.h_out) * 2 <= BMM_MAX_BYTES:
        yb = y0w.clone()
        bmm_apply(x, yb[:, y_view], a0, b0, seg, ranks, scales)
        judge("bmm_apply", yb)


def check_graph(rng: random.Random, g: torch.Generator, case: int, replays: int = 4) -> list[CaseSpec]:
    """Capture lora_apply once with padded bounds, replay over fresh layouts; one CaseSpec per replay."""
    base = make_case(rng, case)
    base.tokens = rng.randint(2, 64)
    base.unsorted = False
    base.graph_bounds = True
    a, b, a0, b0, x, yw, pad, ranks, scales = build_tensors(base, g)
    y_view = slice(pad, pad + base.h_out)
    y = yw.clone()
    y_live = y[:, y_view]
    v = torch.empty((base.tokens, base.buffer_rank), dtype=torch.float32, device="cuda")

    def info(lens: list[int], slots: list[int]) -> SegmentInfo:
        layout = pad_layout(layout_from_lengths(lens, slots), base.tokens + 4)
        return SegmentInfo.from_layout(layout, "cuda", tokens=base.tokens, max_seg_len=base.tokens)

    lens, slots = random_layout(rng, base.tokens, len(base.slot_ranks))
    while len(lens) > base.tokens + 4:
        lens, slots = random_layout(rng, base.tokens, len(base.slot_ranks))
    live = info(lens, slots)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        lora_apply(x, y_live, a, b, live, ranks, scales, v=v)
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        lora_apply(x, y_live, a, b, live, ranks, scales, v=v)
    out = []
    for k in range(replays):
        lens, slots = random_layout(rng, base.tokens, len(base.slot_ranks))
        if len(lens) > base.tokens + 4:
            continue
        new = info(lens, slots)
        live.update(new)
        y0 = torch.randn(y.shape, generator=g, device="cuda").to(y.dtype)
        y.copy_(y0)
        graph.replay()
        torch.cuda.synchronize()
        ref, _ = fp64_apply(x, y0[:, y_view], a0, b0, new, ranks, scales)
        spec = CaseSpec(case * 100 + k, base.model, base.module, base.h_in, base.h_out, base.dtype, base.tokens,
                        base.buffer_rank, base.slot_ranks, lens, slots, False, base.strided, True)
        e = rel_err(y[:, y_view], ref)
        spec.errors["sgmv_graph_replay"] = e
        if not e <= Y_TOL[base.dtype]:
            spec.failures.append(f"sgmv_graph_replay: rel err {e:.3g} > {Y_TOL[base.dtype]:.3g}")
        covered = torch.tensor([s >= 0 for s in new.row_slots.tolist()], device="cuda")
        if not torch.equal(y[~covered], y0[~covered]):
            spec.failures.append("sgmv_graph_replay: rows without an adapter changed")
        out.append(spec)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=400)
    ap.add_argument("--graph-cases", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-budget-s", type=float, default=240.0)
    ap.add_argument("--out", type=Path, default=Path("gpu/results/kernels"))
    ap.add_argument("--device", default="cuda", help="cpu: a dry run under TRITON_INTERPRET=1 on tiny shapes")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    args.out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    g = torch.Generator(device=DEVICE)
    g.manual_seed(args.seed)
    t0 = time.time()
    specs: list[CaseSpec] = []
    log = (args.out / "check_kernels.log").open("w")
    for i in range(args.cases):
        if time.time() - t0 > args.time_budget_s:
            print(f"time budget reached after {i} cases", flush=True)
            break
        spec = make_case(rng, i)
        try:
            check_case(spec, rng, g)
        except Exception as exc:  # noqa: BLE001 - record and go on
            spec.failures.append(f"exception: {exc!r}")
            traceback.print_exc()
        specs.append(spec)
        log.write(json.dumps(asdict(spec)) + "\n")
        if spec.failures:
            print(f"case {i} FAILED: {spec.failures}", flush=True)
    for j in range(args.graph_cases):
        try:
            got = check_graph(rng, g, args.cases + j)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            got = [CaseSpec(args.cases + j, "", "", 0, 0, "", 0, 0, [], [], [], False, False, True,
                            failures=[f"exception: {exc!r}"])]
        for spec in got:
            specs.append(spec)
            log.write(json.dumps(asdict(spec)) + "\n")
            if spec.failures:
                print(f"graph case {spec.case} FAILED: {spec.failures}", flush=True)
    log.close()
    summary: dict[str, dict] = {}
    for spec in specs:
        for name, e in spec.errors.items():
            key = f"{name}/{spec.dtype}"
            s = summary.setdefault(key, {"cases": 0, "passed": 0, "max_rel_err": 0.0,
                                         "tolerance": V_TOL if name.endswith("_v") else Y_TOL[spec.dtype]})
            s["cases"] += 1
            s["passed"] += int(e <= s["tolerance"])
            s["max_rel_err"] = max(s["max_rel_err"], e)
    failed = [s.case for s in specs if s.failures]
    result = {
        "meta": collect_metadata(),
        "cases": len(specs), "failed_cases": failed, "seconds": round(time.time() - t0, 1),
        "tolerances": {"y_rel": Y_TOL, "v_rel": V_TOL}, "by_kernel": summary,
    }
    (args.out / "check_kernels.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"{len(specs)} cases ({len(failed)} failed) in {result['seconds']} s",
             f"{'kernel/dtype':<28} {'cases':>6} {'passed':>7} {'max rel err':>12} {'tolerance':>10}"]
    for key in sorted(summary):
        s = summary[key]
        lines.append(f"{key:<28} {s['cases']:>6} {s['passed']:>7} {s['max_rel_err']:>12.3g} {s['tolerance']:>10.3g}")
    text = "\n".join(lines)
    (args.out / "check_kernels.txt").write_text(text + "\n")
    print(text, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
