"""The `dlora` scheduler (docs/schedulers.md, policy draft 2): one hand-made case per decision,
the baselines, and invariants over seeded random runs."""

from __future__ import annotations

import random

import pytest
from conftest import batch, make_adapters, make_config, req

from gpu.engine import virtual
from gpu.engine.config import DLoRAConfig, parse_scheduler
from gpu.engine.dlora import DLoRAPlan, DLoRAScheduler
from gpu.engine.scheduler import Request
from gpu.engine.virtual import BatchLogEntry, LinearCostModel, run_virtual

COST = LinearCostModel(0.01, 0.0001, 0.0005, 0.003, 0.02, switch_s=0.015)


def make(
    adapters: tuple[str, ...] = ("a1", "a2"), resident: tuple[str, ...] = ("a1", "a2"), **kw: object
) -> DLoRAScheduler:
    """A dlora scheduler over the small config (engine keys in `kw`, dlora keys too) with
    `resident` adapters already in GPU slots."""
    dl = {k: kw.pop(k) for k in list(kw) if k in DLoRAConfig.__dataclass_fields__}
    s = DLoRAScheduler(make_config(**kw), make_adapters(*adapters), DLoRAConfig(**dl))  # type: ignore[arg-type]
    for a in resident:
        order = s._start_load(a)
        assert order is not None
        s.load_done(a, 0.0)
    return s


def add(s: DLoRAScheduler, rid: int, adapter: str | None, prompt: int = 4, output: int = 2) -> Request:
    r = req(rid, prompt, output, adapter)
    assert s.add_request(r, 0.0)
    return r


def run_pass(s: DLoRAScheduler, t: float, dt: float = 1.0, switch_s: float = 0.5) -> DLoRAPlan:
    """One pass at `t`: a switch is timed `switch_s` and ended; a batch is finished at `t + dt`."""
    plan = s.schedule(t)
    if plan.switch is not None:
        s.switch_started(switch_s)
        s.switch_done(t + switch_s)
    else:
        s.finish_step(plan, t + dt)
    return plan


# ------------------------------------------------------------------ target mode
def test_merges_when_one_adapter_queue_reaches_r_times_max_num_seqs() -> None:
    s = make(max_num_seqs=4, merge_ratio=1.5)  # R x max_num_seqs = 6
    for rid in range(6):
        add(s, rid, "a1")
    add(s, 6, "a2")
    plan = s.schedule(0.0)
    # queue counts the whole waiting queue (6), not only the candidate batch (4).
    assert plan.switch is not None and plan.switch.label() == "merge a1"
    assert plan.seqs == [] and plan.loads == [] and s.merged is None and s.switching is not None
    with pytest.raises(RuntimeError):
        s.schedule(0.1)  # no pass while switching
    s.switch_started(0.25)
    s.switch_done(0.25)
    assert s.merged == "a1" and s.mode == "merged" and s.mode_since == 0.25 and s.merges == 1
    plan = run_pass(s, 0.25)
    assert plan.mode == "merged" and batch(plan) == [(0, 4), (1, 4), (2, 4), (3, 4)]


def test_stays_unmerged_when_no_adapter_dominates() -> None:
    s = make(max_num_seqs=4, merge_ratio=1.5)
    for rid, a in enumerate(["a1"] * 5 + ["a2"] * 5):  # 5 < 6
        add(s, rid, a)
    plan = run_pass(s, 0.0)
    assert plan.switch is None and plan.mode == "unmerged" and batch(plan) == [(0, 4), (1, 4), (2, 4), (3, 4)]


def test_merge_ties_go_to_the_lowest_catalogue_index() -> None:
    s = make(max_num_seqs=2, merge_ratio=1.0)
    for rid, a in enumerate(["a2", "a2", "a1", "a1"]):
        add(s, rid, a)
    assert s.schedule(0.0).switch.label() == "merge a1"  # type: ignore[union-attr]


def test_merge_onto_an_adapter_not_resident_starts_its_load_and_runs_unmerged() -> None:
    s = make(("a1", "a2", "a3"), resident=("a1",), max_num_seqs=2, merge_ratio=1.0, max_loras=2)
    add(s, 0, "a1")
    add(s, 1, "a3")
    add(s, 2, "a3")
    plan = s.schedule(0.0)
    assert plan.switch is None and plan.mode == "unmerged"
    assert [o.adapter for o in plan.loads] == ["a3"] and batch(plan) == [(0, 4)]
    assert "a3" in s.in_flight_adapters()
    s.finish_step(plan, 1.0)
    plan = s.schedule(1.0)  # a3 still in flight: no second load, still unmerged
    assert plan.switch is None and plan.loads == []
    s.finish_step(plan, 2.0)
    s.load_done("a3", 2.0)
    assert s.schedule(2.0).switch.label() == "merge a3"  # type: ignore[union-attr]


