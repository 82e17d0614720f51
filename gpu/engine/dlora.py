"""The `dlora` replica scheduler of docs/schedulers.md (policy draft 2), without torch.

`DLoRAScheduler` is a `Scheduler` (docs/engine-model.md) with a mode (`unmerged` or merged onto one
adapter), starvation credits, adaptive thresholds and per-mode speeds. The caller owns time, as
for `Scheduler`:

- `schedule(now)` returns a `DLoRAPlan`. When `plan.switch` is set the pass started a merge or an
  unmerge instead of forming a batch: the caller computes its seconds (`switch_seconds(plan.switch)`
  for a fixed `switch_cost`, else its cost model's), calls `switch_started(seconds)`, runs no pass
  on this replica until `now + seconds`, then calls `switch_done(now + seconds)` and asks for a pass.
- at an iteration's end the caller calls `finish_step(plan, end)` and `record_iteration(plan,
  duration)` with the iteration's duration (the step cost's value, not `end - start`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import islice

from .config import DLoRAConfig, EngineConfig
from .scheduler import AdapterInfo, LoadOrder, Request, ScheduledSeq, Scheduler, StepPlan, _blocks_for


@dataclass(frozen=True)
class SwitchOrder:
    """A mode switch the caller must time: `merge` onto `adapter`, or `unmerge` of `adapter`."""

    kind: str  # "merge" or "unmerge"
    adapter: str

    @property
    def merging(self) -> bool:
        """True for a merge."""
        return self.kind == "merge"

    def label(self) -> str:
        """The batch log's `switch` value: `merge a3` or `unmerge a3`."""
        return f"{self.kind} {self.adapter}"


@dataclass
class DLoRAPlan(StepPlan):
    """A pass's outcome: the batch (empty when a switch started), the mode it runs in, the
    switch it started (or None), and the adapter prioritised in the pass (or None)."""

    mode: str = "unmerged"
    switch: SwitchOrder | None = None
    prioritised: str | None = None
    transfers: list[tuple[str, str, float]] = field(default_factory=list)  # (from, to, amount)


