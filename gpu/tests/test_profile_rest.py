"""The step profiler's rests: decode-only tables back to back, the others with --rest."""

import pytest

pytest.importorskip("torch")

from gpu import profile_steps as ps  # noqa: E402
from gpu.common import timing as timing_module  # noqa: E402


def test_decode_tables_take_the_decode_rest(monkeypatch):
    monkeypatch.setattr(ps, "_rest", 1.0)
    monkeypatch.setattr(ps, "_decode_rest", 0.0)
    assert ps.rest_for("step_decode") == 0.0
    assert ps.rest_for("step_decode_varied") == 0.0
    for table in ("step_tokens", "step_attention", "lora_step", "lora_token", "step_mixed"):
        assert ps.rest_for(table) == 1.0


def test_resting_restores_the_rest_also_when_the_block_raises(monkeypatch):
    monkeypatch.setattr(ps, "_rest", 1.0)
    seen = []
    with ps.resting(0.25):
        seen.append(ps._rest)
    assert seen == [0.25] and ps._rest == 1.0
    with pytest.raises(RuntimeError), ps.resting(0.5):
        assert ps._rest == 0.5
        raise RuntimeError("table failed")
    assert ps._rest == 1.0


def test_timed_sleeps_the_current_rest(monkeypatch):
    slept = []
    monkeypatch.setattr(timing_module.time, "sleep", lambda s: slept.append(s))
    with ps.resting(0.0):
        ps.timed(lambda: None, reps=3, warmup=0)
    assert slept == []
    with ps.resting(2.0):
        ps.timed(lambda: None, reps=3, warmup=0)
    assert len(slept) == 3 and all(s >= 0 for s in slept)


def test_tables_option_knows_every_table_and_refuses_others(monkeypatch, capsys):
    assert set(ps.DECODE_TABLES) <= set(ps.STEP_TABLES)
    # refused before any rig is built or any folder written
    monkeypatch.setattr("sys.argv", ["profile_steps.py", "--out", "/nonexistent/x", "--tables", "step_decode,nope"])
    with pytest.raises(SystemExit) as e:
        ps.main()
    assert e.value.code == 2
    assert "unknown ['nope']" in capsys.readouterr().err


def test_a_profile_is_complete_when_every_table_is_in_it():
    assert ps.complete(list(ps.STEP_TABLES))
    assert ps.complete(list(ps.STEP_TABLES) + ["extra"])
    assert not ps.complete(list(ps.STEP_TABLES)[:-1])
    assert not ps.complete(["step_decode"])  # a --tables experiment is not a profile to install
