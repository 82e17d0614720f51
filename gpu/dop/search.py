"""Dop's evolutionary search, guided by a learned cost model, with a resumable JSON state.

Per scenario (searched once per distinct layout: ``Scenario.layout_key``):

1. Baselines: SGMV of gpu/kernels and the gathered bmm, timed like every candidate.
2. Seeds: hand-written points covering the sketches (``space.seed_candidates``: SGMV's own tiling
   first) and the best points of the nearest scenarios already searched (transfer).
3. Generations: from the best measured points (the population), draw a pool of children by
   mutation (one sketch dimension or one detail) and crossover (the sketch of one parent, each
   detail from either), keep the valid, unmeasured ones, rank them with the cost model, and check
   and time only the best few (plus one drawn at random, to keep exploring). Stop after
   ``timed_per_scenario`` timed candidates.

Cost model: a scikit-learn ``GradientBoostingRegressor`` on ``space.features`` (one-hot sketch,
log2 details, scenario shape, grid sizes, the analytic estimate), target log(latency), refitted
on every timed candidate of every scenario whenever new measurements arrived. Until it has
``min_train`` samples, the analytic estimate ranks. Each timed candidate records the prediction
made *before* it was measured, so the rank correlation reported is out of sample.

State: a JSON-able dict, saved by the caller's ``save`` after every measurement batch and every
scenario; a search resumes from it (the population is rebuilt from the measurements). The
measurement itself is behind the ``Measurer`` protocol, so this module runs without torch.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .space import (
    SPACE_VERSION,
    Candidate,
    Scenario,
    analytic_us,
    check,
    crossover,
    features,
    mutate,
    random_candidate,
    seed_candidates,
    sweep_grid,
)

STATE_SCHEMA = 1


class Measurer(Protocol):
    """What the search needs from the GPU side (``measure.GpuMeasurer``; tests use a fake)."""

    def baselines(self, s: Scenario) -> dict: ...

    def measure(self, c: Candidate, s: Scenario) -> Any: ...  # an Outcome


@dataclass
class SearchConfig:
    timed_per_scenario: int = 8
    init_timed: int = 4
    per_generation: int = 2
    explore_per_generation: int = 1
    pool: int = 300
    population: int = 6
    min_train: int = 12
    margin_s: float = 12.0  # stop when less than this is left (one compile + timing)
    seed: int = 0


class BudgetExhausted(Exception):
    """Raised inside a scenario when the deadline is near; the state holds what was done."""


class FatalMeasurement(Exception):
    """A CUDA error: the context is unusable; the state is saved and the run stops."""


# -- state --------------------------------------------------------------------------------------------

def new_state() -> dict:
    return {"schema_version": STATE_SCHEMA, "space_version": SPACE_VERSION, "sessions": [], "scenarios": {},
            "layouts": {}}


def check_state(state: dict) -> None:
    if state.get("schema_version") != STATE_SCHEMA or state.get("space_version") != SPACE_VERSION:
        raise ValueError(f"state of schema {state.get('schema_version')} / space {state.get('space_version')}; "
                         f"this code writes {STATE_SCHEMA} / {SPACE_VERSION}: start a new state")


def layout_entry(state: dict, s: Scenario) -> dict:
    """The state's record of ``s``'s layout (created empty), and the scenario -> layout link."""
    state["scenarios"].setdefault(s.key(), s.layout_key())
    return state["layouts"].setdefault(s.layout_key(), {
        "scenario": s.to_dict(), "baselines": None, "measurements": [], "done": False, "search_s": 0.0,
        "sweep": {"measurements": [], "done": False, "sweep_s": 0.0},
    })


def timed(entry_measurements: list[dict]) -> list[dict]:
    return [m for m in entry_measurements if m["ok"]]


def best(entry_measurements: list[dict]) -> dict | None:
    ok = timed(entry_measurements)
    return min(ok, key=lambda m: m["us"]) if ok else None


# -- cost model -----------------------------------------------------------------------------------------

class CostModel:
    """Gradient-boosted trees on ``space.features`` -> log(latency in us), via scikit-learn."""

    def __init__(self, min_train: int = 12, seed: int = 0) -> None:
        self.min_train = min_train
        self.seed = seed
        self.model = None
        self.trained_on = 0

    def fit(self, rows: list[tuple[Candidate, Scenario, float]]) -> bool:
        """Refit on all (candidate, scenario, us) rows when there are new ones; True if usable."""
        if len(rows) < self.min_train:
            return False
        if len(rows) == self.trained_on and self.model is not None:
            return True
        try:
            import numpy as np
            from sklearn.ensemble import GradientBoostingRegressor
        except ImportError:
            return False
        X = np.array([features(c, s) for c, s, _ in rows])
        y = np.log(np.array([us for _, _, us in rows]))
        m = GradientBoostingRegressor(n_estimators=150, max_depth=4, learning_rate=0.08, subsample=0.9,
                                      random_state=self.seed)
        m.fit(X, y)
        self.model, self.trained_on = m, len(rows)
        return True

    def predict_log_us(self, cands: list[Candidate], s: Scenario) -> list[float]:
        import numpy as np

        return [float(v) for v in self.model.predict(np.array([features(c, s) for c in cands]))]


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman rank correlation (average ranks for ties); None for fewer than 3 pairs or no spread."""
    if len(a) != len(b) or len(a) < 3:
        return None

    def ranks(v: list[float]) -> list[float]:
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r

    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va = sum((x - ma) ** 2 for x in ra)
    vb = sum((y - mb) ** 2 for y in rb)
    if va == 0 or vb == 0:
        return None
    return cov / math.sqrt(va * vb)


