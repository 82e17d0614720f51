"""Diagnosis of the eager (mixed prefill + decode) steps: where does their time go?

The validation runs showed live eager steps 3-5x slower than the profile's eager steps
(docs/validation.md). This script looks from three sides, on the GPU machine:

1. ``sdpa``: torch SDPA as the engine calls it for a prompt chunk (causal from position 0, and
   with a mask over cached context), per backend, first call of a new shape vs repeated calls.
2. ``synthetic``: eager steps made like live ones (profile_steps.profile_mixed's recipe), each
   executed on new shapes and then repeated: wall time, GPU time between CUDA events, allocator
   counters; a torch.profiler table over a few first executions.
3. ``replay``: a real-time replay of one validation scenario (gpu/replay.py, stopped early) with
   ``Executor.execute`` wrapped: per eager call wall vs GPU time, and a torch.profiler table over
   some eager calls. This is diagnosis only; nothing from it enters a profile.

Usage: python3 gpu/diag_mixed.py --out DIR [--scenario traces/live/v05-.../scenario.yaml]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def sync_wall(fn) -> float:
    torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) * 1e6


def diag_sdpa(out: list[str]) -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    be = torch.backends.cuda
    out.append(f"flash={be.flash_sdp_enabled()} mem_eff={be.mem_efficient_sdp_enabled()} "
               f"cudnn={be.cudnn_sdp_enabled()} math={be.math_sdp_enabled()}")
    out.append("case,backend,n,total,first_us,second_us,median_us")
    rnd = random.Random(3)
    h, d = 32, 128
    for case in ("causal", "masked"):
        for backend in (None, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                        SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH):
            for _ in range(3):
                n = rnd.randrange(100, 1500)
                start = 0 if case == "causal" else rnd.randrange(200, 2000)
                total = start + n
                q = torch.randn(1, h, n, d, device="cuda", dtype=torch.float16)
                k = torch.randn(1, h, total, d, device="cuda", dtype=torch.float16)
                v = torch.randn_like(k)
                if case == "causal":
                    def call(q=q, k=k, v=v):
                        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
                else:
                    qpos = torch.arange(start, total, device="cuda")[:, None]
                    kpos = torch.arange(total, device="cuda")[None, :]
                    mask = kpos <= qpos

                    def call(q=q, k=k, v=v, mask=mask):
                        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
                name = "default" if backend is None else backend.name
                try:
                    if backend is None:
                        first = sync_wall(call)
                        second = sync_wall(call)
                        med = statistics.median(sync_wall(call) for _ in range(5))
                    else:
                        with sdpa_kernel([backend]):
                            first = sync_wall(call)
                            second = sync_wall(call)
                            med = statistics.median(sync_wall(call) for _ in range(5))
                    out.append(f"{case},{name},{n},{total},{first:.1f},{second:.1f},{med:.1f}")
                except Exception as e:  # noqa: BLE001
                    out.append(f"{case},{name},{n},{total},error: {type(e).__name__}: {str(e)[:80]}")
                    break


def profiler_table(prof, rows: int = 25) -> str:
    ka = prof.key_averages()
    a = ka.table(sort_by="self_cpu_time_total", row_limit=rows)
    b = ka.table(sort_by="self_device_time_total", row_limit=rows)
    return "== by self CPU time\n" + a + "\n== by self device time\n" + b


def diag_synthetic(out: list[str], prof_out: Path) -> None:
    from gpu.engine.executor import DEFAULT_GRAPH_SIZES
    from gpu.engine.lora import random_adapter
    from gpu.profile_steps import TARGETS, Rig

    sizes = tuple(s for s in DEFAULT_GRAPH_SIZES if s <= 128)
    rig = Rig("llama-2-7b", "cuda", sizes, 0.5)
    rig.warm()
    kind = "sgmv" if "sgmv" in rig.kinds else rig.kinds[0]
    ex = rig.ex[kind]
    ranks = (8, 16, 32, 64, 8, 16, 32, 64)
    for slot, r in enumerate(ranks):
        rig.slots[kind].copy_in(slot, random_adapter(rig.cfg, f"d{slot}", r, 2.0 * r, TARGETS, seed=50 + slot,
                                                     dtype=rig.dtype, device=rig.device))
    rnd = random.Random(11)
    out.append("variant,decode,chunks,cont,prefill_tokens,first_wall_us,first_gpu_us,rep_wall_us,rep_gpu_us,"
               "allocs,alloc_retries")

    def compose(lora: bool, chunks_only: bool = False):
        d = 0 if chunks_only else rnd.choice((4, 16, 32, 64))
        seqs = []
        for _ in range(d):
            seqs += rig.decode_seqs(ex, 1, rnd.randint(64, 2048), slots=[rnd.randrange(8) if lora else None])
        budget = 2048
        for _ in range(rnd.randint(1, 3)):
            n = min(rnd.choice((64, 128, 256, 512, 1024)) + rnd.randrange(0, 60), budget)
            c = 0 if rnd.random() < 0.5 else rnd.choice((256, 512, 1024))
            seqs += rig.prefill_seqs(ex, [n], context=c, slot=rnd.randrange(8) if lora else None)
            budget -= n
        rnd.shuffle(seqs)
        return seqs

    def timed(seqs):
        st = torch.cuda.memory_stats()
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        t = time.perf_counter()
        e0.record()
        ex.execute(seqs)
        e1.record()
        torch.cuda.synchronize()
        wall = (time.perf_counter() - t) * 1e6
        st2 = torch.cuda.memory_stats()
        return wall, e0.elapsed_time(e1) * 1e3, (st2.get("num_device_alloc", 0) - st.get("num_device_alloc", 0),
                                                 st2.get("num_alloc_retries", 0) - st.get("num_alloc_retries", 0))

    for variant, lora, chunks_only in (("lora", True, False), ("base", False, False), ("lora-chunks-only", True, True)):
        for _ in range(10):
            seqs = compose(lora, chunks_only)
            fw, fg, (na, nr) = timed(seqs)
            reps = [timed(seqs) for _ in range(3)]
            pre = [q for q in seqs if q.num_tokens != 1]
            out.append(f"{variant},{sum(1 for q in seqs if q.num_tokens == 1)},{len(pre)},"
                       f"{sum(1 for q in pre if q.start_pos > 0)},{sum(q.num_tokens for q in pre)},{fw:.0f},{fg:.0f},"
                       f"{statistics.median(r[0] for r in reps):.0f},"
                       f"{statistics.median(r[1] for r in reps):.0f},{na},{nr}")
            rig.drop(ex, seqs)
    from torch.profiler import ProfilerActivity, profile
    seqs_list = [compose(True) for _ in range(4)]
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for seqs in seqs_list:
            ex.execute(seqs)
        torch.cuda.synchronize()
    prof_out.write_text(profiler_table(prof))
    rig.ex.clear()
    torch.cuda.empty_cache()


def diag_replay(scenario: str, run_out: Path, prof_out: Path, seconds: int, out: list[str]) -> None:
    from torch.profiler import ProfilerActivity, profile

    from gpu import replay
    from gpu.engine import executor as exmod

    orig = exmod.Executor.execute
    calls: list[dict] = []
    state = {"eager": 0, "prof": None}

    def wrapped(self, seqs, return_logits=False, force_eager=False):
        eager = any(s.num_tokens != 1 for s in seqs)
        if not eager:
            return orig(self, seqs, return_logits, force_eager)
        state["eager"] += 1
        k = state["eager"]
        use_prof = 60 <= k < 75
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        t = time.perf_counter()
        if use_prof:
            if state["prof"] is None:
                state["prof"] = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])
                state["prof"].__enter__()
        e0.record()
        r = orig(self, seqs, return_logits, force_eager)
        e1.record()
        torch.cuda.synchronize()
        wall = (time.perf_counter() - t) * 1e6
        if k == 74 and state["prof"] is not None:
            state["prof"].__exit__(None, None, None)
            prof_out.write_text(profiler_table(state["prof"]))
        pre = [s for s in seqs if s.num_tokens != 1]
        calls.append({"k": k, "wall_us": wall, "gpu_us": e0.elapsed_time(e1) * 1e3,
                      "host_us": self.last_host_s * 1e6, "decode": len(seqs) - len(pre), "chunks": len(pre),
                      "cont": sum(1 for s in pre if s.start_pos > 0),
                      "prefill_tokens": sum(s.num_tokens for s in pre), "profiled": use_prof})
        return r

    exmod.Executor.execute = wrapped
    argv = sys.argv
    sys.argv = ["replay.py", scenario, "--out", str(run_out), "--lora-kind", "sgmv", "--max-seconds", str(seconds)]
    try:
        replay.main()
    finally:
        sys.argv = argv
        exmod.Executor.execute = orig
    (run_out / "eager_calls.json").write_text(json.dumps(calls))
    out.append("replay eager calls: k,wall_us,gpu_us,host_us,decode,chunks,cont,prefill_tokens")
    for c in calls[::max(1, len(calls) // 40)]:
        out.append(f"{c['k']},{c['wall_us']:.0f},{c['gpu_us']:.0f},{c['host_us']:.0f},{c['decode']},{c['chunks']},"
                   f"{c['cont']},{c['prefill_tokens']}")
    big = [c for c in calls if c["prefill_tokens"] >= 256 and not c["profiled"]]
    if big:
        out.append(f"eager calls with >=256 prefill tokens: {len(big)}; "
                   f"median wall {statistics.median(c['wall_us'] for c in big):.0f} us, "
                   f"median gpu {statistics.median(c['gpu_us'] for c in big):.0f} us, "
                   f"median us/prefill token {statistics.median(c['wall_us'] / c['prefill_tokens'] for c in big):.1f}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--scenario", default="traces/live/v05-bursty-uniform-rank32/scenario.yaml")
    ap.add_argument("--replay-seconds", type=int, default=40)
    ap.add_argument("--parts", default="sdpa,synthetic,replay")
    args = ap.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines: list[str] = [f"torch {torch.__version__} on {torch.cuda.get_device_name()}"]
    parts = args.parts.split(",")
    for part in parts:
        t = time.perf_counter()
        lines.append(f"== {part}")
        try:
            if part == "sdpa":
                diag_sdpa(lines)
            elif part == "synthetic":
                diag_synthetic(lines, out_dir / "profile_synthetic.txt")
            elif part == "replay":
                diag_replay(args.scenario, out_dir / "replay", out_dir / "profile_replay.txt",
                            args.replay_seconds, lines)
        except Exception as e:  # noqa: BLE001
            import traceback

            lines.append(f"{part} failed: {type(e).__name__}: {e}")
            traceback.print_exc()
        lines.append(f"({part}: {time.perf_counter() - t:.0f} s)")
        (out_dir / "diag.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
