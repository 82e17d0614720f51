"""Replays a scenario's trace through the live engine in real time and records the run.

    python3 gpu/replay.py SCENARIO.yaml --out DIR [--weights HF_FOLDER] [--adapters PEFT_DIR] [--no-graphs]

Reads the same scenario file as the twin (keys ``model``, ``engine``, ``scheduler``, ``workload:
{trace, catalogue}``). The loop, in wall-clock seconds from the start of the replay: ingest every
request with ``arrival_s <= now``; complete the adapter loads whose CUDA events have fired
(``Scheduler.load_done``); run the scheduling pass; start the loads it ordered (one loader, one
side stream, serialised); run the step and wait for it; ``finish_step``. Weights are random
(seeded) unless ``--weights`` names a Hugging Face Llama folder; every adapter of the catalogue
is drawn at random (seeded, its rank and alpha) and written at start-up as a safetensors file
into a temporary folder: the disk tier. Prompts are random token ids; output lengths are forced.

With ``scheduler: {kind: dlora, ...}`` the pass is ``DLoRAScheduler``'s (docs/schedulers.md). A
pass that orders a mode switch forms no batch: the loop folds the adapter into the base weights
(merge) or out of them (unmerge) in place, waits for it, and tells the scheduler the switch's
measured seconds (``switch_started``, ``switch_done``); see docs/schedulers.md, "Engine:
switching at run time". While merged, the merged adapter's requests run with no LoRA slot: the
base weights already hold the adapter, and the base path's CUDA graphs read those same tensors.

Writes requests.csv, iterations.csv (with the live engine's ``switch_s`` column) and run.json
(docs/live-run-format.md) into DIR.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gpu.common.gpu_monitor import GpuMonitor  # noqa: E402
from gpu.common.runtime_stats import RuntimeStats  # noqa: E402
from gpu.common.timing import timed  # noqa: E402
from gpu.engine.config import EngineConfig, derive_num_gpu_blocks, parse_scheduler  # noqa: E402
from gpu.engine.dlora import DLoRAScheduler, SwitchOrder  # noqa: E402
from gpu.engine.executor import (  # noqa: E402
    DEFAULT_DECODE_BLAS,
    DEFAULT_DENSE_LORA_FROM,
    DEFAULT_GRAPH_SIZES,
    DEFAULT_TOKEN_GRAPH_SIZES,
    Executor,
)
from gpu.engine.kv_cache import PagedKVCache, lora_slot_bytes  # noqa: E402
from gpu.engine.loader import AdapterLoader  # noqa: E402
from gpu.engine.lora import (  # noqa: E402
    HostAdapter,
    LoraSlots,
    pow2,
    random_adapter,
    read_peft_adapter,
    save_adapter,
)
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
from gpu.engine.weights import PRESETS, ModelWeights, config_from_hf, load_hf_weights, random_weights  # noqa: E402


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


class Switcher:
    """Performs the mode switches that a `dlora` pass orders, on the live weights, in place.

    Source of the adapter's weights (``--merge-from``): ``host``, the host copy drawn (or read) at
    start-up, kept for every adapter of the catalogue, outside the loader's host cache (whose
    buffers a loader thread may recycle while the main thread merges); it moves to the GPU during
    the merge, as in profile_steps.py's merge table, which the twin's switch cost is fitted on. Or
    ``slot``: the adapter's rows of its GPU slot (resident: a merge starts only onto a resident
    adapter, and merged passes start no loads, so the slot still holds it at the unmerge).

    Precision: no copy of the base weights is kept. ``LoraSlots.merge`` forms ``B A`` in fp32,
    rounds it once to the weights' dtype and adds it in place (``W.add_``, one rounding of the
    sum); the unmerge subtracts the same rounded delta. In fp16 a merge/unmerge cycle returns
    most elements exactly but changes about 7 % of them by one unit in the last place of the merged
    value (an element whose merged value moved to a larger binade cannot be rounded back): an RMS
    change of about 1e-4 of the weights' RMS. Cycles of the same adapter do not add up (the result
    is a fixed point); cycles of different adapters do, like a random walk (about 1e-3 after 100
    cycles of 20 adapters, CPU fp16 measurement). That is below the rounding of every fp16 GEMM
    of a step, and far below the adapters' own deltas. An exact unmerge would need a copy of every
    target module (4 GiB for q, k, v, o of a 7B model, taken from the KV cache) and would time a
    copy, not the operation the profile measured; fp32 accumulation instead of the fp16 add would
    not help, since the residue comes from storing the merged weights in fp16 at all.
    """

    def __init__(self, slots: LoraSlots, weights: ModelWeights, host: dict[str, HostAdapter], source: str,
                 cuda: bool) -> None:
        if source not in ("host", "slot"):
            raise ValueError(f"merge source: expected host or slot, found {source!r}")
        self.slots = slots
        self.weights = weights
        self.host = host
        self.source = source
        self.cuda = cuda

    def _sync(self) -> None:
        """Waits for the switch's work on the current stream only (not for a load the loader may
        have in flight on its side stream), on an event, which releases the GIL as the executor's
        wait does."""
        if self.cuda:
            ev = torch.cuda.Event()
            ev.record()
            ev.synchronize()

    def adapter(self, name: str, sched: DLoRAScheduler) -> HostAdapter:
        """The weights of adapter `name` to fold in or out."""
        if self.source == "host":
            return self.host[name]
        slot = sched.resident_adapters()[name]
        info = sched.adapters[name]
        r = info.rank
        sl = self.slots
        tensors = {(li, m): (sl.A[li][m][slot, :r], sl.BT[li][m][slot, :r])
                   for li in range(sl.cfg.num_layers) for m in info.target_modules}
        return HostAdapter(name=name, rank=r, alpha=info.alpha, tensors=tensors)

    def run(self, order: SwitchOrder, sched: DLoRAScheduler) -> float:
        """Merges or unmerges `order.adapter` and waits for the GPU. Returns the seconds it took."""
        ha = self.adapter(order.adapter, sched)
        t0 = time.perf_counter()
        if order.merging:
            self.slots.merge(self.weights, ha)
        else:
            self.slots.unmerge(self.weights, ha)
        self._sync()
        return time.perf_counter() - t0

    def warm_up(self, cfg, targets: tuple[str, ...], rank: int) -> float:
        """Merges and unmerges an adapter of zeros of rank `rank` (exact: it adds zeros), so that
        the first real switch does not pay for the allocator's first fp32 temporaries or the GEMM
        library's first call at that shape. Returns the seconds."""
        dt = self.weights.embed.dtype
        tensors = {}
        for li in range(cfg.num_layers):
            for m in targets:
                fin, fout = cfg.module_dims(m)
                tensors[(li, m)] = (torch.zeros(rank, fin, dtype=dt), torch.zeros(rank, fout, dtype=dt))
        zero = HostAdapter(name="warm-up", rank=rank, alpha=1.0, tensors=tensors)
        t0 = time.perf_counter()
        self.slots.merge(self.weights, zero)
        self.slots.unmerge(self.weights, zero)
        self._sync()
        return time.perf_counter() - t0


