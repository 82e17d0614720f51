"""Proves the live engine computes the real function: its logits against transformers + peft.

On a small random Llama saved with ``transformers`` and PEFT LoRA adapters saved with ``peft``
(ranks 8 and 16 on q,k,v,o; rank 4 on all seven projections), generated here, the engine loads
the safetensors files and runs, in one paged batch: prefill of three prompts and the first chunk
of a fourth, a mixed step (three decodes + the second prefill chunk), then decode steps (CUDA
graphs and eager, alternating). Every logit row is compared with the reference computed by
transformers + peft in float64 on the same token ids.

Tolerances (relative L2 error ``||engine - ref|| / ||ref||`` per adapter):
- engine in float32 (TF32 off): <= 1e-4. Float32 arithmetic lands far under 1e-3; a wrong
  rotary convention, mask, page index, GQA mapping or LoRA scale gives errors of order 1.
- engine in float16: <= max(4 x transformers' own float16 error on the same inputs, 2e-3). Both
  accumulate in fp32 from fp16 operands; only the order of operations differs, so the engine
  must be as close to float64 as transformers itself is, up to a small factor.

Also checked: the Triton paged decode kernel against its torch reference (7B head shapes),
merged mode (adapter folded into the base weights) against the adapter's reference, and the
base after unmerge. Writes ``check.json`` (with metadata) to --out.

Run: ``python3 gpu/check_engine.py --out DIR`` (CUDA), or ``--device cpu`` for a slow CPU run
of everything but the graphs and the Triton kernel.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gpu.engine import model as engine_model  # noqa: E402
from gpu.engine.executor import Executor  # noqa: E402
from gpu.engine.kv_cache import PagedKVCache  # noqa: E402
from gpu.engine.lora import LoraSlots, read_peft_adapter  # noqa: E402
from gpu.engine.model import LlamaModel  # noqa: E402
from gpu.engine.weights import config_from_hf, load_hf_weights  # noqa: E402

ALL_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]
# (name, rank, alpha, target modules)
ADAPTERS = [("a8", 8, 16.0, ATTN), ("a16", 16, 8.0, ATTN), ("mlp4", 4, 8.0, list(ALL_MODULES))]


@dataclass
class Seq:
    request_id: int
    slot: int | None
    start_pos: int
    num_tokens: int
    block_table: list[int]
    samples: bool
    adapter: str | None = None


def metadata() -> dict:
    import subprocess

    meta = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": os.environ.get("GIT_COMMIT"),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }
    try:
        import triton

        meta["triton"] = triton.__version__
    except ImportError:
        meta["triton"] = None
    for mod in ("transformers", "peft"):
        try:
            meta[mod] = __import__(mod).__version__
        except ImportError:
            meta[mod] = None
    if torch.cuda.is_available():
        meta["gpu"] = torch.cuda.get_device_name(0)
        try:
            meta["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20).stdout.strip()
        except Exception:  # noqa: BLE001
            meta["driver"] = None
    return meta


def make_models(tmp: Path, seed: int) -> tuple[Path, dict[str, Path]]:
    """A small random Llama (GQA, untied head) and three PEFT adapters, saved as safetensors."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=512, hidden_size=256, intermediate_size=688, num_hidden_layers=3,
        num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=1024,
        rms_norm_eps=1e-5, tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, 1.0 if "embed" in name else 1.0 / math.sqrt(p.shape[1]))
            else:  # RMSNorm weights: not all ones, so that they are exercised
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    base = tmp / "base"
    model.save_pretrained(base, safe_serialization=True)
    paths = {}
    for i, (name, r, alpha, targets) in enumerate(ADAPTERS):
        torch.manual_seed(seed + 100 + i)
        m = LlamaForCausalLM.from_pretrained(base)
        pm = get_peft_model(m, LoraConfig(r=r, lora_alpha=alpha, target_modules=targets,
                                          init_lora_weights=False, lora_dropout=0.0))
        paths[name] = tmp / name
        pm.save_pretrained(paths[name])
    return base, paths


def _load_hf(base: Path, dtype: torch.dtype, device: str):
    from transformers import LlamaForCausalLM

    try:
        m = LlamaForCausalLM.from_pretrained(base, dtype=dtype, attn_implementation="eager")
    except TypeError:
        m = LlamaForCausalLM.from_pretrained(base, torch_dtype=dtype, attn_implementation="eager")
    return m.to(device).eval()


