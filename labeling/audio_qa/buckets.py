"""Curriculum buckets of audio questions: separated sounds are easy, overlapping ones hard.

A question is about some of its clip's sounds: a ``duration`` question about its ``subject``
against every other sound of the clip, every other kind (which is longest, shortest, first,
last; how many at once) about all of them. Its **separation** is the smallest, over those
pairs of sounds (classes, each merged: :func:`labeling.audio_qa.regions.merge_by_class`), of
the gap between them in seconds, or minus the time they sound together where they overlap.
The bucket (:data:`training.curriculum.ORDER`):

* ``easy``: every pair is apart by at least :data:`CLEAR_GAP_S` (0.2 s), or the question is
  about a single sound (nothing to tell apart);
* ``medium``: a pair touches or is closer than that, or overlaps by at most
  :data:`JITTER_S` (0.05 s);
* ``hard``: a pair sounds together for longer than :data:`JITTER_S`.

Why these thresholds: 0.05 s is the chain's own allowance for annotation rounding
(``validate_regions``' ``slack_s``, an editor's or resampler's rounding), so an overlap that
short says nothing about the sounds. 0.2 s is the onset collar of DCASE's event-based sound
event detection metrics (onsets within 200 ms are the same onset): closer than that, where
one sound stops and the next starts is within annotation precision, so the two are "touching";
it is also five of Qwen2-Audio's 40 ms encoder frames, enough silence to be heard as a gap.

The audio questions dataset (``assets/audio_qa/dataset.py``) puts the bucket in each row's
``bucket`` column from the clip's used regions (``sound_regions``), so a loop's training set
counts the buckets and ``curriculum: easy_to_hard`` reads easy rows first.

Example:
    >>> from labeling.audio_qa.regions import SoundRegion as R
    >>> clip = [R("dog", 0.0, 1.0), R("rain", 1.5, 3.0), R("horn", 2.9, 4.0)]
    >>> separation_s(clip), separation_s(clip, "dog")
    (-0.1, 0.5)
    >>> question_bucket(clip), question_bucket(clip, "dog"), question_bucket(clip[:1])
    ('hard', 'easy', 'easy')
    >>> question_bucket([R("dog", 0.0, 1.0), R("rain", 1.1, 2.0)])  # 0.1 s apart: touching
    'medium'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

from labeling.audio_qa.regions import Interval, Labelled, intersection_length, merge_by_class

CLEAR_GAP_S = 0.2
"""Sounds at least this far apart (seconds) are clearly separated (see the module docstring)."""
JITTER_S = 0.05
"""An overlap up to this long (seconds) is annotation rounding: touching, not overlapping."""


def pair_separation_s(a: Sequence[Interval], b: Sequence[Interval]) -> float:
    """Seconds between two sounds' merged intervals: the smallest gap when they never sound
    together (0: they touch), else minus the time they do.

    >>> pair_separation_s([(0.0, 1.0), (5.0, 6.0)], [(2.0, 4.5)])
    0.5
    >>> pair_separation_s([(0.0, 2.0)], [(1.5, 3.0)])
    -0.5
    """
    shared = intersection_length(a, b)
    if shared > 0:
        return -shared
    return min(max(b_start - a_end, a_start - b_end, 0.0)
               for a_start, a_end in a for b_start, b_end in b)


def separation_s(regions: Iterable[Labelled], subject: str | None = None) -> float | None:
    """The question's separation (see the module docstring): over the pairs of ``subject``
    with each other sound, or of all the sounds when ``subject`` is None; None when there is
    no pair (one sound). Raises ValueError without regions, or when ``subject`` has none."""
    merged = merge_by_class(regions)
    if not merged:
        raise ValueError("no sound regions: a question needs at least one sound (the chain "
                         "asks nothing about a clip without regions)")
    if subject is not None and subject not in merged:
        raise ValueError(f"the question is about {subject!r}, but the clip's regions are of "
                         f"{sorted(merged)} only")
    pairs = ([(subject, other) for other in merged if other != subject] if subject is not None
             else list(combinations(merged, 2)))
    if not pairs:
        return None
    return round(min(pair_separation_s(merged[a], merged[b]) for a, b in pairs), 6)


def question_bucket(regions: Iterable[Labelled], subject: str | None = None) -> str:
    """``easy`` / ``medium`` / ``hard`` from :func:`separation_s` (see the module docstring).

    >>> from labeling.audio_qa.regions import SoundRegion as R
    >>> question_bucket([R("dog", 0.0, 1.0), R("rain", 0.97, 2.0)])  # 30 ms: rounding
    'medium'
    """
    separation = separation_s(regions, subject)
    if separation is None or separation >= CLEAR_GAP_S:
        return "easy"
    return "medium" if separation >= -JITTER_S else "hard"


def question_buckets(questions: Iterable[Mapping[str, Any]],
                     regions: Mapping[str, Sequence[Labelled]]) -> list[str]:
    """Each ``audio_questions`` row's bucket, from ``regions``: its clip's used regions by clip
    id (:func:`labeling.audio_qa.chain.used_regions`). Raises ValueError naming a question
    whose clip has no regions there (its regions changed after it was asked).

    >>> from labeling.audio_qa.regions import SoundRegion as R
    >>> question_buckets([{"question_id": "q1", "clip_id": "c1", "subject": None}],
    ...                  {"c1": [R("dog", 0.0, 1.0)]})
    ['easy']
    """
    out = []
    for q in questions:
        clip = regions.get(q["clip_id"]) or []
        if not clip:
            raise ValueError(f"question {q['question_id']} of clip {q['clip_id']}: the clip has "
                             "no used sound regions; its regions changed after the question "
                             "was asked: materialize sound_regions, sound_durations and "
                             "audio_questions again for the batch")
        out.append(question_bucket(clip, q.get("subject")))
    return out
