"""The adapter loader on the CPU: files read in one readinto land exactly in their slots, the
host cache is LRU with max_cpu_loras entries, and evicted buffers are reused."""

import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from gpu.engine.loader import AdapterLoader  # noqa: E402
from gpu.engine.lora import ATTN_MODULES, LoraSlots, random_adapter, read_adapter, read_adapter_into, save_adapter  # noqa: E402,E501
from gpu.engine.weights import ModelConfig  # noqa: E402

CFG = ModelConfig(name="t", hidden_size=32, intermediate_size=48, num_layers=2, num_heads=4, num_kv_heads=2,
                  vocab_size=50, max_position=64)


def _wait(loader, n):
    done = []
    deadline = time.time() + 30
    while len(done) < n and time.time() < deadline:
        done += loader.poll()
        time.sleep(0.001)
    return done


def test_readinto_matches_the_safetensors_reader(tmp_path):
    ad = random_adapter(CFG, "a", 4, 8.0, ATTN_MODULES, seed=3)
    save_adapter(ad, tmp_path / "a.safetensors")
    fast, buf = read_adapter_into(tmp_path / "a.safetensors", lambda n: torch.empty(n + 7, dtype=torch.uint8))
    ref = read_adapter(tmp_path / "a.safetensors")
    assert (fast.name, fast.rank, fast.alpha) == (ref.name, ref.rank, ref.alpha)
    assert fast.tensors.keys() == ref.tensors.keys()
    for k, (a, bt) in ref.tensors.items():
        assert torch.equal(fast.tensors[k][0], a) and torch.equal(fast.tensors[k][1], bt)


def test_loads_fill_slots_and_reuse_evicted_buffers(tmp_path):
    slots = LoraSlots(CFG, max_loras=2, max_rank=8, target_modules=ATTN_MODULES, dtype=torch.float16, device="cpu")
    ads = {n: random_adapter(CFG, n, r, 2.0 * r, ATTN_MODULES, seed=i) for i, (n, r) in
           enumerate((("x", 8), ("y", 2), ("z", 4)))}
    files = {}
    for n, ad in ads.items():
        files[n] = tmp_path / f"{n}.safetensors"
        save_adapter(ad, files[n])
    size = max(f.stat().st_size for f in files.values())
    loader = AdapterLoader(slots, files, max_cpu_loras=2, prealloc=2, prealloc_bytes=size)
    pool = {id(b) for b in loader.free}
    loader.start("x", 0, True)
    loader.start("y", 1, True)
    loader.start("z", 0, True)  # evicts x from the host cache: its buffer is reused later
    loader.start("x", 1, True)
    done = _wait(loader, 4)
    loader.close()
    assert [r.adapter for r in done] == ["x", "y", "z", "x"]
    assert loader.fallback_reads == 0
    assert list(loader.host) == ["z", "x"]
    assert {id(b) for b in loader.buffers.values()} == pool  # no buffer allocated past the pool
    for slot, name in ((0, "z"), (1, "x")):
        r = ads[name].rank
        for (li, m), (a, bt) in ads[name].tensors.items():
            assert torch.equal(slots.A[li][m][slot, :r], a)
            assert torch.equal(slots.BT[li][m][slot, :r], bt)
            assert bool((slots.BT[li][m][slot, r:] == 0).all())
