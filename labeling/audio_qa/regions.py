"""Sound regions: a class label over a stretch of a clip, checked, merged and compared.

Policy:

* a :class:`SoundRegion` is ``(label, start_s, end_s, source)``, seconds from the clip's
  start; ``source`` is ``"manifest"``, ``"human"`` or ``"model:<name>"`` (the design's
  provenance rule), with the model's confidence in ``score`` where there is one. A
  detector's :class:`models.roles.Region` (silero-vad's speech) becomes one with
  :meth:`SoundRegion.from_detected`; the role's type has no source, so it is wrapped, not
  reused as is;
* :func:`validate_regions` keeps the regions a question can rely on and gives each other one
  a reason: ``not_finite`` (a time is NaN or infinite), ``empty_region`` (start not before
  end), ``outside_clip`` (starts before 0 or ends after the clip by more than ``slack_s``;
  within it the region is clipped to the clip: rounding in an editor or a resampler),
  ``unknown_class`` (blank, or not in the known classes), ``bad_source``;
* regions of one class that overlap or touch are one sound (:func:`merge_by_class`); regions
  of different classes overlap freely (speech over music is both);
* agreement of two annotations of a clip (:func:`class_iou`): per class, the intersection
  over the union of the two merged time sets; a class only one annotator marked scores 0;
  :func:`mean_class_iou` averages over the classes present in either.

Example:
    >>> a = [SoundRegion("dog", 0.0, 2.0), SoundRegion("dog", 2.0, 3.0),
    ...      SoundRegion("rain", 1.0, 5.0, "human")]
    >>> merge_by_class(a)
    {'dog': [(0.0, 3.0)], 'rain': [(1.0, 5.0)]}
    >>> b = [SoundRegion("dog", 1.0, 3.0, "human"), SoundRegion("music", 0.0, 1.0, "human")]
    >>> class_iou(a, b)
    {'dog': 0.6666666666666666, 'music': 0.0, 'rain': 0.0}
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from models.roles import Region

Interval = tuple[float, float]


class Labelled(Protocol):
    """Anything with a label and a time span: a :class:`SoundRegion`, a ``models.roles.Region``."""

    label: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class SoundRegion:
    """One labelled stretch of a clip, with where the label came from.

    Example:
        >>> r = SoundRegion("dog bark", 1.25, 2.0, source="model:tagger", score=0.8)
        >>> r.duration_s, r.row()["source"]
        (0.75, 'model:tagger')
    """

    label: str
    start_s: float
    end_s: float
    source: str = "manifest"
    """``"manifest"``, ``"human"`` or ``"model:<name>"``."""
    score: float | None = None
    """The model's confidence in [0, 1]; None for given regions."""

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @classmethod
    def from_detected(cls, region: Region, model: str) -> SoundRegion:
        """A detector's region, its source ``model:<model>``.

        >>> SoundRegion.from_detected(Region(0.5, 1.5, "speech", 0.9), "silero-vad").source
        'model:silero-vad'
        """
        return cls(region.label, region.start_s, region.end_s, f"model:{model}", region.score)

    def row(self) -> dict[str, Any]:
        return {"label": self.label, "start_s": self.start_s, "end_s": self.end_s,
                "source": self.source, "score": self.score}


@dataclass(frozen=True)
class RegionProblem:
    """Why the region at ``index`` (in the input) was dropped."""

    index: int
    reason: str
    detail: str


def is_source(source: Any) -> bool:
    """Whether ``source`` is ``manifest``, ``human`` or ``model:<name>``.

    >>> is_source("human"), is_source("model:silero-vad"), is_source("model:"), is_source("ai")
    (True, True, False, False)
    """
    return isinstance(source, str) and (
        source in ("manifest", "human")
        or (source.startswith("model:") and bool(source[len("model:"):].strip())))


def validate_regions(
    regions: Sequence[SoundRegion], *, clip_duration_s: float,
    classes: Collection[str] | None = None, slack_s: float = 0.05,
) -> tuple[list[SoundRegion], list[RegionProblem]]:
    """The usable regions (clipped to the clip) and a problem for each other one.

    ``classes`` are the known labels (None: any non-blank label). Raises ``ValueError`` only
    for a clip duration that is not a positive number (the clip's, not a region's, fault).

    >>> kept, problems = validate_regions(
    ...     [SoundRegion("dog", 0.0, 2.0), SoundRegion("dog", 3.0, 3.0),
    ...      SoundRegion("cat", 1.0, 2.0), SoundRegion("dog", 9.0, 10.02)],
    ...     clip_duration_s=10.0, classes={"dog", "rain"})
    >>> [(r.start_s, r.end_s) for r in kept]
    [(0.0, 2.0), (9.0, 10.0)]
    >>> [(p.index, p.reason) for p in problems]
    [(1, 'empty_region'), (2, 'unknown_class')]
    """
    if not (_is_time(clip_duration_s) and clip_duration_s > 0):
        raise ValueError(f"clip_duration_s must be a positive number of seconds, got "
                         f"{clip_duration_s!r}: probe the clip's duration before its regions")
    kept: list[SoundRegion] = []
    problems: list[RegionProblem] = []
    for index, region in enumerate(regions):
        checked = _check(region, clip_duration_s, classes, slack_s)
        if isinstance(checked, SoundRegion):
            kept.append(checked)
        else:
            problems.append(RegionProblem(index, *checked))
    return kept, problems