def test_stays_merged_while_queue_reaches_l_times_max_num_seqs_then_unmerges() -> None:
    s = make(max_num_seqs=4, merge_ratio=1.0, stay_ratio=0.5, adaptive=False)  # L x 4 = 2
    for rid in range(10):
        add(s, rid, "a1", output=1)
    add(s, 10, "a2", output=1)
    assert run_pass(s, 0.0).switch.label() == "merge a1"  # type: ignore[union-attr]
    plan = run_pass(s, 1.0)  # queue 10 >= 2: stay
    assert plan.mode == "merged" and batch(plan) == [(0, 4), (1, 4), (2, 4), (3, 4)]
    plan = run_pass(s, 2.0)  # queue 6
    assert plan.mode == "merged" and [r for r, _ in batch(plan)] == [4, 5, 6, 7]
    plan = run_pass(s, 3.0)  # queue 2 >= 2: stay, a2 skipped
    assert plan.mode == "merged" and batch(plan) == [(8, 4), (9, 4)]
    plan = run_pass(s, 4.0)  # queue 0 < 2: unmerge
    assert plan.switch is not None and plan.switch.label() == "unmerge a1" and plan.seqs == []
    assert s.merged is None and s.unmerges == 1
    plan = run_pass(s, 5.0)
    assert plan.mode == "unmerged" and batch(plan) == [(10, 4)]


# ------------------------------------------------------------------ draining (draft 2), the guard
def test_drains_other_adapters_before_merging_and_keeps_their_blocks() -> None:
    s = make(max_num_seqs=4, merge_ratio=1.0, stay_ratio=0.5, adaptive=False)
    other = add(s, 0, "a2", prompt=6, output=3)
    base = add(s, 1, None, prompt=5, output=2)
    assert batch(run_pass(s, 0.0)) == [(0, 6), (1, 5)]
    for rid in range(2, 7):
        add(s, rid, "a1", output=1)
    add(s, 7, "a2")
    blocks = (list(other.blocks), list(base.blocks))
    plan = run_pass(s, 1.0)  # target merged(a1), resident, others running: drain
    assert plan.switch is None and plan.mode == "unmerged" and s.drain_passes == 1
    assert batch(plan) == [(0, 1), (1, 1), (2, 4), (3, 4)]  # step 1 as always; step 2 admits a1 only
    assert other.blocks[: len(blocks[0])] == blocks[0] and base.status == "finished"
    plan = run_pass(s, 2.0)  # queue[a1] = 3 < 4: no merge target, an ordinary FCFS pass
    assert plan.switch is None and batch(plan) == [(0, 1), (4, 4), (5, 4), (6, 4)] and s.drain_passes == 1
    assert other.status == "finished" and other.generated == 3
    plan = run_pass(s, 3.0)  # a1 has nothing waiting now; a2's one request < R x 4: unmerged
    assert plan.switch is None and batch(plan) == [(7, 4)] and s.merges == 0


def test_drain_credit_pays_the_candidates_a_drain_displaces() -> None:
    """With `drain_credit`, a drain pass moves one unit per displaced candidate from the merge
    target to the candidate's adapter, as a credit-prioritised pass does; draft 2 moves none."""
    for drain_credit in (False, True):
        s = make(max_num_seqs=4, merge_ratio=1.0, stay_ratio=0.5, adaptive=False, drain_credit=drain_credit)
        add(s, 0, "a2", prompt=6, output=3)
        run_pass(s, 0.0)
        add(s, 1, "a2")  # a candidate ahead of the target's requests
        for rid in range(2, 7):
            add(s, rid, "a1", output=1)
        before = dict(s.credit)
        plan = run_pass(s, 1.0)  # target merged(a1), a2 running: drain, a1's requests only
        assert s.drain_passes == 1 and 1 not in {q.request_id for q in plan.seqs}
        u = s.params.credit_unit / 4
        moved = s.credit["a2"] - before["a2"]
        assert moved == (u if drain_credit else 0.0)
        assert s.credit["a1"] == before["a1"] - moved


def test_merge_starts_once_only_the_target_runs() -> None:
    s = make(max_num_seqs=4, merge_ratio=1.0, stay_ratio=0.25, adaptive=False)
    add(s, 0, "a1", prompt=4, output=3)
    assert batch(run_pass(s, 0.0)) == [(0, 4)]
    for rid in range(1, 5):
        add(s, rid, "a1", output=1)
    plan = run_pass(s, 1.0)  # only a1 runs: the merge starts, request 0 keeps its blocks
    assert plan.switch is not None and plan.switch.label() == "merge a1" and len(s.running[0].blocks) == 1
    plan = run_pass(s, 1.5)
    assert plan.mode == "merged" and batch(plan) == [(0, 1), (1, 4), (2, 4), (3, 4)]


