"""The audio questions chain's rows: each clip's regions (and where they came from), its
durations per class, and its questions, as the assets store them.

Sources of regions (policy):

* a clip's regions come from up to three sources: **human** (marked in Label Studio),
  **manifest** (the manifest line's ``regions`` key: a list of ``{"label", "start",
  "end"}`` in seconds, kept by ingestion as a tag) and **model** (a region detector:
  silero-vad for speech; ``source = "model:<name>"``);
* human and manifest regions are *given* and **complete**: they mark every sound of the
  clip that the project's vocabulary names, so a class they do not mark is not heard.
  Detected regions are **partial**: they cover only what a detector detects. The only
  detector role is silero-vad (speech); there is no audio-tagger role in :mod:`models`,
  so music, noise and every other class come only from manifest or human regions;
* one source per clip is **used** for its durations and questions: the first it has of
  human, manifest, model (a person's correction beats the manifest, which beats a model).
  The other sources' regions are still recorded (``used`` false), so a detector's
  agreement with the given regions can be measured (:func:`speech_agreement`);
* a given annotation with any invalid region is refused whole (a partial given annotation
  would make "which sound is longest" wrong): each problem is quarantined with its reason
  (:func:`labeling.audio_qa.regions.validate_regions`' codes, ``bad_region`` for an entry
  that is not ``{label, start, end}``, ``bad_regions_tag`` for a ``regions`` value that is
  not a list) and the clip falls back to the next source. ``"regions": []`` is a valid
  annotation of a clip without sounds;
* questions from partial regions are only about the classes they cover (``duration``);
  every other kind is skipped as ``partial_regions``.

Example:
    >>> clip = {"clip_id": "c1", "source_path": "/d/a.ogg", "duration_s": 10.0,
    ...         "tags": {"regions": [{"label": "speech", "start": 1.0, "end": 3.0},
    ...                              {"label": "music", "start": 2.0, "end": 6.5}]}}
    >>> rows, problems = region_rows([clip], {"c1": [Region(1.1, 3.2, "speech", 0.9)]},
    ...                              detector="silero")
    >>> [(r["label"], r["source"], r["used"]) for r in rows]
    [('speech', 'manifest', True), ('music', 'manifest', True), ('speech', 'model:silero', False)]
    >>> durations = duration_rows(rows)
    >>> [(d["label"], d["total_s"], d["max_concurrent"]) for d in durations]
    [('music', 4.5, 2), ('speech', 2.0, 2)]
    >>> timelines = timelines_of(durations)
    >>> timelines["c1"][0].classes["music"].first_start_s, timelines["c1"][1]
    (2.0, 'manifest')
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from labeling.audio_qa.durations import ClassStats, Timeline, timeline
from labeling.audio_qa.questions import QuestionSettings, clip_questions
from labeling.audio_qa.regions import (
    SoundRegion,
    class_iou,
    validate_regions,
)
from labeling.ingest.media import MediaError
from labeling.questions.choices import LETTERS, MultipleChoice, multiple_choice
from labeling.questions.templates import Question, Skipped
from models.roles import Region

Row = dict[str, Any]
GIVEN = ("human", "manifest")
"""The given sources, in precedence order; any model comes after them."""
PARTIAL_KINDS = ("duration",)
"""The question kinds partial (detected) regions can answer: about one class they cover."""


def is_complete(source: str | None) -> bool:
    """Whether regions from ``source`` mark every sound of the clip (given, not detected).

    >>> is_complete("manifest"), is_complete("model:bundled:silero-vad"), is_complete(None)
    (True, False, False)
    """
    return source in GIVEN


def parse_given(value: Any, source: str = "manifest"
                ) -> tuple[list[tuple[int, SoundRegion]], list[tuple]]:
    """``(index, region)`` per entry of a manifest's ``regions`` value that is ``{label,
    start, end}``, and ``(index, reason, detail)`` per other entry (index None: the value
    itself is not a list). Times are checked later (:func:`validate_regions`).

    >>> parse_given([{"label": "dog", "start": 0, "end": 1.5}, {"label": "dog"}, "rain"])
    ... # doctest: +NORMALIZE_WHITESPACE
    ([(0, SoundRegion(label='dog', start_s=0, end_s=1.5, source='manifest', score=None))],
     [(1, 'bad_region', "entry 1 {'label': 'dog'}: needs label, start and end"),
      (2, 'bad_region', "entry 2 'rain': needs label, start and end")])
    """
    if not isinstance(value, list):
        return [], [(None, "bad_regions_tag", f"`regions` is {_short(value)}; expected a list "
                                              "of {label, start, end}")]
    regions, problems = [], []
    for index, entry in enumerate(value):
        if isinstance(entry, Mapping) and {"label", "start", "end"} <= set(entry):
            regions.append((index, SoundRegion(entry["label"], entry["start"], entry["end"],
                                               source)))
        else:
            problems.append((index, "bad_region", f"entry {index} {_short(entry)}: needs "
                                                  "label, start and end"))
    return regions, problems


def clip_sources(
    clip: Mapping[str, Any], human: Sequence[SoundRegion] | None,
    detected: Sequence[Region] | None, *, detector: str,
    classes: Collection[str] | None = None, slack_s: float = 0.05,
) -> tuple[dict[str, list[SoundRegion]], list[Row]]:
    """The clip's valid regions per source (given annotations with a problem left out), and
    a quarantine row per problem (naming the region by its place in its source). ``human`` /
    ``detected`` None: that source has nothing."""
    raw: dict[str, tuple[list[tuple[int, SoundRegion]], list[tuple]]] = {}
    if human is not None:
        raw["human"] = (list(enumerate(human)), [])
    if "regions" in clip["tags"]:
        raw["manifest"] = parse_given(clip["tags"]["regions"])
    if detected is not None:
        raw[f"model:{detector}"] = (
            list(enumerate(SoundRegion.from_detected(r, detector) for r in detected)), [])
    sources, failures = {}, []
    for source, (indexed, problems) in raw.items():
        kept, invalid = validate_regions([r for _, r in indexed],
                                         clip_duration_s=clip["duration_s"], classes=classes,
                                         slack_s=slack_s)
        found = problems + [(indexed[p.index][0], p.reason, p.detail) for p in invalid]
        failures += [{"source_path": clip["source_path"], "reason": reason,
                      "detail": f"{source} regions: {detail}" if i is None
                      else f"{source} region {i}: {detail}"} for i, reason, detail in found]
        if not (found and is_complete(source)):  # a given annotation with a problem: refused
            sources[source] = kept
    return sources, failures


def used_source(sources: Mapping[str, Any]) -> str | None:
    """The source a clip's questions use: human, else manifest, else its model.

    >>> used_source({"model:vad": [], "manifest": []}), used_source({})
    ('manifest', None)
    """
    ranked = [*(s for s in GIVEN if s in sources), *sorted(s for s in sources if s not in GIVEN)]
    return ranked[0] if ranked else None


def detect_regions(
    detector: Any, clips: Sequence[Mapping[str, Any]], load: Callable[[str], Any], *,
    chunk: int = 64, threads: int = 1, progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, list[Region]], list[Row]]:
    """The detector's regions per clip id (16 kHz audio from ``load(path)``, ``chunk`` clips
    in memory at a time), and a quarantine row (``undecodable``) per clip that failed to load.

    The detector runs on one torch thread (``threads``; restored after): silero-vad is tiny,
    and beside another torch process on a 2-core machine its two OpenMP threads spin against
    each other: the sample scenes took 12-52 s with 2 threads, 1 s with 1 (0.4 s alone).
    """
    import torch

    detected: dict[str, list[Region]] = {}
    failures: list[Row] = []
    for start in range(0, len(clips), chunk):
        loaded = []
        for clip in clips[start: start + chunk]:
            try:
                loaded.append((clip["clip_id"], load(clip["source_path"])))
            except (MediaError, OSError, ValueError) as exc:
                failures.append({"source_path": clip["source_path"], "reason": "undecodable",
                                 "detail": f"not run through {detector.name}: {exc}"})
        if loaded:
            previous = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                found = detector.regions([audio for _, audio in loaded], sample_rate=16_000)
            finally:
                torch.set_num_threads(previous)
            detected.update(zip([clip_id for clip_id, _ in loaded], found, strict=True))
        if progress is not None:
            progress(min(start + chunk, len(clips)), len(clips))
    return detected, failures


def region_rows(
    clips: Iterable[Mapping[str, Any]], detected: Mapping[str, Sequence[Region]], *,
    detector: str, human: Mapping[str, Sequence[SoundRegion]] | None = None,
    classes: Collection[str] | None = None, slack_s: float = 0.05,
) -> tuple[list[Row], list[Row]]:
    """One ``sound_regions`` row per valid region of every source of every clip (``used``
    marks the source its questions use), and the quarantine rows.

    ``clips`` carry ``clip_id``, ``source_path``, ``duration_s`` and ``tags`` (parsed);
    ``detected`` maps a clip id to the detector's regions (a clip absent: not run).
    """
    human = human or {}
    rows, failures = [], []
    for clip in clips:
        clip_id = clip["clip_id"]
        sources, problems = clip_sources(clip, human.get(clip_id), detected.get(clip_id),
                                         detector=detector, classes=classes, slack_s=slack_s)
        failures += problems
        chosen = used_source(sources)
        rows += [{"clip_id": clip_id, **r.row(), "used": source == chosen}
                 for source, regions in sources.items() for r in regions]
    return rows, failures


def used_regions(regions: Iterable[Mapping[str, Any]]) -> dict[str, list[SoundRegion]]:
    """Per clip id, the ``sound_regions`` rows its questions use, as :class:`SoundRegion`.

    >>> used_regions([{"clip_id": "c", "label": "dog", "start_s": 0.0, "end_s": 1.0,
    ...                "source": "manifest", "score": None, "used": True},
    ...               {"clip_id": "c", "label": "speech", "start_s": 0.0, "end_s": 1.0,
    ...                "source": "model:vad", "score": 0.9, "used": False}])
    {'c': [SoundRegion(label='dog', start_s=0.0, end_s=1.0, source='manifest', score=None)]}
    """
    by_clip: dict[str, list[SoundRegion]] = {}
    for r in regions:
        if r["used"]:
            by_clip.setdefault(r["clip_id"], []).append(
                SoundRegion(r["label"], r["start_s"], r["end_s"], r["source"], r["score"]))
    return by_clip


def duration_rows(regions: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Per clip and class of the used regions, its :class:`ClassStats`, its overlap with each
    other class (JSON) and the clip's concurrency, for ``sound_durations``."""
    rows = []
    for clip_id, clip_regions in used_regions(regions).items():
        t = timeline(clip_regions)
        overlaps: dict[str, dict[str, float]] = {}
        for (a, b), seconds in t.overlaps.items():
            overlaps.setdefault(a, {})[b] = seconds
            overlaps.setdefault(b, {})[a] = seconds
        rows += [{"clip_id": clip_id, "label": s.label, "total_s": s.total_s,
                  "first_start_s": s.first_start_s, "last_end_s": s.last_end_s,
                  "occurrences": s.count, "overlaps_s": json.dumps(overlaps.get(s.label, {})),
                  "max_concurrent": t.max_concurrent, "max_concurrent_s": t.max_concurrent_s,
                  "max_concurrent_at_s": t.max_concurrent_at_s,
                  "regions_source": clip_regions[0].source}
                 for s in t.classes.values()]
    return rows


