"""EngineConfig: defaults, validation naming the key, derived KV blocks."""

from __future__ import annotations

import pytest

from gpu.engine.config import GIB, EngineConfig, derive_num_gpu_blocks
from gpu.engine.scheduler import AdapterInfo, Scheduler


def test_defaults_are_the_page_s() -> None:
    c = EngineConfig.from_mapping({})
    assert c.to_dict() == {
        "max_num_seqs": 128,
        "max_num_batched_tokens": 4096,
        "chunked_prefill": True,
        "block_size": 16,
        "num_gpu_blocks": None,
        "gpu_memory_utilization": 0.90,
        "activation_reserve_gib": 2.0,
        "max_model_len": 4096,
        "max_loras": 8,
        "max_lora_rank": 64,
        "max_cpu_loras": 32,
        "scheduler_lookahead": 256,
    }
    assert EngineConfig() == c


def test_from_mapping_takes_values() -> None:
    c = EngineConfig.from_mapping(
        {
            "max_num_seqs": 8,
            "chunked_prefill": False,
            "max_num_batched_tokens": 4096,
            "num_gpu_blocks": 64,
            "gpu_memory_utilization": 1,
        }
    )
    assert (c.max_num_seqs, c.chunked_prefill, c.num_gpu_blocks) == (8, False, 64)
    assert c.gpu_memory_utilization == 1.0 and isinstance(c.gpu_memory_utilization, float)


@pytest.mark.parametrize(
    ("mapping", "key"),
    [
        ({"max_num_seq": 8}, "engine.max_num_seq"),
        ({"max_num_seqs": "8"}, "engine.max_num_seqs"),
        ({"max_num_seqs": 8.0}, "engine.max_num_seqs"),
        ({"max_num_seqs": True}, "engine.max_num_seqs"),
        ({"chunked_prefill": "yes"}, "engine.chunked_prefill"),
        ({"chunked_prefill": 1}, "engine.chunked_prefill"),
        ({"gpu_memory_utilization": "0.9"}, "engine.gpu_memory_utilization"),
        ({"gpu_memory_utilization": 1.5}, "engine.gpu_memory_utilization"),
        ({"activation_reserve_gib": -1}, "engine.activation_reserve_gib"),
        ({"block_size": 0}, "engine.block_size"),
        ({"num_gpu_blocks": 0}, "engine.num_gpu_blocks"),
        ({"max_loras": 8, "max_cpu_loras": 7}, "engine.max_cpu_loras"),
        ({"chunked_prefill": False, "max_num_batched_tokens": 2048}, "engine.max_num_batched_tokens"),
    ],
)
def test_from_mapping_rejects_naming_the_key(mapping: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.") + ":"):
        EngineConfig.from_mapping(mapping)


def test_where_prefixes_the_message() -> None:
    with pytest.raises(ValueError, match=r"^s\.yaml: engine\.foo: unknown key"):
        EngineConfig.from_mapping({"foo": 1}, "s.yaml: engine")
    with pytest.raises(ValueError, match="expected a mapping"):
        EngineConfig.from_mapping([1, 2], "engine")  # type: ignore[arg-type]


def test_chunked_off_accepts_budget_equal_to_max_model_len() -> None:
    c = EngineConfig.from_mapping({"chunked_prefill": False, "max_num_batched_tokens": 4096})
    assert c.max_num_batched_tokens == c.max_model_len


def test_derived_blocks_follow_the_formula() -> None:
    c = EngineConfig(max_loras=4, block_size=16, gpu_memory_utilization=0.9, activation_reserve_gib=2.0)
    kv_per_token = 2 * 32 * 32 * 128 * 2  # Llama-2-7B fp16: 512 KiB
    blocks = derive_num_gpu_blocks(c, 80 * GIB, 13 * GIB, 64 * 2**20, kv_per_token)
    expected = int((80 * GIB * 0.9 - 13 * GIB - 4 * 64 * 2**20 - 2 * GIB) // (16 * kv_per_token))
    assert blocks == expected == 7264  # 56.75 GiB / 8 MiB per block
    assert c.with_blocks(blocks).num_gpu_blocks == 7264
    with pytest.raises(ValueError, match="num_gpu_blocks"):
        derive_num_gpu_blocks(c, 16 * GIB, 13 * GIB, 0, kv_per_token)


def test_scheduler_needs_blocks_and_rejects_large_ranks() -> None:
    with pytest.raises(ValueError, match="num_gpu_blocks"):
        Scheduler(EngineConfig(), {})
    big = {"big": AdapterInfo("big", 128, 16.0, ("q_proj",))}
    with pytest.raises(ValueError, match="max_lora_rank"):
        Scheduler(EngineConfig(num_gpu_blocks=10), big)