def test_restricted_walks_count_only_their_adapter_against_the_lookahead() -> None:
    s = make(("a1", "a2", "a3"), resident=("a1",), max_num_seqs=4, merge_ratio=0.5, scheduler_lookahead=2)
    add(s, 0, "a1")
    add(s, 1, "a3")
    add(s, 2, None)
    add(s, 3, "a1")
    add(s, 4, "a1")
    assert run_pass(s, 0.0).switch.label() == "merge a1"  # type: ignore[union-attr]
    plan = run_pass(s, 1.0)  # a1's first two requests; the others are passed over, no load
    assert plan.loads == [] and batch(plan) == [(0, 4), (3, 4)]
    p = make(credit_unit=100.0, max_num_seqs=4, merge_ratio=10.0, scheduler_lookahead=2)
    for rid, a in enumerate(["a1", "a1", "a1", "a2", "a2", "a2"]):
        add(p, rid, a)
    p.credit.update(a1=0.0, a2=200.0)
    plan = p.schedule(0.0)
    # p's walk: a2's first two (3, 4); then the usual walk over the first two of waiting (0, 1).
    assert plan.prioritised == "a2" and batch(plan) == [(3, 4), (4, 4), (0, 4), (1, 4)]
    # C = [0, 1, 2, 3]; last = 3 (request 3); displaced and not admitted: request 2 only.
    assert plan.transfers == [("a2", "a1", 25.0)]


def test_guard_unmerges_a_merged_pass_with_nothing_to_schedule() -> None:
    s = make(max_num_seqs=2, merge_ratio=0.5, stay_ratio=0.0, adaptive=False)
    add(s, 0, "a1", output=1)
    add(s, 1, "a2", output=1)
    assert run_pass(s, 0.0).switch.label() == "merge a1"  # type: ignore[union-attr]
    assert batch(run_pass(s, 1.0)) == [(0, 4)]
    plan = s.schedule(2.0)  # stay_ratio 0: stay; nothing of a1 to run: the guard unmerges
    assert plan.seqs == [] and plan.switch is not None and plan.switch.label() == "unmerge a1"
    assert s.empty_unmerges == 1 and plan.transfers == []


def test_credits_start_at_n_minus_one_units() -> None:
    s = make(("a1", "a2", "a3"), credit_unit=100.0)
    assert s.credit == {"a1": 200.0, "a2": 200.0, "a3": 200.0} and s.total_credit() == 600.0


def test_priority_threshold_and_hysteresis() -> None:
    s = make(credit_unit=100.0, max_num_seqs=4, merge_ratio=10.0)  # N x unit = 200
    add(s, 0, "a1")
    add(s, 1, "a2")
    s.credit.update(a1=0.0, a2=199.5)
    assert s.schedule(0.0).prioritised is None
    s2 = make(credit_unit=100.0, max_num_seqs=4, merge_ratio=10.0)
    add(s2, 0, "a1")
    add(s2, 1, "a2")
    s2.credit.update(a1=0.0, a2=200.0)
    plan = s2.schedule(0.0)
    assert plan.prioritised == "a2" and s2.prioritised == "a2"
    # Prioritised in the previous pass: the threshold drops by unit / 2 = 50.
    s2.finish_step(plan, 1.0)
    add(s2, 2, "a2")
    s2.credit["a2"] = 150.0
    assert s2.schedule(1.0).prioritised == "a2"


def test_hysteresis_needs_the_previous_pass_and_lapses() -> None:
    s = make(credit_unit=100.0, max_num_seqs=4, merge_ratio=10.0)
    for rid in range(4):
        add(s, rid, "a2", prompt=1, output=8)
    s.credit.update(a1=50.0, a2=149.9)
    s.prioritised = "a2"
    plan = run_pass(s, 0.0)
    assert plan.prioritised is None and s.prioritised is None  # below unit / 2 under: lapses
    s.credit["a2"] = 160.0
    assert run_pass(s, 1.0).prioritised is None  # not prioritised last pass: needs 200


def test_priority_ties_go_to_the_lowest_catalogue_index_and_need_a_request_in_c() -> None:
    s = make(("a1", "a2", "a3"), credit_unit=100.0, max_num_seqs=2, merge_ratio=10.0)
    add(s, 0, "a2")
    add(s, 1, "a1")
    add(s, 2, "a3")  # not in C
    s.credit.update(a1=300.0, a2=300.0, a3=900.0)
    assert s.schedule(0.0).prioritised == "a1"


def test_prioritised_adapter_is_admitted_first_and_pays_the_displaced() -> None:
    s = make(
        ("a1", "a2", "a3"),
        resident=("a1", "a2", "a3"),
        credit_unit=100.0,
        max_num_seqs=4,
        merge_ratio=10.0,
        max_loras=3,
        max_num_batched_tokens=8,
    )
    add(s, 0, "a1")
    add(s, 1, None)
    add(s, 2, "a3")
    add(s, 3, "a2")
    s.credit.update(a1=0.0, a2=300.0, a3=300.0)  # a2 and a3 tie at 300 >= 300: a2 (index 1)
    before = s.total_credit()
    plan = s.schedule(0.0)
    assert plan.prioritised == "a2" and batch(plan) == [(3, 4), (0, 4)]
    # C = [0 a1, 1 base, 2 a3, 3 a2]; last = 3; displaced and not admitted: 1 (base: skipped), 2 (a3).
    u = 100.0 / 4
    assert plan.transfers == [("a2", "a3", u)]
    assert s.credit == {"a1": 0.0, "a2": 300.0 - u, "a3": 300.0 + u} and s.total_credit() == before


