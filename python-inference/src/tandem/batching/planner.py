"""Choosing which queued texts run together: a pure function, easy to test.

On a CPU, batching pays only when the rows of a batch have similar lengths:
every row is padded to the longest, and padding is computed like real tokens.
Measured here, unsorted batches of 8 to 64 were no faster than batch 1, while
length-sorted batches were about 1.4x faster. So a batch is a run of
neighbours in length order, grown around the oldest waiting text (so nobody
starves), stopping at the size, token and padding limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_size: int  # rows
    max_tokens: int  # rows x longest row (padded tokens)
    max_padding_ratio: float  # padding / padded tokens


def plan_batch(lengths: Sequence[int], anchor: int, limits: BatchLimits) -> list[int]:
    """Indices into ``lengths`` of one batch that contains ``anchor``.

    The batch is a contiguous run of the texts sorted by length, grown one
    neighbour at a time, always taking the neighbour that adds the least
    padding, while the batch stays within ``limits``. The anchor alone is
    always a valid batch, whatever its length.
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    pos = order.index(anchor)
    lo = hi = pos
    longest = real = lengths[anchor]
    size = 1
    while size < limits.max_size:
        options: list[tuple[int, int, int]] = []  # (added padding, new longest, which end)
        if lo > 0:
            shorter = lengths[order[lo - 1]]
            options.append((longest - shorter, longest, -1))
        if hi + 1 < len(order):
            longer = lengths[order[hi + 1]]
            options.append((size * (longer - longest), longer, +1))
        grown = False
        for _, new_longest, end in sorted(options):
            added = lengths[order[lo - 1]] if end < 0 else lengths[order[hi + 1]]
            padded = (size + 1) * new_longest
            padding = padded - (real + added)
            if padded <= limits.max_tokens and padding <= limits.max_padding_ratio * padded:
                lo, hi = (lo - 1, hi) if end < 0 else (lo, hi + 1)
                longest, real, size = new_longest, real + added, size + 1
                grown = True
                break
        if not grown:
            break
    return order[lo : hi + 1]
