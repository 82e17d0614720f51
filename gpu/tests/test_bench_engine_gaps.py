"""gpu/bench_engine.py's reading of a profiled CUDA-graph replay, on the CPU with hand-made numbers:
the kernels' device time set against the step gives the time between kernels, a replay whose
kernels the profiler did not see says so rather than printing a gap of the whole step, and
bench.md carries both lines."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("torch")

from conftest import patch_triton_interpreter_scalars  # noqa: E402

from gpu import bench_engine as be  # noqa: E402


def _kernels(*us: float) -> dict:
    return {f"k{i}": {"us_per_step": u, "calls_per_step": 32.0} for i, u in enumerate(us)}


def test_the_gap_is_the_step_less_its_kernels():
    g = be.graph_gaps(5.0, _kernels(3000.0, 1200.0, 300.0))
    assert g["kernels_ms"] == pytest.approx(4.5) and g["gap_ms"] == pytest.approx(0.5)
    assert g["gap_pct"] == pytest.approx(10.0) and g["launches_per_step"] == pytest.approx(96)
    assert list(g["kernels"]) == ["k0", "k1", "k2"]
    assert len(be.graph_gaps(5.0, _kernels(*[10.0] * 20))["kernels"]) == 12  # the dearest twelve


def test_no_kernel_seen_is_not_a_gap_of_the_whole_step(tmp_path):
    g = be.graph_gaps(4.0, {})
    assert g["kernels_ms"] is None and g["gap_ms"] is None and g["gap_pct"] is None
    res = {"meta": {}, "decode_graph_kernels": {"1": g, "32": be.graph_gaps(5.0, _kernels(4500.0))}}
    text = be.write_tables(res, tmp_path)
    assert "Decode graph at batch 1: 4.000 ms; the profiler saw no kernel inside it." in text
    assert "Decode graph at batch 32 (replayed; torch.profiler): step 5.000 ms, kernels 4.500 ms" in text
    assert "between kernels 0.500 ms (10.0 %)" in text and (tmp_path / "bench.md").read_text() == text


def test_decode_attention_flag_sets_the_engine_configuration(monkeypatch, tmp_path):
    import argparse

    from gpu.engine import attention

    for name in ("DECODE_TILE", "DECODE_WARPS", "DECODE_STAGES"):
        monkeypatch.setattr(attention, name, getattr(attention, name))  # restored after the test
    ap = argparse.ArgumentParser()
    be.set_decode_attention("16,8,3", ap)
    assert (attention.DECODE_TILE, attention.DECODE_WARPS, attention.DECODE_STAGES) == (16, 8, 3)
    for bad in ("16,8", "1,16,8,3", "x,8,2", "24,4,2", "16,6,2", "16,4,0"):
        with pytest.raises(SystemExit):
            be.set_decode_attention(bad, ap)
    assert (attention.DECODE_TILE, attention.DECODE_WARPS, attention.DECODE_STAGES) == (16, 8, 3)  # unchanged
    res = {"meta": {}, "decode_attention": {"tile": 16, "warps": 8, "stages": 3, "head_fast": False}}
    assert "Decode attention: 16-token tiles, 8 warps, 3 stages." in be.write_tables(res, tmp_path)
    res["decode_attention"].update(late_trigger=True, pdl_launch=False)
    assert ("Decode attention: 16-token tiles, 8 warps, 3 stages, under PDL letting the next kernel launch after "
            "its loop, launched without PDL itself.") in be.write_tables(res, tmp_path)
    res["decode_attention"].update(late_trigger=False, pdl_launch=True, prewait=True)
    assert ("Decode attention: 16-token tiles, 8 warps, 3 stages, its first tile loaded before its wait."
            in be.write_tables(res, tmp_path))


def test_set_flag_sets_module_constants_or_names_the_bad_setting(monkeypatch, tmp_path, capsys):
    import argparse

    from gpu.engine import attention
    from gpu.engine import model as engine_model

    for mod, name in ((engine_model, "SKINNY_WIDE_MAX_M"), (engine_model, "SKINNY_WIDE_CONFIG"),
                      (attention, "DECODE_WARPS")):
        monkeypatch.setattr(mod, name, getattr(mod, name))  # restored after the test
    ap = argparse.ArgumentParser()
    got = be.apply_settings("model.SKINNY_WIDE_MAX_M=32;model.SKINNY_WIDE_CONFIG='x_bal'; attention.DECODE_WARPS=2", ap)
    assert engine_model.SKINNY_WIDE_MAX_M == 32 and engine_model.SKINNY_WIDE_CONFIG == "x_bal"
    assert attention.DECODE_WARPS == 2 and "model.SKINNY_WIDE_MAX_M=32" in got
    for bad, says in (("model.NO_SUCH=1", "has no NO_SUCH"), ("model.SKINNY_WIDE_MAX_M=thirty", "Python literal"),
                      ("torch.X=1", "module 'torch'"), ("SKINNY_WIDE_MAX_M=1", "module.ATTR=VALUE")):
        with pytest.raises(SystemExit):
            be.apply_settings(bad, ap)
        assert says in capsys.readouterr().err
    assert engine_model.SKINNY_WIDE_MAX_M == 32  # unchanged by the bad ones
    res = {"meta": {}, "decode_gemm": {"wide": "a", "narrow": "a", "narrow_n": 0, "max_m": 16, "wide_max_m": 32,
                                       "wide_config": "w_bal", "wide_narrow_config": "n_bal", "wide_cublas_n": 16384}}
    text = be.write_tables(res, tmp_path)
    assert "17-32 rows: w_bal (n_bal for N <= 4096, weights of more than 16384 output columns with F.linear)" in text
    res["decode_gemm"].update(wide_narrow_n=8192, wide_pdl=False, wide_narrow_config=None)
    assert "17-32 rows: w_bal (None for N <= 8192, weights of more than 16384 output columns with F.linear, " \
           "without PDL)" in be.write_tables(res, tmp_path)
    res["decode_gemm"].update(wide_narrow_config="n", wide_narrow_max_m=24)
    assert "17-32 rows: w_bal (n for N <= 8192 up to 24 rows, F.linear above, weights of more than 16384" \
        in be.write_tables(res, tmp_path)


def test_decode_gemm_flag_routes_small_batches_to_the_skinny_gemm(monkeypatch, tmp_path):
    import argparse

    import torch

    from gpu.engine import model as engine_model
    from gpu.kernels import skinny_gemm as sg

    if os.environ.get("TRITON_INTERPRET") == "1":
        patch_triton_interpreter_scalars(monkeypatch)
    engine_linear = engine_model.linear
    monkeypatch.setattr(engine_model, "linear", engine_linear)  # restored after the test
    monkeypatch.setattr(engine_model, "SKINNY_MAX_M", engine_model.SKINNY_MAX_M)
    monkeypatch.setattr(be, "NARROW_N", 24)
    calls = []
    real = sg.skinny_gemm
    monkeypatch.setattr(sg, "skinny_gemm",
                        lambda x, w, cfg, **kw: calls.append((w.shape[0], cfg.name)) or real(x, w, cfg, **kw))
    ap = argparse.ArgumentParser()
    for bad in ("", "tsk_n64", "tsk_n64_k256_w4_s4_sk1,tsk_n32_k128_w4_s4_sk2,tsk_n32_k128_w4_s4_sk1"):
        with pytest.raises(SystemExit):
            be.set_decode_gemm(bad, ap)
    assert engine_model.linear is engine_linear  # unchanged by the bad names
    assert be.set_decode_gemm("none", ap) == "F.linear" and engine_model.SKINNY_MAX_M == 0
    got = be.set_decode_gemm("tsk_n16_k32_w4_s1_sk1,tsk_n16_k32_w4_s1_sk2", ap)
    assert got["wide"] == "tsk_n16_k32_w4_s1_sk1" and got["narrow"] == "tsk_n16_k32_w4_s1_sk2"
    dev = "cuda" if torch.cuda.is_available() else "cpu"  # CPU: Triton's interpreter (conftest)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 64, generator=g).half().to(dev)
    for n in (48, 24):  # wide, then narrow (N <= NARROW_N)
        w = (torch.randn(n, 64, generator=g) * 0.1).half().to(dev)
        ref = x.double() @ w.double().t()
        y = engine_model.linear(x, w)
        assert float((y.double() - ref).norm() / ref.norm()) < 2e-3
    assert calls == [(48, "tsk_n16_k32_w4_s1_sk1"), (24, "tsk_n16_k32_w4_s1_sk2")]
    big = torch.randn(sg.MAX_M + 1, 64, generator=g).to(dev)
    engine_model.linear(big, w.float())  # above MAX_M rows: F.linear, not the kernel
    assert len(calls) == 2
    res = {"meta": {}, "decode_gemm": got}
    text = be.write_tables(res, tmp_path)
    assert "Triton skinny GEMM tsk_n16_k32_w4_s1_sk1 (tsk_n16_k32_w4_s1_sk2 for N <= 24); F.linear above." in text
    assert "Weight GEMMs: F.linear at every batch." in be.write_tables({"meta": {}, "decode_gemm": "F.linear"},
                                                                      tmp_path)


def test_the_engine_uses_the_skinny_gemm_for_small_fp16_batches_on_cuda_only(monkeypatch):
    import torch

    from gpu.engine import model as engine_model

    seen = []
    monkeypatch.setattr(engine_model, "skinny_gemm", lambda x, w, cfg, **k: seen.append(cfg.name) or x @ w.t())
    x, w = torch.randn(4, 8).half(), torch.randn(6, 8).half()
    engine_model.linear(x, w)  # CPU tensors: F.linear
    assert seen == []
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))  # stands in for a GPU
    engine_model.linear(x, w)
    wide = max(engine_model.SKINNY_MAX_M, engine_model.SKINNY_WIDE_MAX_M)
    engine_model.linear(torch.randn(wide + 1, 8).half(), w)  # above both bounds: F.linear
    engine_model.linear(x.float(), w.float())  # fp32: F.linear
    assert seen == [engine_model.SKINNY_CONFIG]
    if engine_model.SKINNY_WIDE_MAX_M > engine_model.SKINNY_MAX_M:  # a wide batch, a weight over 4,096 columns
        engine_model.linear(torch.randn(engine_model.SKINNY_MAX_M + 1, 8).half(), torch.randn(4100, 8).half())
        assert seen[-1] == engine_model.SKINNY_WIDE_CONFIG


def test_header_names_the_wide_lm_head_the_long_graphs_and_the_argmax(tmp_path):
    dg = {"wide": "a", "narrow": "a", "narrow_n": 0, "max_m": 16, "wide_max_m": 32, "wide_config": "b",
          "wide_narrow_config": "c", "wide_narrow_n": 4096, "wide_narrow_max_m": 24, "wide_cublas_n": 16384,
          "wide_pdl": False, "wide_lm_head": True, "long_context": 1024, "long_min_rows": 12, "triton_argmax": True}
    text = be.write_tables({"meta": {}, "decode_gemm": dg}, tmp_path)
    assert "weights of more than 16384 output columns with F.linear but lm_head, without PDL" in text
    assert "at least 1024 tokens replay graphs with decode attention launched without PDL (graphs of 12 rows" in text
    assert "argmax: one Triton program a row" in text
    assert "WIDE_EPILOGUES" not in text
    dg.update(wide_epilogues=True, wide_epilogue_configs=["q", "g", "r"])
    text = be.write_tables({"meta": {}, "decode_gemm": dg}, tmp_path)
    assert ("Passes of 17-32 rows without LoRA: the norms and SiLU in the skinny GEMMs' epilogues (WIDE_EPILOGUES; "
            "qkv, lm_head q, gate_up g, o_proj and down_proj r)") in text
    dg.update(wide_lm_head=False, long_context=None, triton_argmax=False, wide_epilogues=False)
    text = be.write_tables({"meta": {}, "decode_gemm": dg}, tmp_path)
    assert "F.linear, without PDL" in text and "but lm_head" not in text
    assert "launched without PDL (graphs" not in text and "argmax" not in text