def test_priority_unmerges_and_a_starving_adapter_waits_at_most_2_s_max_num_seqs_passes() -> None:
    s = make(
        credit_unit=100.0, max_num_seqs=4, merge_ratio=0.0, stay_ratio=0.0, adaptive=False, max_num_batched_tokens=64
    )
    add(s, 0, "a2", prompt=2, output=1)  # the starving one, at the front of waiting
    for rid in range(1, 60):
        add(s, rid, "a1", prompt=2, output=1)
    s.credit.update(a1=150.0, a2=100.0)  # merge onto a1 (largest queue)
    assert run_pass(s, 0.0).switch.label() == "merge a1"  # type: ignore[union-attr]
    amount = 100.0 / 4 / 2  # u / (2 s), s = 1 while speeds are unknown
    passes = 0
    t = 1.0
    while True:
        plan = run_pass(s, t)
        t += 1.0
        if plan.switch is not None:
            break
        passes += 1
        assert plan.mode == "merged" and all(q.adapter == "a1" for q in plan.seqs)
        assert plan.transfers == [("a1", "a2", amount)]
    assert plan.switch.label() == "unmerge a1" and plan.prioritised == "a2" and s.priority_unmerges == 1
    assert passes == 8 == 2 * 1 * 4 and s.credit["a2"] == 200.0 and s.total_credit() == 250.0
    plan = run_pass(s, t)
    assert plan.mode == "unmerged" and plan.prioritised == "a2" and batch(plan)[0] == (0, 2)


def test_merged_transfer_uses_the_speed_ratio() -> None:
    s = make(credit_unit=100.0, max_num_seqs=4, merge_ratio=0.5, stay_ratio=0.0, adaptive=False)
    add(s, 0, "a1")
    add(s, 1, "a1")
    add(s, 2, "a2")
    assert run_pass(s, 0.0).switch is not None
    s.speed_merged, s.speed_unmerged = 300.0, 100.0  # s = 3
    plan = run_pass(s, 1.0)
    assert plan.transfers == [("a1", "a2", 25.0 / (2 * 3.0))]


def test_no_transfer_without_credits_or_in_a_switching_pass() -> None:
    s = make(max_num_seqs=4, merge_ratio=0.5, credits=False)
    add(s, 0, "a1")
    add(s, 1, "a1")
    add(s, 2, "a2")
    s.credit.update(a1=0.0, a2=1e9)
    plan = run_pass(s, 0.0)
    assert plan.switch is not None and plan.prioritised is None and plan.transfers == []
    plan = run_pass(s, 1.0)
    assert plan.mode == "merged" and plan.transfers == [] and s.credit == {"a1": 0.0, "a2": 1e9}


# ------------------------------------------------------------------ speeds, adaptive thresholds
def test_speed_is_an_ewma_per_mode() -> None:
    s = make()
    plan = DLoRAPlan(seqs=[], loads=[], preempted=[], mode="unmerged")
    s.record_iteration(plan, 0.5)
    assert s.speed_unmerged == 0.0 and s.speed_merged is None
    add(s, 0, "a1", prompt=10)
    plan = s.schedule(0.0)
    s.record_iteration(plan, 0.5)
    assert s.speed_unmerged == 0.8 * 0.0 + 0.2 * (10 / 0.5)
    plan.mode = "merged"
    s.record_iteration(plan, 0.25)
    assert s.speed_merged == 10 / 0.25


def test_decode_speed_ignores_iterations_with_prefill() -> None:
    """`speed: decode`: a prompt iteration leaves the speed unknown; a decode-only one sets it."""
    s = make(speed="decode")
    add(s, 0, "a1", prompt=10)
    plan = s.schedule(0.0)
    assert not all(q.decode for q in plan.seqs)
    s.record_iteration(plan, 0.5)
    assert s.speed_unmerged is None
    s.finish_step(plan, 0.5)
    plan = s.schedule(0.5)
    assert plan.seqs and all(q.decode for q in plan.seqs)
    s.record_iteration(plan, 0.25)
    assert s.speed_unmerged == 1 / 0.25


def _adaptive_switch(merging: bool, sm: float, su: float, **kw: object) -> DLoRAScheduler:
    s = make(max_num_seqs=2, **{"merge_ratio": 1.0, "stay_ratio": 0.5, **kw})
    if merging:
        add(s, 0, "a1")
        add(s, 1, "a1")
    else:
        s.merged = "a1"
        s.stay_ratio = 0.5  # queue[a1] = 0 < 1: unmerge
    s.speed_merged, s.speed_unmerged = sm, su
    s.mode_since = 2.0
    plan = s.schedule(12.0)  # T = 10
    assert plan.switch is not None and plan.switch.merging == merging
    s.switch_started(1.0)  # c = 1: merged tokens = sm x 9, unmerged tokens = su x 10
    s.switch_done(13.0)
    assert s.mode_since == 13.0
    return s


