"""dLoRA's mode switches in the live engine, on the CPU with a toy model (float32): the replay
under `scheduler: {kind: dlora}` merges and unmerges at run time, every request finishes with the
same greedy tokens as under FCFS, iterations.csv records the modes and the switch seconds, and
the base weights come back after the unmerge. Also: a switch in the middle of a request keeps its
KV cache, and the fp16 residue of a merge/unmerge cycle stays within one rounding."""

import csv
import json
import random
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
pytest.importorskip("yaml")

from gpu.engine.executor import Executor  # noqa: E402
from gpu.engine.kv_cache import PagedKVCache  # noqa: E402
from gpu.engine.lora import ATTN_MODULES, LoraSlots, random_adapter  # noqa: E402
from gpu.engine.model import LlamaModel  # noqa: E402
from gpu.engine.weights import TINY, ModelConfig, random_weights  # noqa: E402

ENGINE = (
    "engine: {max_num_seqs: 4, max_num_batched_tokens: 64, block_size: 4, num_gpu_blocks: 64, max_model_len: 64,"
    " max_loras: 2, max_lora_rank: 8, max_cpu_loras: 3}\n"
)


def write_workload(folder):
    """A burst of 48 requests, 70 % of them on adapter h (a merge pays), the rest on x, y or the
    base model."""
    (folder / "cat.csv").write_text(
        "adapter,rank,alpha,target_modules\n"
        "h,8,16,q_proj;k_proj;v_proj;o_proj\nx,4,8,q_proj;v_proj\ny,2,4,q_proj;k_proj;v_proj;o_proj\n"
    )
    rng = random.Random(8)
    rows = ["request_id,arrival_s,adapter,prompt_tokens,output_tokens"]
    t = 0.0
    for i in range(48):
        t += rng.expovariate(5000.0)
        a = "h" if rng.random() < 0.7 else rng.choice(["x", "y", ""])
        rows.append(f"{i},{t:.6f},{a},{rng.randint(3, 30)},{rng.randint(2, 10)}")
    (folder / "trace.csv").write_text("\n".join(rows) + "\n")


def run(folder, name, scheduler, monkeypatch, *extra):
    from gpu import replay

    (folder / f"{name}.yaml").write_text(
        f"name: {name}\nmodel: tiny-llama\nscheduler: {scheduler}\n{ENGINE}"
        "workload: {trace: trace.csv, catalogue: cat.csv}\n"
    )
    out = folder / name
    monkeypatch.setattr(sys, "argv", ["replay", str(folder / f"{name}.yaml"), "--out", str(out), "--device", "cpu",
                                      "--tokens-out", str(folder / f"{name}.tokens.json"), *extra])
    args = replay.parse_args()
    return replay.replay(args), out


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("source", ["host", "slot"])
def test_dlora_replay_merges_at_run_time_and_matches_fcfs(tmp_path, monkeypatch, source):
    write_workload(tmp_path)
    base, _ = run(tmp_path, "fcfs", "fcfs", monkeypatch)
    res, out = run(tmp_path, "dlora", "{kind: dlora}", monkeypatch, "--merge-from", source)

    reqs = read_csv(out / "requests.csv")
    assert len(reqs) == 48 and all(r["status"] == "finished" for r in reqs)
    its = read_csv(out / "iterations.csv")
    assert list(its[0])[-1] == "switch_s"
    modes = [i["mode"] for i in its]
    assert "merged" in modes and "unmerged" in modes
    # A merged batch holds one adapter only.
    assert all(i["distinct_adapters"] == "1" for i in its if i["mode"] == "merged")
    # Mode changes counted as the twin counts them (LiveRun.swift), and recorded in run.json.
    changes, last = 0, "unmerged"
    for m in modes:
        changes, last = changes + (m != last), m
    run_json = json.loads((out / "run.json").read_text())
    summary = run_json["summary"]
    assert summary["mode_changes"] == changes >= 2
    assert summary["merges"] >= 1 and summary["unmerges"] >= 1
    assert run_json["scheduler"]["kind"] == "dlora" and run_json["scheduler"]["merge_from"] == source
    # A switch's seconds lie on the first iteration after it: every change of mode has them.
    prev = ["unmerged"] + modes[:-1]
    assert all(float(i["switch_s"]) > 0 for i, p in zip(its, prev, strict=True) if i["mode"] != p)
    assert sum(float(i["switch_s"]) for i in its) <= summary["switch_s"] + 1e-6
    assert len(run_json["switches"]) == summary["merges"] + summary["unmerges"]
    assert all(s["seconds"] >= s["op_s"] > 0 for s in run_json["switches"])

    # Same greedy tokens as the unmerged FCFS run, request by request: merged passes computed h's
    # tokens with h folded into the weights, and no request lost its state across a switch.
    assert set(res.outputs) == set(base.outputs) == set(range(48))
    assert res.outputs == base.outputs
    tokens = json.loads((tmp_path / "dlora.tokens.json").read_text())
    assert tokens == {str(k): v for k, v in base.outputs.items()}

    # The base weights come back: unmerge if the run ended merged, then compare with a fresh copy.
    sched = res.scheduler
    if sched.merged is not None:
        res.slots.unmerge(res.weights, res.host_adapters[sched.merged] if source == "host"
                          else _slot_adapter(res, sched.merged))
    fresh = random_weights(TINY, torch.float32, "cpu", seed=0)
    for lw, lf in zip(res.weights.layers, fresh.layers, strict=True):
        for name in ("wqkv", "wo", "w_gate_up", "w_down"):
            assert torch.allclose(getattr(lw, name), getattr(lf, name), atol=1e-6, rtol=0)