class DLoRAScheduler(Scheduler):
    """One replica's `dlora` scheduler (docs/schedulers.md)."""

    def __init__(
        self, config: EngineConfig, adapters: dict[str, AdapterInfo], params: DLoRAConfig | None = None
    ) -> None:
        super().__init__(config, adapters)
        self.params = params or DLoRAConfig()
        p = self.params
        n = len(self.adapters)
        self._catalogue = list(self.adapters)  # catalogue order: ties go to the lowest index
        self.merged: str | None = None  # mode: None is unmerged, else merged(adapter)
        self.credit: dict[str, float] = {a: (n - 1) * p.credit_unit for a in self.adapters}
        self.prioritised: str | None = None
        self.merge_ratio = p.merge_ratio  # R
        self.stay_ratio = p.stay_ratio  # L
        self.speed_unmerged: float | None = None
        self.speed_merged: float | None = None
        self.mode_since = 0.0
        # The switch in progress: its order, start and seconds.
        self.switching: SwitchOrder | None = None
        self.switch_start = 0.0
        self.switch_seconds_: float | None = None
        # Counters (tests and conformance features).
        self.merges = 0
        self.unmerges = 0
        self.prioritised_passes = 0
        self.drain_passes = 0  # unmerged passes that drained other adapters' requests before a merge
        self.priority_unmerges = 0  # unmerges started because an adapter was prioritised
        self.empty_unmerges = 0  # unmerges started by a merged pass that scheduled nothing (draft 2)
        self.aged_passes = 0  # passes in which the aging guard fired (max_wait_s)
        self.aged_base_passes = 0  # ... on a base-model request

    # ----------------------------------------------------------------- queries
    @property
    def mode(self) -> str:
        """`merged` or `unmerged` (the iterations.csv value)."""
        return "unmerged" if self.merged is None else "merged"

    def total_credit(self) -> float:
        """Sum of all credits (conserved up to rounding)."""
        return sum(self.credit.values())

    def speed_ratio(self) -> float:
        """`s = speed[merged] / speed[unmerged]`, 1 while either is unknown."""
        if self.speed_merged is None or self.speed_unmerged is None:
            return 1.0
        return self.speed_merged / self.speed_unmerged

    # -------------------------------------------------------------- the pass
    def schedule(self, now: float) -> DLoRAPlan:
        """One `dlora` pass at `now` (docs/schedulers.md, "One pass")."""
        if self.switching is not None:
            raise RuntimeError("schedule: a mode switch is in progress")
        c = self.config
        p_ = self.params
        # 1. candidate batch C; queue[a]: a's requests in the whole waiting queue.
        cand = list(islice(self.waiting, c.max_num_seqs))
        in_c = {r.adapter for r in cand if r.adapter is not None}
        queue: dict[str, int] = {}
        for r in self.waiting:
            if r.adapter is not None:
                queue[r.adapter] = queue.get(r.adapter, 0) + 1

        # 2a. the aging guard: the front request has waited max_wait_s or more.
        p: str | None = None
        aged = False
        if p_.max_wait_s is not None and self.waiting and now - self.waiting[0].arrival_s >= p_.max_wait_s:
            aged = True
            p = self.waiting[0].adapter  # None for a base-model request: the pass runs unmerged
            self.aged_passes += 1
            if p is None:
                self.aged_base_passes += 1
        # 2. credit priority: adapters with a request in C; ties to the lowest catalogue index.
        if p_.credits and not aged:
            n = len(self.adapters)
            full = n * p_.credit_unit
            best: str | None = None
            for a in self._catalogue:
                if a not in in_c:
                    continue
                threshold = full - p_.credit_unit / 2 if a == self.prioritised else full
                if self.credit[a] >= threshold and (best is None or self.credit[a] > self.credit[best]):
                    best = a
            p = best
        self.prioritised = p
        if p is not None:
            self.prioritised_passes += 1

        # 3. target mode (None: unmerged).
        target: str | None
        if p is not None:
            target = p if self.merged == p else None
        elif aged:
            target = None
        elif self.merged is not None:
            target = self.merged if queue.get(self.merged, 0) >= self.stay_ratio * c.max_num_seqs else None
        else:
            b: str | None = None  # the longest queue; ties to the lowest catalogue index
            for a in self._catalogue:
                if queue.get(a, 0) > 0 and (b is None or queue[a] > queue[b]):
                    b = a
            target = b if b is not None and queue[b] >= self.merge_ratio * c.max_num_seqs else None

        # 4. switching (or loading, or draining, on the way to a merge).
        loads: list[LoadOrder] = []
        draining: str | None = None
        if target != self.merged:
            if self.merged is not None:
                if p is not None:
                    self.priority_unmerges += 1
                return self._start_switch(SwitchOrder("unmerge", self.merged), now, p)
            assert target is not None
            if target not in self._resident:
                if target not in self._in_flight:
                    order_ = self._start_load(target)
                    if order_ is not None:
                        loads.append(order_)
                # an ordinary unmerged pass (p is None here).
            elif any(r.adapter != target for r in self.running):
                draining = target  # an unmerged pass whose step 2 admits only the target's requests
                self.drain_passes += 1
            else:
                return self._start_switch(SwitchOrder("merge", target), now, p)

        # 5. admission.
        seqs: list[ScheduledSeq] = []
        preempted: list[int] = []
        budget = self._schedule_running(seqs, preempted)
        admitted: set[int] = set()
        if not preempted:
            if self.merged is not None:
                self._walk(now, self._restricted(self.merged), budget, seqs, loads, admitted)
            elif draining is not None:
                self._walk(now, self._restricted(draining), budget, seqs, loads, admitted)
            elif p is not None:
                # p's restricted walk, then the usual walk over waiting without p's admitted ones.
                budget, _ = self._walk(now, self._restricted(p), budget, seqs, loads, admitted)
                self._remove_admitted(admitted)
                self._walk(now, list(islice(self.waiting, c.scheduler_lookahead)), budget, seqs, loads, admitted)
            else:
                self._walk(now, list(islice(self.waiting, c.scheduler_lookahead)), budget, seqs, loads, admitted)
            self._remove_admitted(admitted)
        if self.merged is not None and not seqs:
            # The guard: a merged pass that schedules no token starts an unmerge instead (nothing
            # else would wake the replica: a merged pass starts no loads).
            self.empty_unmerges += 1
            return self._start_switch(SwitchOrder("unmerge", self.merged), now, p, preempted)

        # Touch the batch's adapters in order of first appearance, after the pass's loads.
        seen: set[str] = set()
        for s in seqs:
            if s.adapter is not None and s.adapter not in seen:
                seen.add(s.adapter)
                self._touch(s.adapter)
        plan = DLoRAPlan(seqs=seqs, loads=loads, preempted=preempted, mode=self.mode, prioritised=p)

        # 6. credit transfer.
        if p_.credits and seqs:
            u = p_.credit_unit / c.max_num_seqs
            if self.merged is not None:
                m = self.merged
                amount = u / (2 * self.speed_ratio())
                for r in cand:
                    if r.adapter is not None and r.adapter != m:
                        self._transfer(m, r.adapter, amount, plan)
            elif p is not None or (p_.drain_credit and draining is not None):
                # A prioritised (or, with drain_credit, draining) adapter pays each candidate it displaced.
                src = p if p is not None else draining
                last = max((k for k, r in enumerate(cand) if r.adapter == src and r.request_id in admitted), default=-1)
                for r in cand[: max(last, 0)]:
                    if r.request_id not in admitted and r.adapter is not None and r.adapter != src:
                        self._transfer(src, r.adapter, u, plan)
        return plan

    def _transfer(self, src: str, dst: str, amount: float, plan: DLoRAPlan) -> None:
        self.credit[src] -= amount
        self.credit[dst] += amount
        plan.transfers.append((src, dst, amount))

    def _start_switch(
        self, order: SwitchOrder, now: float, p: str | None, preempted: list[int] | None = None
    ) -> DLoRAPlan:
        self.switching = order
        self.switch_start = now
        self.switch_seconds_ = None
        return DLoRAPlan(
            seqs=[], loads=[], preempted=list(preempted or []), mode=self.mode, switch=order, prioritised=p
        )

    def _schedule_running(self, seqs: list[ScheduledSeq], preempted: list[int]) -> int:
        """docs/engine-model.md step 1, as in FCFS (while merged every running request is the
        merged adapter's: a merge starts only after a drain). Returns the budget left."""
        if self.merged is not None:
            for req in self.running:
                if req.adapter != self.merged:
                    raise RuntimeError(
                        f"request {req.request_id} ({req.adapter}) running while merged onto {self.merged}"
                    )
        return super()._schedule_running(seqs, preempted)

    def _walk(
        self,
        now: float,
        examined: list[Request],
        budget: int,
        seqs: list[ScheduledSeq],
        loads: list[LoadOrder],
        admitted: set[int],
    ) -> tuple[int, bool]:
        """docs/engine-model.md step 2 over `examined` (a restricted walk passes only its
        adapter's requests); while merged no load starts. Returns the budget left and whether the
        walk *stopped* (a prefill that does not fit the budget unchunked, or not enough blocks);
        running out of sequences or budget is not a stop."""
        c = self.config
        for req in examined:
            if len(self.running) == c.max_num_seqs or budget == 0:
                break
            a = req.adapter
            if self.merged is not None:
                if a != self.merged:
                    continue
            elif a is not None and a not in self._resident:
                if a not in self._in_flight:
                    order = self._start_load(a)
                    if order is not None:
                        loads.append(order)
                continue
            n = req.known - req.num_computed
            if c.chunked_prefill:
                n = min(n, budget)
            elif n > budget:
                return budget, True
            need = _blocks_for(n, c.block_size)
            if need > len(self._free_blocks):
                return budget, True
            admitted.add(req.request_id)
            self.running.append(req)
            req.status = "running"
            if a is not None:
                self._users[a] = self._users.get(a, 0) + 1
            if req.first_scheduled_s is None:
                req.first_scheduled_s = now
            self._schedule_tokens(req, n, need, seqs)
            budget -= n
        return budget, False

    def _restricted(self, adapter: str) -> list[Request]:
        """A restricted walk's requests: the first `scheduler_lookahead` of `adapter`'s waiting
        requests, in queue order (other adapters' are passed over without counting)."""
        return list(islice((r for r in self.waiting if r.adapter == adapter), self.config.scheduler_lookahead))

    def _remove_admitted(self, admitted: set[int]) -> None:
        if admitted and any(r.request_id in admitted for r in self.waiting):
            self.waiting = deque(r for r in self.waiting if r.request_id not in admitted)

    # ------------------------------------------------------------ mode switches
    def switch_started(self, seconds: float) -> None:
        """Records the seconds of the switch the last pass started."""
        if self.switching is None:
            raise RuntimeError("switch_started: no switch in progress")
        self.switch_seconds_ = seconds

    def switch_done(self, now: float) -> None:
        """Ends the switch in progress at `now`: adaptive thresholds (step 7), then the new mode."""
        order = self.switching
        if order is None or self.switch_seconds_ is None:
            raise RuntimeError("switch_done: no timed switch in progress")
        if self.params.adaptive and self.speed_merged is not None and self.speed_unmerged is not None:
            t = self.switch_start - self.mode_since
            cost = self.switch_seconds_
            merged_tokens = self.speed_merged * (t - cost)
            unmerged_tokens = self.speed_unmerged * t
            if order.merging:
                if merged_tokens > unmerged_tokens:
                    self.stay_ratio = self.stay_ratio / 1.1
                else:
                    self.stay_ratio = self.stay_ratio + 0.05
                self.stay_ratio = min(self.stay_ratio, self.merge_ratio)  # L <= R, or the replica flaps
            else:
                if merged_tokens > unmerged_tokens:
                    self.merge_ratio = max(0.1, self.merge_ratio - 0.05)
                else:
                    self.merge_ratio = self.merge_ratio * 1.1
                self.merge_ratio = max(self.merge_ratio, self.stay_ratio)  # L <= R, or the replica flaps
        if order.merging:
            self.merged = order.adapter
            self.merges += 1
        else:
            self.merged = None
            self.unmerges += 1
        self.mode_since = now
        self.switching = None
        self.switch_seconds_ = None

    # ------------------------------------------------------------ iteration end
    def record_iteration(self, plan: StepPlan, duration: float) -> None:
        """Updates the speed of the plan's mode with its scheduled tokens over `duration` (with
        `speed: decode`, only from a decode-only iteration)."""
        if self.params.speed == "decode" and not all(s.decode for s in plan.seqs):
            return
        tokens = sum(s.num_tokens for s in plan.seqs)
        v = tokens / duration
        if getattr(plan, "mode", "unmerged") == "merged":
            self.speed_merged = v if self.speed_merged is None else 0.8 * self.speed_merged + 0.2 * v
        else:
            self.speed_unmerged = v if self.speed_unmerged is None else 0.8 * self.speed_unmerged + 0.2 * v
