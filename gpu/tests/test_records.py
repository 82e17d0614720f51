"""Live-run writers (requests.csv, iterations.csv, run.json) and the trace/catalogue readers."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import make_adapters, make_config, req

from gpu.engine.records import (
    ITERATION_COLUMNS,
    REQUEST_COLUMNS,
    write_iterations_csv,
    write_requests_csv,
    write_run_json,
    write_text_atomic,
)
from gpu.engine.trace_io import TraceError, load_scenario, read_catalogue, read_trace
from gpu.engine.virtual import LinearCostModel, run_virtual

COST = LinearCostModel(0.01, 0.0001, 0.0005, 0.003, 0.02)


def test_column_orders_are_the_contract() -> None:
    assert REQUEST_COLUMNS == (
        "request_id", "adapter", "arrival_s", "first_scheduled_s", "first_token_s", "finish_s",
        "prompt_tokens", "output_tokens", "preemptions", "status",
    )  # fmt: skip
    assert ITERATION_COLUMNS == (
        "replica", "iteration", "start_s", "duration_s", "prefill_tokens", "decode_seqs", "num_seqs",
        "distinct_adapters", "mode", "adapter_loads", "preemptions",
    )  # fmt: skip


def test_requests_and_iterations_csv(tmp_path: Path) -> None:
    reqs = [req(1, 4, 2, "a1", arrival=0.25), req(2, 70, 1), req(3, 3, 1)]
    result = run_virtual(make_config(), make_adapters("a1"), reqs, COST.step_seconds, COST.load_seconds)
    write_requests_csv(tmp_path / "requests.csv", result.requests)
    write_iterations_csv(tmp_path / "iterations.csv", result.iterations)
    rows = list(csv.DictReader((tmp_path / "requests.csv").open()))
    assert [r["request_id"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["adapter"] == "a1" and rows[0]["arrival_s"] == "0.250000000"
    assert rows[0]["status"] == "finished" and rows[0]["preemptions"] == "0"
    assert float(rows[0]["first_scheduled_s"]) == pytest.approx(0.273, abs=1e-9)
    assert rows[1] == {
        "request_id": "2", "adapter": "", "arrival_s": "0.000000000", "first_scheduled_s": "",
        "first_token_s": "", "finish_s": "", "prompt_tokens": "70", "output_tokens": "1",
        "preemptions": "0", "status": "rejected",
    }  # fmt: skip
    its = list(csv.DictReader((tmp_path / "iterations.csv").open()))
    assert tuple(its[0]) == ITERATION_COLUMNS
    assert its[0] == {
        "replica": "0", "iteration": "0", "start_s": "0.000000000", "duration_s": "0.010300000",
        "prefill_tokens": "3", "decode_seqs": "0", "num_seqs": "1", "distinct_adapters": "0",
        "mode": "unmerged", "adapter_loads": "0", "preemptions": "0",
    }  # fmt: skip
    assert len(its) == len(result.iterations)
    assert {it["distinct_adapters"] for it in its} == {"0", "1"}


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "x.txt"
    write_text_atomic(p, "one\n")
    write_text_atomic(p, "two\n")
    assert p.read_text() == "two\n"
    assert sorted(x.name for x in p.parent.iterdir()) == ["x.txt"]
    mask = os.umask(0)
    os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask


def test_run_json(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_bytes(b"request_id,arrival_s,adapter,prompt_tokens,output_tokens\n1,0.0,,4,2\n")
    versions = {"gpu": "NVIDIA H100 80GB HBM3", "driver": "550.1", "torch": "2.11", "triton": "3.5"}
    when = datetime(2026, 11, 23, 18, 0, 0, tzinfo=UTC)
    obj = write_run_json(tmp_path / "run.json", make_config().to_dict(), trace, "s1", versions, git="abc", date=when)
    on_disk = json.loads((tmp_path / "run.json").read_text())
    assert on_disk == obj
    assert on_disk["trace"]["sha256"] == hashlib.sha256(trace.read_bytes()).hexdigest()
    assert on_disk["date"] == "2026-11-23T18:00:00Z"
    assert on_disk["engine"]["num_gpu_blocks"] == 64 and on_disk["git_commit"] == "abc"
    assert on_disk["versions"] == versions and on_disk["scenario"] == "s1"
    with pytest.raises(ValueError, match="triton"):
        write_run_json(tmp_path / "r2.json", {}, trace, "s1", {"gpu": "x", "driver": "y", "torch": "z"})


CATALOGUE = "adapter,rank,alpha,target_modules\na1,8,16,q_proj;k_proj;v_proj;o_proj\na2,16,32.5,q_proj\n"


def test_read_catalogue_and_trace(tmp_path: Path) -> None:
    cat = tmp_path / "adapters.csv"
    cat.write_text(CATALOGUE)
    adapters = read_catalogue(cat)
    assert list(adapters) == ["a1", "a2"]
    assert adapters["a1"].target_modules == ("q_proj", "k_proj", "v_proj", "o_proj")
    assert adapters["a2"].rank == 16 and adapters["a2"].alpha == 32.5
    tr = tmp_path / "trace.csv"
    tr.write_text("request_id,arrival_s,adapter,prompt_tokens,output_tokens\n3,0.25,a2,10,4\n1,0.25,,7,1\n")
    reqs = read_trace(tr, adapters)
    assert [(r.request_id, r.arrival_s, r.adapter, r.prompt_tokens, r.output_tokens) for r in reqs] == [
        (3, 0.25, "a2", 10, 4),
        (1, 0.25, None, 7, 1),
    ]


@pytest.mark.parametrize(
    ("body", "line", "field"),
    [
        ("1,0.0,a1,4,2\n2,x,a1,4,2\n", 3, "arrival_s"),
        ("1,0.0,a1,4,2\n1,0.5,a1,4,2\n", 3, "request_id"),
        ("1,0.0,zz,4,2\n", 2, "adapter"),
        ("1,0.0,a1,0,2\n", 2, "prompt_tokens"),
        ("1,0.0,a1,4,0\n", 2, "output_tokens"),
        ("1,-1,a1,4,2\n", 2, "arrival_s"),
        ("1,inf,a1,4,2\n", 2, "arrival_s"),
        ("1,0.0,a1,4\n", 2, None),
        ("1,0.5,a1,4,2\n2,0.25,a1,4,2\n", 3, "arrival_s"),
    ],
)
def test_trace_errors_name_file_line_field(tmp_path: Path, body: str, line: int, field: str | None) -> None:
    tr = tmp_path / "trace.csv"
    tr.write_text("request_id,arrival_s,adapter,prompt_tokens,output_tokens\n" + body)
    with pytest.raises(TraceError) as e:
        read_trace(tr, make_adapters("a1"))
    assert (e.value.path, e.value.line, e.value.field) == (str(tr), line, field)
    assert str(e.value).startswith(f"{tr}:{line}")


def test_catalogue_errors(tmp_path: Path) -> None:
    cat = tmp_path / "adapters.csv"
    for body, line, field in [
        ("a1,0,16,q_proj\n", 2, "rank"),
        ("a1,8,x,q_proj\n", 2, "alpha"),
        ("a1,8,16,q_proj;;v_proj\n", 2, "target_modules"),
        ("a1,8,16,q_proj\na1,8,16,q_proj\n", 3, "adapter"),
    ]:
        cat.write_text("adapter,rank,alpha,target_modules\n" + body)
        with pytest.raises(TraceError) as e:
            read_catalogue(cat)
        assert (e.value.line, e.value.field) == (line, field)
    cat.write_text("name,rank,alpha,target_modules\n")
    with pytest.raises(TraceError, match=r":1: header"):
        read_catalogue(cat)
    with pytest.raises(TraceError, match="cannot open"):
        read_catalogue(tmp_path / "missing.csv")


def test_load_scenario(tmp_path: Path) -> None:
    (tmp_path / "adapters.csv").write_text(CATALOGUE)
    (tmp_path / "trace.csv").write_text("request_id,arrival_s,adapter,prompt_tokens,output_tokens\n1,0.0,a1,4,2\n")
    (tmp_path / "s.yaml").write_text(
        "name: s1\nseed: 1\nmodel: llama-2-7b\ngpu: h100-sxm-80gb\n"
        "cost_model: {kind: linear, base_s: 0.01, per_prefill_token_s: 0.0001, per_decode_seq_s: 0.0005,"
        " host_to_gpu_s: 0.003, disk_to_host_s: 0.02}\n"
        "engine: {max_num_seqs: 8, num_gpu_blocks: 64, max_loras: 2, max_cpu_loras: 3}\n"
        "replicas: 2\nplacement: {kind: all}\nworkload: {trace: trace.csv, catalogue: adapters.csv}\n"
    )
    sc = load_scenario(tmp_path / "s.yaml")
    assert sc.name == "s1" and sc.replicas == 2 and sc.engine.max_num_seqs == 8
    assert [r.request_id for r in sc.requests] == [1] and set(sc.adapters) == {"a1", "a2"}
    (tmp_path / "bad.yaml").write_text("engine: {max_num_seqs: 8, bogus: 1}\nworkload: {}\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: engine\.bogus"):
        load_scenario(tmp_path / "bad.yaml")
