"""Segment metadata for SGMV, built on the host without torch.

A *segment* is a run of consecutive rows (tokens) of a batch that use the same adapter slot. SGMV
launches one set of programs per segment, so the rows of one adapter must be contiguous, either
physically (sort the batch) or through a row index (``sort_permutation``: the kernel reads row
``row_index[p]`` for sorted position ``p``, so x and y are never copied).

Graph capture needs fixed shapes: ``pad_layout`` appends empty segments (length 0, slot -1) up to a
bound fixed per captured graph; the kernels skip them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

NO_ADAPTER = -1
"""Slot id of rows (and padding segments) that get no LoRA update."""


class SegmentLayout(NamedTuple):
    """Host-side segment metadata; unpacks as ``(seg_starts, seg_lens, seg_slots)``.

    ``seg_starts[s]`` is the first (sorted) row of segment ``s``, ``seg_lens[s]`` its row count
    (0 for padding), ``seg_slots[s]`` its adapter slot (``NO_ADAPTER`` for none).
    """

    seg_starts: tuple[int, ...]
    seg_lens: tuple[int, ...]
    seg_slots: tuple[int, ...]

    @property
    def num_segments(self) -> int:
        """Number of segments, padding included."""
        return len(self.seg_lens)

    @property
    def num_rows(self) -> int:
        """Rows covered: one past the last row of any non-empty segment."""
        ends = [s + n for s, n in zip(self.seg_starts, self.seg_lens, strict=True) if n > 0]
        return max(ends, default=0)

    @property
    def max_seg_len(self) -> int:
        """Length of the longest segment (0 when there is none)."""
        return max(self.seg_lens, default=0)

    def row_slots(self, num_rows: int | None = None) -> list[int]:
        """Slot of each sorted row position (``NO_ADAPTER`` where no segment covers it)."""
        n = self.num_rows if num_rows is None else num_rows
        out = [NO_ADAPTER] * n
        for start, length, slot in zip(self.seg_starts, self.seg_lens, self.seg_slots, strict=True):
            for r in range(start, start + length):
                out[r] = slot
        return out


def build_segments(adapter_slot_per_row: Sequence[int]) -> SegmentLayout:
    """Segments of a batch whose rows are already grouped: one segment per run of equal slots.

    A slot that appears in two separate runs gives two segments (still correct, one more segment
    to launch); rows with ``NO_ADAPTER`` form segments the kernels skip.
    """
    starts: list[int] = []
    lens: list[int] = []
    slots: list[int] = []
    for row, slot in enumerate(adapter_slot_per_row):
        s = int(slot)
        if s < NO_ADAPTER:
            raise ValueError(f"row {row}: slot {s} is negative (only {NO_ADAPTER} means no adapter)")
        if slots and slots[-1] == s:
            lens[-1] += 1
        else:
            starts.append(row)
            lens.append(1)
            slots.append(s)
    return SegmentLayout(tuple(starts), tuple(lens), tuple(slots))


def layout_from_lengths(seg_lens: Sequence[int], seg_slots: Sequence[int]) -> SegmentLayout:
    """Segments laid end to end from their lengths (zero lengths allowed: empty segments)."""
    if len(seg_lens) != len(seg_slots):
        raise ValueError(f"{len(seg_lens)} lengths but {len(seg_slots)} slots")
    starts: list[int] = []
    pos = 0
    for n in seg_lens:
        if n < 0:
            raise ValueError(f"negative segment length {n}")
        starts.append(pos)
        pos += int(n)
    return SegmentLayout(tuple(starts), tuple(int(n) for n in seg_lens), tuple(int(s) for s in seg_slots))


def sort_permutation(adapter_slot_per_row: Sequence[int]) -> tuple[list[int], list[int]]:
    """Stable grouping of an unsorted batch by slot.

    Returns ``(perm, inverse)``: sorted position ``p`` holds original row ``perm[p]``, and
    original row ``i`` sits at sorted position ``inverse[i]``. Pass ``perm`` as the kernels'
    ``row_index`` together with ``build_segments([slots[p] for p in perm])``.
    """
    perm = sorted(range(len(adapter_slot_per_row)), key=lambda i: int(adapter_slot_per_row[i]))
    inverse = [0] * len(perm)
    for p, i in enumerate(perm):
        inverse[i] = p
    return perm, inverse


def pad_layout(layout: SegmentLayout, max_segments: int) -> SegmentLayout:
    """Append empty segments (length 0, ``NO_ADAPTER``) up to ``max_segments`` (graph capture)."""
    n = layout.num_segments
    if n > max_segments:
        raise ValueError(f"{n} segments exceed the bound {max_segments}")
    pad = max_segments - n
    return SegmentLayout(
        layout.seg_starts + (0,) * pad,
        layout.seg_lens + (0,) * pad,
        layout.seg_slots + (NO_ADAPTER,) * pad,
    )
