"""Replays a scenario's trace through the live engine in real time and records the run.

    python3 gpu/replay.py SCENARIO.yaml --out DIR [--weights HF_FOLDER] [--adapters PEFT_DIR] [--no-graphs]

Reads the same scenario file as the twin (keys ``model``, ``engine``, ``workload: {trace,
catalogue}``). The loop, in wall-clock seconds from the start of the replay: ingest every request
with ``arrival_s <= now``; complete the adapter loads whose CUDA events have fired
(``Scheduler.load_done``); run the scheduling pass; start the loads it ordered (one loader, one
side stream, serialised); run the step and wait for it; ``finish_step``. Weights are random
(seeded) unless ``--weights`` names a Hugging Face Llama folder; every adapter of the catalogue
is drawn at random (seeded, its rank and alpha) and written at start-up as a safetensors file
into a temporary folder: the disk tier. Prompts are random token ids; output lengths are forced.

Writes requests.csv, iterations.csv and run.json (docs/live-run-format.md) into DIR.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gpu.engine.config import EngineConfig, derive_num_gpu_blocks  # noqa: E402
from gpu.engine.executor import DEFAULT_GRAPH_SIZES, Executor  # noqa: E402
from gpu.engine.kv_cache import PagedKVCache, lora_slot_bytes  # noqa: E402
from gpu.engine.loader import AdapterLoader  # noqa: E402
from gpu.engine.lora import LoraSlots, random_adapter, read_peft_adapter, save_adapter  # noqa: E402
from gpu.engine.model import LlamaModel  # noqa: E402
from gpu.engine.records import (  # noqa: E402
    IterationRecord,
    git_commit,
    write_iterations_csv,
    write_requests_csv,
    write_run_json,
)
from gpu.engine.scheduler import Scheduler  # noqa: E402
from gpu.engine.trace_io import read_catalogue, read_trace  # noqa: E402
from gpu.engine.weights import PRESETS, config_from_hf, load_hf_weights, random_weights  # noqa: E402


def _model_name(doc: dict) -> str:
    m = doc.get("model", "llama-2-7b")
    if isinstance(m, dict):
        m = m.get("kind", "llama-2-7b")
    return str(m)


def versions() -> dict:
    import subprocess

    try:
        import triton

        tv = triton.__version__
    except ImportError:
        tv = None
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    v = {"gpu": gpu, "torch": torch.__version__, "triton": tv, "cuda": torch.version.cuda,
         "python": sys.version.split()[0]}
    try:
        v["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                     capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:  # noqa: BLE001
        v["driver"] = None
    return v


def main() -> int:
    import os

    import yaml

    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("--out", required=True)
    ap.add_argument("--weights", default=None, help="Hugging Face Llama folder (default: random weights)")
    ap.add_argument("--adapters", default=None,
                    help="folder of PEFT adapters, one sub-folder per catalogue name (default: random adapters)")
    ap.add_argument("--no-graphs", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=None, help="stop the replay after this long")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--lora-kind", default="torch", choices=("torch", "sgmv"),
                    help="LoRA application: dense torch GEMMs or the SGMV kernels of gpu.kernels")
    ap.add_argument("--model", default=None, help="override the scenario's model (a preset name)")
    args = ap.parse_args()

    scen_path = Path(args.scenario)
    doc = yaml.safe_load(scen_path.read_text())
    engine = EngineConfig.from_mapping(doc.get("engine"), f"{scen_path}: engine")
    wl = doc["workload"]
    trace_path = scen_path.parent / wl["trace"]
    adapters = read_catalogue(scen_path.parent / wl["catalogue"])
    requests = read_trace(trace_path, adapters)
    name = args.model or _model_name(doc)
    dev = args.device
    cuda = dev == "cuda"
    dtype = torch.float16 if cuda else torch.float32
    t_setup = time.perf_counter()
    if args.weights:
        cfg = config_from_hf(args.weights)
        weights = load_hf_weights(args.weights, cfg, dtype, dev)
    else:
        cfg = PRESETS[name]
        weights = random_weights(cfg, dtype, dev, seed=args.seed)
    targets = tuple(sorted({m for a in adapters.values() for m in a.target_modules},
                           key=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"].index))
    slot_bytes = lora_slot_bytes(cfg, engine.max_lora_rank, targets)
    total_mem = torch.cuda.mem_get_info()[1] if cuda else 8 * 2**30
    derived = derive_num_gpu_blocks(engine, total_mem, weights.nbytes(), slot_bytes, cfg.kv_bytes_per_token())
    num_blocks = engine.num_gpu_blocks if engine.num_gpu_blocks is not None else derived
    if num_blocks > derived and cuda:
        raise ValueError(f"{scen_path}: engine.num_gpu_blocks {num_blocks} does not fit ({derived} derivable)")
    engine = engine.with_blocks(num_blocks)
    slots = LoraSlots(cfg, engine.max_loras, engine.max_lora_rank, targets, dtype, dev, kind=args.lora_kind)
    kv = PagedKVCache(cfg, num_blocks, engine.block_size, dtype, dev)
    model = LlamaModel(cfg, weights, kv, slots)
    sizes = tuple(s for s in DEFAULT_GRAPH_SIZES if s <= engine.max_num_seqs)
    use_graphs = cuda and not args.no_graphs
    ex = Executor(model, engine.block_size, engine.max_model_len, use_graphs=use_graphs,
                  graph_sizes=sizes, max_num_seqs=engine.max_num_seqs)
    tmp = tempfile.TemporaryDirectory(prefix="lora-adapters-")
    files = {}
    t_ad = time.perf_counter()
    for i, a in enumerate(adapters.values()):
        peft_dir = Path(args.adapters) / a.name if args.adapters else None
        if peft_dir is not None and (peft_dir / "adapter_config.json").exists():
            ha = read_peft_adapter(peft_dir, a.name, dtype=dtype)
            if ha.rank != a.rank:
                raise ValueError(f"{peft_dir}: rank {ha.rank}, catalogue says {a.rank}")
        else:
            ha = random_adapter(cfg, a.name, a.rank, a.alpha, a.target_modules, seed=1000 + i, dtype=dtype,
                                device=dev)
        files[a.name] = Path(tmp.name) / f"{a.name}.safetensors"
        save_adapter(ha, files[a.name])
    adapter_write_s = time.perf_counter() - t_ad
    # Warm-up: compile the Triton kernel and the eager shapes; capture the graphs.
    warm_len = min(600, num_blocks * engine.block_size, engine.max_model_len)
    ex.add_request(-1, torch.randint(0, cfg.vocab_size, (warm_len,)).tolist())
    warm_table = list(range(-(-warm_len // engine.block_size)))

    class _S:  # a ScheduledSeq stand-in for the warm-up
        def __init__(self, start, n, slot):
            self.request_id, self.slot, self.start_pos, self.num_tokens = -1, slot, start, n
            self.block_table = warm_table
            self.samples = True

    for slot in (None, 0):
        ex.execute([_S(0, warm_len - 1, slot)])
        ex.execute([_S(warm_len - 1, 1, slot)], force_eager=True)
    ex.drop(-1)
    capture_s = ex.capture_graphs() if use_graphs else 0.0
    if cuda:
        torch.cuda.synchronize()
    setup_s = time.perf_counter() - t_setup

    sched = Scheduler(engine, adapters)
    # Pinned host buffers for the host cache, allocated before the clock starts.
    t_pin = time.perf_counter()
    loader = AdapterLoader(slots, files, engine.max_cpu_loras, prealloc=min(engine.max_cpu_loras, len(files)),
                           prealloc_bytes=max((f.stat().st_size for f in files.values()), default=0))
    pin_s = time.perf_counter() - t_pin
    gen = torch.Generator().manual_seed(args.seed + 7)
    order = sorted(requests, key=lambda r: (r.arrival_s, r.request_id))
    records: list[IterationRecord] = []
    paths: dict[str, int] = {}
    host_ms: list[float] = []
    load_log = []
    idx = 0
    t0 = time.perf_counter()

    def now() -> float:
        return time.perf_counter() - t0

    it = 0
    stopped = False
    while idx < len(order) or sched.has_work() or loader.busy():
        t = now()
        if args.max_seconds is not None and t > args.max_seconds:
            stopped = True
            break
        while idx < len(order) and order[idx].arrival_s <= t:
            r = order[idx]
            if sched.add_request(r, t):
                ex.add_request(r.request_id, torch.randint(0, cfg.vocab_size, (r.prompt_tokens,),
                                                           generator=gen).tolist())
            idx += 1
        for rec in loader.poll():
            sched.load_done(rec.adapter, now())
            load_log.append(rec)
        start = now()
        plan = sched.schedule(start)
        for lo in plan.loads:
            loader.start(lo.adapter, lo.slot, lo.from_disk)
        if not plan.seqs:
            time.sleep(0.0002)
            continue
        ex.execute(plan.seqs)
        end = now()
        for r in sched.finish_step(plan, end):
            ex.drop(r.request_id)
        records.append(IterationRecord.from_plan(0, it, start, end - start, plan))
        paths[ex.last_path] = paths.get(ex.last_path, 0) + 1
        host_ms.append(ex.last_host_s * 1e3)
        it += 1
    wall_s = now()
    loader.close()
    for rec in loader.poll():
        load_log.append(rec)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_requests_csv(out / "requests.csv", requests)
    write_iterations_csv(out / "iterations.csv", records)
    fin = [r for r in requests if r.status == "finished"]
    summary = {
        "wall_s": wall_s, "stopped_early": stopped, "iterations": len(records), "finished": len(fin),
        "rejected": sum(r.status == "rejected" for r in requests), "requests": len(requests),
        "output_tokens_per_s": sum(r.output_tokens for r in fin) / wall_s if wall_s > 0 else None,
        "mean_ttft_s": statistics.mean(r.first_token_s - r.arrival_s for r in fin) if fin else None,
        "mean_e2e_s": statistics.mean(r.finish_s - r.arrival_s for r in fin) if fin else None,
        "preemptions": sum(r.preemptions for r in requests),
        "step_paths": paths,
        "median_host_prep_ms": statistics.median(host_ms) if host_ms else None,
    }
    loads = [{"adapter": r.adapter, "slot": r.slot, "from_disk": r.from_disk, "ordered_s": r.ordered_s - t0,
              "done_s": r.done_s - t0, "disk_s": r.disk_s, "h2d_ms": r.h2d_ms, "bytes": r.nbytes} for r in load_log]
    git = os.environ.get("GIT_COMMIT") or git_commit(ROOT)
    write_run_json(
        out / "run.json", engine.to_dict(), trace_path, str(doc.get("name", scen_path.stem)), versions(), git=git,
        extra={
            "model": {**cfg.to_dict(), "weights": args.weights or f"random(seed={args.seed})",
                      "adapters": args.adapters or "random", "dtype": str(dtype).removeprefix("torch.")},
            "catalogue": {"path": str(scen_path.parent / wl["catalogue"])},
            "lora": {"kind": slots.kind, "target_modules": list(targets), "slot_bytes": slot_bytes},
            "cuda_graphs": use_graphs, "graph_sizes": list(sizes), "device": dev,
            "num_gpu_blocks_derivable": derived,
            "setup_s": setup_s, "graph_capture_s": capture_s, "adapter_write_s": adapter_write_s,
            "host_buffers": {"count": min(engine.max_cpu_loras, len(files)), "pin_s": pin_s,
                             "fallback_reads": loader.fallback_reads},
            "summary": summary, "loads": loads,
        },
    )
    print(json.dumps(summary, indent=2))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        sys.exit(1)