def test_adaptive_thresholds_move_both_ways() -> None:
    s = _adaptive_switch(True, 200.0, 100.0)  # into merged, merged better: stay longer
    assert s.stay_ratio == 0.5 / 1.1 and s.merge_ratio == 1.0
    s = _adaptive_switch(True, 100.0, 100.0)  # 900 < 1000
    assert s.stay_ratio == 0.5 + 0.05 and s.merge_ratio == 1.0
    s = _adaptive_switch(False, 200.0, 100.0)  # out of merged, merged better: merge sooner
    assert s.merge_ratio == 1.0 - 0.05 and s.stay_ratio == 0.5
    s = _adaptive_switch(False, 100.0, 100.0)
    assert s.merge_ratio == 1.0 * 1.1
    s = _adaptive_switch(False, 200.0, 100.0, merge_ratio=0.12)
    assert s.merge_ratio == 0.5  # 0.12 - 0.05 floors at 0.1, then R >= L (0.5) holds


def test_adaptive_thresholds_stay_without_speeds_or_when_off() -> None:
    s = make(max_num_seqs=2, merge_ratio=1.0)
    add(s, 0, "a1")
    add(s, 1, "a1")
    run_pass(s, 1.0)
    assert (s.merge_ratio, s.stay_ratio) == (1.0, 0.5)
    s = _adaptive_switch(True, 200.0, 100.0, adaptive=False)
    assert s.stay_ratio == 0.5