@torch.no_grad()
def reference_logits(base: Path, adapter: Path | None, ids: list[int], dtype: torch.dtype, device: str) -> torch.Tensor:
    from peft import PeftModel

    model = _load_hf(base, dtype, device)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter).to(device).eval()
    x = torch.tensor([ids], device=device)
    return model(input_ids=x).logits[0].double()


def rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    return float((a.double() - ref).norm() / ref.norm())


def check_decode_kernel(device: str) -> dict:
    """Decode attention (every split count and launch order, both loops, contexts up to 3000 tokens) and
    prefill attention (first and continuation chunks) against float64 references on fresh random inputs."""
    from gpu.engine.attention import HAVE_TRITON, paged_decode_torch, paged_decode_triton, prefill_attention

    if not (HAVE_TRITON and device == "cuda"):
        return {"skipped": "needs CUDA and Triton"}
    out = {}
    g = torch.Generator(device=device).manual_seed(7)
    for (h, kvh, d) in [(32, 32, 128), (8, 4, 32), (32, 8, 128)]:
        nb, bs, b = 6000, 16, 24
        kc = torch.randn(nb, bs, kvh, d, device=device, dtype=torch.float16, generator=g)
        vc = torch.randn(nb, bs, kvh, d, device=device, dtype=torch.float16, generator=g)
        q = torch.randn(b, h, d, device=device, dtype=torch.float16, generator=g)
        ctx = torch.randint(1, 3000, (b,), device=device, generator=g).to(torch.int32)
        ctx[0], ctx[1] = 1, 17
        perm = torch.randperm(nb, device=device, generator=g)
        bt = perm[: b * 188].view(b, 188).to(torch.int32)
        ref = paged_decode_torch(q.double(), kc.double(), vc.double(), bt, ctx)
        for splits in (1, 2, 4, 8, 16):
            # both launch orders (gpu/engine/attention.py DECODE_HEAD_FAST), the loop pipelined by STAGES
            # and by hand (DECODE_PREFETCH)
            for head_fast, prefetch in ((False, False), (True, False), (False, True)):
                o = torch.full_like(q, float("nan"))
                paged_decode_triton(q, kc, vc, bt, ctx, out=o, splits=splits, head_fast=head_fast, prefetch=prefetch)
                key = (f"H{h}_KVH{kvh}_D{d}_S{splits}" + ("_headfast" if head_fast else "")
                       + ("_prefetch" if prefetch else ""))
                out[key] = {"rel_err": rel_err(o, ref), "nan": bool(torch.isnan(o).any())}
    for (h, kvh, d, n, start) in [(32, 32, 128, 300, 0), (32, 32, 128, 257, 1000), (32, 8, 128, 64, 4000)]:
        q = torch.randn(n, h, d, device=device, dtype=torch.float16, generator=g)
        k = torch.randn(start + n, kvh, d, device=device, dtype=torch.float16, generator=g)
        v = torch.randn(start + n, kvh, d, device=device, dtype=torch.float16, generator=g)
        o = prefill_attention(q, k, v, start)
        kr = k.double().repeat_interleave(h // kvh, dim=1)
        vr = v.double().repeat_interleave(h // kvh, dim=1)
        s = torch.einsum("nhd,thd->hnt", q.double(), kr) / d ** 0.5
        mask = torch.arange(start + n, device=device)[None, :] <= torch.arange(start, start + n, device=device)[:, None]
        s = s.masked_fill(~mask, float("-inf"))
        ref = torch.einsum("hnt,thd->nhd", torch.softmax(s, dim=-1), vr)
        key = f"prefill_H{h}_KVH{kvh}_n{n}_start{start}"
        out[key] = {"rel_err": rel_err(o, ref), "nan": bool(torch.isnan(o).any())}
    out["pass"] = all(v["rel_err"] < 2e-3 and not v["nan"] for v in out.values() if isinstance(v, dict))
    return out


def check_slot_copy(device: str) -> dict:
    """An adapter loaded the way the replay loads it (one pinned buffer, copies on a side stream,
    into a slot that held a larger rank) lands exactly in its slot, with zeros past its rank."""
    from gpu.engine.lora import random_adapter
    from gpu.engine.weights import ModelConfig

    cfg = ModelConfig(name="t", hidden_size=256, intermediate_size=512, num_layers=2, num_heads=4, num_kv_heads=2,
                      vocab_size=64, max_position=64)
    mods = ("q_proj", "k_proj", "v_proj", "o_proj")
    slots = LoraSlots(cfg, max_loras=3, max_rank=16, target_modules=mods, dtype=torch.float16, device=device)
    big = random_adapter(cfg, "big", 16, 32.0, mods, seed=1).pin()
    small = random_adapter(cfg, "small", 4, 8.0, mods, seed=2).pin()
    stream = torch.cuda.Stream() if device == "cuda" else None
    ctx = torch.cuda.stream(stream) if stream is not None else None
    if ctx is not None:
        with ctx:
            slots.copy_in(1, big)
            slots.copy_in(1, small)
        stream.synchronize()
    else:
        slots.copy_in(1, big)
        slots.copy_in(1, small)
    ok = True
    for (li, m), (a, bt) in small.tensors.items():
        ok &= bool(torch.equal(slots.A[li][m][1, :4].cpu(), a)) and bool(torch.equal(slots.BT[li][m][1, :4].cpu(), bt))
        ok &= bool((slots.BT[li][m][1, 4:] == 0).all())
    return {"pass": ok}


def run_engine(base: Path, adapters: dict[str, Path], dtype: torch.dtype, device: str, seqs_spec, refs,
               use_graphs: bool, lora_kind: str = "torch", tuned_table: Path | None = None) -> dict:
    """Runs the scripted steps and returns per-request errors against ``refs`` (float64)."""
    cfg = config_from_hf(base)
    weights = load_hf_weights(base, cfg, dtype, device)
    host = {n: read_peft_adapter(p, n, dtype=dtype) for n, p in adapters.items()}
    slots = LoraSlots(cfg, max_loras=4, max_rank=16, target_modules=ALL_MODULES, dtype=dtype, device=device,
                      kind=lora_kind, tuned_table=tuned_table)
    slot_of = {}
    for i, (n, ha) in enumerate(host.items()):
        slots.copy_in(i, ha)
        slot_of[n] = i
    kv = PagedKVCache(cfg, num_blocks=96, block_size=16, dtype=dtype, device=device)
    model = LlamaModel(cfg, weights, kv, slots)
    # token graphs of 16-64 tokens: step B below (19 tokens, a continuation chunk and three decode
    # rows) replays the 32-token graph on CUDA; with the "dop" kind that graph applies LoRA densely
    # (dense_lora_from, as large token graphs do in the engine), with "sgmv" through the kernels
    ex = Executor(model, block_size=16, max_model_len=512, use_graphs=use_graphs,
                  graph_sizes=(1, 2, 4, 8), max_num_seqs=8, token_graph_sizes=(16, 32, 64), max_num_batched_tokens=512,
                  dense_lora_from=32 if lora_kind == "dop" else None)
    if use_graphs:
        # Graphs are captured before any request exists: they only see the static buffers.
        ex.capture_graphs()
    # Pages: a shuffled pool, so that no sequence's blocks are contiguous.
    gen = torch.Generator().manual_seed(3)
    pool = torch.randperm(96, generator=gen).tolist()
    errs: dict[int, list[tuple[int, float, float, bool]]] = {}
    tables = {}
    for rid, (_adapter, ids, _p) in seqs_spec.items():
        ex.add_request(rid, ids)
        need = -(-len(ids) // 16)
        tables[rid] = [pool.pop() for _ in range(need)]
        errs[rid] = []

    def record(rid, pos, row):
        ref = refs[rid][pos]
        e = float((row.double() - ref).abs().max())
        r = rel_err(row, ref)
        errs[rid].append((pos, e, r, int(row.argmax()) == int(ref.argmax())))

    def mk(rid, start, n, samples=True):
        adapter = seqs_spec[rid][0]
        return Seq(rid, None if adapter is None else slot_of[adapter], start, n, tables[rid], samples, adapter)

    # Step A: prefill of R0..R2 and first chunk of R3; every row's logits.
    chunk1 = 24
    step_a = [mk(0, 0, seqs_spec[0][2]), mk(1, 0, seqs_spec[1][2]), mk(2, 0, seqs_spec[2][2]),
              mk(3, 0, chunk1, samples=False)]
    logits = ex.forward_all_logits(step_a)
    row = 0
    for s in step_a:
        for p in range(s.start_pos, s.start_pos + s.num_tokens):
            record(s.request_id, p, logits[row])
            row += 1
    computed = {0: seqs_spec[0][2], 1: seqs_spec[1][2], 2: seqs_spec[2][2], 3: chunk1}
    # Step B: decodes of R0..R2 and the rest of R3's prompt (start_pos > 0: gathered pages).
    step_b = [mk(0, computed[0], 1), mk(1, computed[1], 1), mk(2, computed[2], 1),
              mk(3, chunk1, seqs_spec[3][2] - chunk1)]
    sampled_ok: list[bool] = []  # each sampled token is its logits row's argmax (model.greedy)

    def check_sampled(step, sampled, lg):
        for st, row in zip(step, lg, strict=True):
            if st.samples:
                sampled_ok.append(sampled.get(st.request_id) == int(row.argmax()))

    got, lg = ex.execute(step_b, return_logits=True)
    check_sampled(step_b, got, lg)
    mixed_path = ex.last_path
    for s, r in zip(step_b, lg, strict=True):
        record(s.request_id, s.start_pos + s.num_tokens - 1, r)
        computed[s.request_id] = s.start_pos + s.num_tokens
    paths = []
    # Steps C: decode steps of all four, graphs and eager alternating.
    for j in range(5):
        step = [mk(rid, computed[rid], 1) for rid in (0, 1, 2, 3)]
        got, lg = ex.execute(step, return_logits=True, force_eager=(j % 2 == 1))
        check_sampled(step, got, lg)
        paths.append(ex.last_path)
        for s, r in zip(step, lg, strict=True):
            record(s.request_id, s.start_pos, r)
            computed[s.request_id] += 1
    # Steps D: R0 (no adapter) alone, graph then eager: a pass without LoRA (FUSE_EPILOGUES's path).
    for j in range(2):
        step = [mk(0, computed[0], 1)]
        got, lg = ex.execute(step, return_logits=True, force_eager=(j == 1))
        check_sampled(step, got, lg)
        paths.append(ex.last_path)
        record(0, step[0].start_pos, lg[0])
        computed[0] += 1
    # Merged mode: fold a8 into the base and run R1's prompt with no adapter.
    merged = {}
    try:
        w_before = weights.layers[0].wqkv.clone()
        t_ids = seqs_spec[1][1][: seqs_spec[1][2]]
        ex.add_request(100, t_ids)
        slots.merge(weights, host["a8"])
        lg = ex.forward_all_logits([Seq(100, None, 0, len(t_ids), tables[1], True)])
        merged["merged_vs_a8_rel_err"] = rel_err(lg, refs[1][: len(t_ids)])
        slots.unmerge(weights, host["a8"])
        lg = ex.forward_all_logits([Seq(100, None, 0, len(t_ids), tables[1], True)])
        merged["unmerged_vs_base_rel_err"] = rel_err(lg, refs[101][: len(t_ids)])
        merged["unmerge_weight_max_abs_diff"] = float((weights.layers[0].wqkv - w_before).abs().max())
    except Exception as e:  # noqa: BLE001
        merged["error"] = repr(e)
        traceback.print_exc()
    per_req = {}
    for rid, rows in errs.items():
        per_req[rid] = {
            "adapter": seqs_spec[rid][0],
            "rows": len(rows),
            "max_abs_err": max(r[1] for r in rows),
            "max_rel_err": max(r[2] for r in rows),
            "argmax_agree": sum(r[3] for r in rows) / len(rows),
            "prefill_max_rel_err": max(r[2] for r in rows if r[0] < seqs_spec[rid][2]),
            "decode_max_rel_err": max((r[2] for r in rows if r[0] >= seqs_spec[rid][2]), default=None),
        }
    out = {"per_request": per_req, "decode_paths": paths, "mixed_path": mixed_path, "merged": merged,
           "lora_kind": slots.kind, "sampled_match": bool(sampled_ok) and all(sampled_ok),
           "sampled_tokens": len(sampled_ok)}
    if lora_kind == "dop":
        out["dop"] = {"status": slots.dop_status, "choices": {str(k): v for k, v in slots.dop_choices.items()}}
    return out


def _counting(fn, calls: list, which=None):
    """``fn``, appending to ``calls`` at every call (where ``which(kwargs)`` is true, when given)."""
    def wrapped(*a, **k):
        if which is None or which(k):
            calls.append(1)
        return fn(*a, **k)
    return wrapped


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="out/check")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default="fp32,fp16,fp16_sgmv,fp16_dop",
                    help="engine runs: fp32, fp16, fp16_sgmv, fp32_sgmv, fp16_dop, fp32_dop (dop runs only when "
                         "--dop-table exists; otherwise skipped), fp16_fused (fp16 with gpu/engine/model.py "
                         "FUSE_EPILOGUES: its passes without LoRA, steps D, through the fused epilogues); any "
                         "of them with _pdl after it (fp16_pdl, fp16_sgmv_pdl): gpu/engine/model.py DECODE_PDL on, "
                         "its decode passes of up to 16 rows launched with programmatic dependent launch, or "
                         "_nopdl: off; neither: the engine's default")
    ap.add_argument("--dop-table", type=Path, default=ROOT / "gpu" / "dop" / "tuned_h200.json")
    ap.add_argument("--decode-attention-prefetch", action=argparse.BooleanOptionalAction, default=None,
                    help="every run with decode attention's loop pipelined by hand (gpu/engine/attention.py "
                         "DECODE_PREFETCH), or not; default: the engine's")
    ap.add_argument("--set", default=None, metavar="SETTINGS",
                    help="the engine's module constants for every run, as gpu/bench_engine.py --set "
                         "(say \"model.TRITON_ARGMAX=True;model.DECODE_LONG_CONTEXT=55\")")
    args = ap.parse_args()
    settings = None
    if args.set:
        from gpu.bench_engine import apply_settings

        settings = apply_settings(args.set, ap)
    if args.decode_attention_prefetch is not None:
        from gpu.engine import attention

        attention.DECODE_PREFETCH = args.decode_attention_prefetch
    runs = args.runs.split(",")
    if not args.dop_table.exists():  # without a table the dop kind is SGMV: nothing new to check
        skipped = [n for n in runs if n.endswith("dop")]
        if skipped:
            print(f"no tuned table at {args.dop_table}: skipping {skipped}")
        runs = [n for n in runs if not n.endswith("dop")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = args.device
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    result: dict = {"meta": metadata(), "device": dev, "settings": settings}
    t0 = time.time()
    try:
        result["decode_kernel"] = check_decode_kernel(dev)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        result["decode_kernel"] = {"error": repr(e)}
    try:
        result["slot_copy"] = check_slot_copy(dev)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        result["slot_copy"] = {"error": repr(e)}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        base, adapters = make_models(tmp, args.seed)
        g = torch.Generator().manual_seed(args.seed + 1)
        # rid -> (adapter, ids, prompt_len); 8 positions past the prompt for decodes.
        spec = {}
        for rid, (adapter, p) in enumerate([(None, 37), ("a8", 50), ("a16", 23), ("mlp4", 40)]):
            ids = torch.randint(0, 512, (p + 8,), generator=g).tolist()
            spec[rid] = (adapter, ids, p)
        refs64, refs16 = {}, {}
        for rid, (adapter, ids, _p) in spec.items():
            ap_ = adapters[adapter] if adapter else None
            refs64[rid] = reference_logits(base, ap_, ids, torch.float64, dev)
            try:
                refs16[rid] = reference_logits(base, ap_, ids, torch.float16, dev)
            except Exception as e:  # noqa: BLE001 - fp16 on CPU may be unsupported
                print("fp16 reference failed:", e)
        refs64[101] = reference_logits(base, None, spec[1][1], torch.float64, dev)
        hf16 = {}
        for rid in refs16:
            rows = refs16[rid][: len(spec[rid][1]) - 1]
            hf16[rid] = max(rel_err(rows[i], refs64[rid][i]) for i in range(rows.shape[0]))
        result["transformers_fp16_max_rel_err"] = hf16
        pdl_default = engine_model.DECODE_PDL
        for name in runs:
            forced = True if name.endswith("_pdl") else False if name.endswith("_nopdl") else None
            kind_name = name.removesuffix("_pdl").removesuffix("_nopdl")
            pdl = pdl_default if forced is None else forced
            dtype = torch.float32 if name.startswith("fp32") else torch.float16
            kind = "sgmv" if kind_name.endswith("sgmv") else "dop" if kind_name.endswith("dop") else "torch"
            fused = kind_name.endswith("fused")
            engine_model.FUSE_EPILOGUES = fused
            engine_model.DECODE_PDL = pdl
            real_residual_gemm = engine_model.residual_gemm if fused else None
            real_skinny_gemm = getattr(engine_model, "skinny_gemm", None)  # absent without Triton
            fused_calls = []
            pdl_calls = []
            if fused:  # count the epilogue GEMMs, so that a run that never took the path fails
                engine_model.residual_gemm = _counting(real_residual_gemm, fused_calls)
            if pdl:  # and the GEMMs launched with PDL
                engine_model.skinny_gemm = _counting(real_skinny_gemm, pdl_calls, lambda k: k.get("pdl", False))
            try:
                r = run_engine(base, adapters, dtype, dev, spec, refs64, use_graphs=(dev == "cuda"), lora_kind=kind,
                               tuned_table=args.dop_table)
                if fused:
                    r["fused_residual_gemms"] = len(fused_calls)
                if pdl:
                    r["pdl_gemms"] = len(pdl_calls)
                if dtype == torch.float32:
                    tol = {rid: 1e-4 for rid in spec}
                else:
                    tol = {rid: max(4 * hf16.get(rid, 5e-4), 2e-3) for rid in spec}
                ok = all(v["max_rel_err"] <= tol[rid] for rid, v in r["per_request"].items()) and r["sampled_match"]
                ok = ok and (not fused or len(fused_calls) > 0) and (forced is not True or len(pdl_calls) > 0)
                m = r["merged"]
                mtol = 1e-4 if dtype == torch.float32 else 2e-2
                ok_m = "error" not in m and m["merged_vs_a8_rel_err"] <= mtol and m["unmerged_vs_base_rel_err"] <= mtol
                r["tolerance"] = tol
                r["pass"] = bool(ok)
                r["merged_pass"] = bool(ok_m)
                result[f"engine_{name}"] = r
            except Exception as e:  # noqa: BLE001
                traceback.print_exc()
                result[f"engine_{name}"] = {"error": repr(e)}
            finally:
                engine_model.FUSE_EPILOGUES = False
                engine_model.DECODE_PDL = pdl_default
                if pdl:
                    engine_model.skinny_gemm = real_skinny_gemm
                if fused:
                    engine_model.residual_gemm = real_residual_gemm
    result["seconds"] = time.time() - t0
    (out / "check.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print("\n== engine logits vs transformers+peft (float64 reference) ==")
    print(f"{'run':9} {'req':>3} {'adapter':8} {'rows':>4} {'max_rel':>10} {'prefill':>10} {'decode':>10} "
          f"{'max_abs':>9} {'argmax':>6} {'tol':>8}")
    for name in runs:
        r = result.get(f"engine_{name}")
        if not r or "error" in r:
            print(name, "ERROR" if r else "skipped", (r or {}).get("error", ""))
            continue
        for rid, v in r["per_request"].items():
            print(f"{name:9} {rid:>3} {str(v['adapter']):8} {v['rows']:>4} {v['max_rel_err']:>10.2e} "
                  f"{v['prefill_max_rel_err']:>10.2e} {v['decode_max_rel_err'] or 0:>10.2e} "
                  f"{v['max_abs_err']:>9.2e} {v['argmax_agree']:>6.2f} {r['tolerance'][rid]:>8.1e}")
        print(f"{name}: pass={r['pass']} kind={r['lora_kind']} merged={r['merged']} merged_pass={r['merged_pass']} "
              f"paths={r['decode_paths']} mixed={r.get('mixed_path')} sampled_match={r['sampled_match']}"
              + (f" pdl_gemms={r['pdl_gemms']}" if "pdl_gemms" in r else ""))
    print("transformers fp16 max rel err:", {k: f"{v:.2e}" for k, v in hf16.items()})
    print("decode kernel:", result["decode_kernel"])
    print("slot copy:", result["slot_copy"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
