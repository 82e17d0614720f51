"""Decode batches over SKINNY_MAX_M rows through the skinny GEMM (gpu/engine/model.py
SKINNY_WIDE_MAX_M), under Triton's interpreter on the CPU or on a GPU: the engine's logits with the
wide configurations equal those of F.linear, each weight takes the configuration its width asks for
(SKINNY_WIDE_NARROW_CONFIG up to SKINNY_WIDE_NARROW_N output columns, or F.linear where it is
None or the batch has more than SKINNY_WIDE_NARROW_MAX_M rows), weights wider than
SKINNY_WIDE_CUBLAS_N stay with F.linear (lm_head too, unless SKINNY_WIDE_LM_HEAD), and batches of
SKINNY_MAX_M rows or fewer, or over SKINNY_WIDE_MAX_M, are untouched."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

os.environ.setdefault("TRITON_INTERPRET", "1")  # before any Triton import, as in conftest

from conftest import fused_forward_logits, patch_triton_interpreter_scalars  # noqa: E402

from gpu.engine import model as em  # noqa: E402

DEVICE = "cuda" if os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
WIDE, NARROW = "tsk_n32_k32_w4_s2_sk1_ab", "tsk_n16_k32_w4_s2_sk2"


@pytest.fixture(autouse=True)
def _wide(monkeypatch):
    if DEVICE == "cpu":
        patch_triton_interpreter_scalars(monkeypatch)
        monkeypatch.setattr(em, "_wide_rows", lambda x: x.dim() == 2 and em.SKINNY_MAX_M < x.shape[0]
                            <= em.SKINNY_WIDE_MAX_M and x.dtype == torch.float16)
    monkeypatch.setattr(em, "SKINNY_MAX_M", 2)  # the test's three sequences are a wide batch
    monkeypatch.setattr(em, "SKINNY_WIDE_CONFIG", WIDE)
    monkeypatch.setattr(em, "SKINNY_WIDE_NARROW_CONFIG", NARROW)
    monkeypatch.setattr(em, "SKINNY_WIDE_CUBLAS_N", None)  # the tests' own routing, not the engine's default
    monkeypatch.setattr(em, "SKINNY_WIDE_NARROW_MAX_M", None)
    monkeypatch.setattr(em, "WIDE_EPILOGUES", False)  # the plain pass's routing (the epilogues' test sets it)
    yield


def _names(calls: list) -> list[str]:
    return [c[0].name for c in calls]


def _wide_pass(monkeypatch) -> list[tuple[str, tuple]]:
    """The tiny model's logits with SKINNY_WIDE_MAX_M 0 (F.linear) against 4 (the skinny GEMM for
    the three rows), asserted equal within fp16's bound; returns the (config name, W shape) of each
    skinny GEMM call of the second pass."""
    seen = []
    real = em.skinny_gemm

    def spy(x, w, cfg, **k):
        if em.SKINNY_WIDE_MAX_M:  # the second setting's pass only
            seen.append((cfg.name, tuple(w.shape)))
        return real(x, w, cfg, **k)

    monkeypatch.setattr(em, "skinny_gemm", spy)
    logits, _ = fused_forward_logits(monkeypatch, "SKINNY_WIDE_MAX_M", "add_rms_norm", False, DEVICE,
                                     values=(0, 4))
    ref = logits[False].double()
    rel = float((logits[True].double() - ref).norm() / ref.norm())
    assert rel <= 5e-3, rel
    return seen


@pytest.mark.parametrize("cublas_n", [None, 100])
def test_wide_batches_give_the_logits_of_f_linear(monkeypatch, cublas_n):
    monkeypatch.setattr(em, "SKINNY_WIDE_CUBLAS_N", cublas_n)
    seen = _wide_pass(monkeypatch)
    # tiny model: qkv [128, 64], o [64, 64], gate_up [192, 64], down [64, 96], lm_head [97, 64],
    # two layers; all are "narrow" (<= 4,096 columns) but wider than 100 go to cuBLAS
    shapes = [s for _, s in seen]
    if cublas_n is None:
        assert shapes == [(128, 64), (64, 64), (192, 64), (64, 96)] * 2 + [(97, 64)]
    else:
        assert shapes == [(64, 64), (64, 96)] * 2 + [(97, 64)]
    assert {name for name, _ in seen} == {NARROW}


def test_narrow_weights_stay_with_cublas_when_their_config_is_none(monkeypatch):
    # o [64, 64] and down [64, 96] are narrow at 64 columns and stay with F.linear (config None),
    # gate_up's 192 columns are over SKINNY_WIDE_CUBLAS_N: qkv and lm_head alone take the wide config
    monkeypatch.setattr(em, "SKINNY_WIDE_NARROW_N", 64)
    monkeypatch.setattr(em, "SKINNY_WIDE_NARROW_CONFIG", None)
    monkeypatch.setattr(em, "SKINNY_WIDE_CUBLAS_N", 150)
    assert _wide_pass(monkeypatch) == [(WIDE, (128, 64))] * 2 + [(WIDE, (97, 64))]


@pytest.mark.parametrize("wide_lm_head", [False, True])
def test_lm_head_takes_the_wide_config_past_cublas_n_only_when_asked(monkeypatch, wide_lm_head):
    # gate_up's 192 and lm_head's 97 columns are over SKINNY_WIDE_CUBLAS_N 90; SKINNY_WIDE_LM_HEAD
    # brings lm_head (alone) back to the wide config
    monkeypatch.setattr(em, "SKINNY_WIDE_NARROW_N", 64)
    monkeypatch.setattr(em, "SKINNY_WIDE_CUBLAS_N", 90)
    monkeypatch.setattr(em, "SKINNY_WIDE_LM_HEAD", wide_lm_head)
    layer = [(NARROW, (64, 64)), (NARROW, (64, 96))]
    assert _wide_pass(monkeypatch) == layer * 2 + ([(WIDE, (97, 64))] if wide_lm_head else [])


@pytest.mark.parametrize("narrow_max_m", [2, 3])
def test_narrow_weights_take_their_config_up_to_narrow_max_m_rows(monkeypatch, narrow_max_m):
    # the three rows are over a bound of 2 (o and down with F.linear) and within one of 3
    monkeypatch.setattr(em, "SKINNY_WIDE_NARROW_N", 64)
    monkeypatch.setattr(em, "SKINNY_WIDE_NARROW_MAX_M", narrow_max_m)
    if narrow_max_m >= 3:
        layer = [(WIDE, (128, 64)), (NARROW, (64, 64)), (WIDE, (192, 64)), (NARROW, (64, 96))]
    else:
        layer = [(WIDE, (128, 64)), (WIDE, (192, 64))]
    assert _wide_pass(monkeypatch) == layer * 2 + [(WIDE, (97, 64))]


def test_balanced_wide_configs_give_the_logits_of_f_linear(monkeypatch):
    # the balanced launch (programs sharing each weight's rows evenly, one an SM; 8 programs under
    # the interpreter): qkv's 128 rows, 16 a program, down's 64, 8 a program in 16-row tiles
    bal = "tsk_n16_k32_w4_s2_sk1_ab_bal"
    monkeypatch.setattr(em, "SKINNY_WIDE_CONFIG", bal)
    monkeypatch.setattr(em, "SKINNY_WIDE_NARROW_CONFIG", bal)
    seen = _wide_pass(monkeypatch)
    assert seen and {name for name, _ in seen} == {bal}


def test_tma_wide_configs_give_the_logits_of_f_linear(monkeypatch):
    # tiles through tensor descriptors (_tma): every wide GEMM, split-K on the narrow weights
    tma, narrow_tma = "tsk_n32_k32_w4_s2_sk1_ab_tma", "tsk_n32_k32_w4_s2_sk2_ab_tma"
    monkeypatch.setattr(em, "SKINNY_WIDE_CONFIG", tma)
    monkeypatch.setattr(em, "SKINNY_WIDE_NARROW_CONFIG", narrow_tma)
    monkeypatch.setattr(em, "SKINNY_WIDE_NARROW_N", 64)  # o and down narrow, the others wide
    seen = _wide_pass(monkeypatch)
    assert seen and {name for name, _ in seen} == {tma, narrow_tma}


@pytest.mark.parametrize("config", [None, "tsk_n32_k32_w4_s2_sk1_tma"])
def test_narrow_batches_keep_the_skinny_config(monkeypatch, config):
    if config is not None:  # SKINNY_CONFIG is looked up by name at call time: a _tma one too
        monkeypatch.setattr(em, "SKINNY_CONFIG", config)
    monkeypatch.setattr(em, "SKINNY_MAX_M", 4)  # the three rows are within SKINNY_MAX_M again
    seen = []
    real = em.skinny_gemm
    monkeypatch.setattr(em, "skinny_gemm", lambda x, w, cfg, **k: seen.append(cfg.name) or real(x, w, cfg, **k))
    if DEVICE == "cpu":
        monkeypatch.setattr(em, "_skinny_rows", lambda x: x.dim() == 2 and 1 <= x.shape[0] <= em.SKINNY_MAX_M
                            and x.dtype == torch.float16)
    fused_forward_logits(monkeypatch, "SKINNY_WIDE_MAX_M", "add_rms_norm", False, DEVICE, values=(0, 4))
    assert seen and set(seen) == {em.SKINNY_CONFIG}


def test_decode_gemm_settings_report_the_routing_as_set(monkeypatch):
    monkeypatch.setattr(em, "SKINNY_WIDE_MAX_M", 32)
    monkeypatch.setattr(em, "SKINNY_WIDE_NARROW_CONFIG", None)
    monkeypatch.setattr(em, "SKINNY_WIDE_PDL", False)
    monkeypatch.setattr(em, "SKINNY_WIDE_NARROW_MAX_M", 24)
    got = em.decode_gemm_settings()
    assert got["skinny_max_m"] == 2 and got["wide_max_m"] == 32 and got["wide_config"] == WIDE
    assert got["wide_narrow_config"] is None and got["wide_pdl"] is False and got["pdl"] == em.DECODE_PDL
    assert got["wide_narrow_max_m"] == 24
    assert got["pdl_attention_late_trigger"] is em._attn.DECODE_LATE_TRIGGER
    assert got["pdl_attention_launch"] is em._attn.DECODE_PDL_LAUNCH
    assert got["pdl_attention_prewait"] is em._attn.DECODE_PREWAIT_TILE
    monkeypatch.setattr(em, "SKINNY_WIDE_LM_HEAD", True)
    monkeypatch.setattr(em, "TRITON_ARGMAX", True)
    got = em.decode_gemm_settings()
    assert got["wide_lm_head"] is True and got["triton_argmax"] is True
    assert got["long_context"] == em.DECODE_LONG_CONTEXT and got["long_min_rows"] == em.DECODE_LONG_MIN_ROWS
    monkeypatch.setattr(em, "EPILOGUE_SS_ATOMIC", True)
    assert em.decode_gemm_settings()["epilogue_ss_atomic"] is True


@pytest.mark.parametrize("lora,mixed,atomic", [(False, 0, False), (True, 0, False), (False, 6, False),
                                               (False, 0, True)])
def test_wide_epilogues_give_the_unfused_logits(monkeypatch, lora, mixed, atomic):
    # WIDE_EPILOGUES: the three rows (over SKINNY_MAX_M 2) through the epilogue GEMMs with the wide
    # configurations: qkv and lm_head transposed, gate_up's GLU transposed and split in 2, o_proj and
    # down_proj split in 3 (the tile's last program adding to the residual); none where LoRA is on;
    # ``mixed``: the three decodes and a 6-token prompt in one step (9 rows, prefill attention)
    # ``atomic``: the row sums of squares added with atomics (EPILOGUE_SS_ATOMIC), not stored as parts
    monkeypatch.setattr(em, "EPILOGUE_SS_ATOMIC", atomic)
    configs = ("tsk_n32_k32_w4_s2_sk1_ab", "tsk_n16_k32_w4_s2_sk2_ab", "tsk_n32_k32_w4_s2_sk3_ab")
    for name, value in zip(("WIDE_EPILOGUE_CONFIG", "WIDE_EPILOGUE_GLU_CONFIG", "WIDE_EPILOGUE_NARROW_CONFIG"),
                           configs, strict=True):
        monkeypatch.setattr(em, name, value)
    seen = []
    for fn in ("scaled_gemm", "residual_gemm"):
        real = getattr(em, fn)
        monkeypatch.setattr(em, fn, lambda x, w, cfg, *a, real=real, fn=fn, **k:
                            seen.append((fn, cfg.name, tuple(w.shape))) or real(x, w, cfg, *a, **k))
    logits, _ = fused_forward_logits(monkeypatch, "WIDE_EPILOGUES", "add_rms_norm", lora, DEVICE,
                                     mixed_prompt=mixed)
    assert logits[True].shape[0] == 3 + (1 if mixed else 0)
    ref = logits[False].double()
    rel = float((logits[True].double() - ref).norm() / ref.norm())
    assert rel <= 5e-3, rel
    if lora:
        assert seen == []
        return
    layer = [("scaled_gemm", configs[0], (128, 64)), ("residual_gemm", configs[2], (64, 64)),
             ("scaled_gemm", configs[1], (192, 64)), ("residual_gemm", configs[2], (64, 96))]
    assert seen == layer * 2 + [("scaled_gemm", configs[0], (97, 64))]
