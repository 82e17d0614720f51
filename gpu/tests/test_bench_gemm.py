"""gpu/bench_gemm.py as a dry run on the CPU (a tiny model shape, a fake timer that runs the calls):
every variant -- the Triton skinny GEMM's too, under TRITON_INTERPRET=1, with --triton -- is
checked against the float64 product and gets its row in gemm.csv, the best variants and the
metadata land in gemm.json, a wrong variant is marked wrong and never chosen as best, and the
preferred BLAS library is set while its variant runs and restored afterwards -- so that a device
call does not find the script's mistakes."""

from __future__ import annotations

import csv
import importlib.util
import itertools
import json
import os

import pytest

torch = pytest.importorskip("torch")

from gpu import bench_gemm as bg  # noqa: E402
from gpu.common.timing import Timing  # noqa: E402
from gpu.engine.weights import PRESETS, ModelConfig  # noqa: E402

# head_dim 16: qkv [128, 64], o [64, 64], gate_up [160, 64], down [64, 80], lm_head [100, 64]
TINY = ModelConfig(name="tiny-gemm", hidden_size=64, intermediate_size=80, num_layers=3, num_heads=4,
                   num_kv_heads=2, vocab_size=100)
BATCHES = (1, 3, 8)
SHAPES = ("qkv", "o", "gate_up", "down", "lm_head")
VARIANTS = ("linear", "linear_cublaslt", "mm_t", "splitk4")
# Two of bench_gemm.TRITON_CONFIGS, without and with split-K (the interpreter takes ~0.01 s a program)
TRITON = ("tsk_n128_k128_w4_s4_sk1", "tsk_n64_k256_w4_s4_sk2")
BW = 1e9  # the patched copy bandwidth, bytes/s
META_KEYS = {"gpu_name", "driver", "cuda", "torch", "triton", "date_utc", "git_commit"}


class FakeTimer:
    """Stands in for the timing function: runs every call once, returns ``us`` (or ``fast_us`` when a
    call of the list set ``flag``), and logs (calls per list, keyword arguments, ``probe()``)."""

    def __init__(self, us: float = 10.0, fast_us: float | None = None, probe=lambda: None):
        self.us, self.fast_us, self.probe = us, fast_us, probe
        self.flag: list[int] = []
        self.log: list[tuple[int, dict, object]] = []

    def __call__(self, calls, mode="graph", **kw):
        assert mode == "graph"
        before = len(self.flag)
        for c in calls:
            y = c()
            assert kw or isinstance(y, torch.Tensor)  # a single GEMM's call returns its product
        us = self.fast_us if self.fast_us is not None and len(self.flag) > before else self.us
        self.log.append((len(calls), kw, self.probe()))
        return Timing("graph", us, 0.9 * us, 1.1 * us, 20, len(calls))


def run(tmp_path, monkeypatch, timer, *extra):
    monkeypatch.setattr(bg, "MODELS", {"llama-2-7b": TINY})
    monkeypatch.setattr(bg, "copy_bandwidth", lambda device: BW)
    monkeypatch.setattr(bg, "cpu_time_calls", timer)
    monkeypatch.setenv("GIT_COMMIT", "feedc0de")
    assert bg.main(["--out", str(tmp_path), "--batches", ",".join(map(str, BATCHES)), "--device", "cpu",
                    *extra]) == 0
    with (tmp_path / "gemm.csv").open() as f:
        rows = list(csv.DictReader(f))
    return rows, json.loads((tmp_path / "gemm.json").read_text())


def step_weight_bytes(layers: int) -> int:
    s = bg.gemm_shapes(TINY)
    return 2 * (layers * sum(n * k for name, (n, k) in s.items() if name != "lm_head") + 100 * 64)


def test_shapes_from_presets():
    assert bg.gemm_shapes(PRESETS["llama-2-7b"]) == {
        "qkv": (12288, 4096), "o": (4096, 4096), "gate_up": (22016, 4096), "down": (4096, 11008),
        "lm_head": (32000, 4096)}
    assert bg.gemm_shapes(PRESETS["llama-2-13b"]) == {
        "qkv": (15360, 5120), "o": (5120, 5120), "gate_up": (27648, 5120), "down": (5120, 13824),
        "lm_head": (32000, 5120)}
    assert bg.gemm_shapes(TINY)["qkv"] == (128, 64) and bg.gemm_shapes(TINY)["down"] == (64, 80)
    assert bg.skip_reason(bg.VARIANTS["splitk4"], 8, 90) == "K=90 is not a multiple of 4"
    assert bg.skip_reason(bg.VARIANTS["splitk4"], 8, 96) is None


def _triton_on_cpu(monkeypatch) -> None:
    if importlib.util.find_spec("triton") is None or os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("the Triton variants on the CPU need Triton and TRITON_INTERPRET=1")
    from conftest import patch_triton_interpreter_scalars

    patch_triton_interpreter_scalars(monkeypatch)