def timelines_of(rows: Iterable[Mapping[str, Any]]) -> dict[str, tuple[Timeline, str]]:
    """Per clip, its :class:`Timeline` rebuilt from ``sound_durations`` rows (the inverse of
    :func:`duration_rows`) and the source of its regions."""
    by_clip: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_clip.setdefault(r["clip_id"], []).append(r)
    out = {}
    for clip_id, clip_rows in by_clip.items():
        clip_rows = sorted(clip_rows, key=lambda r: r["label"])
        classes = {r["label"]: ClassStats(r["label"], r["total_s"], r["first_start_s"],
                                          r["last_end_s"], r["occurrences"]) for r in clip_rows}
        overlaps = {(r["label"], other): seconds for r in clip_rows
                    for other, seconds in json.loads(r["overlaps_s"]).items()
                    if r["label"] < other}
        first = clip_rows[0]
        out[clip_id] = (Timeline(classes, dict(sorted(overlaps.items())),
                                 first["max_concurrent"], first["max_concurrent_s"],
                                 first["max_concurrent_at_s"]), first["regions_source"])
    return out


def speech_agreement(regions: Iterable[Mapping[str, Any]], label: str = "speech",
                     ran_on: Collection[str] = ()) -> dict[str, float]:
    """Per clip whose questions use a given (complete) annotation and that the detector ran on
    (it has model rows, or is in ``ran_on``: found nothing), the IoU over time of ``label``
    between the two; a clip where neither has the label is left out, one where only one has
    it scores 0 (a miss, or a false alarm).

    >>> def row(label, start, end, source, used=True):
    ...     return {"clip_id": "c", "label": label, "start_s": start, "end_s": end,
    ...             "source": source, "used": used}
    >>> speech_agreement([row("speech", 0.0, 2.0, "manifest"),
    ...                   row("speech", 1.0, 2.0, "model:v", used=False)])
    {'c': 0.5}
    >>> speech_agreement([row("music", 0.0, 2.0, "manifest"),
    ...                   row("speech", 1.0, 2.0, "model:v", used=False)])
    {'c': 0.0}
    """
    given: dict[str, list[SoundRegion]] = {}
    detected: dict[str, list[SoundRegion]] = {clip_id: [] for clip_id in ran_on}
    for r in regions:
        side = given if (r["used"] and is_complete(r["source"])) else (
            detected if r["source"].startswith("model:") else None)
        if side is not None:
            spans = side.setdefault(r["clip_id"], [])
            if r["label"] == label:
                spans.append(SoundRegion(label, r["start_s"], r["end_s"], r["source"]))
    return {clip_id: class_iou(given[clip_id], detected[clip_id])[label]
            for clip_id in sorted(given.keys() & detected.keys())
            if given[clip_id] or detected[clip_id]}


