"""The replay loop end to end on the CPU with a toy model: real time, adapter loads through the
loader (few slots, so adapters are evicted and reloaded), preemption (few KV blocks), and the
live-run files."""

import csv
import gc
import json
import random
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("safetensors")
pytest.importorskip("yaml")


def test_replay_runs_a_small_trace_on_cpu(tmp_path, monkeypatch):
    from gpu import replay

    rng = random.Random(4)
    (tmp_path / "cat.csv").write_text(
        "adapter,rank,alpha,target_modules\n"
        "x,2,4,q_proj;v_proj\ny,4,8,q_proj;k_proj;v_proj;o_proj\nz,8,8,q_proj;k_proj;v_proj;o_proj\n"
    )
    rows = ["request_id,arrival_s,adapter,prompt_tokens,output_tokens"]
    t = 0.0
    for i in range(30):
        t += rng.expovariate(60.0)
        rows.append(f"{i},{t:.6f},{rng.choice(['', 'x', 'y', 'z'])},{rng.randint(3, 40)},{rng.randint(1, 12)}")
    (tmp_path / "trace.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "s.yaml").write_text(
        "name: tiny\nmodel: tiny-llama\nengine:\n  max_num_seqs: 8\n  max_num_batched_tokens: 64\n"
        "  block_size: 4\n  num_gpu_blocks: 24\n  max_model_len: 64\n  max_loras: 2\n  max_lora_rank: 8\n"
        "  max_cpu_loras: 2\nworkload:\n  trace: trace.csv\n  catalogue: cat.csv\n"
    )
    out = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", ["replay", str(tmp_path / "s.yaml"), "--out", str(out), "--device", "cpu"])
    assert replay.main() == 0
    with open(out / "requests.csv") as f:
        reqs = list(csv.DictReader(f))
    assert len(reqs) == 30
    assert all(r["status"] == "finished" for r in reqs)
    for r in reqs:
        assert float(r["arrival_s"]) <= float(r["first_token_s"]) <= float(r["finish_s"])
    run = json.loads((out / "run.json").read_text())
    assert run["summary"]["finished"] == 30
    assert len(run["loads"]) >= 3  # three adapters through two slots
    # off CUDA: no clocks to sample and no allocator to count, said so; the collector is counted
    assert run["gpu_monitor"] == {"available": False, "reason": "not CUDA"}
    assert len(run["runtime"]["gc"]["passes"]) == 3 and "cuda_allocator" not in run["runtime"]
    # no automatic collector pass inside the replay (quiet_gc), and the collector back on after it
    assert run["runtime"]["gc"]["passes"] == [0, 0, 0] and run["runtime"]["gc"]["quiet"]["frozen_objects"] > 0
    assert gc.isenabled() and gc.get_freeze_count() == 0
    probe = run["host_probe"]  # the host measured just before the clock, as step_tokens.csv
    assert probe["tokens"] and probe["tokens"] == sorted(probe["tokens"])
    for key in ("median_us", "p10_us", "p90_us"):
        assert len(probe[key]) == len(probe["tokens"]) and all(v > 0 for v in probe[key])
    assert all(a <= m <= b for a, m, b in zip(probe["p10_us"], probe["median_us"], probe["p90_us"], strict=True))
    with open(out / "iterations.csv") as f:
        its = list(csv.DictReader(f))
    assert len(its) == run["summary"]["iterations"]
    assert all(int(i["distinct_adapters"]) <= 2 for i in its)


def test_replay_reads_a_hf_checkpoint_and_peft_adapters(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    import torch

    from gpu import replay

    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                   tie_word_embeddings=False)
    transformers.LlamaForCausalLM(cfg).save_pretrained(tmp_path / "base")
    for name, r in (("x", 2), ("y", 4)):
        m = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "base")
        pm = peft.get_peft_model(m, peft.LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj"],
                                                    init_lora_weights=False))
        pm.save_pretrained(tmp_path / "adapters" / name)
    (tmp_path / "cat.csv").write_text("adapter,rank,alpha,target_modules\nx,2,4,q_proj;v_proj\ny,4,8,q_proj;v_proj\n")
    rows = ["request_id,arrival_s,adapter,prompt_tokens,output_tokens"]
    rows += [f"{i},{0.01 * i:.6f},{['x', 'y', ''][i % 3]},{5 + i},{3}" for i in range(9)]
    (tmp_path / "trace.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "s.yaml").write_text(
        "name: hf\nengine:\n  max_num_seqs: 4\n  block_size: 4\n  num_gpu_blocks: 32\n  max_model_len: 64\n"
        "  max_loras: 2\n  max_lora_rank: 4\n  max_cpu_loras: 2\nworkload:\n  trace: trace.csv\n  catalogue: cat.csv\n")
    out = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", ["replay", str(tmp_path / "s.yaml"), "--out", str(out), "--device", "cpu",
                                      "--weights", str(tmp_path / "base"), "--adapters", str(tmp_path / "adapters")])
    assert replay.main() == 0
    run = json.loads((out / "run.json").read_text())
    assert run["summary"]["finished"] == 9
    assert run["model"]["hidden_size"] == 64 and run["model"]["adapters"].endswith("adapters")
