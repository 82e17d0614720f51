"""A stand-in for gpu/profile_steps.py's Rig, for the profiler's table functions on the CPU: the
executor records each step as (start_pos, num_tokens, slot) per sequence, the slots record what
was copied in, and the batches are plain ``Seq`` objects. No torch work is done."""

from __future__ import annotations

from gpu import profile_steps as ps


class FakeSlots:
    def __init__(self) -> None:
        self.copied: list[int] = []

    def copy_in(self, slot, ha) -> None:
        self.copied.append(slot)


class FakeExecutor:
    def __init__(self) -> None:
        self.steps: list[list[tuple[int, int, int | None]]] = []

    def execute(self, seqs, force_eager: bool = False) -> None:
        self.steps.append([(q.start_pos, q.num_tokens, q.slot) for q in seqs])


class FakeRig:
    cfg = dtype = None

    def __init__(self, kinds=("sgmv",), token_sizes=(), dense_lora_from=None, device="cpu") -> None:
        self.kinds = list(kinds)
        self.ex = {k: FakeExecutor() for k in self.kinds}
        self.slots = {k: FakeSlots() for k in self.kinds}
        self.token_sizes = token_sizes
        self.dense_lora_from = dense_lora_from
        self.device = device

    def decode_seqs(self, ex, n, context, slots=None):
        return [ps.Seq(0, context, 1, [], slot=None if slots is None else slots[i]) for i in range(n)]

    def prefill_seqs(self, ex, chunks, context=0, slot=None):
        return [ps.Seq(0, context, chunks[0], [], slot=slot)]

    def drop(self, ex, seqs) -> None:
        pass

    def fill_slots(self, kind, ranks, prefix, seeds) -> None:
        for slot, _ in enumerate(zip(ranks, seeds, strict=True)):
            self.slots[kind].copy_in(slot, None)
