"""One hand-made case per rule of docs/engine-model.md's scheduling pass."""

from __future__ import annotations

from conftest import batch, make_scheduler, req, step


def test_budget_and_chunking() -> None:
    s = make_scheduler(max_num_batched_tokens=64)
    s.add_request(req(1, 50, 3), 0.0)
    s.add_request(req(2, 30, 2), 0.0)
    plan, done = step(s, 0.0)
    assert batch(plan) == [(1, 50), (2, 14)]
    assert [q.samples for q in plan.seqs] == [True, False]
    assert plan.prefill_tokens == 64 and plan.decode_seqs == 0
    assert done == []
    plan, _ = step(s, 1.0)
    # Request 1 decodes (position 50, the token it sampled); request 2 finishes its prompt.
    assert batch(plan) == [(1, 1), (2, 16)]
    one, two = plan.seqs
    assert (one.start_pos, one.decode, one.samples) == (50, True, True)
    assert (two.start_pos, two.decode, two.samples) == (14, False, True)
    assert plan.prefill_tokens == 16 and plan.decode_seqs == 1


def test_budget_stops_running_walk_and_waiting_walk() -> None:
    s = make_scheduler(max_num_batched_tokens=20)
    for rid in (1, 2, 3):
        s.add_request(req(rid, 20, 4), 0.0)
    plan, _ = step(s, 0.0)
    assert batch(plan) == [(1, 20)]  # budget 0: request 2 is not even examined
    plan, _ = step(s, 1.0)
    assert batch(plan) == [(1, 1), (2, 19)]


def test_max_num_seqs_limits_admission() -> None:
    s = make_scheduler(max_num_seqs=3)
    for rid in range(1, 6):
        s.add_request(req(rid, 2, 2), 0.0)
    plan, _ = step(s, 0.0)
    assert batch(plan) == [(1, 2), (2, 2), (3, 2)]
    assert [r.request_id for r in s.waiting] == [4, 5]
    plan, done = step(s, 1.0)
    assert batch(plan) == [(1, 1), (2, 1), (3, 1)]
    assert {r.request_id for r in done} == {1, 2, 3}
    plan, _ = step(s, 2.0)
    assert batch(plan) == [(4, 2), (5, 2)]


def test_non_chunked_prefill_that_does_not_fit_stops_waiting_walk() -> None:
    s = make_scheduler(chunked_prefill=False, max_num_batched_tokens=64, max_model_len=64)
    s.add_request(req(1, 40, 2), 0.0)
    s.add_request(req(2, 30, 2), 0.0)
    s.add_request(req(3, 5, 2), 0.0)  # would fit, but FCFS: nothing overtakes request 2
    plan, _ = step(s, 0.0)
    assert batch(plan) == [(1, 40)]
    plan, _ = step(s, 1.0)
    assert batch(plan) == [(1, 1), (2, 30), (3, 5)]


def test_chunked_prefill_takes_what_is_left() -> None:
    s = make_scheduler(chunked_prefill=True, max_num_batched_tokens=64)
    s.add_request(req(1, 40, 2), 0.0)
    s.add_request(req(2, 30, 2), 0.0)
    plan, _ = step(s, 0.0)
    assert batch(plan) == [(1, 40), (2, 24)]


def test_preemption_of_the_newest_with_recompute() -> None:
    # 5 blocks of 4 tokens. Prompts 8, 8, 4 fill the cache exactly.
    s = make_scheduler(num_gpu_blocks=5, max_model_len=20)
    s.add_request(req(1, 8, 4), 0.0)
    s.add_request(req(2, 8, 4), 0.0)
    s.add_request(req(3, 4, 4), 0.0)
    plan, _ = step(s, 0.0)
    assert batch(plan) == [(1, 8), (2, 8), (3, 4)]
    assert s.num_free_blocks == 0
    # Each now needs a 3rd/2nd block for position 8/8/4. Request 1 preempts 3 (the newest);
    # request 2 then finds no block and the newest left is itself: it is preempted, step 1 stops.
    plan, _ = step(s, 1.0)
    assert batch(plan) == [(1, 1)]
    assert plan.preempted == [3, 2]
    assert [r.request_id for r in s.running] == [1]
    assert [r.request_id for r in s.waiting] == [2, 3]
    r2, r3 = s.waiting[0], s.waiting[1]
    assert (r2.num_computed, r2.generated, r2.blocks, r2.preemptions) == (0, 1, [], 1)
    assert (r3.num_computed, r3.generated, r3.blocks, r3.preemptions) == (0, 1, [], 1)
    first_scheduled = r2.first_scheduled_s
    # No admission in a pass that preempted; the next pass re-admits request 2 with its prompt
    # and its generated token recomputed (9 tokens, 3 blocks) if blocks allow: 3 held by 1, 2 free.
    plan, _ = step(s, 2.0)
    assert batch(plan) == [(1, 1)]  # request 2 needs 3 blocks, 2 free: FCFS stop
    plan, done = step(s, 3.0)
    assert batch(plan) == [(1, 1)]
    assert [r.request_id for r in done] == [1]  # 4 outputs: 8 + 1 + 1 + 1 computed
    plan, _ = step(s, 4.0)
    assert batch(plan) == [(2, 9), (3, 5)]
    assert [q.samples for q in plan.seqs] == [True, True]
    assert not any(q.decode for q in plan.seqs)  # a recompute is prefill work
    assert r2.generated == 2 and r3.generated == 2
    assert r2.first_scheduled_s == first_scheduled == 0.0


