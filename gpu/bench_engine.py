"""Benchmarks the live engine on the GPU against its rooflines and against transformers.

Measured in one run (CUDA events, after warm-up, medians):
- HBM bandwidth (a large device-to-device copy, bytes read + written) and the fp16 matmul peak
  (8192^3 products on random data): the two ceilings.
- Decode step time (CUDA graph replay, context ``--ctx`` tokens per sequence) at batch 1, 8, 16,
  32, 64, without LoRA and with LoRA (8 slots of rank 64 on q,k,v,o, the batch spread over the
  slots), against the weight-read roofline (weight bytes read per step / bandwidth) and the
  weight+KV roofline (adds the KV bytes the attention reads, and the LoRA slot bytes the dense
  LoRA path reads). Also the eager (no graph) step at batch 1 and 32: the host overhead graphs
  remove.
- Prefill tokens/s (one 2048-token prompt; 4 x 512) against the FLOP roofline.
- Adapter loads (pinned host -> GPU slot, on a side stream) and merge/unmerge time per rank.
- transformers (LlamaForCausalLM, same shape, random weights, fp16, SDPA) decode step with
  ``past_key_values`` at the same batches and context: host wall time per step.

Writes ``bench.json`` (all numbers + metadata) and ``bench.md`` (the tables) to --out.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from gpu.check_engine import metadata  # noqa: E402
from gpu.engine import attention  # noqa: E402
from gpu.engine.executor import DEFAULT_DECODE_BLAS, Executor  # noqa: E402
from gpu.engine.executor import StepSeq as Seq  # noqa: E402
from gpu.engine.kv_cache import PagedKVCache, lora_slot_bytes  # noqa: E402
from gpu.engine.lora import ATTN_MODULES, LoraSlots, random_adapter  # noqa: E402
from gpu.engine.model import ForwardBatch, LlamaModel, PrefillChunk  # noqa: E402
from gpu.engine.weights import PRESETS, random_weights  # noqa: E402

BATCHES = (1, 8, 16, 32, 64)




def cuda_time_ms(fn, warmup: int = 3, iters: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        s = torch.cuda.Event(enable_timing=True)
        e = torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    return times


def wall_time_ms(fn, warmup: int = 2, iters: int = 10) -> list[float]:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def measure_ceilings() -> dict:
    out = {}
    n = 2 << 30  # 2 GiB per buffer
    src = torch.empty(n // 2, dtype=torch.float16, device="cuda").normal_()
    dst = torch.empty_like(src)
    t = cuda_time_ms(lambda: dst.copy_(src), warmup=3, iters=15)
    out["copy_bytes"] = 2 * n
    out["copy_ms_median"] = med(t)
    out["hbm_bytes_per_s"] = 2 * n / (med(t) / 1e3)
    m = 8192
    a = torch.randn(m, m, dtype=torch.float16, device="cuda")
    b = torch.randn(m, m, dtype=torch.float16, device="cuda")
    t = cuda_time_ms(lambda: a @ b, warmup=3, iters=15)
    out["matmul_ms_median"] = med(t)
    out["fp16_flops_per_s"] = 2 * m**3 / (med(t) / 1e3)
    torch.cuda.empty_cache()
    return out


def gemm_floor(cfg, weights) -> dict:
    """The step's weight GEMMs alone (same shapes, batch 1 and 32), replayed from a CUDA graph:
    what cuBLAS gives for reading the weights, the floor this engine's decode step sits on."""
    out = {}
    for b in (1, 32):
        xh = torch.randn(b, cfg.hidden_size, dtype=torch.float16, device="cuda")
        xq = torch.randn(b, cfg.q_size, dtype=torch.float16, device="cuda")
        xi = torch.randn(b, cfg.intermediate_size, dtype=torch.float16, device="cuda")

        def run(xh=xh, xq=xq, xi=xi):
            for lw in weights.layers:
                torch.nn.functional.linear(xh, lw.wqkv)
                torch.nn.functional.linear(xq, lw.wo)
                torch.nn.functional.linear(xh, lw.w_gate_up)
                torch.nn.functional.linear(xi, lw.w_down)
            torch.nn.functional.linear(xh, weights.lm_head)

        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            run()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            run()
        t = cuda_time_ms(g.replay, warmup=3, iters=20)
        out[f"batch{b}_ms"] = med(t)
        print(f"GEMM-only floor batch {b}: {med(t):.3f} ms", flush=True)
    return out


def kernel_table(prof, steps: int) -> dict:
    """Kernel name (60 characters) -> device time and calls per step, from a torch.profiler run
    over `steps` steps; dearest first."""
    kernels = {}
    for e in prof.key_averages():
        t = getattr(e, "self_device_time_total", 0) or getattr(e, "self_cuda_time_total", 0)
        if t > 0:
            kernels[e.key[:60]] = {"us_per_step": t / steps, "calls_per_step": e.count / steps}
    return dict(sorted(kernels.items(), key=lambda kv: -kv[1]["us_per_step"]))