# ------------------------------------------------------------------ driver, parsing, log
def test_scheduler_key_parsing() -> None:
    assert (
        parse_scheduler(None) is None and parse_scheduler("fcfs") is None and parse_scheduler({"kind": "fcfs"}) is None
    )
    assert parse_scheduler("dlora") == DLoRAConfig()
    c = parse_scheduler(
        {
            "kind": "dlora",
            "credit_unit": 100,
            "merge_ratio": 0.25,
            "stay_ratio": 0.25,
            "adaptive": False,
            "credits": False,
            "switch_cost": 0.5,
        }
    )
    assert c == DLoRAConfig(100.0, 0.25, 0.25, False, False, 0.5)
    assert parse_scheduler({"kind": "dlora", "switch_cost": "model"}).switch_seconds is None  # type: ignore[union-attr]
    assert parse_scheduler({"kind": "dlora", "speed": "decode"}).speed == "decode"  # type: ignore[union-attr]
    assert parse_scheduler("dlora").speed == "tokens"  # type: ignore[union-attr]
    assert parse_scheduler({"kind": "dlora", "drain_credit": True}).drain_credit  # type: ignore[union-attr]
    assert parse_scheduler("dlora").drain_credit  # type: ignore[union-attr]  # the default since lease 67078bf-1
    assert not parse_scheduler({"kind": "dlora", "drain_credit": False}).drain_credit  # type: ignore[union-attr]
    for bad, words in [
        ({"kind": "dlora", "credit_unit": 0}, "credit_unit"),
        ({"kind": "dlora", "merge_ratio": -1}, "merge_ratio"),
        ({"kind": "dlora", "credits": 1}, "credits"),
        ({"kind": "dlora", "switch_cost": "fast"}, "switch_cost"),
        ({"kind": "dlora", "speed": "fast"}, "speed"),
        ({"kind": "dlora", "drain_credit": "yes"}, "drain_credit"),
        ({"kind": "dlora", "oops": 1}, "oops"),
        ({"kind": "slora"}, "kind"),
        (3, "scheduler"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_scheduler(bad)
    assert (
        LinearCostModel.from_mapping(
            {
                "kind": "linear",
                "base_s": 1,
                "per_prefill_token_s": 0,
                "per_decode_seq_s": 0,
                "host_to_gpu_s": 0,
                "disk_to_host_s": 0,
            }
        ).switch_s
        == 0.02
    )
    with pytest.raises(ValueError, match="switch_s"):
        LinearCostModel.from_mapping(
            {
                "kind": "linear",
                "base_s": 1,
                "per_prefill_token_s": 0,
                "per_decode_seq_s": 0,
                "host_to_gpu_s": 0,
                "disk_to_host_s": 0,
                "switch_s": -1,
            }
        )


def test_switch_line_format() -> None:
    e = BatchLogEntry(0, -1, 0.25, [], [], [], switch="merge a3")
    assert e.to_json() == (
        '{"replica": 0, "iteration": -1, "start_s": 0.250000000, "batch": [], "loads": [], "preempted": [], '
        '"switch": "merge a3"}'
    )
    assert "switch" not in BatchLogEntry(0, 0, 0.25, [(1, 2)], [], []).to_json()


def test_driver_times_switches_and_holds_passes_until_done() -> None:
    cfg = make_config(max_num_seqs=2)
    reqs = [Request(0, 0.0, "a1", 4, 2), Request(1, 0.0, "a1", 4, 2), Request(2, 0.03, "a2", 4, 1)]
    result = run_virtual(
        cfg,
        make_adapters("a1", "a2"),
        reqs,
        COST.step_seconds,
        COST.load_seconds,
        dlora=DLoRAConfig(merge_ratio=1.0, stay_ratio=0.5),
        switch_seconds=COST.switch_seconds,
    )
    lines = [e.to_json() for e in result.batch_log]
    assert lines[0].startswith('{"replica": 0, "iteration": -1, "start_s": 0.000000000, "batch": [], "loads": ["a1"]')
    # a1 resident at 0.023: the pass merges; the arrival at 0.03 waits; the merged pass runs at 0.038.
    assert lines[1] == (
        '{"replica": 0, "iteration": -1, "start_s": 0.023000000, "batch": [], "loads": [], '
        '"preempted": [], "switch": "merge a1"}'
    )
    assert result.switches[0] == (0.023, 0, "merge a1", 0.023 + 0.015)
    assert result.batch_log[2].start_s == 0.023 + 0.015 and result.batch_log[2].batch == [(0, 4), (1, 4)]
    # queue[a1] = 0 < L x 2 at the next pass: unmerge; the rest runs unmerged.
    assert (
        result.batch_log[3].switch == "unmerge a1"
        and result.iterations[1].start_s == result.batch_log[3].start_s + 0.015
    )
    assert [it.mode for it in result.iterations] == ["merged"] + ["unmerged"] * (len(result.iterations) - 1)
    assert all(r.status == "finished" for r in result.requests)
    fixed = run_virtual(
        cfg,
        make_adapters("a1", "a2"),
        [Request(r.request_id, r.arrival_s, r.adapter, 4, r.output_tokens) for r in reqs],
        COST.step_seconds,
        COST.load_seconds,
        dlora=DLoRAConfig(merge_ratio=1.0, switch_seconds=0.5),
    )
    assert fixed.switches[0][3] == 0.023 + 0.5
    with pytest.raises(ValueError, match="switch_cost"):
        run_virtual(cfg, make_adapters("a1"), [], COST.step_seconds, COST.load_seconds, dlora=DLoRAConfig())


# ------------------------------------------------------------------ baselines
def random_requests(rng: random.Random, n: int, names: list[str], weights: list[float], max_len: int) -> list[Request]:
    out, t = [], 0.0
    for rid in range(n):
        t += rng.expovariate(60.0) if rng.random() < 0.85 else 0.0
        adapter = None if rng.random() < 0.1 else rng.choices(names, weights)[0]
        out.append(Request(rid, round(t, 6), adapter, rng.randint(1, max_len), rng.randint(1, max_len // 2)))
    return out


NAMES = ["a1", "a2", "a3", "a4"]
SKEW = [8.0, 1.0, 1.0, 1.0]


def _run(
    seed: int, dl: DLoRAConfig | None, n: int = 150, max_events: int = 10**6, **eng: object
) -> virtual.VirtualResult:
    rng = random.Random(seed)
    cfg = make_config(
        **{
            **dict(
                max_num_seqs=6,
                max_num_batched_tokens=64,
                num_gpu_blocks=80,
                max_model_len=64,
                max_loras=2,
                max_cpu_loras=3,
                scheduler_lookahead=256,
            ),
            **eng,
        }
    )
    return run_virtual(
        cfg,
        make_adapters(*NAMES),
        random_requests(rng, n, NAMES, SKEW, 48),
        COST.step_seconds,
        COST.load_seconds,
        dlora=dl,
        switch_seconds=COST.switch_seconds,
        max_events=max_events,
    )


def _lines(result: virtual.VirtualResult) -> list[str]:
    return [e.to_json() for e in result.batch_log]


@pytest.mark.parametrize("seed", range(5))
def test_fcfs_never_merges_and_dlora_that_cannot_merge_is_fcfs(seed: int) -> None:
    fcfs = _run(seed, None)
    assert all(it.mode == "unmerged" for it in fcfs.iterations) and not fcfs.switches
    never = _run(seed, DLoRAConfig(merge_ratio=1e9, credits=False))
    assert _lines(never) == _lines(fcfs)


def test_dlora_without_credits_merges_but_never_prioritises() -> None:
    merged_somewhere = False
    for seed in range(6):
        result = _run(seed, DLoRAConfig(credits=False, merge_ratio=1.0))
        for sched in result.schedulers:
            assert isinstance(sched, DLoRAScheduler)
            assert sched.prioritised_passes == 0 and set(sched.credit.values()) == {3 * 10000.0}
            merged_somewhere |= sched.merges > 0
    assert merged_somewhere


def test_always_merged_serves_one_adapter_at_a_time_and_hops_when_it_runs_dry() -> None:
    """`merge_ratio: 0, stay_ratio: 0`: merge onto the longest queue as soon as there is one and
    stay while the merged adapter has work; under draft 2 a merged pass with nothing to run
    unmerges, so the base model's and the other adapters' requests are served in between."""
    always = DLoRAConfig(merge_ratio=0.0, stay_ratio=0.0, credits=False, adaptive=False)
    reqs = [
        Request(0, 0.0, "a1", 4, 2),
        Request(1, 0.1, None, 4, 2),
        Request(2, 0.5, "a2", 4, 1),
        Request(3, 0.6, "a1", 4, 1),
    ]
    result = run_virtual(
        make_config(),
        make_adapters(*NAMES),
        reqs,
        COST.step_seconds,
        COST.load_seconds,
        dlora=always,
        switch_seconds=COST.switch_seconds,
        max_events=1000,
    )
    assert [e.switch for e in result.batch_log if e.switch] == [
        "merge a1",
        "unmerge a1",
        "merge a2",
        "unmerge a2",
        "merge a1",
        "unmerge a1",
    ]
    modes = {(it.replica, it.iteration): it.mode for it in result.iterations}
    by_id = {r.request_id: r for r in result.requests}
    for e in result.batch_log:
        if e.iteration >= 0:
            adapters = {by_id[rid].adapter for rid, _ in e.batch}
            assert modes[(e.replica, e.iteration)] == ("unmerged" if adapters == {None} else "merged")
    assert all(r.status == "finished" and r.generated == r.output_tokens for r in result.requests)


class CheckedDLoRA(DLoRAScheduler):
    """Checks the pass's invariants after each `schedule`; keeps the last plans."""

    recent: list[DLoRAPlan] = []

    def schedule(self, now: float) -> DLoRAPlan:
        mode = self.merged
        credit = self.total_credit()
        plan = super().schedule(now)
        c = self.config
        assert c.num_gpu_blocks is not None
        held = [b for r in self.running for b in r.blocks]
        assert len(held) == len(set(held)) and len(held) + self.num_free_blocks == c.num_gpu_blocks
        assert len(self.running) <= c.max_num_seqs
        assert sum(q.num_tokens for q in plan.seqs) <= c.max_num_batched_tokens
        if plan.switch is not None:
            assert plan.seqs == [] and plan.transfers == []
        if mode is not None and plan.switch is None:
            assert plan.mode == "merged" and {q.adapter for q in plan.seqs} <= {mode} and plan.loads == []
        if self.merged is not None:
            assert all(r.adapter == self.merged for r in self.running)  # draft 2: no parking
        assert abs(self.total_credit() - credit) <= 1e-9 * max(1.0, abs(credit))
        CheckedDLoRA.recent = [*CheckedDLoRA.recent[-39:], plan]
        return plan


@pytest.mark.parametrize("seed", range(24))
def test_invariants_over_seeded_random_runs(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pass keeps the invariants (CheckedDLoRA: blocks conserved and within capacity, merged
    batches of the merged adapter only, nothing else running while merged, credit conserved);
    every request finishes with exactly its output tokens."""
    monkeypatch.setattr(virtual, "DLoRAScheduler", CheckedDLoRA)
    CheckedDLoRA.recent = []
    rng = random.Random(1000 + seed)
    merge = rng.choice([0.25, 0.5, 1.0, 1.5, 3.0])
    dl = DLoRAConfig(
        credit_unit=rng.choice([100.0, 10000.0]),
        merge_ratio=merge,
        stay_ratio=rng.choice([0.0, 0.25, 0.5]) * min(1.0, merge),
        adaptive=rng.random() < 0.6,
        credits=rng.random() < 0.7,
        switch_seconds=rng.choice([None, 0.0, 0.05]),
    )
    eng = dict(
        max_num_seqs=rng.choice([2, 4, 8]),
        chunked_prefill=rng.random() < 0.8,
        block_size=rng.choice([4, 16]),
        num_gpu_blocks=rng.choice([16, 40, 200]),
        scheduler_lookahead=rng.choice([4, 256]),
    )
    result = _run(seed, dl, n=120, max_events=200000, **eng)  # no livelock: max_events would raise
    for r in result.requests:
        assert r.status in ("finished", "rejected"), f"request {r.request_id} unfinished ({r.status})"
        if r.status == "finished":
            assert r.generated == r.output_tokens and r.num_computed == r.prompt_tokens + r.output_tokens - 1
    for it in result.iterations:
        if it.mode == "merged":
            assert it.distinct_adapters == 1
    merged_ids = {(it.replica, it.iteration) for it in result.iterations if it.mode == "merged"}
    by_id = {r.request_id: r for r in result.requests}
    for e in result.batch_log:
        if (e.replica, e.iteration) in merged_ids:
            adapters = {by_id[rid].adapter for rid, _ in e.batch}
            assert len(adapters) == 1 and None not in adapters


def test_random_runs_mostly_finish_with_room_to_spare() -> None:
    """Seats and blocks to spare, merges happen, and every request finishes."""
    merges = 0
    for seed in range(6):
        result = _run(
            seed,
            DLoRAConfig(merge_ratio=0.5, stay_ratio=0.25, drain_credit=False),  # draft 2: merges complete
            n=100,
            max_num_seqs=16,
            num_gpu_blocks=2000,
            max_num_batched_tokens=32,
            max_model_len=96,
        )
        assert all(r.status == "finished" and r.generated == r.output_tokens for r in result.requests)
        merges += sum(s.merges for s in result.schedulers if isinstance(s, DLoRAScheduler))
    assert merges > 0


def test_stay_ratio_above_merge_ratio_is_refused() -> None:
    """With L > R a replica merges and unmerges at once, forever: refused when the scenario loads."""
    from gpu.engine.config import parse_scheduler

    with pytest.raises(ValueError, match="stay_ratio"):
        parse_scheduler({"kind": "dlora", "merge_ratio": 0.5, "stay_ratio": 0.6}, "s.yaml: scheduler")
    assert parse_scheduler({"kind": "dlora", "merge_ratio": 0.5, "stay_ratio": 0.5}, "s.yaml: scheduler") is not None


# ------------------------------------------------------------------ the aging guard (max_wait_s)
def _merged_with_an_old_request(front: str | None, max_wait_s: float | None) -> DLoRAScheduler:
    """Merged onto a1 (credits off) while the request at the front of `waiting`, of adapter
    `front` (None: the base model), has waited since time 0 and is passed over."""
    s = make(max_num_seqs=4, merge_ratio=1.0, stay_ratio=0.25, adaptive=False, credits=False, max_wait_s=max_wait_s)
    add(s, 0, front)
    for rid in range(1, 31):  # enough of a1 to stay merged (L x 4 = 1) through t = 3.5
        add(s, rid, "a1", output=1)
    plan = run_pass(s, 0.0)
    assert plan.switch is not None and plan.switch.label() == "merge a1"
    plan = run_pass(s, 0.5)
    assert plan.mode == "merged" and 0 not in {q.request_id for q in plan.seqs}
    return s


@pytest.mark.parametrize("front", ["a2", None])
def test_aging_guard_ends_a_merge_for_the_oldest_request(front: str | None) -> None:
    """Once the front request has waited max_wait_s, the pass unmerges (its adapter prioritised, or
    for a base-model request no adapter) and the next pass admits it first."""
    s = _merged_with_an_old_request(front, max_wait_s=2.0)
    plan = run_pass(s, 1.5)  # waited 1.5 s: no guard, a1 still merged
    assert plan.mode == "merged" and plan.switch is None and s.aged_passes == 0
    plan = run_pass(s, 2.5)  # waited 2.5 s
    assert plan.switch is not None and plan.switch.label() == "unmerge a1"
    assert s.aged_passes == 1 and s.aged_base_passes == (1 if front is None else 0)
    assert plan.prioritised == front and s.priority_unmerges == (1 if front is not None else 0)
    plan = run_pass(s, 3.5)
    assert plan.mode == "unmerged" and 0 in {q.request_id for q in plan.seqs}
    assert 0 not in {r.request_id for r in s.waiting}


def test_without_the_guard_the_old_request_keeps_waiting() -> None:
    s = _merged_with_an_old_request("a2", max_wait_s=None)
    for t in (1.5, 2.5, 3.5):
        plan = run_pass(s, t)
        assert plan.switch is None and plan.mode == "merged" and 0 in {r.request_id for r in s.waiting}
    assert s.aged_passes == 0


def test_aging_guard_stops_a_drain() -> None:
    """Draining towards a1 (a2 running) admits only a1's requests; an a3 request at the front of the
    queue that has waited max_wait_s stops the drain and is admitted."""
    s = make(("a1", "a2", "a3"), ("a1", "a2", "a3"), max_num_seqs=4, max_loras=3, merge_ratio=1.0, stay_ratio=0.5,
             adaptive=False,
             credits=False, max_wait_s=1.0)
    add(s, 0, "a2", prompt=6, output=5)
    run_pass(s, 0.0, dt=0.1)  # a2's request runs
    add(s, 1, "a3")
    for rid in range(2, 7):
        add(s, rid, "a1", output=1)
    plan = run_pass(s, 0.2, dt=0.1)  # a1's queue (5) >= 4: drain towards a1, a3 passed over
    assert s.drain_passes == 1 and 1 not in {q.request_id for q in plan.seqs}
    plan = run_pass(s, 1.1, dt=0.1)  # request 1 (a3) has waited 1.1 s
    assert s.drain_passes == 1 and s.aged_passes == 1 and plan.prioritised == "a3"
    assert plan.seqs and 1 in {q.request_id for q in plan.seqs}


def test_max_wait_s_is_parsed_and_checked() -> None:
    assert parse_scheduler({"kind": "dlora", "max_wait_s": 5}).max_wait_s == 5.0
    assert parse_scheduler("dlora").max_wait_s is None
    for bad in (0, -1, "soon", True, float("inf")):
        with pytest.raises(ValueError, match=r"scheduler\.max_wait_s"):
            parse_scheduler({"kind": "dlora", "max_wait_s": bad})