def test_preemption_of_a_later_request_lets_the_walk_go_on() -> None:
    s = make_scheduler(num_gpu_blocks=4, max_model_len=16)
    s.add_request(req(1, 4, 8), 0.0)
    s.add_request(req(2, 4, 8), 0.0)
    s.add_request(req(3, 8, 8), 0.0)
    plan, _ = step(s, 0.0)
    assert batch(plan) == [(1, 4), (2, 4), (3, 8)]
    plan, _ = step(s, 1.0)
    # 1 needs a block: preempt 3 (frees 2); 2 needs a block: one left. 3 was preempted.
    assert batch(plan) == [(1, 1), (2, 1)]
    assert plan.preempted == [3]
    assert s.num_free_blocks == 0


def test_fcfs_stop_on_memory() -> None:
    s = make_scheduler(num_gpu_blocks=10, max_model_len=40, max_num_batched_tokens=64)
    s.add_request(req(1, 24, 10), 0.0)  # 6 blocks
    plan, _ = step(s, 0.0)
    s.add_request(req(2, 20, 4), 1.0)  # 5 blocks: 4 free after request 1's next block
    s.add_request(req(3, 4, 4), 1.0)  # 1 block: would fit, must not overtake
    plan, _ = step(s, 1.0)
    assert batch(plan) == [(1, 1)]
    assert [r.request_id for r in s.waiting] == [2, 3]


def test_adapter_skip_and_load_start() -> None:
    s = make_scheduler()
    s.add_request(req(1, 8, 2, "a1"), 0.0)
    s.add_request(req(2, 8, 2, "a1"), 0.0)
    s.add_request(req(3, 8, 2), 0.0)
    plan = s.schedule(0.0)
    assert batch(plan) == [(3, 8)]  # base-model requests never skip
    assert [(o.adapter, o.slot, o.from_disk) for o in plan.loads] == [("a1", 0, True)]
    assert [r.request_id for r in s.waiting] == [1, 2]
    s.finish_step(plan, 1.0)
    plan = s.schedule(1.0)  # load still in flight: skipped again, no second load
    assert batch(plan) == [(3, 1)] and plan.loads == []
    s.finish_step(plan, 2.0)
    s.load_done("a1", 2.0)
    plan = s.schedule(2.0)
    assert batch(plan) == [(1, 8), (2, 8)]
    assert [q.slot for q in plan.seqs] == [0, 0]
    assert plan.loads == []


def test_skipped_request_keeps_its_place_and_later_ones_go_ahead() -> None:
    s = make_scheduler()
    s.add_request(req(1, 4, 2, "a1"), 0.0)
    s.add_request(req(2, 4, 2, "a2"), 0.0)
    s.add_request(req(3, 4, 2), 0.0)
    plan = s.schedule(0.0)
    assert [o.adapter for o in plan.loads] == ["a1", "a2"]
    assert [o.slot for o in plan.loads] == [0, 1]
    assert batch(plan) == [(3, 4)]
    s.finish_step(plan, 1.0)
    s.load_done("a2", 1.0)
    plan = s.schedule(1.0)
    assert batch(plan) == [(3, 1), (2, 4)]
    assert [r.request_id for r in s.waiting] == [1]