@pytest.mark.parametrize("triton", [False, True], ids=["torch", "triton"])
def test_dry_run(tmp_path, monkeypatch, capsys, triton):
    timer = FakeTimer()
    variants = VARIANTS
    extra = ()
    if triton:
        _triton_on_cpu(monkeypatch)
        variants = VARIANTS + TRITON
        extra = ("--triton-configs", ",".join(TRITON))
        from gpu.kernels.skinny_gemm import SkinnyConfig

        assert set(TRITON) <= {SkinnyConfig(*c).name for c in bg.TRITON_CONFIGS}
    rows, doc = run(tmp_path, monkeypatch, timer, *extra)
    keys = [(r["shape"], int(r["batch"]), r["variant"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert set(keys) == set(itertools.product(SHAPES + ("step",), BATCHES, variants))
    assert list(doc["variants"]) == list(variants)
    shapes = bg.gemm_shapes(TINY)
    lt_ok = None
    for r in rows:
        m = int(r["batch"])
        if r["variant"] == "linear_cublaslt":  # torch without cuBLASLt (the CPU build) refuses it
            assert r["status"] in ("ok", "skipped"), r
            lt_ok = r["status"] == "ok" if lt_ok is None else lt_ok
            assert (r["status"] == "ok") == lt_ok, "skipped for some shapes only"
            if r["status"] == "skipped":
                assert "cublaslt" in r["note"] and r["us_median"] == "" and r["pct_copy_bw"] == "", r
                continue
        assert r["status"] == "ok" and r["note"] == "", r
        assert 0 < float(r["rel_err"]) < 1e-2, r
        assert float(r["us_median"]) == 10.0 and float(r["us_p10"]) == 9.0 and float(r["us_p90"]) == 11.0
        if r["shape"] == "step":
            nbytes = step_weight_bytes(TINY.num_layers)
        else:
            n, k = shapes[r["shape"]]
            assert (int(r["n"]), int(r["k"])) == (n, k)
            nbytes = 2 * (n * k + m * k + m * n)
        assert int(r["bytes"]) == nbytes, r
        assert float(r["gb_per_s"]) == pytest.approx(nbytes / 10e-6 / 1e9, abs=0.06)
        assert float(r["pct_copy_bw"]) == pytest.approx(100 * nbytes / 10e-6 / BW, abs=0.06)
    timed_variants = len(variants) - (0 if lt_ok else 1)
    singles = [e for e in timer.log if not e[1]]
    steps = [e for e in timer.log if e[1]]
    assert len(singles) == len(SHAPES) * len(BATCHES) * timed_variants
    assert len(steps) == len(BATCHES) * timed_variants
    # single GEMMs rotate over every layer's weight (3 layers) or both lm_head copies; a step is one call
    assert sorted({n for n, _, _ in singles}) == [bg.LM_HEAD_COPIES, TINY.num_layers]
    assert all(n == 1 and kw == bg.STEP_TIMING for n, kw, _ in steps)

    meta = doc["meta"]
    assert META_KEYS <= set(meta) and meta["git_commit"] == "feedc0de" and meta["torch"] == torch.__version__
    assert doc["copy_bandwidth_bytes_per_s"] == BW and doc["layers"] == TINY.num_layers
    assert {k: (v["n"], v["k"]) for k, v in doc["shapes"].items()} == shapes
    assert doc["step_weight_bytes"] == step_weight_bytes(TINY.num_layers)
    assert set(doc["best_step"]) == {str(m) for m in BATCHES}
    for m in BATCHES:
        b = doc["best_step"][str(m)]
        assert b["variant"] in variants and b["ms"] == pytest.approx(0.01) and b["speedup_vs_linear"] == 1.0
        assert doc["step"][str(m)]["linear"]["status"] == "ok"
        for name in SHAPES:
            assert doc["best_gemm"][name][str(m)]["us"] == 10.0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-len(BATCHES) - 1].split() == ["batch", "|", *" | ".join(variants).split(), "|", "best"]
    assert [line.split()[0] for line in lines[-len(BATCHES):]] == [str(m) for m in BATCHES]


def test_quick_uses_fewer_layers(tmp_path, monkeypatch):
    monkeypatch.setattr(bg, "QUICK_LAYERS", 2)
    rows, doc = run(tmp_path, monkeypatch, FakeTimer(), "--quick")
    assert doc["layers"] == 2 and doc["step_weight_bytes"] == step_weight_bytes(2)
    assert {int(r["bytes"]) for r in rows if r["shape"] == "step"} == {step_weight_bytes(2)}


def test_wrong_variant_is_marked_and_never_best(tmp_path, monkeypatch, capsys):
    timer = FakeTimer(us=10.0, fast_us=1.0)  # the wrong variant would be the fastest

    def wrong(x, wt):
        timer.flag.append(1)
        return torch.mm(x, wt) * 1.05

    monkeypatch.setitem(bg.VARIANTS, "mm_t", bg.Variant("deliberately wrong", wrong, bg._transposed))
    rows, doc = run(tmp_path, monkeypatch, timer)
    bad = [r for r in rows if r["variant"] == "mm_t"]
    assert len(bad) == (len(SHAPES) + 1) * len(BATCHES)
    for r in bad:
        assert r["status"] == "wrong" and float(r["rel_err"]) == pytest.approx(0.05, rel=0.05), r
        assert float(r["us_median"]) == 1.0, r  # timed all the same
    assert all(r["status"] == "ok" for r in rows if r["variant"] in ("linear", "splitk4"))
    for m in BATCHES:
        assert doc["step"][str(m)]["mm_t"]["status"] == "wrong"
        assert doc["best_step"][str(m)]["variant"] != "mm_t" and doc["best_step"][str(m)]["ms"] == 0.01
        for name in SHAPES:
            assert doc["best_gemm"][name][str(m)]["variant"] != "mm_t"
    table = capsys.readouterr().out.strip().splitlines()[-len(BATCHES):]
    for line in table:
        cells = [c.strip() for c in line.split("|")]
        assert cells[1 + VARIANTS.index("mm_t")] == "wrong" and cells[-1] not in ("mm_t", "none"), line


def test_no_correct_variant_gives_no_best(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bg, "REL_TOL", 0.0)  # every fp16 result has some error
    rows, doc = run(tmp_path, monkeypatch, FakeTimer())
    assert {r["status"] for r in rows} <= {"wrong", "skipped"} and "wrong" in {r["status"] for r in rows}
    assert all(doc["best_step"][str(m)] is None for m in BATCHES)
    assert all(v is None for name in SHAPES for v in doc["best_gemm"][name].values())
    assert all(line.endswith("| none") for line in capsys.readouterr().out.strip().splitlines()[-len(BATCHES):])


def test_blas_library_set_while_its_variant_runs_and_restored(tmp_path, monkeypatch):
    state = {"lib": "cublas"}

    def preferred_blas_library(backend=None):
        if backend is not None:
            state["lib"] = str(backend)
        return state["lib"]

    monkeypatch.setattr(torch.backends.cuda, "preferred_blas_library", preferred_blas_library)
    timer = FakeTimer(probe=lambda: state["lib"])
    rows, _ = run(tmp_path, monkeypatch, timer)
    assert state["lib"] == "cublas"
    assert all(r["status"] == "ok" for r in rows), [r for r in rows if r["status"] != "ok"]
    libs = [lib for _, _, lib in timer.log]
    per_variant = (len(SHAPES) + 1) * len(BATCHES)
    assert libs.count("cublaslt") == per_variant and libs.count("cublas") == (len(VARIANTS) - 1) * per_variant


def test_triton_configs_and_flags(tmp_path, monkeypatch):
    pytest.importorskip("triton")
    from gpu.kernels import skinny_gemm as sg

    names = [sg.SkinnyConfig(*c).name for c in bg.TRITON_CONFIGS]
    assert len(set(names)) == len(names) <= 14  # compile time on the GPU run (30 s for ten at e5d734f)
    assert any(sg.SkinnyConfig(*c).split_k > 1 for c in bg.TRITON_CONFIGS)
    assert any(sg.SkinnyConfig(*c).swap_ab for c in bg.TRITON_CONFIGS)
    assert list(bg.triton_variants(None, torch.device("cuda"))) == names
    assert list(bg.triton_variants(["tsk_n16_k16_w1_s1_sk3"], torch.device("cuda"))) == ["tsk_n16_k16_w1_s1_sk3"]
    with pytest.raises(SystemExit):  # argparse's error
        run(tmp_path, monkeypatch, FakeTimer(), "--triton-configs", "tsk_n64_k256")
    rows, _ = run(tmp_path, monkeypatch, FakeTimer(), "--no-triton", "--triton-configs", TRITON[0])
    assert {r["variant"] for r in rows} == set(VARIANTS)

    # where Triton cannot run (the CPU without the interpreter), its rows are skipped with the reason
    monkeypatch.setattr(sg, "unavailable_reason", lambda device: "no Triton here")
    timer = FakeTimer()
    rows, doc = run(tmp_path, monkeypatch, timer, "--triton", "--triton-configs", ",".join(TRITON))
    tri = [r for r in rows if r["variant"] in TRITON]
    assert len(tri) == len(TRITON) * (len(SHAPES) + 1) * len(BATCHES)
    assert all(r["status"] == "skipped" and "no Triton here" in r["note"] for r in tri), tri
    assert len(timer.log) == (len(SHAPES) + 1) * len(BATCHES) * sum(
        1 for v in VARIANTS if v != "linear_cublaslt" or any(r["variant"] == v and r["status"] == "ok" for r in rows))