def graph_gaps(step_ms: float, kernels: dict) -> dict:
    """A graph replay of `step_ms` against its kernels (`kernel_table`): their summed device time,
    how many launches, and the rest of the step, the time between kernels (None when the profiler
    saw no kernel inside the graph)."""
    busy_ms = sum(v["us_per_step"] for v in kernels.values()) / 1e3
    seen = busy_ms > 0
    return {"step_ms": step_ms, "kernels_ms": busy_ms if seen else None,
            "launches_per_step": sum(v["calls_per_step"] for v in kernels.values()),
            "gap_ms": step_ms - busy_ms if seen else None,
            "gap_pct": 100 * (step_ms - busy_ms) / step_ms if seen and step_ms > 0 else None,
            "kernels": dict(list(kernels.items())[:12])}


def bench_engine(args, res: dict) -> None:
    cfg = PRESETS[args.model]
    dtype = torch.float16
    t0 = time.perf_counter()
    weights = random_weights(cfg, dtype, "cuda", seed=0)
    torch.cuda.synchronize()
    res["engine_init_s"] = time.perf_counter() - t0
    bs = 16
    ctx = args.ctx
    max_b = max(BATCHES)
    per_seq_blocks = -(-(ctx + 1) // bs)
    num_blocks = max(max_b * per_seq_blocks, 4 * 512 // bs + 2048 // bs) + 8
    kv = PagedKVCache(cfg, num_blocks=num_blocks, block_size=bs, dtype=dtype, device="cuda")
    for t in kv.k + kv.v:  # never time on zeros
        t.normal_()
    slots = LoraSlots(cfg, max_loras=8, max_rank=64, target_modules=ATTN_MODULES, dtype=dtype, device="cuda")
    model = LlamaModel(cfg, weights, kv, slots)
    free, total = torch.cuda.mem_get_info()
    from gpu.engine.config import EngineConfig, derive_num_gpu_blocks

    ec = EngineConfig()
    res["memory"] = {
        "gpu_total_bytes": total,
        "weight_bytes": weights.nbytes(),
        "slot_bytes_rank64_qkvo": lora_slot_bytes(cfg, 64, ATTN_MODULES),
        "lora_slots_bytes": slots.nbytes(),
        "kv_bytes_per_token": cfg.kv_bytes_per_token(),
        "derived_num_gpu_blocks": derive_num_gpu_blocks(
            ec, total, weights.nbytes(), lora_slot_bytes(cfg, 64, ATTN_MODULES), cfg.kv_bytes_per_token()),
        "bench_num_blocks": num_blocks,
    }
    # Adapters: 8 slots, ranks 8..64 mixed for the load/merge timings, all slots filled.
    ranks = [8, 16, 32, 64, 8, 16, 32, 64]
    adapters = [random_adapter(cfg, f"r{r}_{i}", r, 2.0 * r, ATTN_MODULES, seed=10 + i, device="cuda").pin()
                for i, r in enumerate(ranks)]
    loads = []
    side = torch.cuda.Stream()
    for i, ha in enumerate(adapters):
        s_ev, e_ev = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(side):
            s_ev.record(side)
            slots.copy_in(i, ha)
            e_ev.record(side)
        e_ev.synchronize()
        loads.append({"rank": ha.rank, "bytes": ha.nbytes(), "h2d_ms": s_ev.elapsed_time(e_ev)})
    # Second round (warm): the load times reported.
    for i, ha in enumerate(adapters):
        s_ev, e_ev = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(side):
            s_ev.record(side)
            slots.copy_in(i, ha)
            e_ev.record(side)
        e_ev.synchronize()
        loads[i]["h2d_ms_warm"] = s_ev.elapsed_time(e_ev)
        loads[i]["gb_per_s_warm"] = ha.nbytes() / (loads[i]["h2d_ms_warm"] / 1e3) / 1e9
    res["loads"] = loads
    try:  # the disk tier: safetensors file -> one pinned host buffer (page cache warm: written just before)
        import tempfile

        from gpu.engine.lora import read_adapter, save_adapter

        with tempfile.TemporaryDirectory() as td:
            for ha in adapters[:4]:
                f = Path(td) / f"{ha.name}.safetensors"
                save_adapter(ha, f)
                ts = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    read_adapter(f).pin()
                    ts.append((time.perf_counter() - t0) * 1e3)
                for row in loads:
                    if row["rank"] == ha.rank and "disk_to_pinned_ms" not in row:
                        row["disk_to_pinned_ms"] = med(ts)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        res["disk_error"] = repr(e)

    blas = None if args.decode_blas == "default" else args.decode_blas
    ex = Executor(model, block_size=bs, max_model_len=4096, use_graphs=True, graph_sizes=BATCHES, max_num_seqs=max_b,
                  decode_blas=blas)
    res["decode_blas"] = ex.decode_blas
    res["graph_capture_s"] = ex.capture_graphs()
    ex_sgmv = None
    try:  # a second executor whose LoRA goes through the SGMV kernels (same slots)
        slots_sgmv = LoraSlots.__new__(LoraSlots)
        slots_sgmv.__dict__.update(slots.__dict__)
        from gpu.engine.lora import _sgmv_backend

        slots_sgmv.backend = _sgmv_backend()
        slots_sgmv.kind = "sgmv" if slots_sgmv.backend is not None else "torch"
        if slots_sgmv.kind == "sgmv":
            ex_sgmv = Executor(LlamaModel(cfg, weights, kv, slots_sgmv), block_size=bs, max_model_len=4096,
                               use_graphs=True, graph_sizes=BATCHES, max_num_seqs=max_b, decode_blas=blas)
            res["graph_capture_sgmv_s"] = ex_sgmv.capture_graphs()
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        res["sgmv_error"] = repr(e)
        ex_sgmv = None
    bw = res["ceilings"]["hbm_bytes_per_s"]
    wread = cfg.weight_bytes_read_per_step()
    res["gemm_floor"] = gemm_floor(cfg, weights)
    decode = []
    gen = torch.Generator().manual_seed(1)
    for b in BATCHES:
        for lora in ("none", "torch", "sgmv"):
            exe = ex_sgmv if lora == "sgmv" else ex
            if exe is None:
                continue
            use_lora = lora != "none"
            try:
                seqs = []
                for i in range(b):
                    table = list(range(i * per_seq_blocks, (i + 1) * per_seq_blocks))
                    exe.tokens[i] = torch.randint(0, cfg.vocab_size, (ctx + 1,), generator=gen).tolist()
                    seqs.append(Seq(i, (i % 8) if use_lora else None, ctx, 1, table))
                size = exe.bucket(b)
                exe._fill_static(seqs, size)
                t = cuda_time_ms(lambda exe=exe, size=size, use_lora=use_lora: exe.replay(size, use_lora),
                                 warmup=5, iters=30)
                kv_bytes = b * (ctx + 1) * cfg.kv_bytes_per_token()
                used = min(b, 8)  # slots the batch touches
                lora_bytes = {"none": 0, "torch": slots.nbytes(), "sgmv": slots.nbytes() * used // 8}[lora]
                step = med(t)
                roof_w = wread / bw * 1e3
                roof_all = (wread + kv_bytes + lora_bytes) / bw * 1e3
                row = {
                    "batch": b, "lora": lora, "ctx": ctx, "step_ms": step, "step_ms_min": min(t),
                    "step_ms_p90": sorted(t)[int(0.9 * (len(t) - 1))],
                    "roofline_weights_ms": roof_w, "roofline_all_ms": roof_all,
                    "pct_weight_roofline": 100 * roof_w / step, "pct_all_roofline": 100 * roof_all / step,
                    "tokens_per_s": b / (step / 1e3),
                }
                # One real step through execute() (host prep + replay + sampling), wall clock.
                w = wall_time_ms(lambda exe=exe, seqs=seqs: exe.execute(seqs), warmup=2, iters=10)
                row["execute_wall_ms"] = med(w)
                row["host_prep_ms"] = exe.last_host_s * 1e3
                decode.append(row)
                print(f"decode b={b:3d} lora={lora:5} step={step:7.3f} ms roof_w={roof_w:6.3f} "
                      f"({row['pct_weight_roofline']:5.1f}%) all={roof_all:6.3f} ({row['pct_all_roofline']:5.1f}%) "
                      f"execute={row['execute_wall_ms']:.3f} ms", flush=True)
            except Exception as e:  # noqa: BLE001
                traceback.print_exc()
                decode.append({"batch": b, "lora": lora, "error": repr(e)})
    res["decode"] = decode
    # Eager engine (no graph) for the host-overhead comparison.
    eager = []
    for b in (1, 32):
        seqs = [Seq(i, None, ctx, 1, list(range(i * per_seq_blocks, (i + 1) * per_seq_blocks))) for i in range(b)]
        w = wall_time_ms(lambda seqs=seqs: ex.execute(seqs, force_eager=True), warmup=2, iters=5)
        eager.append({"batch": b, "eager_step_wall_ms": med(w)})
    res["decode_eager"] = eager
    # Where a decode step's GPU time goes, per kernel (the eager step runs the kernels the graph
    # holds): torch.profiler's device time over 5 steps, per step.
    try:
        from torch.profiler import ProfilerActivity, profile

        breakdown = {}
        for b in (1, 32):
            seqs = [Seq(i, None, ctx, 1, list(range(i * per_seq_blocks, (i + 1) * per_seq_blocks)))
                    for i in range(b)]
            ex.execute(seqs, force_eager=True)
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(5):
                    ex.execute(seqs, force_eager=True)
                torch.cuda.synchronize()
            breakdown[str(b)] = kernel_table(prof, 5)
        res["decode_kernels"] = breakdown
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        res["decode_kernels"] = {"error": repr(e)}
    # The same inside the CUDA graph the engine replays: the step (CUDA events) against the sum of
    # its kernels' device time (torch.profiler); the difference is the time between kernels.
    try:
        from torch.profiler import ProfilerActivity, profile

        graph = {}
        for b in (1, 32):
            seqs = [Seq(i, None, ctx, 1, list(range(i * per_seq_blocks, (i + 1) * per_seq_blocks)))
                    for i in range(b)]
            size = ex.bucket(b)
            ex._fill_static(seqs, size)
            step = med(cuda_time_ms(lambda size=size: ex.replay(size, False), warmup=5, iters=30))
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(5):
                    ex.replay(size, False)
                torch.cuda.synchronize()
            graph[str(b)] = graph_gaps(step, kernel_table(prof, 5))
        res["decode_graph_kernels"] = graph
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        res["decode_graph_kernels"] = {"error": repr(e)}
    # Prefill throughput.
    peak = res["ceilings"]["fp16_flops_per_s"]
    prefill = []
    for n_seq, plen in ((1, 2048), (4, 512), (1, 512)):
        ids, pos, slotmap, chunks = [], [], [], []
        for i in range(n_seq):
            base = i * (plen // bs)
            chunks.append(PrefillChunk(len(ids), plen, 0, None))
            ids.extend(torch.randint(0, cfg.vocab_size, (plen,), generator=gen).tolist())
            for p in range(plen):
                pos.append(p)
                slotmap.append((base + p // bs) * bs + p % bs)
        dev = "cuda"
        batch = ForwardBatch(
            input_ids=torch.tensor(ids, device=dev), positions=torch.tensor(pos, device=dev),
            slot_mapping=torch.tensor(slotmap, device=dev), prefills=chunks,
            logits_idx=torch.tensor([c.tok_start + plen - 1 for c in chunks], device=dev),
        )
        t = cuda_time_ms(lambda batch=batch: model.forward(batch), warmup=2, iters=8)
        tokens = n_seq * plen
        flops = tokens * cfg.matmul_flops_per_token() + n_seq * 2 * cfg.num_layers * cfg.q_size * plen * plen
        row = {"seqs": n_seq, "prompt": plen, "tokens": tokens, "ms": med(t),
               "tokens_per_s": tokens / (med(t) / 1e3), "roofline_tokens_per_s": tokens / (flops / peak),
               "flops": flops}
        row["pct_flop_roofline"] = 100 * row["tokens_per_s"] / row["roofline_tokens_per_s"]
        prefill.append(row)
        print(f"prefill {n_seq}x{plen}: {row['ms']:.2f} ms, {row['tokens_per_s']:.0f} tok/s "
              f"({row['pct_flop_roofline']:.1f}% of FLOP roofline)", flush=True)
    res["prefill"] = prefill
    # Merge / unmerge per rank.
    merges = []
    for ha in adapters[:4]:
        dev_ad = type(ha)(ha.name, ha.rank, ha.alpha,
                          {k: (a.cuda(), b.cuda()) for k, (a, b) in ha.tensors.items()})
        tm = cuda_time_ms(lambda dev_ad=dev_ad: slots.merge(weights, dev_ad), warmup=1, iters=3)
        tu = cuda_time_ms(lambda dev_ad=dev_ad: slots.unmerge(weights, dev_ad), warmup=1, iters=3)
        merges.append({"rank": ha.rank, "merge_ms": med(tm), "unmerge_ms": med(tu)})
        print(f"merge rank {ha.rank}: {med(tm):.2f} ms, unmerge {med(tu):.2f} ms", flush=True)
    res["merge"] = merges
    gc.collect()
    torch.cuda.empty_cache()


@torch.no_grad()
def bench_transformers(args, res: dict) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = PRESETS[args.model]
    hf_cfg = LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_position, rms_norm_eps=cfg.rms_norm_eps, tie_word_embeddings=False,
    )
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16)
    try:
        with torch.device("cuda"):
            model = LlamaForCausalLM(hf_cfg)
    finally:
        torch.set_default_dtype(old)
    model = model.eval()
    res["transformers_attn_impl"] = getattr(model.config, "_attn_implementation", None)
    ctx = args.ctx
    rows = []
    for b in BATCHES:
        try:
            ids = torch.randint(0, cfg.vocab_size, (b, ctx), device="cuda")
            out = model(input_ids=ids, use_cache=True)
            pkv = out.past_key_values
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)

            def step(pkv=pkv, nxt=nxt):
                o = model(input_ids=nxt, past_key_values=pkv, use_cache=True)
                o.logits[:, -1].argmax(-1)
                if hasattr(pkv, "crop"):
                    pkv.crop(ctx)

            w = wall_time_ms(step, warmup=2, iters=8)
            rows.append({"batch": b, "ctx": ctx, "step_wall_ms": med(w)})
            print(f"transformers b={b}: {med(w):.2f} ms/step", flush=True)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            rows.append({"batch": b, "error": repr(e)})
    res["transformers_decode"] = rows
    gc.collect()
    torch.cuda.empty_cache()


def write_tables(res: dict, out: Path) -> str:
    lines = []
    c = res.get("ceilings", {})
    m = res.get("meta", {})
    lines.append(f"GPU {m.get('gpu')}, driver {m.get('driver')}, CUDA {m.get('cuda')}, torch {m.get('torch')}, "
                 f"triton {m.get('triton')}, transformers {m.get('transformers')}, fp16, {m.get('date')}, "
                 f"commit {m.get('git_commit')}")
    if c:
        lines.append(f"Measured ceilings: HBM {c['hbm_bytes_per_s'] / 1e12:.2f} TB/s (copy, read+write); "
                     f"fp16 matmul {c['fp16_flops_per_s'] / 1e12:.0f} TFLOP/s.")
    if "decode_blas" in res:
        blas = res["decode_blas"] or "torch default"
        lines.append(f"Decode graphs captured with the BLAS library preferred: {blas}.")
    if "decode_attention" in res:
        da = res["decode_attention"]
        split = f", contexts split up to {da['target_programs']} programs" if "target_programs" in da else ""
        loop = "the loop pipelined by hand (PREFETCH)" if da.get("prefetch") else f"{da['stages']} stages"
        late = ", under PDL letting the next kernel launch after its loop" if da.get("late_trigger") else ""
        late += ", launched without PDL itself" if da.get("pdl_launch") is False else ""
        late += ", its first tile loaded before its wait" if da.get("prewait") else ""
        lines.append(f"Decode attention: {da['tile']}-token tiles, {da['warps']} warps, {loop}{split}{late}.")
    dg = res.get("decode_gemm")
    if isinstance(dg, dict) and dg.get("max_m"):
        narrow = f" ({dg['narrow']} for N <= {dg['narrow_n']})" if dg["narrow"] != dg["wide"] else ""
        wide = dg.get("wide_max_m") or 0
        if wide > dg["max_m"]:
            cub = (f", weights of more than {dg['wide_cublas_n']} output columns with F.linear"
                   + (" but lm_head" if dg.get("wide_lm_head") else "")
                   if dg.get("wide_cublas_n") is not None else "")
            pdl = "" if dg.get("wide_pdl", True) else ", without PDL"
            nm = dg.get("wide_narrow_max_m")
            nrows = f" up to {nm} rows, F.linear above" if nm is not None and dg["wide_narrow_config"] else ""
            lines.append(f"Weight GEMMs up to {dg['max_m']} rows: Triton skinny GEMM {dg['wide']}{narrow}; "
                         f"{dg['max_m'] + 1}-{wide} rows: {dg['wide_config']} ({dg['wide_narrow_config']} for "
                         f"N <= {dg.get('wide_narrow_n', 4096)}{nrows}{cub}{pdl}); F.linear above.")
        else:
            lines.append(f"Weight GEMMs up to {dg['max_m']} rows: Triton skinny GEMM {dg['wide']}{narrow}; "
                         "F.linear above.")
    elif dg is not None:
        lines.append("Weight GEMMs: F.linear at every batch.")
    if isinstance(dg, dict) and dg.get("long_context") is not None:
        lines.append(f"Decode steps whose longest context is at least {dg['long_context']} tokens replay graphs with "
                     f"decode attention launched without PDL (graphs of {dg.get('long_min_rows')} rows or more).")
    if isinstance(dg, dict) and dg.get("wide_epilogues") and (dg.get("wide_max_m") or 0) > dg.get("max_m", 0):
        q, glu, narrow_cfg = dg.get("wide_epilogue_configs") or ("?", "?", "?")
        lines.append(f"Passes of {dg['max_m'] + 1}-{dg['wide_max_m']} rows without LoRA: the norms and SiLU in the "
                     f"skinny GEMMs' epilogues (WIDE_EPILOGUES; qkv, lm_head {q}, gate_up {glu}, o_proj and "
                     f"down_proj {narrow_cfg}), which then replace the routing above.")
    if isinstance(dg, dict) and dg.get("triton_argmax"):
        lines.append("Greedy sampling's argmax: one Triton program a row (TRITON_ARGMAX).")
    if res.get("fuse_prologues"):
        lines.append("add_rms_norm and silu_mul folded into the skinny GEMMs (FUSE_PROLOGUES).")
    if res.get("pdl"):
        lines.append("Decode passes through the skinny GEMM launched with programmatic dependent launch "
                     f"(DECODE_PDL), each GEMM prefetching {res['pdl']['prefetch_k']} elements of its W rows.")
    if res.get("fuse_epilogues"):
        lines.append("Norms and SiLU folded into the skinny GEMMs' epilogues without LoRA (FUSE_EPILOGUES, "
                     f"{res.get('epilogue_config') or 'the skinny configuration'}, gate_up "
                     f"{res.get('epilogue_glu_config') or 'the same'}).")
    lines.append("")
    hf = {r["batch"]: r.get("step_wall_ms") for r in res.get("transformers_decode", [])}
    if res.get("decode"):
        lines.append("| batch | LoRA kind | step ms (graph) | weight roofline ms | % of weight roofline | "
                     "weight+KV(+LoRA) roofline ms | % | execute() wall ms | transformers ms | speed-up |")
        lines.append("| ---: | :---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in res["decode"]:
            t = hf.get(r["batch"])
            if "error" in r:
                lines.append(f"| {r['batch']} | {r['lora']} | error: {r['error'][:60]} |")
                continue
            base = r["lora"] == "none"
            sp = f"{t / r['execute_wall_ms']:.1f}x" if t and base else ""
            lines.append(
                f"| {r['batch']} | {r['lora']} | {r['step_ms']:.3f} "
                f"| {r['roofline_weights_ms']:.3f} "
                f"| {r['pct_weight_roofline']:.1f} | {r['roofline_all_ms']:.3f} | {r['pct_all_roofline']:.1f} "
                f"| {r['execute_wall_ms']:.3f} | {f'{t:.2f}' if t is not None and base else ''} | {sp} |")
        lines.append("")
    if res.get("prefill"):
        lines.append("| prefill | tokens | ms | tokens/s | FLOP-roofline tokens/s | % |")
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
        for r in res["prefill"]:
            lines.append(f"| {r['seqs']} x {r['prompt']} | {r['tokens']} | {r['ms']:.2f} | {r['tokens_per_s']:.0f} "
                         f"| {r['roofline_tokens_per_s']:.0f} | {r['pct_flop_roofline']:.1f} |")
        lines.append("")
    if res.get("loads"):
        lines.append("| adapter rank | bytes | host->GPU ms (warm) | GB/s | disk->pinned host ms |")
        lines.append("| ---: | ---: | ---: | ---: | ---: |")
        for r in res["loads"][:4]:
            dk = r.get("disk_to_pinned_ms")
            lines.append(f"| {r['rank']} | {r['bytes']} | {r['h2d_ms_warm']:.2f} | {r['gb_per_s_warm']:.1f} "
                         f"| {'' if dk is None else f'{dk:.1f}'} |")
        lines.append("")
    if res.get("merge"):
        lines.append("| rank | merge ms | unmerge ms |")
        lines.append("| ---: | ---: | ---: |")
        for r in res["merge"]:
            lines.append(f"| {r['rank']} | {r['merge_ms']:.2f} | {r['unmerge_ms']:.2f} |")
        lines.append("")
    if res.get("gemm_floor"):
        lines.append("Weight GEMMs alone (CUDA graph), ms: " + ", ".join(
            f"{k}: {v:.3f}" for k, v in res["gemm_floor"].items()))
    if res.get("decode_eager"):
        lines.append("Eager engine step (no CUDA graph), wall ms: " + ", ".join(
            f"batch {r['batch']}: {r['eager_step_wall_ms']:.2f}" for r in res["decode_eager"]))
    dk = res.get("decode_kernels", {})
    for b, kernels in dk.items():
        if not isinstance(kernels, dict):
            continue
        lines.append("")
        lines.append(f"Decode step at batch {b}, GPU time per kernel (eager step, torch.profiler), us per step:")
        total = sum(v["us_per_step"] for v in kernels.values())
        for name, v in list(kernels.items())[:10]:
            lines.append(f"- {name}: {v['us_per_step']:.0f} ({v['calls_per_step']:.0f} calls; "
                         f"{100 * v['us_per_step'] / total:.1f} %)")
        lines.append(f"- all kernels: {total:.0f}")
    for b, g in res.get("decode_graph_kernels", {}).items():
        if not isinstance(g, dict):
            continue
        lines.append("")
        if g.get("gap_ms") is None:
            lines.append(f"Decode graph at batch {b}: {g['step_ms']:.3f} ms; the profiler saw no kernel inside it.")
        else:
            lines.append(f"Decode graph at batch {b} (replayed; torch.profiler): step {g['step_ms']:.3f} ms, "
                         f"kernels {g['kernels_ms']:.3f} ms over {g['launches_per_step']:.0f} launches, "
                         f"between kernels {g['gap_ms']:.3f} ms ({g['gap_pct']:.1f} %)")
    text = "\n".join(lines) + "\n"
    (out / "bench.md").write_text(text)
    return text


def set_decode_attention(spec: str, ap: argparse.ArgumentParser) -> None:
    """Sets the engine's decode-attention configuration from ``TILE,WARPS,STAGES``; an argument
    error naming the flag for anything else."""
    try:
        tile, warps, stages = (int(x) for x in spec.split(","))
    except ValueError:
        ap.error(f"--decode-attention: expected TILE,WARPS,STAGES (three integers), got {spec!r}")
    if min(tile, warps, stages) < 1 or any(x & (x - 1) for x in (tile, warps)):
        ap.error(f"--decode-attention {spec}: tile and warps are powers of two, stages at least 1")
    attention.DECODE_TILE, attention.DECODE_WARPS, attention.DECODE_STAGES = tile, warps, stages


def apply_settings(spec: str, ap: argparse.ArgumentParser) -> str:
    """--set: the engine's module constants (gpu/engine/model.py, attention.py) for this run, parsed
    as gpu/bench_decode_variants.py parses a variant's; returns them as set, an argument error
    naming the flag and the setting for a bad one."""
    from gpu.bench_decode_variants import parse_variant
    from gpu.engine import model as engine_model

    try:
        v = parse_variant(f"set:{spec}", {"attention": attention, "model": engine_model})
    except ValueError as e:
        ap.error(f"--set: {e}")
    for mod, attr, val in v.settings:
        setattr({"attention": attention, "model": engine_model}[mod], attr, val)
    return v.spec()


NARROW_N = 8192  # --decode-gemm: weights with at most this many output columns take the NARROW config


def set_decode_gemm(spec: str, ap: argparse.ArgumentParser) -> dict | str:
    """Sets the engine's weight GEMMs (gpu/engine/model.py ``linear``) for one run: ``none``, F.linear
    (cuBLAS) at every batch; else the Triton skinny GEMM (gpu/kernels/skinny_gemm.py) for batches of
    at most ``MAX_M`` rows, F.linear above, as ``WIDE`` or ``WIDE,NARROW``, config names, NARROW for
    weights of at most NARROW_N output columns (o and down in Llama-2-7B), WIDE for the others.
    Returns what was set; an argument error naming the flag for a bad name."""
    from gpu.engine import model as engine_model

    if spec == "none":
        engine_model.SKINNY_MAX_M = 0
        return "F.linear"
    from gpu.kernels.skinny_gemm import MAX_M, SkinnyConfig, skinny_gemm

    names = [x for x in spec.split(",") if x]
    if not 1 <= len(names) <= 2:
        ap.error(f"--decode-gemm: expected WIDE or WIDE,NARROW (config names), got {spec!r}")
    try:
        cfgs = [SkinnyConfig.from_name(x) for x in names]
    except ValueError as e:
        ap.error(f"--decode-gemm: {e}")
    wide, narrow = cfgs[0], cfgs[-1]

    def linear(x: torch.Tensor, w: torch.Tensor, pdl: bool = False) -> torch.Tensor:
        if x.shape[0] > MAX_M or x.dim() != 2:
            return F.linear(x, w)
        return skinny_gemm(x, w, narrow if w.shape[0] <= NARROW_N else wide, pdl=pdl,
                           prefetch_k=engine_model.DECODE_PREFETCH_K if pdl else 0)

    engine_model.linear = linear
    return {"wide": wide.name, "narrow": narrow.name, "narrow_n": NARROW_N, "max_m": MAX_M}



def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="out/bench")
    ap.add_argument("--model", default="llama-2-7b", choices=sorted(PRESETS))
    ap.add_argument("--ctx", type=int, default=128, help="context tokens per sequence in decode steps")
    ap.add_argument("--skip-transformers", action="store_true")
    ap.add_argument("--decode-blas", default=DEFAULT_DECODE_BLAS, choices=("default", "cublas", "cublaslt"),
                    help="BLAS library preferred while the decode graphs are captured (default: torch's own)")
    ap.add_argument("--decode-attention", default=None, metavar="TILE,WARPS,STAGES",
                    help="decode attention's context tile, warps and stages for this run "
                         "(gpu/engine/attention.py DECODE_TILE, DECODE_WARPS, DECODE_STAGES): the step with "
                         "another configuration of gpu/bench_decode_attention.py before the engine's default "
                         "is changed")
    ap.add_argument("--decode-attention-prefetch", action=argparse.BooleanOptionalAction, default=None,
                    help="decode attention's loop pipelined by hand, the next tile's K and V loaded before the "
                         "current one is computed (gpu/engine/attention.py DECODE_PREFETCH; STAGES unused), or "
                         "not (--no-decode-attention-prefetch); default: the engine's")
    ap.add_argument("--decode-gemm", default=None, metavar="WIDE[,NARROW]",
                    help="time the step with the Triton skinny GEMM of gpu/kernels/skinny_gemm.py for the "
                         "weight GEMMs of batches up to 64 rows (config names as gpu/bench_gemm.py prints "
                         f"them; NARROW for weights of at most {NARROW_N} output columns), or 'none': "
                         "F.linear at every batch (the engine's default: the skinny GEMM up to "
                         "gpu/engine/model.py SKINNY_MAX_M rows)")
    ap.add_argument("--fuse-prologues", action="store_true",
                    help="fold add_rms_norm into the qkv and gate_up GEMMs and silu_mul into down where the "
                         "skinny GEMM runs (gpu/engine/model.py FUSE_PROLOGUES, off by default)")
    ap.add_argument("--fuse-epilogues", action="store_true",
                    help="without LoRA, fold the norms into o_proj's and down_proj's epilogues (residual, "
                         "r * g, row sums of squares) and qkv's, gate_up's (with SiLU * up) and lm_head's (1 / rms) "
                         "where the skinny GEMM runs (gpu/engine/model.py FUSE_EPILOGUES, off by default)")
    ap.add_argument("--epilogue-config", default=None, metavar="NAME",
                    help="with --fuse-epilogues, the epilogue GEMMs' skinny configuration (gpu/bench_gemm.py's "
                         "names, no split-K or _ab; default: the engine's SKINNY_CONFIG)")
    ap.add_argument("--epilogue-glu-config", default=None, metavar="NAME",
                    help="with --fuse-epilogues, gate_up's configuration (two W tiles a K step; default: "
                         "--epilogue-config's)")
    ap.add_argument("--decode-target-programs", type=int, default=None, metavar="N",
                    help="decode attention splits each context until it has N programs, at most "
                         "DECODE_MAX_SPLITS splits (gpu/engine/attention.py DECODE_TARGET_PROGRAMS, 512)")
    ap.add_argument("--pdl", action=argparse.BooleanOptionalAction, default=None,
                    help="launch the decode passes' kernels with programmatic dependent launch where the "
                         "skinny GEMM runs (gpu/engine/model.py DECODE_PDL), or not (--no-pdl); default: the "
                         "engine's (on)")
    ap.add_argument("--pdl-prefetch-k", type=int, default=None, metavar="K",
                    help="with PDL (the default, or --pdl), the elements of each W row a GEMM program asks into "
                         "L2 before its wait (DECODE_PREFETCH_K; 0: PDL without prefetch)")
    ap.add_argument("--set", default=None, metavar="SETTINGS",
                    help="module constants for this run, as gpu/bench_decode_variants.py's variants take them: "
                         "'model.ATTR=VALUE;attention.ATTR=VALUE;...' (VALUE a Python literal), set before the "
                         "other flags apply and written to bench.json's settings")
    args = ap.parse_args()
    settings = apply_settings(args.set, ap) if args.set else None
    if args.decode_target_programs is not None:
        if args.decode_target_programs < 1:
            ap.error("--decode-target-programs takes a count >= 1")
        attention.DECODE_TARGET_PROGRAMS = args.decode_target_programs
    if args.pdl_prefetch_k is not None and (args.pdl is False or args.pdl_prefetch_k < 0):
        ap.error("--pdl-prefetch-k takes a count >= 0 and goes with PDL (not with --no-pdl)")
    if args.pdl and (args.fuse_prologues or args.fuse_epilogues):
        ap.error("--pdl runs the unfused pass: not with --fuse-prologues or --fuse-epilogues")
    if (args.epilogue_config or args.epilogue_glu_config) and not args.fuse_epilogues:
        ap.error("--epilogue-config and --epilogue-glu-config go with --fuse-epilogues")
    if args.fuse_epilogues:
        from gpu.engine import model as engine_model
        from gpu.kernels.skinny_gemm import SkinnyConfig

        engine_model.FUSE_EPILOGUES = True
        for flag, name, attr in (("--epilogue-config", args.epilogue_config, "EPILOGUE_CONFIG"),
                                 ("--epilogue-glu-config", args.epilogue_glu_config, "EPILOGUE_GLU_CONFIG")):
            if not name:
                continue
            try:
                c = SkinnyConfig.from_name(name)
            except ValueError as e:
                ap.error(str(e))
            if c.split_k != 1 or c.swap_ab:
                ap.error(f"{flag} {name}: the epilogues run without split-K or _ab")
            setattr(engine_model, attr, name)
    if args.fuse_prologues:
        from gpu.engine import model as engine_model

        engine_model.FUSE_PROLOGUES = True
    from gpu.engine import model as engine_model

    if args.pdl is not None:
        engine_model.DECODE_PDL = args.pdl
    if args.pdl_prefetch_k is not None:
        engine_model.DECODE_PREFETCH_K = args.pdl_prefetch_k
    if args.decode_attention:
        set_decode_attention(args.decode_attention, ap)
    if args.decode_attention_prefetch is not None:
        attention.DECODE_PREFETCH = args.decode_attention_prefetch
    decode_gemm = set_decode_gemm(args.decode_gemm, ap) if args.decode_gemm else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res: dict = {"meta": metadata(), "model": PRESETS[args.model].to_dict(), "dtype": "float16", "args": vars(args)}
    res["meta"]["git_commit"] = os.environ.get("GIT_COMMIT")
    res["settings"] = settings
    res["decode_attention"] = {"target_programs": attention.DECODE_TARGET_PROGRAMS,
                               "tile": attention.DECODE_TILE, "warps": attention.DECODE_WARPS,
                               "stages": attention.DECODE_STAGES, "head_fast": attention.DECODE_HEAD_FAST,
                               "prefetch": attention.DECODE_PREFETCH,
                               "late_trigger": attention.DECODE_LATE_TRIGGER,
                               "pdl_launch": attention.DECODE_PDL_LAUNCH,
                               "prewait": attention.DECODE_PREWAIT_TILE}
    if decode_gemm is None:  # the engine's own choice: the skinny GEMM where it can be imported
        from gpu.engine import model as engine_model

        sk = engine_model.SKINNY_CONFIG
        decode_gemm = "F.linear" if engine_model._SKINNY is None else {
            "wide": sk, "narrow": sk, "narrow_n": 0, "max_m": engine_model.SKINNY_MAX_M, "engine_default": True,
            **engine_model.decode_gemm_settings()}  # the wide rows' routing, as a profile records it
    res["decode_gemm"] = decode_gemm
    res["fuse_prologues"] = bool(args.fuse_prologues)
    res["fuse_epilogues"] = bool(args.fuse_epilogues)
    if engine_model.DECODE_PDL:
        res["pdl"] = {"prefetch_k": engine_model.DECODE_PREFETCH_K}
    res["epilogue_config"] = args.epilogue_config
    res["epilogue_glu_config"] = args.epilogue_glu_config
    for name, fn in (("ceilings", None), ("engine", bench_engine), ("transformers", bench_transformers)):
        if name == "transformers" and args.skip_transformers:
            continue
        t0 = time.perf_counter()
        try:
            if fn is None:
                res["ceilings"] = measure_ceilings()
            else:
                fn(args, res)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            res[f"{name}_error"] = repr(e)
        gc.collect()
        torch.cuda.empty_cache()
        res[f"{name}_seconds"] = time.perf_counter() - t0
        (out / "bench.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(write_tables(res, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
