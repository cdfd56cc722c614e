"""Grouping clips into batches of similar duration.

Padding is the cost of batching: a batch runs as long as its longest member.
Sorting by duration first keeps members alike, so little compute is wasted on
padding, and bounding a batch's padded seconds keeps memory flat when clips
are long. Pure Python: no torch needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def batches_by_duration(
    durations: Sequence[float],
    max_batch_size: int,
    max_batch_seconds: float | None = None,
) -> list[list[int]]:
    """Indices of `durations`, sorted by duration, cut into consecutive batches.

    The order is by duration, ties by index (stable), so the result is
    deterministic. A batch holds at most `max_batch_size` indices and, when
    `max_batch_seconds` is given, at most that many padded seconds
    (members × longest member). A single clip longer than `max_batch_seconds`
    gets a batch of its own rather than being dropped.

    Example:
        >>> batches_by_duration([3.0, 1.0, 2.0, 1.0, 5.0], max_batch_size=2)
        [[1, 3], [2, 0], [4]]
        >>> batches_by_duration([3.0, 1.0, 2.0, 1.0, 5.0], 4, max_batch_seconds=6.0)
        [[1, 3, 2], [0], [4]]
    """
    _check_batch_limits(max_batch_size, max_batch_seconds)
    order = sorted(range(len(durations)), key=lambda i: (_checked_duration(durations, i), i))
    batches: list[list[int]] = []
    for index in order:
        if batches and _fits(batches[-1], durations[index], max_batch_size, max_batch_seconds):
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


def _fits(batch: list[int], duration: float, max_size: int, max_seconds: float | None) -> bool:
    """Whether one more clip of `duration` (the longest so far, as input is sorted) fits."""
    if len(batch) + 1 > max_size:
        return False
    return max_seconds is None or (len(batch) + 1) * duration <= max_seconds


def _check_batch_limits(max_batch_size: int, max_batch_seconds: float | None) -> None:
    """Reject limits that would make every batch empty."""
    if max_batch_size < 1:
        raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
    if max_batch_seconds is not None and not max_batch_seconds > 0:
        raise ValueError(f"max_batch_seconds must be positive or None, got {max_batch_seconds}")


def _checked_duration(durations: Sequence[float], index: int) -> float:
    """The duration at `index`, refusing negative or non-finite values (they cannot be sorted)."""
    value = float(durations[index])
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"duration {index} must be finite and non-negative, got {value}")
    return value