def _slot_adapter(res, name):
    from gpu.replay import Switcher

    return Switcher(res.slots, res.weights, {}, "slot", False).adapter(name, res.scheduler)


@pytest.mark.parametrize(
    "scheduler",
    [
        "{kind: dlora, merge_ratio: 0, stay_ratio: 0, credits: false, adaptive: false}",  # always merged
        "{kind: dlora, credits: false}",
    ],
)
def test_dlora_baselines_replay_to_the_end(tmp_path, monkeypatch, scheduler):
    write_workload(tmp_path)
    base, _ = run(tmp_path, "fcfs", "fcfs", monkeypatch)
    res, out = run(tmp_path, "b", scheduler, monkeypatch)
    assert res.summary["finished"] == 48 and not res.summary["stopped_early"]
    assert res.summary["merges"] >= 1
    assert res.outputs == base.outputs


def test_replay_refuses_a_bad_scheduler(tmp_path, monkeypatch):
    write_workload(tmp_path)
    with pytest.raises(ValueError, match="stay_ratio"):
        run(tmp_path, "bad", "{kind: dlora, merge_ratio: 0.5, stay_ratio: 1.0}", monkeypatch)


def test_a_switch_in_the_middle_of_a_request_keeps_its_kv_cache():
    """Prefill and two decodes with the adapter's slot, merge, three decodes with no slot, unmerge,
    two decodes with the slot: the same logits and tokens as the whole request unmerged."""
    from gpu.engine.executor import StepSeq as Seq

    cfg = ModelConfig(name="t", hidden_size=64, intermediate_size=96, num_layers=2, num_heads=4, num_kv_heads=2,
                      vocab_size=97, max_position=256)
    w = random_weights(cfg, torch.float32, "cpu", seed=0)
    kv = PagedKVCache(cfg, num_blocks=32, block_size=4, dtype=torch.float32, device="cpu")
    slots = LoraSlots(cfg, max_loras=2, max_rank=8, target_modules=ATTN_MODULES, dtype=torch.float32, device="cpu")
    ad = random_adapter(cfg, "a", 8, 16.0, ATTN_MODULES, seed=3, dtype=torch.float32)
    slots.copy_in(1, ad)
    ex = Executor(LlamaModel(cfg, w, kv, slots), block_size=4, max_model_len=64, use_graphs=False,
                  graph_sizes=(1, 2), max_num_seqs=2)
    prompt = torch.randint(0, cfg.vocab_size, (10,), generator=torch.Generator().manual_seed(1)).tolist()
    w0 = [lw.wqkv.clone() for lw in w.layers]

    def decode(rid, table, plan):
        """Runs `plan` (a list of 'u' unmerged / 'm' merged steps) after the prefill; returns the
        sampled tokens and the logits."""
        ex.add_request(rid, prompt)
        toks, logits = [], []
        t, lg = ex.execute([Seq(rid, 1, 0, 10, table)], return_logits=True)
        toks.append(t[rid])
        logits.append(lg)
        pos = 10
        merged = False
        for step in plan:
            if step == "m" and not merged:
                slots.merge(w, ad)
                merged = True
            elif step == "u" and merged:
                slots.unmerge(w, ad)
                merged = False
            t, lg = ex.execute([Seq(rid, None if merged else 1, pos, 1, table)], return_logits=True)
            toks.append(t[rid])
            logits.append(lg)
            pos += 1
        if merged:
            slots.unmerge(w, ad)
        ex.drop(rid)
        return toks, torch.cat(logits)

    ref_toks, ref_logits = decode(0, [0, 1, 2, 3, 4], "uuuuuuu")
    sw_toks, sw_logits = decode(1, [5, 6, 7, 8, 9], "uummmuu")
    assert sw_toks == ref_toks
    assert torch.allclose(sw_logits, ref_logits, atol=1e-4, rtol=1e-4)
    for lw, before in zip(w.layers, w0, strict=True):
        assert torch.allclose(lw.wqkv, before, atol=1e-6, rtol=0)


