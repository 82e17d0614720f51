"""The torch references (and SGMV where a GPU is present) against the float64 reference.

Skipped without torch. On the CPU this checks the reference implementations themselves; the full
random-case GPU check is ``gpu/check_kernels.py`` (its committed output is under
``gpu/results/kernels/``).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from gpu.kernels.ops import SegmentInfo  # noqa: E402
from gpu.kernels.reference import bmm_apply, fp64_apply, torch_loop_apply  # noqa: E402
from gpu.kernels.segments import build_segments, layout_from_lengths, pad_layout, sort_permutation  # noqa: E402


def _inputs(device: str, dtype, T: int = 23, h_in: int = 64, h_out: int = 96, ranks=(4, 16, 9)):
    g = torch.Generator(device="cpu").manual_seed(3)
    S, R = len(ranks), max(ranks)
    a = torch.randn(S, R, h_in, generator=g) / h_in**0.5
    b = torch.randn(S, R, h_out, generator=g) / R**0.5
    for s, r in enumerate(ranks):
        a[s, r:] = 0
        b[s, r:] = 0
    x = torch.randn(T, h_in, generator=g)
    y = torch.randn(T, h_out, generator=g)
    scales = torch.tensor([0.5, 2.0, 1.0])
    return [t.to(device=device, dtype=dtype) for t in (a, b, x, y)] + [
        torch.tensor(ranks, dtype=torch.int32, device=device),
        scales.to(device),
    ]


@pytest.mark.parametrize("unsorted", [False, True])
def test_references_match_fp64_on_cpu(unsorted: bool) -> None:
    a, b, x, y, ranks, scales = _inputs("cpu", torch.float32)
    slots = [0] * 5 + [2] * 9 + [-1] * 2 + [1] * 7
    row_index = None
    if unsorted:
        perm = torch.randperm(len(slots), generator=torch.Generator().manual_seed(1)).tolist()
        shuffled = [slots[p] for p in perm]
        row_index, _ = sort_permutation(shuffled)
        layout = build_segments([shuffled[p] for p in row_index])
    else:
        layout = build_segments(slots)
    seg = SegmentInfo.from_layout(pad_layout(layout, 6), "cpu", tokens=len(slots), row_index=row_index)
    ref, v = fp64_apply(x, y, a, b, seg, ranks, scales)
    assert not torch.equal(ref, y.double())
    for fn in (torch_loop_apply, bmm_apply):
        out = fn(x, y.clone(), a, b, seg, ranks, scales)
        assert ((out.double() - ref).norm() / ref.norm()).item() < 1e-5
    uncovered = seg.row_slots < 0
    assert torch.equal(ref[uncovered], y.double()[uncovered])
    assert torch.all(v[uncovered] == 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)])
def test_sgmv_matches_fp64_on_gpu(dtype, tol: float) -> None:
    from gpu.kernels.ops import lora_apply

    a, b, x, y, ranks, scales = _inputs("cuda", dtype, T=40, h_in=256, h_out=384, ranks=(8, 64, 24))
    layout = layout_from_lengths([1, 0, 30, 6], [2, 0, 1, 0])
    seg = SegmentInfo.from_layout(layout, "cuda", tokens=40)
    ref, _ = fp64_apply(x, y, a, b, seg, ranks, scales)
    out = lora_apply(x, y.clone(), a, b, seg, ranks, scales.float())
    assert ((out.double() - ref).norm() / ref.norm()).item() < tol
    assert torch.equal(out[37:], y[37:])


def test_package_exports_load_lazily() -> None:
    import gpu.kernels as k

    assert k.SegmentInfo is SegmentInfo
    assert callable(k.lora_apply) and callable(k.sgmv_shrink) and callable(k.bmm_apply)
    with pytest.raises(AttributeError):
        _ = k.not_a_kernel