def _check(
    region: SoundRegion, duration: float, classes: Collection[str] | None, slack_s: float,
) -> SoundRegion | tuple[str, str]:
    start, end = region.start_s, region.end_s
    where = f"{region.label!r} {start!r}-{end!r} s"
    if not (_is_time(start) and _is_time(end)):
        return "not_finite", f"{where}: times must be finite numbers of seconds"
    if not isinstance(region.label, str) or not region.label.strip():
        return "unknown_class", f"{where}: no label"
    if classes is not None and region.label not in classes:
        return "unknown_class", f"{where}: {region.label!r} is not one of {sorted(classes)}"
    if not is_source(region.source):
        return "bad_source", (f"{where}: source {region.source!r}; expected manifest, human or "
                              "model:<name>")
    if start >= end:
        return "empty_region", f"{where}: starts at or after its end"
    if start < -slack_s or end > duration + slack_s:
        return "outside_clip", f"{where}: outside the clip's 0-{duration:g} s"
    clipped_start, clipped_end = max(float(start), 0.0), min(float(end), float(duration))
    if clipped_start >= clipped_end:
        return "empty_region", f"{where}: nothing left inside the clip's 0-{duration:g} s"
    if (clipped_start, clipped_end) == (start, end) and type(start) is type(end) is float:
        return region
    return SoundRegion(region.label, clipped_start, clipped_end, region.source, region.score)


def _is_time(value: Any) -> bool:
    """A finite real number (numpy's included), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Overlapping or touching intervals merged, in time order.

    >>> merge_intervals([(3.0, 4.0), (0.0, 1.0), (1.0, 2.0), (3.5, 3.7)])
    [(0.0, 2.0), (3.0, 4.0)]
    """
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def merge_by_class(regions: Iterable[Labelled]) -> dict[str, list[Interval]]:
    """Per class (sorted by label), its regions merged: the time the class is heard.

    >>> merge_by_class([SoundRegion("b", 2.0, 3.0), SoundRegion("a", 0.0, 1.0),
    ...                 SoundRegion("b", 0.5, 2.5)])
    {'a': [(0.0, 1.0)], 'b': [(0.5, 3.0)]}
    """
    spans: dict[str, list[Interval]] = {}
    for region in regions:
        spans.setdefault(region.label, []).append((float(region.start_s), float(region.end_s)))
    return {label: merge_intervals(spans[label]) for label in sorted(spans)}


def total_length(intervals: Iterable[Interval]) -> float:
    """Seconds covered by merged (disjoint) intervals.

    >>> total_length([(0.0, 1.5), (2.0, 3.0)])
    2.5
    """
    return sum(end - start for start, end in intervals)


def intersection_length(a: Sequence[Interval], b: Sequence[Interval]) -> float:
    """Seconds two merged interval lists share (one pass over both, in time order).

    >>> intersection_length([(0.0, 2.0), (3.0, 5.0)], [(1.0, 4.0)])
    2.0
    """
    i = j = 0
    shared = 0.0
    while i < len(a) and j < len(b):
        shared += max(0.0, min(a[i][1], b[j][1]) - max(a[i][0], b[j][0]))
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1
    return shared


def class_iou(a: Iterable[Labelled], b: Iterable[Labelled]) -> dict[str, float]:
    """Per class present in either annotation, IoU over time of its merged regions.

    >>> class_iou([SoundRegion("dog", 0.0, 4.0)], [SoundRegion("dog", 2.0, 6.0)])
    {'dog': 0.3333333333333333}
    """
    merged_a, merged_b = merge_by_class(a), merge_by_class(b)
    ious: dict[str, float] = {}
    for label in sorted(set(merged_a) | set(merged_b)):
        x, y = merged_a.get(label, []), merged_b.get(label, [])
        shared = intersection_length(x, y)
        union = total_length(x) + total_length(y) - shared
        ious[label] = shared / union if union > 0 else 0.0
    return ious


def mean_class_iou(a: Iterable[Labelled], b: Iterable[Labelled]) -> float | None:
    """Mean of :func:`class_iou` over the classes present in either; None when neither has any.

    >>> mean_class_iou([SoundRegion("dog", 0.0, 4.0)], [SoundRegion("dog", 0.0, 4.0),
    ...                                                 SoundRegion("rain", 0.0, 1.0)])
    0.5
    >>> mean_class_iou([], []) is None
    True
    """
    ious = class_iou(a, b)
    return sum(ious.values()) / len(ious) if ious else None
