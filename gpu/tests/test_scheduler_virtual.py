"""The virtual driver: event order, loader serialisation, routing, batch log, exact times."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_adapters, make_config, req

from gpu.engine.scheduler import AdapterInfo
from gpu.engine.virtual import BatchLogEntry, LinearCostModel, run_virtual

COST = LinearCostModel(
    base_s=0.01, per_prefill_token_s=0.0001, per_decode_seq_s=0.0005, host_to_gpu_s=0.003, disk_to_host_s=0.02
)


def run(requests, replicas=1, placement=None, batch_log=None, **cfg):  # type: ignore[no-untyped-def]
    return run_virtual(
        make_config(**cfg),
        make_adapters("a1", "a2", "a3"),
        requests,
        COST.step_seconds,
        COST.load_seconds,
        replicas=replicas,
        placement=placement,
        batch_log=batch_log,
    )


def test_single_request_exact_times() -> None:
    r = req(1, 10, 3, arrival=0.5)
    result = run([r])
    t1 = 0.5 + (0.01 + 0.0001 * 10 + 0.0005 * 0)
    t2 = t1 + (0.01 + 0.0001 * 0 + 0.0005 * 1)
    t3 = t2 + (0.01 + 0.0001 * 0 + 0.0005 * 1)
    assert [e.start_s for e in result.batch_log] == [0.5, t1, t2]
    assert [e.batch for e in result.batch_log] == [[(1, 10)], [(1, 1)], [(1, 1)]]
    assert (r.first_scheduled_s, r.first_token_s, r.finish_s) == (0.5, t1, t3)
    its = result.iterations
    assert [(i.prefill_tokens, i.decode_seqs, i.num_seqs) for i in its] == [(10, 0, 1), (0, 1, 1), (0, 1, 1)]
    assert [i.duration_s for i in its] == [t1 - 0.5, t2 - t1, t3 - t2] or all(
        abs(a - b) < 1e-15 for a, b in zip([i.duration_s for i in its], [t1 - 0.5, t2 - t1, t3 - t2], strict=True)
    )


def test_cold_load_delays_the_first_iteration() -> None:
    r = req(1, 4, 1, "a1", arrival=1.0)
    result = run([r])
    start = 1.0 + (0.02 + 0.003)
    assert [(e.iteration, e.start_s, e.batch, e.loads) for e in result.batch_log] == [
        (-1, 1.0, [], ["a1"]),  # the pass at the arrival formed no batch but started the load
        (0, start, [(1, 4)], []),
    ]
    assert len(result.iterations) == 1
    assert r.first_scheduled_s == start


def test_loads_are_serialised_on_one_loader() -> None:
    a, b = req(1, 4, 1, "a1"), req(2, 4, 1, "a2")
    result = run([a, b])
    d = 0.02 + 0.003
    assert a.first_scheduled_s == d
    assert b.first_scheduled_s == d + d  # second load waits for the first
    assert [(e.iteration, e.batch, e.loads) for e in result.batch_log] == [
        (-1, [], ["a1", "a2"]),
        (0, [(1, 4)], []),
        (1, [(2, 4)], []),
    ]


def test_arrival_at_an_iteration_end_joins_the_next_pass() -> None:
    t1 = 0.0 + (0.01 + 0.0001 * 8 + 0.0005 * 0)
    first, second = req(1, 8, 2), req(2, 5, 1, arrival=t1)
    result = run([first, second])
    assert result.batch_log[1].start_s == t1
    assert result.batch_log[1].batch == [(1, 1), (2, 5)]


def test_arrival_during_an_iteration_waits_for_its_end() -> None:
    result = run([req(1, 8, 2), req(2, 5, 1, arrival=0.001)])
    assert result.batch_log[1].batch == [(1, 1), (2, 5)]
    assert len(result.batch_log) == 2


def test_router_fewest_queued_ties_to_lowest_index() -> None:
    reqs = [req(k, 4, 50, arrival=0.0) for k in range(1, 6)]
    result = run(reqs, replicas=2)
    first = {e.replica: [rid for rid, _ in e.batch] for e in result.batch_log if e.iteration == 0}
    assert first == {0: [1, 3, 5], 1: [2, 4]}
    lines = [(e.start_s, e.replica) for e in result.batch_log]
    assert lines == sorted(lines)


def test_router_counts_running_and_waiting() -> None:
    # Replica 0 holds one long request; replica 1 two short ones that finish early.
    reqs = [req(1, 4, 40), req(2, 4, 2), req(3, 4, 2, arrival=0.0), req(4, 4, 1, arrival=0.2)]
    result = run(reqs, replicas=2)
    by_req = {rid: e.replica for e in result.batch_log for rid, _ in e.batch}
    assert by_req == {1: 0, 2: 1, 3: 0, 4: 1}


def test_placement_restricts_routing() -> None:
    reqs = [req(k, 4, 2, "a1") for k in range(1, 5)] + [req(9, 4, 2)]
    result = run(reqs, replicas=3, placement={"a1": [2], "a2": [0], "a3": [0]})
    by_req = {rid: e.replica for e in result.batch_log for rid, _ in e.batch}
    assert {by_req[k] for k in range(1, 5)} == {2}
    assert by_req[9] == 0


def test_rejected_requests_are_recorded_and_never_scheduled() -> None:
    bad = req(1, 60, 10)
    good = req(2, 4, 1)
    result = run([bad, good])
    assert bad.status == "rejected" and bad.first_scheduled_s is None
    assert [e.batch for e in result.batch_log] == [[(2, 4)]]


def test_batch_log_line_format(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    run([req(12, 3, 1, "a1"), req(15, 4, 1)], batch_log=path)
    lines = path.read_text().splitlines()
    assert lines[0] == (
        '{"replica": 0, "iteration": 0, "start_s": 0.000000000, "batch": [[15, 4]], "loads": ["a1"], "preempted": []}'
    )
    assert lines[1].startswith('{"replica": 0, "iteration": 1, ')
    assert json.loads(lines[1])["start_s"] == 0.023
    assert '"start_s": 0.023000000,' in lines[1]
    entry = BatchLogEntry(0, 7, 0.35, [(12, 1), (15, 64)], ["a3"], [9])
    assert json.loads(entry.to_json()) == {
        "replica": 0,
        "iteration": 7,
        "start_s": 0.35,
        "batch": [[12, 1], [15, 64]],
        "loads": ["a3"],
        "preempted": [9],
    }


def test_linear_cost_model_classification() -> None:
    # A decode seq is one token, the last sampled one, of a request that has generated.
    s_reqs = [req(1, 5, 3), req(2, 27, 1)]
    plans = []

    def step_seconds(plan):  # type: ignore[no-untyped-def]
        plans.append(plan)
        return COST.step_seconds(plan)

    run_virtual(
        make_config(max_num_batched_tokens=16),
        make_adapters("a1"),
        s_reqs,
        step_seconds,
        COST.load_seconds,
    )
    counts = [(p.prefill_tokens, p.decode_seqs) for p in plans]
    # pass 1: 5 + 11 prefill; pass 2: decode of 1, 15 of 2; pass 3: decode of 1 and the last
    # prompt token of 2, which is one token that samples but, nothing generated yet, is prefill.
    assert counts == [(16, 0), (15, 1), (1, 1)]
    assert COST.load_seconds(AdapterInfo("a1", 8, 16.0, ("q_proj",)), True) == 0.02 + 0.003
    assert COST.load_seconds(AdapterInfo("a1", 8, 16.0, ("q_proj",)), False) == 0.003


def test_linear_cost_model_from_mapping_names_bad_key() -> None:
    import pytest

    d = {"kind": "linear", "base_s": 0.01, "per_prefill_token_s": 0.0, "per_decode_seq_s": 0.0}
    with pytest.raises(ValueError, match="host_to_gpu_s"):
        LinearCostModel.from_mapping(d)
    with pytest.raises(ValueError, match=r"cost_model\.kind"):
        LinearCostModel.from_mapping({**d, "kind": "measured"})


def test_idle_pass_line(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    run([req(3, 4, 1, "a2", arrival=0.25)], batch_log=path)
    assert path.read_text().splitlines() == [
        '{"replica": 0, "iteration": -1, "start_s": 0.250000000, "batch": [], "loads": ["a2"], "preempted": []}',
        '{"replica": 0, "iteration": 0, "start_s": 0.273000000, "batch": [[3, 4]], "loads": [], "preempted": []}',
    ]