def _load_and_run(s, adapter: str, rid: int, t: float) -> float:  # type: ignore[no-untyped-def]
    """Queues a one-token request of `adapter`, loads it if needed, runs it to the end."""
    s.add_request(req(rid, 4, 1, adapter), t)
    plan = s.schedule(t)
    for o in plan.loads:
        s.load_done(o.adapter, t)
    s.finish_step(plan, t + 0.5)
    t += 1.0
    while s.has_work():
        plan, _ = step(s, t)
        for o in plan.loads:
            s.load_done(o.adapter, t)
        t += 1.0
    return t


def test_slot_eviction_takes_least_recent_unused_adapter() -> None:
    s = make_scheduler(max_loras=2, max_cpu_loras=4)
    t = _load_and_run(s, "a1", 1, 0.0)
    t = _load_and_run(s, "a2", 2, t)
    t = _load_and_run(s, "a1", 3, t)  # a1 touched again: a2 is now the least recent
    assert s.lru_order() == ["a2", "a1"]
    assert s.resident_adapters() == {"a1": 0, "a2": 1}
    s.add_request(req(4, 4, 1, "a3"), t)
    plan = s.schedule(t)
    assert [(o.adapter, o.slot, o.from_disk) for o in plan.loads] == [("a3", 1, True)]
    assert s.resident_adapters() == {"a1": 0}
    assert "a2" in s.host_adapters()  # evicted from its slot, kept in host memory


def test_slot_eviction_spares_adapters_used_by_running() -> None:
    s = make_scheduler(max_loras=2, max_cpu_loras=4, max_num_batched_tokens=64)
    t = _load_and_run(s, "a1", 1, 0.0)
    t = _load_and_run(s, "a2", 2, t)
    # a1 is the least recent, but a request of a1 is running: a2 must go.
    s.add_request(req(3, 4, 10, "a1"), t)
    plan, _ = step(s, t)
    assert batch(plan) == [(3, 4)]
    s.add_request(req(4, 4, 1, "a3"), t + 1)
    plan, _ = step(s, t + 1)
    assert [(o.adapter, o.slot) for o in plan.loads] == [("a3", 1)]
    # With both slots taken by adapters in use (a1 running, a3 in flight), no load starts.
    s.add_request(req(5, 4, 1, "a4"), t + 2)
    plan, _ = step(s, t + 2)
    assert plan.loads == []
    assert batch(plan) == [(3, 1)]


def test_host_cache_eviction_and_host_hits() -> None:
    s = make_scheduler(max_loras=1, max_cpu_loras=2)
    t = _load_and_run(s, "a1", 1, 0.0)
    t = _load_and_run(s, "a2", 2, t)
    assert s.host_adapters() == {"a1", "a2"}
    s.add_request(req(3, 4, 1, "a1"), t)
    plan = s.schedule(t)
    assert [(o.adapter, o.from_disk) for o in plan.loads] == [("a1", False)]  # host hit
    s.load_done("a1", t)
    s.finish_step(plan, t + 0.5)
    t = _load_and_run(s, "a1", 4, t + 1)
    # Now a1 is resident and the most recent; a3 takes a1's slot, then the host cache (full:
    # a1, a2) evicts the least recent entry that is neither resident nor in flight: a2.
    s.add_request(req(5, 4, 1, "a3"), t)
    plan = s.schedule(t)
    assert [(o.adapter, o.from_disk) for o in plan.loads] == [("a3", True)]
    assert s.host_adapters() == {"a1", "a3"}


def test_host_cache_never_evicts_resident_or_in_flight() -> None:
    s = make_scheduler(max_loras=2, max_cpu_loras=2, adapters=("a1", "a2", "a3"))
    t = _load_and_run(s, "a1", 1, 0.0)
    s.add_request(req(2, 4, 5, "a1"), t)  # keeps a1 busy
    s.add_request(req(3, 4, 1, "a2"), t)
    plan = s.schedule(t)
    assert [(o.adapter, o.slot) for o in plan.loads] == [("a2", 1)]
    assert s.host_adapters() == {"a1", "a2"}
    s.finish_step(plan, t + 0.5)
    s.add_request(req(4, 4, 1, "a3"), t + 1)
    plan = s.schedule(t + 1)
    assert plan.loads == []  # a1 in use, a2 in flight: no slot
    assert s.host_adapters() == {"a1", "a2"}


def test_lookahead_limits_the_walk() -> None:
    s = make_scheduler(max_loras=4, max_cpu_loras=4, scheduler_lookahead=2)
    s.add_request(req(1, 4, 1, "a1"), 0.0)
    s.add_request(req(2, 4, 1, "a2"), 0.0)
    s.add_request(req(3, 4, 1, "a3"), 0.0)
    s.add_request(req(4, 4, 1), 0.0)
    plan = s.schedule(0.0)
    assert [o.adapter for o in plan.loads] == ["a1", "a2"]
    assert batch(plan) == []


