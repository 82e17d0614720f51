"""Dop's search space, validity rules, mutation / crossover, dispatch and the table page. Torch-free."""

from __future__ import annotations

import random
from dataclasses import replace

from gpu.dop.dispatch import Dispatcher, classify
from gpu.dop.search import spearman
from gpu.dop.space import (
    SMEM_LIMIT_BYTES,
    Candidate,
    Scenario,
    block_r,
    check,
    crossover,
    feature_names,
    features,
    mutate,
    normalize,
    random_candidate,
    repair,
    scenario_set,
    seed_candidates,
    sgmv_like,
    smem_bytes,
    sweep_grid,
)
from gpu.dop.table import build_table, render_markdown, splice


def test_scenario_keys_round_trip_and_default_set_is_small() -> None:
    scen = scenario_set("default")
    assert len(scen) == 40
    for s in scen:
        assert Scenario.from_key(s.key()) == s
    layouts = {s.layout_key() for s in scen}
    assert len(layouts) < len(scen)  # equal layouts (batch 1, uniform = skewed at 4) are searched once
    assert len(scenario_set("full")) > len(scen)
    assert scenario_set(scen[3].key() + "," + scen[5].key()) == [scen[3], scen[5]]


def test_sgmv_like_and_seeds_are_valid_points() -> None:
    for s in scenario_set("full"):
        assert check(sgmv_like(s), s) is None, s.key()
        assert any(check(c, s) is None for c in seed_candidates(s)[1:])


def test_normalize_is_canonical() -> None:
    c = Candidate(tiling="tiles", order="adapter", split="none", split_k=8, fuse="fused", n_split=4, warps_e=8)
    n = normalize(c)
    assert n.order == "token" and n.split_k == 1 and n.warps_e == 4 and n.n_split == 4
    assert normalize(n) == n
    assert normalize(replace(n, fuse="separate")).n_split == 1
    assert normalize(Candidate(split="atomic", split_k=1)).split == "none"


def test_validity_rules() -> None:
    s = Scenario("llama2-7b", "qkvo", 64, "distinct", "decode", 16)
    ok = sgmv_like(s)
    assert check(ok, s) is None
    assert "tl.dot" in check(replace(ok, block_m=4), s)
    assert "gemv" in check(normalize(replace(ok, math="gemv", block_m=16)), s)
    assert "dominated" in check(replace(ok, block_m=64), s)  # one-row segments
    big = normalize(replace(ok, fuse="fused", block_k=256, block_n=256, stages_s=4, warps_s=8, block_m=16))
    assert smem_bytes(big, block_r(big, 64), 2) > 0
    huge = Scenario("llama2-7b", "qkvo", 64, "identical", "prefill", 2048)
    c = normalize(Candidate(block_m=64, block_k=256, block_n=256, stages_s=4, stages_e=4, warps_s=8, warps_e=8))
    assert smem_bytes(c, 64, 2) > SMEM_LIMIT_BYTES
    assert "shared memory" in check(c, huge) or "registers" in check(c, huge)
    assert "split_k" in check(replace(ok, split="atomic", split_k=32), s)


def test_mutation_crossover_and_random_points_stay_canonical() -> None:
    rng = random.Random(0)
    for s in scenario_set("smoke"):
        a = sgmv_like(s)
        b = random_candidate(rng, s)
        assert b is not None and check(b, s) is None
        for _ in range(200):
            m = mutate(a, rng, s)
            assert normalize(m) == m
            x = crossover(a, b, rng, s)
            assert normalize(x) == x
        assert repair(Candidate(math="gemv", block_m=64), s).block_m <= 4


def test_sweep_grid_valid_and_features_consistent() -> None:
    s = Scenario("llama2-7b", "qkvo", 16, "skewed", "decode", 64)
    grid = sweep_grid(s)
    assert 20 < len(grid) < 600
    assert len({c.key() for c in grid}) == len(grid)
    assert {c.sketch() for c in grid} >= {"segment/token/none/separate/dot", "tiles/token/none/fused/gemv"}
    assert all(check(c, s) is None for c in grid)
    assert len(features(grid[0], s)) == len(feature_names())


def test_spearman() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert spearman([1, 2], [1, 2]) is None
    assert abs(spearman([1, 2, 2, 3], [1, 2, 3, 4]) - 0.9486832980505138) < 1e-12


def _table() -> dict:
    state = {"schema_version": 1, "space_version": 1, "sessions": [{"id": 1, "meta": {"gpu_name": "X"},
                                                                   "hbm_bytes_per_s": 4e12}],
             "scenarios": {}, "layouts": {}}
    from gpu.dop.search import layout_entry

    for s, us in ((Scenario("llama2-7b", "qkvo", 16, "distinct", "decode", 16), 10.0),
                  (Scenario("llama2-7b", "qkvo", 16, "identical", "prefill", 512), 20.0)):
        e = layout_entry(state, s)
        e["baselines"] = {"sgmv_us": 2 * us, "bmm_us": 3 * us, "session": 1}
        c = sgmv_like(s)
        e["measurements"].append({"cand": c.to_dict(), "key": c.key(), "ok": True, "us": us, "p10_us": us,
                                  "p90_us": us, "rel_err": 1e-4, "reason": None, "pred_log_us": None,
                                  "pred_source": "seed", "session": 1})
        e["done"] = True
    return state