# -- the search -----------------------------------------------------------------------------------------

class Search:
    """Runs (or resumes) the search of each scenario; see the module docstring."""

    def __init__(self, state: dict, measurer: Measurer, cfg: SearchConfig, *, deadline: float,
                 save: Callable[[dict], None], log: Callable[[str], None], session: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        check_state(state)
        self.state = state
        self.measurer = measurer
        self.cfg = cfg
        self.deadline = deadline
        self.save = save
        self.log = log
        self.session = session
        self.clock = clock
        self.model = CostModel(cfg.min_train, cfg.seed)

    # -- helpers
    def _left(self) -> float:
        return self.deadline - self.clock()

    def _need(self) -> None:
        if self._left() < self.cfg.margin_s:
            raise BudgetExhausted

    def _training_rows(self) -> list[tuple[Candidate, Scenario, float]]:
        rows = []
        for e in self.state["layouts"].values():
            s = Scenario.from_dict(e["scenario"])
            for m in timed(e["measurements"]) + timed(e["sweep"]["measurements"]):
                rows.append((Candidate.from_dict(m["cand"]), s, m["us"]))
        return rows

    def _rank(self, cands: list[Candidate], s: Scenario) -> tuple[list[Candidate], list[float], str]:
        """Candidates best first, with the predicted log(us) of each and the predictor's name."""
        if self.model.fit(self._training_rows()):
            pred, src = self.model.predict_log_us(cands, s), "model"
        else:
            pred, src = [math.log(analytic_us(c, s)) for c in cands], "analytic"
        order = sorted(range(len(cands)), key=lambda i: pred[i])
        return [cands[i] for i in order], [pred[i] for i in order], src

    def _record(self, entry_list: list[dict], c: Candidate, s: Scenario, pred: float | None, src: str) -> dict:
        self._need()
        out = self.measurer.measure(c, s)
        m = {"cand": c.to_dict(), "key": c.key(), "ok": bool(out.ok), "us": out.us, "p10_us": out.p10_us,
             "p90_us": out.p90_us, "rel_err": out.rel_err, "reason": out.reason, "first_call_s": out.first_call_s,
             "pred_log_us": pred, "pred_source": src, "session": self.session}
        entry_list.append(m)
        if out.ok:
            guess = f"pred {src} {math.exp(pred):7.2f}" if pred is not None else src
            self.log(f"    {c.key():72s} {out.us:8.2f} us  ({guess})")
        else:
            self.log(f"    {c.key():72s} REJECTED: {out.reason}")
        if getattr(out, "fatal", False):
            self.save(self.state)
            raise FatalMeasurement(out.reason)
        return m

    def _transfer(self, s: Scenario, k: int = 2) -> list[Candidate]:
        """Best points of the ``k`` nearest layouts already searched."""
        def dist(o: Scenario) -> float:
            lo, ls = o.seg_lens, s.seg_lens
            return (abs(math.log2(o.tokens / s.tokens)) + abs(math.log2(len(lo) / len(ls)))
                    + abs(math.log2(max(lo) / max(ls))) + abs(math.log2(o.rank / s.rank))
                    + abs(math.log2(o.h_in * o.h_out / (s.h_in * s.h_out))))
        done = [(dist(Scenario.from_dict(e["scenario"])), e) for key, e in self.state["layouts"].items()
                if key != s.layout_key() and best(e["measurements"]) is not None]
        done.sort(key=lambda t: t[0])
        out = []
        for _, e in done[:k]:
            out.append(Candidate.from_dict(best(e["measurements"])["cand"]))
        return out

    # -- one scenario
    def run_scenario(self, s: Scenario) -> bool:
        """Search ``s`` (or resume it); True when it is done, False when the budget ran out."""
        entry = layout_entry(self.state, s)
        if entry["done"]:
            return True
        t0 = self.clock()
        try:
            self._search(s, entry)
            entry["done"] = True
            return True
        except BudgetExhausted:
            self.log(f"  budget reached inside {s.key()}: {len(timed(entry['measurements']))} timed so far, "
                     "resumable")
            return False
        finally:
            entry["search_s"] = round(entry["search_s"] + self.clock() - t0, 2)
            self.save(self.state)

    def _search(self, s: Scenario, entry: dict) -> None:
        cfg = self.cfg
        rng = random.Random(f"{cfg.seed}/{s.layout_key()}/{len(entry['measurements'])}")
        if entry["baselines"] is None:
            self._need()
            b = self.measurer.baselines(s)
            b["session"] = self.session
            entry["baselines"] = b
            nan = float("nan")
            self.log(f"  baselines: SGMV {b.get('sgmv_us', nan):.2f} us, bmm {b.get('bmm_us', nan):.2f} us")
            self.save(self.state)
        ms = entry["measurements"]
        seen = {m["key"] for m in ms}
        if not ms:
            seeds: list[Candidate] = []
            for c in seed_candidates(s) + self._transfer(s):
                if check(c, s) is None and c.key() not in {x.key() for x in seeds}:
                    seeds.append(c)
            seeds = seeds[:cfg.init_timed]
            ranked, preds, src = self._rank(seeds, s)
            pmap = {c.key(): p for c, p in zip(ranked, preds, strict=True)}
            for c in seeds:  # SGMV's own tiling first, whatever the ranking says
                self._record(ms, c, s, pmap[c.key()], src if src == "model" else "seed")
                seen.add(c.key())
            self.save(self.state)
        while len(timed(ms)) < cfg.timed_per_scenario:
            pop = sorted(timed(ms), key=lambda m: m["us"])[:cfg.population]
            parents = [Candidate.from_dict(m["cand"]) for m in pop]
            if not parents:
                c = random_candidate(rng, s)
                parents = [c] if c is not None else []
            if not parents:
                raise RuntimeError(f"no valid candidate for {s.key()}")
            pool: dict[str, Candidate] = {}
            for _ in range(cfg.pool * 3):
                if len(pool) >= cfg.pool:
                    break
                if len(parents) > 1 and rng.random() < 0.3:
                    a, b = rng.sample(parents, 2)
                    child = crossover(a, b, rng, s)
                    if rng.random() < 0.5:
                        child = mutate(child, rng, s)
                else:
                    child = mutate(rng.choice(parents), rng, s)
                k = child.key()
                if k not in seen and k not in pool and check(child, s) is None:
                    pool[k] = child
            if not pool:
                c = random_candidate(rng, s)
                if c is None or c.key() in seen:
                    self.log("  no new valid candidate: scenario ends early")
                    return
                pool[c.key()] = c
            ranked, preds, src = self._rank(list(pool.values()), s)
            picks = list(zip(ranked[:cfg.per_generation], preds[:cfg.per_generation], strict=True))
            rest = list(zip(ranked[cfg.per_generation:], preds[cfg.per_generation:], strict=True))
            picks += rng.sample(rest, min(cfg.explore_per_generation, len(rest)))
            for c, p in picks:
                if len(timed(ms)) >= cfg.timed_per_scenario:
                    break
                self._record(ms, c, s, p, src)
                seen.add(c.key())
            self.save(self.state)

    # -- exhaustive sweep (to judge the search)
    def run_sweep(self, s: Scenario) -> bool:
        """Check and time every point of ``space.sweep_grid(s)``; resumable; True when complete."""
        entry = layout_entry(self.state, s)
        sw = entry["sweep"]
        if sw["done"]:
            return True
        t0 = self.clock()
        grid = sweep_grid(s)
        seen = {m["key"] for m in sw["measurements"]}
        self.log(f"  sweep of {s.key()}: {len(grid)} points, {len(seen)} done before")
        try:
            for i, c in enumerate(grid):
                if c.key() in seen:
                    continue
                self._record(sw["measurements"], c, s, None, "sweep")
                if i % 10 == 0:
                    self.save(self.state)
            sw["done"] = True
            return True
        except BudgetExhausted:
            return False
        finally:
            sw["sweep_s"] = round(sw["sweep_s"] + self.clock() - t0, 2)
            self.save(self.state)


# -- judging the search -----------------------------------------------------------------------------------

def search_quality(state: dict) -> dict:
    """Per layout with a complete sweep: best of the sweep vs best found by the search, and after
    how many timed candidates the search found its best (and came within 5% of the sweep's best);
    the cost model's out-of-sample Spearman correlation per layout and pooled over layouts."""
    per_layout = {}
    rhos = []
    for key, e in state["layouts"].items():
        ms = e["measurements"]
        model_pts = [(m["pred_log_us"], math.log(m["us"])) for m in timed(ms) if m["pred_source"] == "model"]
        rho = spearman([p for p, _ in model_pts], [u for _, u in model_pts]) if model_pts else None
        if rho is not None:
            rhos.append(rho)
        row: dict = {"spearman": rho, "model_ranked": len(model_pts), "timed": len(timed(ms)),
                     "rejected": len(ms) - len(timed(ms))}
        b = best(ms)
        if b is not None:
            ok = timed(ms)
            row["search_best_us"] = b["us"]
            row["search_best_at"] = ok.index(b) + 1
        sb = best(e["sweep"]["measurements"])
        if e["sweep"]["done"] and sb is not None:
            row["sweep_best_us"] = sb["us"]
            row["sweep_points"] = len(timed(e["sweep"]["measurements"]))
            row["sweep_best"] = sb["key"]
            if b is not None:
                row["search_over_sweep"] = b["us"] / sb["us"]
                within = [i + 1 for i, m in enumerate(timed(ms)) if m["us"] <= 1.05 * sb["us"]]
                row["search_within_5pct_at"] = within[0] if within else None
        per_layout[key] = row
    return {"layouts": per_layout,
            "spearman_mean": sum(rhos) / len(rhos) if rhos else None, "spearman_layouts": len(rhos)}