WARM_DOP_ROWS = (4, 16, 48, 200)  # eager rows per warm-up layout: Dop's decode entries up to 64, its prefill ones above


def warm_dop(ex: Executor, slots: LoraSlots, ranks: list[int], vocab_size: int, table: list[int],
             block_size: int) -> float:
    """Compiles, before the clock, the Dop kernel variants a live run's eager steps will choose:
    for each adapter rank of the catalogue (a slot's rank sets the sliced stacks and ``block_r``)
    and each workload type the dispatcher tells apart (one segment, equal segments, unequal ones,
    one row each), an eager step of 4, 16, 48 and 200 LoRA rows. Without it the warm-up's empty
    slot (rank 0) compiled rank-1 slices only, and the runs at 3270652 paid their compilations in
    one or two iterations of 0.4-1.6 s (docs/dop.md). The slots' stacks are whatever they hold (no
    adapter yet: zeros); the ranks are put back afterwards. Returns the seconds it took."""
    t0 = time.perf_counter()
    saved = list(slots.slot_rank)
    room = len(table) * block_size
    n_slots = slots.max_loras
    rows = [n for n in WARM_DOP_ROWS if n < room]
    for i in range(max(rows, default=0)):
        ex.add_request(-10 - i, torch.randint(0, vocab_size, (2,)).tolist())

    class _Row:  # one decode row of the warm-up's own request -10 - i
        def __init__(self, i: int, slot: int) -> None:
            self.request_id, self.slot, self.start_pos, self.num_tokens = -10 - i, slot, 1, 1
            self.block_table = table
            self.samples = True

    layouts = {
        "identical": lambda n: [0] * n,
        "uniform": lambda n: [i % 2 for i in range(n)],
        "skewed": lambda n: [0 if i < (3 * n) // 4 else 1 for i in range(n)],
        "distinct": lambda n: [i % n_slots for i in range(n)],
    }
    for r in ranks:
        for s in range(n_slots):
            slots.slot_rank[s] = min(r, slots.max_rank)
        for n in rows:
            for make in layouts.values():
                ex.execute([_Row(i, sl) for i, sl in enumerate(make(n))], force_eager=True)
                for i in range(n):
                    del ex.tokens[-10 - i][2:]
    slots.slot_rank[:] = saved
    for i in range(max(rows, default=0)):
        ex.drop(-10 - i)
    return time.perf_counter() - t0


PROBE_TOKENS = (16, 64, 256)


def host_probe(ex: Executor, vocab_size: int, table: list[int], block_size: int, reps: int = 7) -> dict[str, Any]:
    """Eager steps of one fresh prompt chunk of 16, 64 and 256 tokens without LoRA, timed as
    ``step_tokens.csv`` times them (wall time around ``Executor.execute``, median of ``reps`` after
    two warm-up steps), just before the replay's clock starts. Small eager steps are bound by the
    host, whose speed differed between runs of one machine by up to 45 % (docs/validation.md, "Step
    by step"); this is the same machine's host measured at the time of the run, to set against the
    profile's rows. Writes into the warm-up's KV blocks, which no request holds yet."""
    room = len(table) * block_size
    tokens = [t for t in PROBE_TOKENS if t < room]
    prompt = max(tokens, default=1) + 1
    ex.add_request(-2, torch.randint(0, vocab_size, (prompt,)).tolist())

    class _Chunk:  # a ScheduledSeq stand-in: a prompt chunk at position 0
        def __init__(self, n: int) -> None:
            self.request_id, self.slot, self.start_pos, self.num_tokens = -2, None, 0, n
            self.block_table = table
            self.samples = True

    doc: dict[str, Any] = {"method": "eager step of one prompt chunk at position 0, no LoRA, wall time around "
                           f"Executor.execute, median of {reps} after 2 warm-up steps (as step_tokens.csv)",
                           "tokens": tokens, "median_us": [], "p10_us": [], "p90_us": []}
    doc["eager_median_us"] = []
    for t in tokens:
        for eager in (False, True):
            def step(t=t, eager=eager):
                ex.execute([_Chunk(t)], force_eager=eager)
                del ex.tokens[-2][prompt:]  # drop the sampled token: the prompt stays as it was

            st = timed(step, reps=reps)
            if eager:
                doc["eager_median_us"].append(round(st.median, 3))
            else:
                doc["median_us"].append(round(st.median, 3))
                doc["p10_us"].append(round(st.p10, 3))
                doc["p90_us"].append(round(st.p90, 3))
    ex.drop(-2)
    return doc


@dataclasses.dataclass
class ReplayResult:
    """What `replay` leaves behind: the summary (also in run.json), the scheduler in its final
    state, the live weights and slots (tests compare them), every finished request's output
    token ids, and the mode switches performed."""

    summary: dict[str, Any]
    scheduler: Scheduler
    weights: ModelWeights
    slots: LoraSlots
    host_adapters: dict[str, HostAdapter]
    outputs: dict[int, list[int]]
    switches: list[dict[str, Any]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("--out", required=True)
    ap.add_argument("--weights", default=None, help="Hugging Face Llama folder (default: random weights)")
    ap.add_argument("--adapters", default=None,
                    help="folder of PEFT adapters, one sub-folder per catalogue name (default: random adapters)")
    ap.add_argument("--no-graphs", action="store_true")
    ap.add_argument("--no-token-graphs", action="store_true",
                    help="run steps with prefill chunks eagerly (decode steps still replay CUDA graphs)")
    ap.add_argument("--dense-lora-from", type=int, default=DEFAULT_DENSE_LORA_FROM,
                    help="token graphs of at least this many tokens apply LoRA densely (0: the kind's kernels always)")
    ap.add_argument("--decode-blas", default=DEFAULT_DECODE_BLAS, choices=("default", "cublas", "cublaslt"),
                    help="BLAS library preferred while the decode graphs are captured (default: torch's own)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=None, help="stop the replay after this long")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--lora-kind", default="torch", choices=("torch", "sgmv", "dop"),
                    help="LoRA application: dense torch GEMMs, the SGMV kernels of gpu.kernels, or the kernel "
                         "configuration the Dop tuned table chooses per call (gpu/dop/dispatch.py; SGMV without "
                         "a table)")
    ap.add_argument("--dop-table", default=str(ROOT / "gpu" / "dop" / "tuned_h200.json"),
                    help="tuned table for --lora-kind dop")
    ap.add_argument("--dop-slices", action=argparse.BooleanOptionalAction, default=True,
                    help="--lora-kind dop: q, k and v as one sliced operator (one shrink and one expand; "
                         "gpu/engine/lora.py); --no-dop-slices runs them as three calls")
    ap.add_argument("--model", default=None, help="override the scenario's model (a preset name)")
    ap.add_argument("--merge-from", default="host", choices=("host", "slot"),
                    help="dlora: fold the adapter in from its host copy (as profiled) or from its GPU slot")
    ap.add_argument("--tokens-out", default=None, help="also write every request's output token ids (JSON)")
    return ap.parse_args(argv)


def _dop_choices(slots: LoraSlots) -> list[dict]:
    """The table keys the "dop" kind chose during the run, one row per distinct call class."""
    return [{"h_in": k[0], "h_out": k[1], "tokens": k[2], "workload": k[3], "rank": k[4], "graph": k[5],
             "slices": k[6], "choice": v} for k, v in sorted(slots.dop_choices.items(), key=str)]


def replay(args: argparse.Namespace) -> ReplayResult:
    """Runs the replay of `args.scenario` and writes the run into `args.out`."""
    import os

    import yaml

    scen_path = Path(args.scenario)
    doc = yaml.safe_load(scen_path.read_text())
    engine = EngineConfig.from_mapping(doc.get("engine"), f"{scen_path}: engine")
    dlora = parse_scheduler(doc.get("scheduler"), f"{scen_path}: scheduler")
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
    slots = LoraSlots(cfg, engine.max_loras, engine.max_lora_rank, targets, dtype, dev, kind=args.lora_kind,
                      tuned_table=args.dop_table if args.lora_kind == "dop" else None, dop_slices=args.dop_slices)
    if slots.dop_status:
        print(f"lora kind dop: {slots.dop_status}", flush=True)
    kv = PagedKVCache(cfg, num_blocks, engine.block_size, dtype, dev)
    model = LlamaModel(cfg, weights, kv, slots)
    sizes = tuple(s for s in DEFAULT_GRAPH_SIZES if s <= engine.max_num_seqs)
    use_graphs = cuda and not args.no_graphs
    ex = Executor(model, engine.block_size, engine.max_model_len, use_graphs=use_graphs,
                  graph_sizes=sizes, max_num_seqs=engine.max_num_seqs,
                  token_graph_sizes=() if args.no_token_graphs else DEFAULT_TOKEN_GRAPH_SIZES,
                  max_num_batched_tokens=engine.max_num_batched_tokens,
                  dense_lora_from=args.dense_lora_from or None,
                  decode_blas=None if args.decode_blas == "default" else args.decode_blas)
    tmp = tempfile.TemporaryDirectory(prefix="lora-adapters-")
    files = {}
    host_adapters: dict[str, HostAdapter] = {}  # kept for dlora's merges (Switcher, source host)
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
        if dlora is not None and args.merge_from == "host":
            host_adapters[a.name] = ha
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
    dop_warm_s = None
    if slots.kind == "dop" and slots.dop is not None:
        dop_warm_s = warm_dop(ex, slots, sorted({pow2(a.rank) for a in adapters.values()}), cfg.vocab_size,
                              warm_table, engine.block_size)
    capture_s = ex.capture_graphs() if use_graphs else 0.0
    switcher = Switcher(slots, weights, host_adapters, args.merge_from, cuda) if dlora is not None else None
    max_rank = max((a.rank for a in adapters.values()), default=1)
    switch_warm_s = switcher.warm_up(cfg, targets, max_rank) if switcher is not None else 0.0
    if cuda:
        torch.cuda.synchronize()
    probe = host_probe(ex, cfg.vocab_size, warm_table, engine.block_size)
    setup_s = time.perf_counter() - t_setup

    sched: Scheduler = Scheduler(engine, adapters) if dlora is None else DLoRAScheduler(engine, adapters, dlora)
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
    switch_log: list[dict[str, Any]] = []
    outputs: dict[int, list[int]] = {}
    idx = 0
    monitor = GpuMonitor().start() if cuda else None  # clocks and power during the replay (run.json)
    # collector passes and allocator calls during the replay; no automatic collector pass in it
    # (gpu/common/runtime_stats.py, quiet_gc: a full pass stalled the loop 75-136 ms in about half the runs)
    runtime = RuntimeStats(cuda, quiet_gc=True).start()
    t0 = time.perf_counter()

    def now() -> float:
        return time.perf_counter() - t0

    it = 0
    stopped = False
    switch_s = 0.0  # seconds of mode switches since the last iteration (iterations.csv's switch_s)
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
        switch = getattr(plan, "switch", None)
        if switch is not None:
            # A mode switch (dlora): the pass formed no batch. Fold the adapter in or out, wait for
            # the GPU, and end the switch at the measured time: the replica was unavailable from
            # the pass (`start`) to the end of the switch, as the policy's `switch_seconds`.
            assert isinstance(sched, DLoRAScheduler) and switcher is not None
            op_s = switcher.run(switch, sched)
            end = now()
            sched.switch_started(end - start)
            sched.switch_done(end)
            switch_s += end - start
            switch_log.append({"op": switch.kind, "adapter": switch.adapter, "start_s": start,
                               "seconds": end - start, "op_s": op_s, "preempted": len(plan.preempted)})
            continue
        if not plan.seqs:
            time.sleep(0.0002)
            continue
        mode = getattr(plan, "mode", "unmerged")
        seqs = plan.seqs
        if mode == "merged":
            # The weights hold the merged adapter: its requests (the only ones running) take the
            # base path, with no LoRA slot. No other request can be in a merged batch.
            seqs = [dataclasses.replace(q, slot=None) for q in plan.seqs]
        ex.execute(seqs)
        end = now()
        for r in sched.finish_step(plan, end):
            outputs[r.request_id] = ex.tokens[r.request_id][r.prompt_tokens:]
            ex.drop(r.request_id)
        if isinstance(sched, DLoRAScheduler):
            sched.record_iteration(plan, end - start)
        records.append(IterationRecord.from_plan(0, it, start, end - start, plan, mode=mode, switch_s=switch_s))
        switch_s = 0.0
        paths[ex.last_path] = paths.get(ex.last_path, 0) + 1
        host_ms.append(ex.last_host_s * 1e3)
        it += 1
    wall_s = now()
    if monitor is not None:
        monitor.stop()
    runtime_doc = runtime.stop()
    loader.close()
    for rec in loader.poll():
        load_log.append(rec)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_requests_csv(out / "requests.csv", requests)
    write_iterations_csv(out / "iterations.csv", records, switch_column=True)
    fin = [r for r in requests if r.status == "finished"]
    mode_changes, last_mode = 0, "unmerged"  # as the twin counts them (LiveRun.swift): the run starts unmerged
    for x in records:
        if x.mode != last_mode:
            mode_changes, last_mode = mode_changes + 1, x.mode
    summary = {
        "wall_s": wall_s, "stopped_early": stopped, "iterations": len(records), "finished": len(fin),
        "rejected": sum(r.status == "rejected" for r in requests), "requests": len(requests),
        "output_tokens_per_s": sum(r.output_tokens for r in fin) / wall_s if wall_s > 0 else None,
        "mean_ttft_s": statistics.mean(r.first_token_s - r.arrival_s for r in fin) if fin else None,
        "mean_e2e_s": statistics.mean(r.finish_s - r.arrival_s for r in fin) if fin else None,
        "preemptions": sum(r.preemptions for r in requests),
        "step_paths": paths,
        "median_host_prep_ms": statistics.median(host_ms) if host_ms else None,
        "mode_changes": mode_changes,
        "merged_iterations": sum(x.mode == "merged" for x in records),
        "merges": sum(s["op"] == "merge" for s in switch_log),
        "unmerges": sum(s["op"] == "unmerge" for s in switch_log),
        "switch_s": sum(s["seconds"] for s in switch_log),
        "final_mode": getattr(sched, "mode", "unmerged"),
    }
    loads = [{"adapter": r.adapter, "slot": r.slot, "from_disk": r.from_disk, "ordered_s": r.ordered_s - t0,
              "done_s": r.done_s - t0, "disk_s": r.disk_s, "h2d_ms": r.h2d_ms, "bytes": r.nbytes} for r in load_log]
    if isinstance(sched, DLoRAScheduler):
        scheduler_doc: dict[str, Any] = {
            "kind": "dlora", **dataclasses.asdict(sched.params), "merge_from": args.merge_from,
            "switch_warm_up_s": switch_warm_s,
            "final": {"merge_ratio": sched.merge_ratio, "stay_ratio": sched.stay_ratio,
                      "speed_merged": sched.speed_merged, "speed_unmerged": sched.speed_unmerged,
                      "prioritised_passes": sched.prioritised_passes, "drain_passes": sched.drain_passes,
                      "priority_unmerges": sched.priority_unmerges, "empty_unmerges": sched.empty_unmerges,
                      "aged_passes": sched.aged_passes, "aged_base_passes": sched.aged_base_passes,
                      "credit": dict(sched.credit)},
        }
    else:
        scheduler_doc = {"kind": "fcfs"}
    git = os.environ.get("GIT_COMMIT") or git_commit(ROOT)
    write_run_json(
        out / "run.json", engine.to_dict(), trace_path, str(doc.get("name", scen_path.stem)), versions(), git=git,
        extra={
            "model": {**cfg.to_dict(), "weights": args.weights or f"random(seed={args.seed})",
                      "adapters": args.adapters or "random", "dtype": str(dtype).removeprefix("torch.")},
            "catalogue": {"path": str(scen_path.parent / wl["catalogue"])},
            "lora": {"kind": slots.kind, "target_modules": list(targets), "slot_bytes": slot_bytes,
                     "dense_from": ex.dense_lora_from if slots.kind in ("sgmv", "dop") else None,
                     **({"dop": {"table": args.dop_table, "status": slots.dop_status,
                                 "graph_workload": slots.graph_workload, "warm_up_s": dop_warm_s,
                                 "slices": slots.dop_slices, "qkv_calls": dict(slots.dop_sliced_calls),
                                 "choices": _dop_choices(slots)}}
                        if args.lora_kind == "dop" else {})},
            "scheduler": scheduler_doc,
            "cuda_graphs": use_graphs, "graph_sizes": list(sizes), "decode_blas": ex.decode_blas,
            "token_graph_sizes": list(ex.token_sizes) if use_graphs else [], "device": dev,
            "num_gpu_blocks_derivable": derived,
            "setup_s": setup_s, "graph_capture_s": capture_s, "adapter_write_s": adapter_write_s,
            "host_buffers": {"count": min(engine.max_cpu_loras, len(files)), "pin_s": pin_s,
                             "fallback_reads": loader.fallback_reads},
            "summary": summary, "loads": loads, "switches": switch_log,
            "gpu_monitor": monitor.summary(t0) if monitor is not None else {"available": False, "reason": "not CUDA"},
            "runtime": runtime_doc,
            "host_probe": probe,
        },
    )
    if args.tokens_out:
        Path(args.tokens_out).write_text(json.dumps({str(k): v for k, v in sorted(outputs.items())}) + "\n")
    tmp.cleanup()
    return ReplayResult(summary=summary, scheduler=sched, weights=weights, slots=slots,
                        host_adapters=host_adapters, outputs=outputs, switches=switch_log)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: replays, prints the summary."""
    result = replay(parse_args(argv))
    print(json.dumps(result.summary, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        sys.exit(1)