def test_admitted_requests_count_against_lookahead() -> None:
    s = make_scheduler(scheduler_lookahead=2)
    for rid in range(1, 5):
        s.add_request(req(rid, 4, 3), 0.0)
    plan = s.schedule(0.0)
    assert batch(plan) == [(1, 4), (2, 4)]


def test_rejection_on_arrival() -> None:
    s = make_scheduler(max_model_len=40, num_gpu_blocks=8, block_size=4)
    ok = req(1, 30, 2)
    assert s.add_request(ok, 0.0) and ok.status == "waiting"
    too_long = req(2, 30, 11)
    assert not s.add_request(too_long, 0.0) and too_long.status == "rejected"
    exactly = req(3, 30, 2)  # 32 tokens = 8 blocks: fits exactly
    assert s.add_request(exactly, 0.0)
    too_many_blocks = req(4, 30, 3)  # 33 tokens = 9 blocks > 8
    assert not s.add_request(too_many_blocks, 0.0) and too_many_blocks.status == "rejected"
    assert [r.request_id for r in s.waiting] == [1, 3]


def test_batch_adapters_touched_after_the_pass_loads() -> None:
    s = make_scheduler(max_loras=3, max_cpu_loras=3)
    t = _load_and_run(s, "a1", 1, 0.0)
    s.add_request(req(2, 4, 3, "a1"), t)
    s.add_request(req(3, 4, 1, "a2"), t)
    plan = s.schedule(t)
    assert batch(plan) == [(2, 4)] and [o.adapter for o in plan.loads] == ["a2"]
    # a2 was touched when its load started, a1 at the end of the pass.
    assert s.lru_order() == ["a2", "a1"]


def test_token_accounting_and_times() -> None:
    s = make_scheduler()
    r = req(1, 6, 3)
    s.add_request(r, 0.0)
    plan, done = step(s, 0.5, dt=0.25)
    assert r.first_scheduled_s == 0.5 and r.first_token_s == 0.75 and r.generated == 1
    assert r.num_computed == 6 and len(r.blocks) == 2 and done == []
    plan, done = step(s, 1.0, dt=0.25)
    plan, done = step(s, 2.0, dt=0.25)
    assert done == [r] and r.finish_s == 2.25 and r.generated == 3 and r.status == "finished"
    assert r.blocks == [] and s.num_free_blocks == 64 and not s.has_work()


def test_finished_requests_leave_running_in_order() -> None:
    s = make_scheduler()
    s.add_request(req(1, 4, 3), 0.0)
    s.add_request(req(2, 4, 1), 0.0)
    s.add_request(req(3, 4, 3), 0.0)
    step(s, 0.0)
    assert [r.request_id for r in s.running] == [1, 3]


def test_block_table_holds_the_positions() -> None:
    s = make_scheduler(block_size=4)
    s.add_request(req(1, 9, 2), 0.0)
    plan, _ = step(s, 0.0)
    (q,) = plan.seqs
    assert len(q.block_table) == 3 and len(set(q.block_table)) == 3
    plan, _ = step(s, 1.0)
    assert plan.seqs[0].block_table == q.block_table  # position 9 is still in block 3


def test_no_admission_in_a_pass_that_preempted() -> None:
    # With a short budget a preempted request could be readmitted at once with a small chunk;
    # the rule forbids it in the pass that preempted it.
    s = make_scheduler(block_size=4, num_gpu_blocks=4, max_num_batched_tokens=5, max_model_len=20)
    s.add_request(req(1, 4, 10), 0.0)
    s.add_request(req(2, 5, 10), 0.0)
    batches = [batch(step(s, float(t))[0]) for t in range(5)]
    assert batches == [[(1, 4), (2, 1)], [(1, 1), (2, 4)], [(1, 1), (2, 1)], [(1, 1), (2, 1)], [(1, 1), (2, 1)]]
    # Request 1 needs its 3rd block (position 8): request 2 (2 blocks) is preempted; 1 block
    # stays free and 4 tokens of budget, enough for a 4-token chunk of request 2, yet no admission.
    plan, _ = step(s, 5.0)
    assert batch(plan) == [(1, 1)] and plan.preempted == [2]
    assert s.num_free_blocks == 1
    plan, _ = step(s, 6.0)
    assert batch(plan) == [(1, 1), (2, 4)]  # readmitted in the next pass: 4 of its 9 tokens
