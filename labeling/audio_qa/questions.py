"""Temporal questions about a clip's sounds, with answers computed from its regions.

Kinds (:data:`TEMPLATES`), each from the clip's :class:`~labeling.audio_qa.durations.Timeline`:

* ``longest`` / ``shortest``: which sound lasts the longest / shortest in total (merged time);
* ``starts_first`` / ``starts_last``: which sound is first / last to start (first onsets);
* ``max_concurrent``: how many distinct sounds are heard at once, at most (a count, exact);
* ``duration``: for how many seconds a sound is heard, one question per sound present
  (a number; right within ``max(0.5 s, 10 %)`` of the truth by default).

Ambiguity guards, each a skip with a reason code and the measured detail
(:class:`~labeling.questions.templates.Skipped`):

* ``no_regions``: the clip has no region: nothing is asked;
* ``too_few_classes``: a comparison with fewer than two sounds present;
* ``near_tie``: the top two of a comparison are closer than the margin
  (``max(0.5 s, 10 %)`` by default; :mod:`labeling.questions.guards`);
* ``brief_peak``: the most sounds at once last together less than ``min_peak_s``
  (0.5 s): a few milliseconds of overlap is annotation jitter, not an answer.

Distractors for the multiple-choice form (:mod:`labeling.questions.choices`): for ``longest``
and ``starts_first``, the other sounds present, then sounds of the ``vocabulary`` that are
absent (an absent sound is neither the longest nor the first); for ``shortest`` and
``starts_last`` only sounds present (an absent sound lasts 0 s, arguably the shortest), so
those need four sounds present for a multiple-choice form. Numbers sit ``2 × tolerance +
0.1 s`` apart, so an answer within tolerance of the truth is never within tolerance of a
distractor; counts are other counts from 0 up to at least 4.

Example:
    >>> from labeling.audio_qa.durations import timeline
    >>> from labeling.audio_qa.regions import SoundRegion as R
    >>> t = timeline([R("dog", 0.0, 2.0), R("rain", 1.0, 7.0), R("horn", 1.2, 1.5)])
    >>> asked, skipped = clip_questions(t, clip_duration_s=10.0, vocabulary=["music", "bird"])
    >>> [(q.kind, q.answer) for q in asked if q.kind != "duration"]
    [('longest', 'rain'), ('shortest', 'horn'), ('starts_first', 'dog')]
    >>> [(s.kind, s.reason) for s in skipped]
    [('starts_last', 'near_tie'), ('max_concurrent', 'brief_peak')]
    >>> q = asked[-1]; q.prompt, q.answer, q.tolerance
    ('For how many seconds in total can rain be heard? Answer with a number of seconds.', '6', 0.6)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from labeling.audio_qa.durations import Timeline
from labeling.questions.choices import (
    normalize_text,
    numeric_distractors,
    pick_distractors,
    rng_for,
)
from labeling.questions.guards import Margin, extreme
from labeling.questions.templates import Question, Skipped, Template, format_number

_NAME = "Answer with the name of the sound."
TEMPLATES: dict[str, Template] = {t.kind: t for t in (
    Template("longest", "Which sound lasts the longest in total?", hint=_NAME),
    Template("shortest", "Of the sounds you hear, which lasts the shortest in total?",
             hint=_NAME),
    Template("starts_first", "Which sound starts first?", hint=_NAME),
    Template("starts_last", "Of the sounds you hear, which is the last to start?", hint=_NAME),
    Template("max_concurrent", "At most, how many distinct sounds can be heard at the same time?",
             "number", hint="Answer with a number.", decimals=0),
    Template("duration", "For how many seconds in total can {label} be heard?", "number",
             hint="Answer with a number of seconds."),
)}
KINDS: tuple[str, ...] = tuple(TEMPLATES)

# kind -> (the ClassStats field compared, highest wins, absent sounds may be distractors)
_COMPARISONS: dict[str, tuple[str, bool, bool]] = {
    "longest": ("total_s", True, True),
    "shortest": ("total_s", False, False),
    "starts_first": ("first_start_s", False, True),
    "starts_last": ("first_start_s", True, False),
}


@dataclass(frozen=True)
class QuestionSettings:
    """What is asked and how strict the guards are."""

    kinds: tuple[str, ...] = KINDS
    """The kinds to ask, of :data:`KINDS`."""
    margin: Margin = Margin(abs=0.5, rel=0.10)
    """How far apart the top two of a comparison must be (seconds; share of the larger)."""
    tolerance: Margin = Margin(abs=0.5, rel=0.10)
    """A duration answer is right within ``max(abs, rel × truth)`` seconds."""
    min_peak_s: float = 0.5
    """The least time the most sounds at once must last together for ``max_concurrent``."""


def clip_questions(
    clip: Timeline, *, clip_duration_s: float, vocabulary: Collection[str] = (),
    seed: Any = 0, clip_id: str = "", settings: QuestionSettings = QuestionSettings(),
) -> tuple[list[Question], list[Skipped]]:
    """The clip's questions (with their distractors) and the questions skipped, with reasons.

    ``vocabulary`` is the set of sound classes the project knows (distractors for sounds
    absent from the clip); ``seed`` and ``clip_id`` seed the distractors' draw.
    """
    unknown = sorted(set(settings.kinds) - set(TEMPLATES))
    if unknown:
        raise ValueError(f"unknown question kinds {unknown}; known: {list(KINDS)}")
    asked: list[Question] = []
    skipped: list[Skipped] = []
    for kind in settings.kinds:
        if not clip.classes:
            skipped.append(Skipped(kind, "no_regions", "the clip has no sound region"))
            continue
        if kind in _COMPARISONS:
            made = [_comparison(kind, clip, vocabulary, (seed, clip_id), settings)]
        elif kind == "max_concurrent":
            made = [_max_concurrent(clip, (seed, clip_id), settings)]
        else:
            made = [_duration(label, clip, clip_duration_s, (seed, clip_id), settings)
                    for label in clip.classes]
        asked += [q for q in made if isinstance(q, Question)]
        skipped += [q for q in made if isinstance(q, Skipped)]
    return asked, skipped


def _comparison(
    kind: str, clip: Timeline, vocabulary: Collection[str], key: tuple[Any, ...],
    settings: QuestionSettings,
) -> Question | Skipped:
    field, highest, absent_ok = _COMPARISONS[kind]
    values = {label: getattr(stats, field) for label, stats in clip.classes.items()}
    pick = extreme(values, highest=highest, margin=settings.margin, unit=" s",
                   too_few="too_few_classes")
    if pick.winner is None:
        return Skipped(kind, pick.reason or "near_tie", pick.detail, measured=pick.measured)
    present = {normalize_text(label) for label in clip.classes}
    absent = sorted(v for v in vocabulary if normalize_text(v) not in present) if absent_ok else []
    distractors = pick_distractors(pick.winner, [c for c in clip.classes if c != pick.winner],
                                   absent, rng=rng_for(*key, kind))
    return TEMPLATES[kind].ask(answer=pick.winner, distractors=distractors,
                               measured=pick.measured)


def _max_concurrent(clip: Timeline, key: tuple[Any, ...],
                    settings: QuestionSettings) -> Question | Skipped:
    count, stretch = clip.max_concurrent, clip.max_concurrent_s
    measured = {"max_concurrent": count, "max_concurrent_s": stretch,
                "at_s": clip.max_concurrent_at_s}
    if stretch < settings.min_peak_s:
        return Skipped("max_concurrent", "brief_peak",
                       f"{count} sounds at once for {format_number(stretch, 2)} s at most; "
                       f"{format_number(settings.min_peak_s, 2)} s needed", measured=measured)
    distractors = numeric_distractors(count, spacing=1, rng=rng_for(*key, "max_concurrent"),
                                      lower=0, upper=max(len(clip.classes), 4), decimals=0)
    return TEMPLATES["max_concurrent"].ask(answer=count, tolerance=0.0, distractors=distractors,
                                           measured=measured)


def _duration(label: str, clip: Timeline, clip_duration_s: float, key: tuple[Any, ...],
              settings: QuestionSettings) -> Question:
    stats = clip.classes[label]
    template = TEMPLATES["duration"]
    tolerance = round(settings.tolerance.of(stats.total_s, 0.0), 6)
    step = 10.0 ** -template.decimals
    distractors = numeric_distractors(
        stats.total_s, spacing=2 * tolerance + step, rng=rng_for(*key, "duration", label),
        lower=step, upper=clip_duration_s, decimals=template.decimals)
    return template.ask(answer=stats.total_s, tolerance=tolerance, subject=label, label=label,
                        distractors=distractors,
                        measured={"total_s": stats.total_s, "count": stats.count})

