"""What a clip's regions say about time: per class durations, overlaps, concurrency.

Policy:

* per class, regions are merged first (:func:`labeling.audio_qa.regions.merge_by_class`):
  two touching or overlapping regions of one class are one sound, counted once in its
  ``total_s`` and ``count`` (the number of separate occurrences);
* ``first_start_s`` / ``last_end_s`` are when the class is first and last heard;
* regions of different classes are kept overlapping: each class gets its full time, and
  :attr:`Timeline.overlaps` says how long each pair sounds together;
* "how many distinct sounds occur at once" is the most classes active at the same time, by
  a sweep over region ends and starts; at an instant where one class stops and another
  starts, the stop comes first (touching is not overlapping). ``max_concurrent_s`` is the
  longest unbroken stretch at that count (a question guard: a peak of a few milliseconds is
  annotation jitter, not an answer).

Input regions are validated ones (:func:`labeling.audio_qa.regions.validate_regions`).

Example:
    >>> from labeling.audio_qa.regions import SoundRegion as R
    >>> t = timeline([R("dog", 0.0, 2.0), R("dog", 3.0, 4.0), R("rain", 1.0, 6.0),
    ...               R("horn", 3.5, 5.0)])
    >>> t.classes["dog"]
    ClassStats(label='dog', total_s=3.0, first_start_s=0.0, last_end_s=4.0, count=2)
    >>> t.overlaps
    {('dog', 'horn'): 0.5, ('dog', 'rain'): 2.0, ('horn', 'rain'): 1.5}
    >>> t.max_concurrent, t.max_concurrent_s, t.max_concurrent_at_s
    (3, 0.5, 3.5)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from labeling.audio_qa.regions import (
    Interval,
    Labelled,
    intersection_length,
    merge_by_class,
    total_length,
)


@dataclass(frozen=True)
class ClassStats:
    """One class's time in a clip."""

    label: str
    total_s: float
    """Seconds the class is heard (merged regions)."""
    first_start_s: float
    last_end_s: float
    count: int
    """Separate occurrences (merged regions)."""


@dataclass(frozen=True)
class Timeline:
    """Everything about time in one clip the questions are asked from."""

    classes: Mapping[str, ClassStats]
    """Per class, by label."""
    overlaps: Mapping[tuple[str, str], float]
    """Seconds two classes sound together, per pair (labels in order) that overlaps at all."""
    max_concurrent: int
    """The most classes heard at the same time (0 without regions)."""
    max_concurrent_s: float
    """The longest unbroken stretch at ``max_concurrent`` classes."""
    max_concurrent_at_s: float | None
    """Where that stretch starts (None without regions)."""


def class_stats(merged: Mapping[str, Sequence[Interval]]) -> dict[str, ClassStats]:
    """Per class of merged intervals, its :class:`ClassStats`.

    >>> class_stats({"dog": [(0.0, 1.0), (2.0, 2.5)]})["dog"].total_s
    1.5
    """
    return {label: ClassStats(label, total_length(spans), spans[0][0], spans[-1][1], len(spans))
            for label, spans in merged.items() if spans}


def class_overlaps(merged: Mapping[str, Sequence[Interval]]) -> dict[tuple[str, str], float]:
    """Seconds each pair of classes sounds together (pairs that never do are left out).

    >>> class_overlaps({"a": [(0.0, 2.0)], "b": [(1.0, 3.0)], "c": [(2.0, 3.0)]})
    {('a', 'b'): 1.0, ('b', 'c'): 1.0}
    """
    pairs = {}
    for a, b in combinations(sorted(merged), 2):
        shared = intersection_length(merged[a], merged[b])
        if shared > 0:
            pairs[(a, b)] = shared
    return pairs


def concurrency(merged: Mapping[str, Sequence[Interval]]) -> tuple[int, float, float | None]:
    """``(most classes at once, longest stretch at that count, where it starts)``.

    A sweep over the regions' ends and starts in time order; at one instant every end is
    taken before any start, and stretches at the top count that meet are one stretch.

    >>> concurrency({"a": [(0.0, 2.0)], "b": [(2.0, 3.0)]})  # touching: one at a time
    (1, 3.0, 0.0)
    >>> concurrency({"a": [(0.0, 2.0)], "b": [(1.0, 3.0)], "c": [(1.5, 1.75)]})
    (3, 0.25, 1.5)
    """
    events: dict[float, int] = {}
    for spans in merged.values():
        for start, end in spans:
            events[start] = events.get(start, 0) + 1
            events[end] = events.get(end, 0) - 1
    level, best, stretches = 0, 0, []  # stretches: (level, start, end), positive length
    times = sorted(events)
    for t, t_next in zip(times, times[1:], strict=False):
        level += events[t]
        if level > 0:
            stretches.append((level, t, t_next))
        best = max(best, level)
    longest, at, run_start, run_end = 0.0, None, None, None
    for lvl, start, end in stretches:
        if lvl != best:
            run_start = run_end = None
            continue
        if run_end != start:
            run_start = start
        run_end = end
        if run_end - run_start > longest:
            longest, at = run_end - run_start, run_start
    return best, longest, at


def timeline(regions: Iterable[Labelled]) -> Timeline:
    """The clip's :class:`Timeline` from its (validated) regions."""
    merged = merge_by_class(regions)
    best, longest, at = concurrency(merged)
    return Timeline(class_stats(merged), class_overlaps(merged), best, longest, at)
