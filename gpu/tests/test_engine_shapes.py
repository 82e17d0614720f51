"""Torch-free facts of the engine's model shapes and KV-cache addressing."""

from gpu.engine.config import EngineConfig, derive_num_gpu_blocks
from gpu.engine.kv_cache import lora_slot_bytes, slot_mapping_for
from gpu.engine.weights import LLAMA2_7B, LLAMA2_13B


def test_llama2_7b_parameter_count_is_the_published_one():
    assert LLAMA2_7B.num_params() == 6_738_415_616
    assert LLAMA2_7B.weight_bytes() == 2 * 6_738_415_616


def test_llama2_13b_parameter_count_is_the_published_one():
    assert LLAMA2_13B.num_params() == 13_015_864_320


def test_decode_reads_every_weight_but_the_embedding_table():
    assert LLAMA2_7B.weight_bytes_read_per_step() == 2 * (6_738_415_616 - 32000 * 4096)


def test_kv_bytes_per_token_llama2_7b():
    # 2 (k, v) * 32 layers * 32 heads * 128 dims * 2 bytes = 512 KiB
    assert LLAMA2_7B.kv_bytes_per_token() == 512 * 1024


def test_rank64_qkvo_slot_is_128_mib():
    assert lora_slot_bytes(LLAMA2_7B, 64, ("q_proj", "k_proj", "v_proj", "o_proj")) == 64 * 8192 * 4 * 32 * 2


def test_derived_blocks_on_an_80_gb_h100():
    cfg = EngineConfig()
    slot = lora_slot_bytes(LLAMA2_7B, 64, ("q_proj", "k_proj", "v_proj", "o_proj"))
    gpu = 81559 * 2**20
    n = derive_num_gpu_blocks(cfg, gpu, LLAMA2_7B.weight_bytes(), slot, LLAMA2_7B.kv_bytes_per_token())
    free = gpu * 0.9 - LLAMA2_7B.weight_bytes() - 8 * slot - 2 * 2**30
    assert n == int(free // (16 * 512 * 1024))
    assert 7000 < n < 7500  # about 56 GiB of cache


def test_slot_mapping_walks_the_block_table():
    assert slot_mapping_for([7, 2, 9], 14, 4, 16) == [7 * 16 + 14, 7 * 16 + 15, 2 * 16 + 0, 2 * 16 + 1]
    assert slot_mapping_for([5], 0, 1, 16) == [80]
