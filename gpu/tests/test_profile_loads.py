"""adapter_load.csv (gpu/profile_steps.py profile_loads) on the CPU with the tiny model: the idle
rows (host, disk) and the busy rows (host_busy, disk_busy: a load timed from its order to its
completion while decode steps run, seen by a watcher thread; host_step, disk_step: how much longer
the step that orders it runs than the steps before), one row per source and adapter
size, sizes growing with the rank; and busy_load_us itself: the steps run until the load is done,
and the loader's queue is empty after it."""

from __future__ import annotations

import csv
import io

import pytest

torch = pytest.importorskip("torch")

from gpu import profile_steps as ps  # noqa: E402


@pytest.fixture(scope="module")
def rig():
    return ps.Rig("tiny-llama", "cpu", (1, 2, 4, 8), 0.9, dop_table=None, token_graphs=False)


def test_rows_for_every_source_and_size(rig):
    rows = list(csv.DictReader(io.StringIO("\n".join(ps.profile_loads(rig, quick=True)) + "\n")))
    assert list(rows[0]) == ["source", "bytes", "median_us", "p10_us", "p90_us", "reps"]
    by = {}
    for r in rows:
        by.setdefault(r["source"], []).append(int(r["bytes"]))
        # a step's stretch may come out negative by noise; a time may not
        assert (r["source"].endswith("_step") or float(r["median_us"]) > 0) and int(r["reps"]) >= 1
    assert set(by) == {"host", "disk", "host_busy", "disk_busy", "host_step", "disk_step"}
    for source, sizes in by.items():
        assert len(sizes) == 4 and sizes == sorted(sizes) and len(set(sizes)) == 4, source
    assert by["host_busy"] == by["host"] == by["host_step"] == by["disk_step"]


def test_busy_load_runs_steps_until_the_load_is_done(rig, tmp_path):
    from gpu.engine.loader import AdapterLoader
    from gpu.engine.lora import random_adapter, save_adapter

    ha = random_adapter(rig.cfg, "x", 8, 16.0, ps.TARGETS, seed=3, dtype=rig.dtype, device="cpu")
    path = tmp_path / "x.safetensors"
    save_adapter(ha, path)
    loader = AdapterLoader(rig.slots[rig.kinds[0]], {"x": path}, max_cpu_loras=4)
    ex = rig.ex[rig.kinds[0]]
    seqs = rig.decode_seqs(ex, 2, 32)
    calls = []
    real = ex.execute
    ex.execute = lambda s, **kw: (calls.append(len(s)), real(s, **kw))[1]
    try:
        us, step_us = ps.busy_load_us(loader, ex, seqs, "x", 0, from_disk=True)
    finally:
        ex.execute = real
        rig.drop(ex, seqs)
    # three steps timed before the order, the ordering step, and more until the load is done
    assert us > 0 and len(calls) >= 4 and set(calls) == {2}
    assert isinstance(step_us, float) and abs(step_us) < 1e6  # the ordering step against those three
    assert not loader.busy() and len(loader.done) == 1 and loader.done[0].adapter == "x"
    assert "x" in loader.host  # read from the file into the host cache
    loader.close()