def test_fp16_merge_unmerge_residue_is_one_rounding():
    """In fp16 a merge/unmerge cycle changes a few per cent of the elements, each by at most one
    rounding of the merged value; cycling the same adapter again changes nothing more."""
    cfg = ModelConfig(name="t", hidden_size=256, intermediate_size=512, num_layers=1, num_heads=4, num_kv_heads=4,
                      vocab_size=97, max_position=256)
    w = random_weights(cfg, torch.float16, "cpu", seed=0)
    w0 = random_weights(cfg, torch.float16, "cpu", seed=0)
    slots = LoraSlots(cfg, max_loras=1, max_rank=16, target_modules=ATTN_MODULES, dtype=torch.float16, device="cpu")
    ad = random_adapter(cfg, "a", 16, 32.0, ATTN_MODULES, seed=3, dtype=torch.float16)
    slots.merge(w, ad)
    merged = w.layers[0].wqkv.float().clone()
    slots.unmerge(w, ad)
    once = w.layers[0].wqkv.clone()
    d = (once.float() - w0.layers[0].wqkv.float()).abs()
    eps = torch.finfo(torch.float16).eps
    bound = eps * torch.maximum(merged.abs(), w0.layers[0].wqkv.float().abs())  # one ulp of the larger
    assert bool((d <= bound).all())
    assert 0.0 < (d > 0).float().mean().item() < 0.15
    for _ in range(3):
        slots.merge(w, ad)
        slots.unmerge(w, ad)
    assert torch.equal(w.layers[0].wqkv, once)


def test_switch_column_is_optional(tmp_path):
    from gpu.engine.records import ITERATION_COLUMNS, IterationRecord, write_iterations_csv

    rec = IterationRecord(0, 0, 0.5, 0.01, 3, 0, 1, 1, "merged", 0, 0, switch_s=0.025)
    write_iterations_csv(tmp_path / "a.csv", [rec])
    write_iterations_csv(tmp_path / "b.csv", [rec], switch_column=True)
    assert tuple(read_csv(tmp_path / "a.csv")[0]) == ITERATION_COLUMNS
    b = read_csv(tmp_path / "b.csv")[0]
    assert tuple(b) == ITERATION_COLUMNS + ("switch_s",) and b["switch_s"] == "0.025000000" and b["mode"] == "merged"