def test_table_dispatch_and_page() -> None:
    state = _table()
    table = build_table(state)
    assert len(table["entries"]) == 2
    e = table["entries"]["llama2-7b/qkvo/fp16/r16/decode16/distinct"]
    assert e["speedup_vs_sgmv"] == 2.0 and abs(e["roofline_fraction"] - e["bytes"] / 4e12 * 1e6 / 10.0) < 1e-12
    d = Dispatcher(table)
    c, key, _ = d.lookup(4096, 4096, 16, [1] * 12)
    assert key.endswith("decode16/distinct") and c == Candidate.from_dict(e["config"])
    _, key, _ = d.lookup(4096, 4096, 16, [700, 300])
    assert "prefill512" in key
    assert d.lookup(5120, 5120, 32, [3, 1]) is not None  # nearest key when nothing matches
    assert Dispatcher({"entries": {}}).lookup(4096, 4096, 16, [1]) is None
    page = render_markdown(table, state)
    assert "2.00x" in page and "| decode | 16 | distinct |" in page
    assert "Not yet measured" in render_markdown(None, None)
    doc = splice("# Dop\n\ntext\n", "A")
    assert splice(doc, "B").count("GENERATED") == 2 and "B" in splice(doc, "B") and "\nA\n" not in splice(doc, "B")


def test_classify() -> None:
    assert classify([5]) == "identical"
    assert classify([1, 1, 1, 0]) == "distinct"
    assert classify([4, 4, 3]) == "uniform"
    assert classify([10, 3, 1]) == "skewed"


def test_sliced_scenarios_q_k_and_v_as_one_operator() -> None:
    one = Scenario("llama2-7b", "qkvo", 16, "uniform", "decode", 16)
    qkv = replace(one, module="qkv")
    assert (one.slices, qkv.slices) == (1, 3) and qkv.h_out == one.h_out == 4096
    assert qkv.layout_key() != one.layout_key() and "x3slices" in qkv.layout_key()
    assert qkv.apply_bytes() == 3 * one.apply_bytes() and qkv.apply_flops() == 3 * one.apply_flops()
    assert Scenario.from_key(qkv.key()) == qkv
    big = scenario_set("13b")
    assert [replace(s, model="llama2-7b") for s in big] == scenario_set("default")
    assert {s for s in big if s.phase == "decode"} <= set(scenario_set("full"))  # full's 13B decode keys
    keys = [s.key() for s in scenario_set("qkv")]
    assert len(keys) == len(scenario_set("default")) and all("/qkv/" in k for k in keys)
    c = sgmv_like(one)
    assert check(c, qkv) is None
    assert "cannot run slices" in check(normalize(replace(c, fuse="fused", n_split=2)), qkv)
    from gpu.dop.space import grid_programs

    assert grid_programs(c, qkv) == tuple(3 * p for p in grid_programs(c, one))
    f1, f3 = features(c, one), features(c, qkv)
    assert len(f1) == len(feature_names()) and f1[-1] == 0.0 and abs(f3[-1] - 1.584962500721156) < 1e-12


def test_dispatch_prefers_entries_of_the_calls_slice_count() -> None:
    state = _table()
    from gpu.dop.search import layout_entry

    s = Scenario("llama2-7b", "qkv", 16, "distinct", "decode", 16)
    e = layout_entry(state, s)
    e["baselines"] = {"sgmv_us": 30.0, "bmm_us": 90.0, "session": 1}
    c = replace(sgmv_like(s), block_n=128)
    e["measurements"].append({"cand": c.to_dict(), "key": c.key(), "ok": True, "us": 10.0, "p10_us": 10.0,
                              "p90_us": 10.0, "rel_err": 1e-4, "reason": None, "pred_log_us": None,
                              "pred_source": "seed", "session": 1})
    e["done"] = True
    table = build_table(state)
    d = Dispatcher(table)
    assert d.lookup(4096, 4096, 16, [1] * 12, slices=3)[1] == s.key()
    assert d.lookup(4096, 4096, 16, [1] * 12)[1] == "llama2-7b/qkvo/fp16/r16/decode16/distinct"
    assert d.lookup(4096, 4096, 16, [700, 300], slices=3)[1] == s.key()  # its own count first, even far
    page = render_markdown(table, state)
    assert "`qkv` (q, k and v as one sliced operator" in page and "### llama2-7b qkv fp16, rank 16" in page