def question_rows(
    clips: Sequence[Mapping[str, Any]], timelines: Mapping[str, tuple[Timeline, str]], *,
    settings: QuestionSettings | None = None, vocabulary: Collection[str] = (),
    seed: int = 0, forms: Collection[str] = ("open", "choice"),
) -> tuple[list[Row], list[Row]]:
    """The batch's ``audio_questions`` rows (open and/or multiple-choice forms; the right
    letters balanced over the whole batch) and a quarantine row per question or form not
    asked, with its reason. Clips without regions get ``no_regions`` skips."""
    settings = settings or QuestionSettings()
    asked: list[tuple[Mapping[str, Any], Question, str]] = []
    failures: list[Row] = []
    for clip in clips:
        t, source = timelines.get(clip["clip_id"], (timeline([]), None))
        kinds = settings.kinds
        if source is not None and not is_complete(source):
            kinds = tuple(k for k in kinds if k in PARTIAL_KINDS)
            failures += [_skip_row(clip, Skipped(
                k, "partial_regions", f"regions from {source} cover only {sorted(t.classes)} "
                "(what it detects); this kind needs manifest or human regions"))
                for k in settings.kinds if k not in kinds]
        questions, skipped = clip_questions(
            t, clip_duration_s=clip["duration_s"], vocabulary=vocabulary, seed=seed,
            clip_id=clip["clip_id"], settings=replace(settings, kinds=kinds))
        asked += [(clip, q, source) for q in questions]
        failures += [_skip_row(clip, s) for s in skipped]
    rows = [_row(c, q, s, seed, "open", None) for c, q, s in asked] if "open" in forms else []
    if "choice" in forms:
        choices, skipped = multiple_choice([q for _, q, _ in asked], seed=seed)
        enough = [a for a in asked if len(a[1].distractors) >= len(LETTERS) - 1]
        lacking = [a for a in asked if len(a[1].distractors) < len(LETTERS) - 1]
        rows += [_row(c, q, s, seed, "choice", mc)
                 for (c, q, s), mc in zip(enough, choices, strict=True)]
        failures += [_skip_row(c, sk) for (c, _, _), sk in zip(lacking, skipped, strict=True)]
    return rows, failures


def _row(clip: Mapping[str, Any], q: Question, source: str, seed: int, form: str,
         mc: MultipleChoice | None) -> Row:
    key = f"{clip['clip_id']}\x1f{q.kind}\x1f{q.subject or ''}\x1f{form}"
    return {
        "question_id": hashlib.sha256(key.encode()).hexdigest()[:16],
        "clip_id": clip["clip_id"], "kind": q.kind, "form": form, "subject": q.subject,
        "question": q.text, "prompt": mc.prompt if mc else q.prompt,
        "answer": mc.answer if mc else q.answer, "answer_text": q.answer,
        "answer_type": "choice" if mc else q.answer_type, "value": q.value,
        "tolerance": None if mc else q.tolerance, "options": list(mc.options) if mc else [],
        "measured": json.dumps(q.measured, default=float), "regions_source": source,
        "seed": seed,
    }


def _skip_row(clip: Mapping[str, Any], skipped: Skipped) -> Row:
    about = f" ({skipped.subject})" if skipped.subject else ""
    return {"source_path": clip["source_path"], "reason": skipped.reason,
            "detail": f"{skipped.kind}{about}: {skipped.detail}"}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
