"""The BLAS library preferred while decode graphs are captured (gpu/engine/executor.py preferred_blas)."""

import pytest

torch = pytest.importorskip("torch")

from gpu.engine import executor as E  # noqa: E402


def test_none_and_cpu_change_nothing():
    before = torch.backends.cuda.preferred_blas_library()
    with E.preferred_blas(None):
        assert torch.backends.cuda.preferred_blas_library() == before
    if not torch.cuda.is_available():
        with E.preferred_blas("cublaslt"):  # torch without CUDA refuses cuBLASLt: must not be asked
            assert torch.backends.cuda.preferred_blas_library() == before
    assert torch.backends.cuda.preferred_blas_library() == before


def test_sets_inside_and_restores_after_an_error(monkeypatch):
    state = {"lib": "cublas"}
    calls = []

    def fake(name=None):
        if name is not None:
            calls.append(name)
            state["lib"] = name
        return state["lib"]

    monkeypatch.setattr(E.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(E.torch.backends.cuda, "preferred_blas_library", fake)
    with E.preferred_blas("cublaslt"):
        assert state["lib"] == "cublaslt"
    assert state["lib"] == "cublas"
    with pytest.raises(RuntimeError):
        with E.preferred_blas("cublaslt"):
            raise RuntimeError("capture failed")
    assert state["lib"] == "cublas"
    assert calls == ["cublaslt", "cublas", "cublaslt", "cublas"]


def test_default_is_cublaslt_and_recorded_by_the_executor():
    assert E.DEFAULT_DECODE_BLAS == "cublaslt"
    import inspect
    sig = inspect.signature(E.Executor.__init__)
    assert sig.parameters["decode_blas"].default == E.DEFAULT_DECODE_BLAS
