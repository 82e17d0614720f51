"""The scheduling pass of docs/engine-model.md (policy v1), without torch.

One `Scheduler` is one replica: its `running` and `waiting` queues, its KV-cache blocks, its GPU
adapter slots and host cache. The caller owns time: it calls `schedule(now)` to build an
iteration, runs it, calls `finish_step(plan, end)`, performs the loads the plan ordered and calls
`load_done` when each finishes (serialising them on one loader is the caller's job).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import islice

from .config import EngineConfig


@dataclass(frozen=True)
class AdapterInfo:
    """One adapter of the catalogue."""

    name: str
    rank: int
    alpha: float
    target_modules: tuple[str, ...]


@dataclass
class Request:
    """A request and its scheduling state (token counts, blocks, times in seconds)."""

    request_id: int
    arrival_s: float
    adapter: str | None
    prompt_tokens: int
    output_tokens: int
    generated: int = 0
    num_computed: int = 0
    blocks: list[int] = field(default_factory=list)
    preemptions: int = 0
    first_scheduled_s: float | None = None
    first_token_s: float | None = None
    finish_s: float | None = None
    status: str = "new"  # new, waiting, running, finished, rejected

    @property
    def known(self) -> int:
        """Tokens whose values exist: the prompt and the tokens sampled so far."""
        return self.prompt_tokens + self.generated


@dataclass
class ScheduledSeq:
    """One request's share of an iteration: positions `start_pos .. start_pos + num_tokens - 1`.

    `block_table` is the request's block ids after allocation (a copy); `samples` says the
    iteration samples a token for it; `decode` says it is a decode step (one token, the last
    sampled one, `generated > 0`), the classification of the linear cost model.
    """

    request_id: int
    adapter: str | None
    slot: int | None
    start_pos: int
    num_tokens: int
    block_table: list[int]
    samples: bool
    decode: bool = False


@dataclass(frozen=True)
class LoadOrder:
    """A load the caller must perform: `adapter` into GPU slot `slot`, from disk or host."""

    adapter: str
    slot: int
    from_disk: bool


@dataclass
class StepPlan:
    """The outcome of one scheduling pass, in scheduling order."""

    seqs: list[ScheduledSeq]
    loads: list[LoadOrder]
    preempted: list[int]

    @property
    def prefill_tokens(self) -> int:
        """Tokens of the seqs that are not decode steps."""
        return sum(s.num_tokens for s in self.seqs if not s.decode)

    @property
    def decode_seqs(self) -> int:
        """Number of decode steps in the batch."""
        return sum(1 for s in self.seqs if s.decode)


def _blocks_for(tokens: int, block_size: int) -> int:
    return -(-tokens // block_size)


class Scheduler:
    """One replica's scheduler (docs/engine-model.md, policy v1)."""

    def __init__(self, config: EngineConfig, adapters: dict[str, AdapterInfo]) -> None:
        if config.num_gpu_blocks is None:
            raise ValueError("engine.num_gpu_blocks: must be resolved before scheduling")
        for info in adapters.values():
            if info.rank > config.max_lora_rank:
                raise ValueError(f"adapter {info.name}: rank {info.rank} exceeds max_lora_rank {config.max_lora_rank}")
        self.config = config
        self.adapters = dict(adapters)
        self.running: list[Request] = []
        self.waiting: deque[Request] = deque()
        self._requests: dict[int, Request] = {}
        self._free_blocks: list[int] = list(range(config.num_gpu_blocks - 1, -1, -1))
        self._slots: list[str | None] = [None] * config.max_loras
        self._resident: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        self._host: set[str] = set()
        self._recency: dict[str, int] = {}
        self._clock = 0
        self._users: dict[str, int] = {}  # adapter -> requests in running that use it

    # ----------------------------------------------------------------- queries
    @property
    def num_free_blocks(self) -> int:
        """KV-cache blocks not held by any request."""
        return len(self._free_blocks)

    @property
    def queue_length(self) -> int:
        """Requests in `running` + `waiting` (what the router compares)."""
        return len(self.running) + len(self.waiting)

    def has_work(self) -> bool:
        """True while any request is running or waiting."""
        return bool(self.running) or bool(self.waiting)

    def resident_adapters(self) -> dict[str, int]:
        """Adapters resident in a GPU slot, and their slots."""
        return dict(self._resident)

    def in_flight_adapters(self) -> dict[str, int]:
        """Adapters whose load is in flight, and the slots they claimed."""
        return dict(self._in_flight)

    def host_adapters(self) -> set[str]:
        """Adapters in the host cache."""
        return set(self._host)

    def lru_order(self) -> list[str]:
        """Adapters ever touched, least recently touched first."""
        return sorted(self._recency, key=self._recency.__getitem__)

    # ---------------------------------------------------------------- requests
    def add_request(self, req: Request, now: float) -> bool:
        """Queues `req` at the back of `waiting`; False (status `rejected`) when it is too long
        for `max_model_len` or needs more KV blocks than the cache has."""
        if req.request_id in self._requests:
            raise ValueError(f"request {req.request_id}: duplicate request_id")
        if req.adapter is not None and req.adapter not in self.adapters:
            raise ValueError(f"request {req.request_id}: adapter {req.adapter!r} not in catalogue")
        if req.prompt_tokens < 1 or req.output_tokens < 1:
            raise ValueError(f"request {req.request_id}: prompt_tokens and output_tokens must be >= 1")
        total = req.prompt_tokens + req.output_tokens
        c = self.config
        assert c.num_gpu_blocks is not None
        if total > c.max_model_len or _blocks_for(total, c.block_size) > c.num_gpu_blocks:
            req.status = "rejected"
            return False
        req.status = "waiting"
        self._requests[req.request_id] = req
        self.waiting.append(req)
        return True

    # -------------------------------------------------------------- the pass
    def _schedule_running(self, seqs: list[ScheduledSeq], preempted: list[int]) -> int:
        """Step 1 of the pass: running requests in admission order, preempting the newest when
        blocks run out. Returns the token budget left."""
        c = self.config
        bs = c.block_size
        budget = c.max_num_batched_tokens
        i = 0
        while i < len(self.running) and budget > 0:
            req = self.running[i]
            n = req.known - req.num_computed
            if c.chunked_prefill:
                n = min(n, budget)
            elif n > budget:
                i += 1
                continue
            need = _blocks_for(req.num_computed + n, bs) - len(req.blocks)
            self_preempted = False
            while need > len(self._free_blocks):
                victim = self.running.pop()
                self._preempt(victim)
                preempted.append(victim.request_id)
                if victim is req:
                    self_preempted = True
                    break
            if self_preempted:
                break
            self._schedule_tokens(req, n, need, seqs)
            budget -= n
            i += 1
        return budget

    def schedule(self, now: float) -> StepPlan:
        """Runs one scheduling pass at `now` and returns the batch, the loads it started and
        the requests it preempted. Blocks are allocated and loads marked in flight."""
        seqs: list[ScheduledSeq] = []
        loads: list[LoadOrder] = []
        preempted: list[int] = []

        # 1. running requests, in admission order.
        budget = self._schedule_running(seqs, preempted)

        # 2. waiting requests, FCFS, only when nothing was preempted.
        if not preempted:
            budget = self._admit_waiting(now, budget, seqs, loads)

        # Touch the batch's adapters in order of first appearance, after the pass's loads.
        seen: set[str] = set()
        for s in seqs:
            if s.adapter is not None and s.adapter not in seen:
                seen.add(s.adapter)
                self._touch(s.adapter)
        return StepPlan(seqs=seqs, loads=loads, preempted=preempted)

    def _admit_waiting(self, now: float, budget: int, seqs: list[ScheduledSeq], loads: list[LoadOrder]) -> int:
        c = self.config
        examined = list(islice(self.waiting, c.scheduler_lookahead))
        admitted: set[int] = set()
        for req in examined:
            if len(self.running) == c.max_num_seqs or budget == 0:
                break
            a = req.adapter
            if a is not None and a not in self._resident:
                if a not in self._in_flight:
                    order = self._start_load(a)
                    if order is not None:
                        loads.append(order)
                continue
            n = req.known - req.num_computed
            if c.chunked_prefill:
                n = min(n, budget)
            elif n > budget:
                break
            need = _blocks_for(n, c.block_size)
            if need > len(self._free_blocks):
                break
            admitted.add(req.request_id)
            self.running.append(req)
            req.status = "running"
            if a is not None:
                self._users[a] = self._users.get(a, 0) + 1
            if req.first_scheduled_s is None:
                req.first_scheduled_s = now
            self._schedule_tokens(req, n, need, seqs)
            budget -= n
        if admitted:
            kept = [r for r in examined if r.request_id not in admitted]
            for _ in range(len(examined)):
                self.waiting.popleft()
            self.waiting.extendleft(reversed(kept))
        return budget

    def _schedule_tokens(self, req: Request, n: int, need: int, seqs: list[ScheduledSeq]) -> None:
        for _ in range(need):
            req.blocks.append(self._free_blocks.pop())
        start = req.num_computed
        samples = start + n == req.known
        decode = n == 1 and samples and req.generated > 0
        slot = None if req.adapter is None else self._resident[req.adapter]
        seqs.append(
            ScheduledSeq(
                request_id=req.request_id,
                adapter=req.adapter,
                slot=slot,
                start_pos=start,
                num_tokens=n,
                block_table=list(req.blocks),
                samples=samples,
                decode=decode,
            )
        )

    def _preempt(self, req: Request) -> None:
        self._free_blocks.extend(req.blocks)
        req.blocks = []
        req.num_computed = 0
        req.preemptions += 1
        req.status = "waiting"
        if req.adapter is not None:
            self._users[req.adapter] -= 1
        self.waiting.appendleft(req)

    # ------------------------------------------------------------- adapters
    def _touch(self, adapter: str) -> None:
        self._clock += 1
        self._recency[adapter] = self._clock

    def _start_load(self, adapter: str) -> LoadOrder | None:
        slot = next((k for k, held in enumerate(self._slots) if held is None), None)
        if slot is None:
            victims = [a for a in self._resident if self._users.get(a, 0) == 0]
            if not victims:
                return None
            victim = min(victims, key=lambda a: self._recency[a])
            slot = self._resident.pop(victim)
        self._slots[slot] = adapter
        self._in_flight[adapter] = slot
        self._touch(adapter)
        from_disk = adapter not in self._host
        if from_disk:
            if len(self._host) >= self.config.max_cpu_loras:
                candidates = [a for a in self._host if a not in self._resident and a not in self._in_flight]
                evict = min(candidates, key=lambda a: self._recency[a])
                self._host.remove(evict)
            self._host.add(adapter)
        return LoadOrder(adapter=adapter, slot=slot, from_disk=from_disk)

    def load_done(self, adapter: str, now: float) -> None:
        """Makes `adapter`, whose load was in flight, resident in the slot it claimed."""
        slot = self._in_flight.pop(adapter, None)
        if slot is None:
            raise ValueError(f"load_done: no load of adapter {adapter!r} is in flight")
        self._resident[adapter] = slot

    # ------------------------------------------------------------ iteration end
    def finish_step(self, plan: StepPlan, end: float) -> list[Request]:
        """Applies the token accounting of `plan` at its end time `end`; finished requests
        leave `running` and free their blocks. Returns them in batch order."""
        finished: list[Request] = []
        for s in plan.seqs:
            req = self._requests[s.request_id]
            if req.num_computed != s.start_pos:
                raise RuntimeError(f"request {req.request_id}: plan does not match its state")
            req.num_computed += s.num_tokens
            if req.num_computed == req.known:
                req.generated += 1
                if req.generated == 1:
                    req.first_token_s = end
                if req.generated == req.output_tokens:
                    finished.append(req)
        if finished:
            done = {r.request_id for r in finished}
            self.running = [r for r in self.running if r.request_id not in done]
            for req in finished:
                self._free_blocks.extend(req.blocks)
                req.blocks = []
                req.status = "finished"
                req.finish_s = end
                if req.adapter is not None:
                    self._users[req.adapter] -= 1
        return finished
