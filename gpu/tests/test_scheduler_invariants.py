"""Invariants over many seeded random runs of the scheduler and the virtual driver."""

from __future__ import annotations

import random

import pytest
from conftest import make_adapters

from gpu.engine.config import EngineConfig
from gpu.engine.scheduler import Request, Scheduler, StepPlan
from gpu.engine.virtual import LinearCostModel, run_virtual

COST = LinearCostModel(0.01, 0.0001, 0.0005, 0.003, 0.02)


def random_config(rng: random.Random) -> EngineConfig:
    chunked = rng.random() < 0.6
    block_size = rng.choice([1, 4, 16])
    max_model_len = rng.choice([64, 128, 256])
    max_loras = rng.randint(1, 4)
    return EngineConfig(
        max_num_seqs=rng.randint(1, 12),
        max_num_batched_tokens=rng.choice([16, 64, 256]) if chunked else max_model_len + rng.choice([0, 64]),
        chunked_prefill=chunked,
        block_size=block_size,
        num_gpu_blocks=rng.randint(max_model_len // block_size, 4 * max_model_len // block_size),
        max_model_len=max_model_len,
        max_loras=max_loras,
        max_cpu_loras=max_loras + rng.randint(0, 3),
        scheduler_lookahead=rng.choice([1, 3, 16, 256]),
    )


def random_requests(rng: random.Random, n: int, adapters: list[str], max_len: int) -> list[Request]:
    out = []
    t = 0.0
    for rid in range(n):
        t += rng.expovariate(20.0) if rng.random() < 0.9 else 0.0
        adapter = None if rng.random() < 0.15 else rng.choice(adapters)
        prompt = rng.randint(1, max_len)
        output = rng.randint(1, max(1, max_len // 2))
        out.append(Request(rid, round(t, 6), adapter, prompt, output))
    return out


def check_plan(s: Scheduler, plan: StepPlan) -> None:
    c = s.config
    assert c.num_gpu_blocks is not None
    assert len(plan.seqs) <= c.max_num_seqs
    assert sum(q.num_tokens for q in plan.seqs) <= c.max_num_batched_tokens
    assert len({q.request_id for q in plan.seqs}) == len(plan.seqs)
    adapters = {q.adapter for q in plan.seqs if q.adapter is not None}
    assert len(adapters) <= c.max_loras
    slots = {q.adapter: q.slot for q in plan.seqs if q.adapter is not None}
    assert len(set(slots.values())) == len(slots)  # one slot per adapter
    for q in plan.seqs:
        assert q.num_tokens >= 1
        if q.adapter is not None:
            assert s.resident_adapters()[q.adapter] == q.slot
        assert len(q.block_table) == -(-(q.start_pos + q.num_tokens) // c.block_size)
        if not c.chunked_prefill:
            assert q.samples  # without chunking a prompt is computed whole
    held = [b for r in s.running for b in r.blocks]
    assert len(held) == len(set(held))
    assert len(held) + s.num_free_blocks == c.num_gpu_blocks
    assert all(not r.blocks for r in s.waiting)
    assert len(s.running) <= c.max_num_seqs
    in_flight = s.in_flight_adapters()
    resident = s.resident_adapters()
    assert len(in_flight) + len(resident) <= c.max_loras
    assert set(resident) <= s.host_adapters() and set(in_flight) <= s.host_adapters()
    assert len(s.host_adapters()) <= c.max_cpu_loras
    assert not (set(resident) & set(in_flight))


def run_direct(rng: random.Random, config: EngineConfig, requests: list[Request]) -> int:
    """Drives one scheduler by hand (arrivals at each step's start, loads finish one step later),
    checking the invariants after every pass. Returns the number of iterations."""
    s = Scheduler(config, make_adapters(*{r.adapter for r in requests if r.adapter}))
    pending = sorted(requests, key=lambda r: r.arrival_s)
    loads: list[str] = []
    t, i, iterations = 0.0, 0, 0
    samples: dict[int, int] = {}
    while i < len(pending) or s.has_work() or loads:
        while i < len(pending) and pending[i].arrival_s <= t:
            s.add_request(pending[i], t)
            i += 1
        for a in loads:
            s.load_done(a, t)
        plan = s.schedule(t)
        check_plan(s, plan)
        loads = [o.adapter for o in plan.loads]
        for q in plan.seqs:
            samples[q.request_id] = samples.get(q.request_id, 0) + q.samples
        s.finish_step(plan, t + 0.01)
        iterations += bool(plan.seqs)
        t += 0.01
        assert iterations < 200_000
    for r in requests:
        if r.status == "rejected":
            assert samples.get(r.request_id, 0) == 0
        else:
            assert r.status == "finished"
            assert r.generated == r.output_tokens == samples[r.request_id]
    return iterations


@pytest.mark.parametrize("seed", range(60))
def test_random_runs_keep_the_invariants(seed: int) -> None:
    rng = random.Random(seed)
    config = random_config(rng)
    adapters = [f"a{k}" for k in range(rng.randint(1, 8))]
    requests = random_requests(rng, rng.randint(20, 150), adapters, config.max_model_len)
    run_direct(rng, config, requests)
    assert config.num_gpu_blocks is not None
    for r in requests:
        too_big = (
            r.prompt_tokens + r.output_tokens > config.max_model_len
            or -(-(r.prompt_tokens + r.output_tokens) // config.block_size) > config.num_gpu_blocks
        )
        assert (r.status == "rejected") == too_big


@pytest.mark.parametrize("seed", range(40))
def test_random_virtual_runs_conserve_requests(seed: int) -> None:
    rng = random.Random(1000 + seed)
    config = random_config(rng)
    names = [f"a{k}" for k in range(rng.randint(1, 8))]
    requests = random_requests(rng, rng.randint(20, 150), names, config.max_model_len)
    replicas = rng.randint(1, 3)
    plans: list[StepPlan] = []

    def step_seconds(plan: StepPlan) -> float:
        plans.append(plan)
        return COST.step_seconds(plan)

    result = run_virtual(config, make_adapters(*names), requests, step_seconds, COST.load_seconds, replicas=replicas)
    assert result.requests == requests
    finished = [r for r in requests if r.status == "finished"]
    rejected = [r for r in requests if r.status == "rejected"]
    assert len(finished) + len(rejected) == len(requests)
    for r in finished:
        assert r.generated == r.output_tokens
        assert r.first_scheduled_s is not None and r.first_token_s is not None and r.finish_s is not None
        assert r.arrival_s <= r.first_scheduled_s < r.first_token_s <= r.finish_s
    iteration_lines = [e for e in result.batch_log if e.iteration >= 0]
    idle_lines = [e for e in result.batch_log if e.iteration < 0]
    assert len(plans) == len(iteration_lines) == len(result.iterations)
    assert all(e.iteration == -1 and not e.batch and e.loads and not e.preempted for e in idle_lines)
    for p in plans:
        assert len(p.seqs) <= config.max_num_seqs
        assert sum(q.num_tokens for q in p.seqs) <= config.max_num_batched_tokens
        assert len({q.adapter for q in p.seqs if q.adapter}) <= config.max_loras
    assert all(e.batch for e in iteration_lines)
    assert sum(len(e.loads) for e in result.batch_log) == len(result.loads)
    keys = [(e.start_s, e.replica) for e in result.batch_log]
    assert keys == sorted(keys)
    for k in range(replicas):
        its = [e.iteration for e in iteration_lines if e.replica == k]
        assert its == list(range(len(its)))
    # Tokens per request over the log: the prompt and every output but the last, once, plus
    # whatever was recomputed; a request never preempted is computed exactly once.
    total: dict[int, int] = {}
    for e in result.batch_log:
        for rid, n in e.batch:
            total[rid] = total.get(rid, 0) + n
    for r in finished:
        if r.preemptions == 0:
            assert total[r.request_id] == r.prompt_tokens + r.output_tokens - 1
        else:
            assert total[r.request_id] > r.prompt_tokens + r.output_tokens - 1


def test_a_hundred_thousand_requests() -> None:
    rng = random.Random(7)
    names = [f"a{k}" for k in range(40)]
    config = EngineConfig(
        max_num_seqs=64,
        max_num_batched_tokens=2048,
        block_size=16,
        num_gpu_blocks=2000,
        max_model_len=1024,
        max_loras=8,
        max_cpu_loras=16,
    )
    requests = []
    t = 0.0
    for rid in range(100_000):
        t += rng.expovariate(200.0)
        requests.append(Request(rid, t, rng.choice(names), rng.randint(8, 128), rng.randint(1, 16)))
    result = run_virtual(config, make_adapters(*names), requests, COST.step_seconds, COST.load_seconds)
    assert all(r.status == "finished" and r.generated == r.output_tokens for r in requests)
    assert len(result.batch_log) > 1000
