"""CPU tests (no torch) of the segment metadata, workloads, tiling, roofline and report code."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from gpu.kernels.config import cdiv, expand_config, next_pow2, shrink_config
from gpu.kernels.report import COLUMNS, read_csv, render_markdown, splice, write_csv
from gpu.kernels.roofline import op_bytes, op_flops, roofline_us
from gpu.kernels.segments import (
    NO_ADAPTER,
    build_segments,
    layout_from_lengths,
    pad_layout,
    sort_permutation,
)
from gpu.kernels.shapes import LLAMA2_7B, LLAMA2_13B
from gpu.kernels.workloads import (
    WORKLOADS,
    adapter_ranks,
    decode_segment_lengths,
    num_adapters,
    prefill_segment_lengths,
)


def test_importing_the_package_imports_no_torch() -> None:
    code = (
        "import sys, gpu.kernels, gpu.kernels.segments, gpu.kernels.report, gpu.common.meta; "
        "sys.exit('torch' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


def test_build_segments_groups_runs_and_unpacks() -> None:
    starts, lens, slots = build_segments([3, 3, 0, 0, 0, NO_ADAPTER, 3])
    assert (starts, lens, slots) == ((0, 2, 5, 6), (2, 3, 1, 1), (3, 0, NO_ADAPTER, 3))


def test_build_segments_empty_and_invalid() -> None:
    assert build_segments([]) == ((), (), ())
    with pytest.raises(ValueError, match="row 1"):
        build_segments([0, -2])


def test_layout_properties_and_row_slots() -> None:
    lay = layout_from_lengths([2, 0, 3], [5, 1, 7])
    assert lay.seg_starts == (0, 2, 2)
    assert (lay.num_segments, lay.num_rows, lay.max_seg_len) == (3, 5, 3)
    assert lay.row_slots() == [5, 5, 7, 7, 7]
    assert lay.row_slots(7) == [5, 5, 7, 7, 7, NO_ADAPTER, NO_ADAPTER]


def test_sort_permutation_groups_slots_stably() -> None:
    rng = random.Random(7)
    for _ in range(200):
        slots = [rng.choice([NO_ADAPTER, 0, 1, 2, 9]) for _ in range(rng.randint(0, 40))]
        perm, inv = sort_permutation(slots)
        assert sorted(perm) == list(range(len(slots)))
        assert all(perm[inv[i]] == i for i in range(len(slots)))
        grouped = [slots[p] for p in perm]
        assert grouped == sorted(slots)
        for a, b in zip(perm, perm[1:], strict=False):  # stable within a slot
            if slots[a] == slots[b]:
                assert a < b
        layout = build_segments(grouped)
        assert len(set(layout.seg_slots)) == layout.num_segments  # one segment per slot
        assert sum(layout.seg_lens) == len(slots)


def test_pad_layout() -> None:
    lay = pad_layout(layout_from_lengths([4], [2]), 3)
    assert lay == ((0, 0, 0), (4, 0, 0), (2, NO_ADAPTER, NO_ADAPTER))
    with pytest.raises(ValueError):
        pad_layout(lay, 2)


@pytest.mark.parametrize("batch", [1, 2, 3, 7, 16, 33, 64])
@pytest.mark.parametrize("workload", WORKLOADS)
def test_decode_workloads_cover_the_batch(workload: str, batch: int) -> None:
    lens = decode_segment_lengths(workload, batch)
    assert sum(lens) == batch and min(lens) >= 1
    assert len(lens) == num_adapters(workload, batch)


def test_workload_shapes() -> None:
    assert decode_segment_lengths("distinct", 5) == [1] * 5
    assert decode_segment_lengths("identical", 64) == [64]
    assert decode_segment_lengths("uniform", 64) == [8] * 8
    skew = decode_segment_lengths("skewed", 64)
    assert skew == sorted(skew, reverse=True) and len(skew) == 8 and skew[0] + skew[1] > 32
    assert prefill_segment_lengths("distinct", 4096) == [256] * 16
    assert prefill_segment_lengths("identical", 1000) == [1000]
    assert sum(prefill_segment_lengths("skewed", 3000)) == 3000
    assert adapter_ranks("mix", 7) == [8, 16, 32, 64, 128, 8, 16]
    assert adapter_ranks("32", 2) == [32, 32]


def test_model_shapes() -> None:
    assert LLAMA2_7B.module_dims("q_proj") == (4096, 4096)
    assert LLAMA2_7B.module_dims("up_proj") == (4096, 11008)
    assert LLAMA2_13B.module_dims("down_proj") == (13824, 5120)


def test_pow2_and_cdiv() -> None:
    assert [next_pow2(n) for n in (1, 2, 3, 8, 9, 128)] == [1, 2, 4, 8, 16, 128]
    assert cdiv(11008, 128) == 86 and cdiv(0, 5) == 0


@pytest.mark.parametrize("h_in", [4096, 5120, 11008, 13824, 1000])
@pytest.mark.parametrize("tokens,segments", [(1, 1), (64, 64), (64, 1), (4096, 1), (4096, 16)])
@pytest.mark.parametrize("rank", [8, 16, 33, 64, 128])
def test_shrink_config_covers_k_exactly(h_in: int, tokens: int, segments: int, rank: int) -> None:
    c = shrink_config(tokens, h_in, rank, segments)
    assert c.block_r >= max(16, rank) and c.block_r == next_pow2(c.block_r)
    assert c.k_per_split % c.block_k == 0
    assert (c.split_k - 1) * c.k_per_split < h_in <= c.split_k * c.k_per_split
    assert c.m_groups * c.block_m >= min(tokens, tokens)
    assert c.grid(segments) == (c.split_k, c.m_groups, segments)


def test_split_k_only_where_programs_are_few() -> None:
    assert shrink_config(1, 4096, 16, 1).split_k > 1  # one row, one adapter: split the K range
    assert shrink_config(4096, 4096, 16, 16, 4096).split_k == 1  # 1024 programs already
    assert shrink_config(4096, 4096, 64, 1).split_k == 2  # 64 m-tiles: two slices fill one wave of 132 SMs


def test_expand_config_tiles() -> None:
    e = expand_config(64, 11008, 16, 64)
    assert (e.block_m, e.block_n, e.block_r, e.m_groups) == (16, 256, 16, 4)
    assert e.grid(11008, 64) == (cdiv(11008, 256), 4, 64)
    assert expand_config(4096, 4096, 128, 1).block_m == 64


def test_roofline_counts_by_hand() -> None:
    # two segments: 3 rows at rank 8, 1 row at rank 16; h_in 10, h_out 20; fp16.
    lens, ranks = [3, 1, 0], [8, 16, 64]
    x, a, b = 4 * 10 * 2, (8 + 16) * 10 * 2, (8 + 16) * 20 * 2
    v, y = (3 * 8 + 16) * 4, 2 * 4 * 20 * 2
    assert op_bytes("shrink", lens, ranks, 10, 20) == x + a + v
    assert op_bytes("expand", lens, ranks, 10, 20) == v + b + y
    assert op_bytes("apply", lens, ranks, 10, 20) == x + a + b + y
    assert op_flops("apply", lens, ranks, 10, 20) == 2 * (3 * 8 + 16) * (10 + 20)
    assert roofline_us(3_000_000, 10, 3e12, 1e15) == pytest.approx(1.0)
    assert roofline_us(1, 2_000_000_000, 3e12, 1e15) == pytest.approx(2.0)


def _row(kernel: str, us: float, timing: str = "graph", phase: str = "decode", seg: int = 4) -> dict:
    r = {c: 0 for c in COLUMNS}
    r.update(
        kernel=kernel,
        op="apply",
        timing=timing,
        dtype="fp16",
        model="llama2-7b",
        module="qkvo",
        h_in=4096,
        h_out=4096,
        phase=phase,
        workload="uniform",
        tokens=16,
        segments=seg,
        rank="16",
        rank_max=16,
        rank_mean=16.0,
        median_us=us,
        p10_us=us,
        p90_us=us,
        reps=20,
        calls_per_rep=8,
        roofline_us=25.0,
        roofline_fraction=25.0 / us,
    )
    return r


def test_report_roundtrip_and_render(tmp_path: Path) -> None:
    rows = [_row("sgmv", 30.0), _row("torch", 60.0), _row("bmm", 90.0)]
    write_csv(rows, tmp_path / "k.csv")
    back = read_csv(tmp_path / "k.csv")
    assert back[0]["median_us"] == 30.0 and back[0]["tokens"] == 16
    md = render_markdown(back, {"peaks": {"hbm_bytes_per_s": 3e12, "fp16_flops_per_s": 7.5e14}})
    assert "| uniform | 16 | 4 | 30.0 | 60.0 | 90.0 | 2.00 | 3.00 | 25.00 | 0.83 |" in md
    assert "faster than torch in 1 of 1 points" in md
    doc = splice("# K\n\ntext\n", "T1")
    assert splice(doc, "T2").count("T2") == 1 and "T1" not in splice(doc, "T2") and doc.startswith("# K")
