"""The compositions of the step profile's ``step_mixed`` table, drawn from one seeded generator.

gpu/profile_steps.py ``profile_mixed`` times these steps (decode rows with their own contexts and
adapters, one to three prompt chunks, some continuing over cached context, in a shuffled order);
scripts/profile_max_keys.py replays the same draws to add a column to a profile measured before
the column existed, checking every row's recorded columns against the replay. No torch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SEED = 7
RANKS = (8, 16, 32, 64, 8, 16, 32, 64)  # the adapter rank in each of the 8 slots
PER_KIND = 30
PER_KIND_QUICK = 4


@dataclass(frozen=True)
class Composition:
    """One step of ``step_mixed``: ``decode`` rows as (context, slot), prompt ``chunks`` as
    (tokens, cached context, slot); ``order`` permutes the decode rows followed by the chunks into
    the order the step runs them (slot None: no adapter)."""

    kind: str
    decode: tuple[tuple[int, int | None], ...]
    chunks: tuple[tuple[int, int, int | None], ...]
    order: tuple[int, ...]

    @property
    def prefill_tokens(self) -> int:
        return sum(n for n, _, _ in self.chunks)

    @property
    def prefill_pairs(self) -> float:
        """Query-key pairs of the chunks: sum of n * (c + (n + 1) / 2)."""
        return sum(n * (c + (n + 1) / 2) for n, c, _ in self.chunks)

    @property
    def prefill_max_keys(self) -> int:
        """The most keys one chunk attends to: max of c + n (0 without chunks)."""
        return max((c + n for n, c, _ in self.chunks), default=0)

    @property
    def continuation_chunks(self) -> int:
        return sum(1 for _, c, _ in self.chunks if c > 0)

    @property
    def decode_context_tokens(self) -> int:
        """Context of the decode rows, the token being decoded included."""
        return sum(k + 1 for k, _ in self.decode)

    @property
    def decode_max_context(self) -> int:
        return max((k + 1 for k, _ in self.decode), default=0)


def compositions(kinds: list[str] | tuple[str, ...], per_kind: int) -> list[Composition]:
    """``per_kind`` compositions for each LoRA kind in ``kinds``, in the order profile_mixed runs
    them (one generator, seeded once, shared by the kinds in turn)."""
    rnd = random.Random(SEED)
    out = []
    for kind in kinds:
        for _ in range(per_kind):
            d = rnd.choice((0, 4, 16, 32, 64))
            budget = 4096 - d
            drawn = []
            for _ in range(rnd.randint(1, 3)):
                n = min(rnd.choice((16, 64, 128, 512, 1024, 2048)), budget)
                if n < 1:
                    break
                c = 0 if rnd.random() < 0.6 else rnd.choice((256, 512, 1024, 2048))
                drawn.append((n, c))
                budget -= n
            decode = []
            for _ in range(d):
                slot = None if rnd.random() < 0.1 else rnd.randrange(8)
                decode.append((rnd.randint(64, 2048), slot))
            chunks = tuple((n, c, None if rnd.random() < 0.1 else rnd.randrange(8)) for n, c in drawn)
            order = list(range(d + len(chunks)))
            rnd.shuffle(order)
            out.append(Composition(kind, tuple(decode), chunks, tuple(order)))
    return out
