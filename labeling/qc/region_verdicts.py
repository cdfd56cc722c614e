"""Pulling sound-region QC back: exported tasks -> each annotator's regions -> agreement by
class-wise IoU over time -> the clip's accepted human regions.

* An **annotation** is one annotator's regions on one clip: every ``labels`` result of the
  :data:`~labeling.qc.regions.LABELS` tag, ``{"start", "end", "labels"}`` in seconds. An
  annotation without regions is a clip where none of the classes is heard. Cancelled
  (skipped) annotations are none; an annotator's last annotation of a clip wins.
* An annotation with any bad region is **refused whole** (the chain's rule for given
  regions: a partial annotation would make "which sound is longest" wrong), one quarantine
  row per problem: ``bad_region`` (not ``{start, end, labels}``), and the codes of
  :func:`labeling.audio_qa.regions.validate_regions`: ``unknown_class`` (a label the
  project does not offer), ``empty_region`` (start not before end), ``outside_clip`` (past
  the clip by more than ``slack_s``; within it, clipped), ``not_finite``.
* **Agreement** of two annotations of a clip is per class, the IoU over time of their
  merged regions (:func:`labeling.audio_qa.regions.class_iou`; a class only one marked
  scores 0): computed here, Label Studio Community has none. Over a batch: the clips two or
  more people annotated (the second-review share), their first two annotators.
* A clip's **status**: ``accepted`` when it has one annotation, or when some annotation
  agrees with another on every class (IoU >= ``min_iou``): the accepted one is the one
  agreeing with the most others (then the highest mean IoU, then the first); ``disputed``
  when none agrees with another (the clip keeps its manifest or model regions, and the
  disagreements are listed); ``unreviewed`` without a usable annotation. Accepted regions
  minus :data:`~labeling.qc.regions.NOT_SOUNDS` become the chain's ``human`` source
  (:func:`human_regions`).

Reading the export's structure is all-or-nothing, as for the other QC exports: a task that
is not ours, an annotation without a result list or annotator raises
:class:`RegionExportError` naming every problem.

Example:
    >>> def ann(who, *regions):
    ...     return {"completed_by": who, "result": [
    ...         {"from_name": "label", "to_name": "audio", "type": "labels",
    ...          "value": {"start": s, "end": e, "labels": [c]}} for c, s, e in regions]}
    >>> task = {"id": 3, "data": {"clip_id": "c1", "source_path": "/m/c1.ogg",
    ...                           "duration_s": 10.0, "second_review": True},
    ...         "annotations": [ann(1, ("speech", 1.0, 3.0), ("silence", 3.0, 4.0)),
    ...                         ann(2, ("speech", 1.2, 3.0), ("silence", 3.0, 4.0))]}
    >>> pulled = pull_region_reviews([task], classes=["speech", "music", "silence"])
    >>> row = pulled.rows[0]
    >>> row["status"], row["accepted_annotator"], row["class_iou"]
    ('accepted', '1', '{"silence": 1.0, "speech": 0.9}')
    >>> human_regions(pulled.rows)
    {'c1': [SoundRegion(label='speech', start_s=1.0, end_s=3.0, source='human', score=None)]}
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labeling.audio_qa.regions import SoundRegion, class_iou, validate_regions
from labeling.qc.export import LabelStudioExportError, annotation
from labeling.qc.regions import LABELS, NOT_SOUNDS
from labeling.qc.review import SECOND_REVIEW_FIELD

STATUSES = ("accepted", "disputed", "unreviewed")


class RegionExportError(LabelStudioExportError):
    """A region-QC export that cannot be read; ``problems`` lists each one."""

    kind = "region-QC"


@dataclass(frozen=True)
class RegionAnnotation:
    """One annotator's regions on one clip (source ``human``)."""

    task_id: int | None
    clip_id: str
    annotator: str
    """``completed_by``: the user's email when the export has it, else the user id."""
    regions: tuple[SoundRegion, ...]
    lead_time: float | None = None


def parse_region_export(
    tasks: Any, *, classes: Collection[str], slack_s: float = 0.05, source: str | Path = "export",
) -> tuple[list[RegionAnnotation], list[dict], int]:
    """The usable annotations in exported tasks (export order), a quarantine row
    (``source_path``, ``reason``, ``detail``) per problem of each refused one, and how many
    were refused."""
    if not isinstance(tasks, list):
        raise RegionExportError(source, [f"top level is a JSON {type(tasks).__name__}, "
                                         "expected a list of tasks (export as JSON)"])
    problems: list[str] = []
    usable: list[RegionAnnotation] = []
    refused: list[dict] = []
    n_refused = 0
    for i, task in enumerate(tasks):
        where = f"task #{i} (id={task.get('id') if isinstance(task, dict) else None})"
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("clip_id"), str):
            problems.append(f"{where}: data.clip_id missing (not a task rlfoundry pushed)")
            continue
        duration = data.get("duration_s")
        if not isinstance(duration, int | float) or isinstance(duration, bool) or duration <= 0:
            problems.append(f"{where}: data.duration_s {duration!r} is not a positive number")
            continue
        annotations = task.get("annotations") or []
        if not isinstance(annotations, list):
            problems.append(f"{where}: 'annotations' is not a list")
            continue
        task_id = task.get("id") if isinstance(task.get("id"), int) else None
        for j, ann in enumerate(annotations):
            checked = annotation(f"{where}, annotation #{j}", ann, problems)
            if checked is None or checked[1] is None:
                continue
            _, annotator, result = checked
            regions, bad = _regions(result, float(duration), classes, slack_s)
            if bad:
                refused += [{"source_path": data.get("source_path") or data["clip_id"],
                             "reason": reason,
                             "detail": f"clip {data['clip_id'][:12]}, task {task_id}, annotator "
                                       f"{annotator}, region {k}: {detail} (annotation refused)"}
                            for k, reason, detail in bad]
                n_refused += 1
                continue
            lead = ann.get("lead_time")
            usable.append(RegionAnnotation(task_id, data["clip_id"], annotator, tuple(regions),
                                           float(lead) if isinstance(lead, int | float) else None))
    if problems:
        raise RegionExportError(source, problems)
    return usable, refused, n_refused


def _regions(result: list, duration: float, classes: Collection[str], slack_s: float
             ) -> tuple[list[SoundRegion], list[tuple[int, str, str]]]:
    """An annotation's regions (clipped to the clip) and ``(index, reason, detail)`` per bad
    one; index counts the annotation's region results."""
    entries = [r for r in result if isinstance(r, dict) and r.get("type") == "labels"
               and r.get("from_name") == LABELS]
    regions: list[tuple[int, SoundRegion]] = []
    bad: list[tuple[int, str, str]] = []
    for k, entry in enumerate(entries):
        value = entry.get("value")
        labels = value.get("labels") if isinstance(value, dict) else None
        if not (isinstance(value, dict) and {"start", "end"} <= set(value)
                and isinstance(labels, list) and labels
                and all(isinstance(x, str) for x in labels)):
            bad.append((k, "bad_region", f"{_short(value)}: needs start, end and labels"))
            continue
        regions += [(k, SoundRegion(label, value["start"], value["end"], "human"))
                    for label in labels]
    kept, problems = validate_regions([r for _, r in regions], clip_duration_s=duration,
                                      classes=set(classes), slack_s=slack_s)
    bad += [(regions[p.index][0], p.reason, p.detail) for p in problems]
    return kept, sorted(bad)


def annotations_by_clip(annotations: Iterable[RegionAnnotation]
                        ) -> dict[str, dict[str, RegionAnnotation]]:
    """``{clip_id: {annotator: annotation}}`` in order of first appearance; an annotator's
    last annotation of a clip wins (and moves last)."""
    by_clip: dict[str, dict[str, RegionAnnotation]] = {}
    for a in annotations:
        mine = by_clip.setdefault(a.clip_id, {})
        mine.pop(a.annotator, None)
        mine[a.annotator] = a
    return by_clip


def agrees(ious: Mapping[str, float], min_iou: float) -> bool:
    """Whether two annotations agree: every class either marked has IoU >= `min_iou`.

    >>> agrees({"speech": 0.9, "music": 0.6}, 0.5), agrees({"speech": 0.9, "dog": 0.0}, 0.5)
    (True, False)
    """
    return all(v >= min_iou for v in ious.values())


def review_clip(annotations: Sequence[RegionAnnotation], min_iou: float = 0.5
                ) -> tuple[str, RegionAnnotation | None]:
    """A clip's status and its accepted annotation (see the module's policy).

    >>> a = RegionAnnotation(1, "c", "1", (SoundRegion("speech", 0.0, 2.0, "human"),))
    >>> b = RegionAnnotation(1, "c", "2", (SoundRegion("music", 0.0, 2.0, "human"),))
    >>> c = RegionAnnotation(1, "c", "3", (SoundRegion("music", 0.1, 2.0, "human"),))
    >>> [(s, x and x.annotator) for s, x in (review_clip([a]), review_clip([a, b]),
    ...                                      review_clip([a, b, c]), review_clip([]))]
    [('accepted', '1'), ('disputed', None), ('accepted', '2'), ('unreviewed', None)]
    """
    if not annotations:
        return "unreviewed", None
    if len(annotations) == 1:
        return "accepted", annotations[0]
    best: tuple[int, float, int] | None = None
    for i, a in enumerate(annotations):
        means, agreeing = [], 0
        for j, b in enumerate(annotations):
            if i != j:
                ious = class_iou(a.regions, b.regions)
                agreeing += agrees(ious, min_iou)
                means.append(statistics.fmean(ious.values()) if ious else 1.0)
        key = (agreeing, statistics.fmean(means), -i)
        if agreeing and (best is None or key > best):
            best = key
    return ("accepted", annotations[-best[2]]) if best else ("disputed", None)


@dataclass(frozen=True)
class RegionDisagreement:
    """A class on which a clip's first two annotators disagree (IoU below ``min_iou``)."""

    clip_id: str
    task_id: int | None
    label: str
    iou: float
    annotators: tuple[str, str]


@dataclass(frozen=True)
class RegionAgreement:
    """Inter-annotator agreement over one batch's clips (their first two annotators)."""

    n_clips: int
    """Clips with at least one usable annotation."""
    n_double: int
    """Clips annotated by two or more: what the IoUs are over."""
    n_flagged: int
    """Clips routed to a second review."""
    n_flagged_done: int
    """Of those, the ones two annotators have done."""
    mean_iou: float | None
    """Mean over double-annotated clips of their mean class IoU."""
    class_iou: dict[str, float]
    """Per class, its mean IoU over the double-annotated clips where either marked it."""
    n_agreed: int
    """Double-annotated clips whose first two annotators agree on every class."""
    min_iou: float
    disagreements: list[RegionDisagreement] = field(default_factory=list)


@dataclass(frozen=True)
class PulledRegions:
    """What one batch's region tasks in Label Studio say."""

    n_tasks: int
    n_annotations: int
    """Usable annotations (refused ones are in ``refused``)."""
    rows: list[dict]
    """One row per task: the ``sound_region_reviews`` table's shape (without batch, project
    and time)."""
    report: RegionAgreement
    refused: list[dict]
    """Quarantine rows: one per problem of each refused annotation."""
    n_refused: int = 0
    """Annotations refused (a bad region)."""

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.rows)


def pull_region_reviews(
    tasks: Sequence[Any], *, classes: Collection[str], min_iou: float = 0.5,
    slack_s: float = 0.05, source: str | Path = "export",
) -> PulledRegions:
    """Annotations, agreement and each clip's status from exported region tasks (errors name
    `source`); `classes` are the labels the project offers."""
    usable, refused, n_refused = parse_region_export(list(tasks), classes=classes,
                                                     slack_s=slack_s, source=source)
    by_clip = annotations_by_clip(usable)
    rows, per_clip_iou, per_class, disagreements = [], [], {}, []
    flagged = done = agreed = 0
    for task in tasks:
        data = task["data"]
        mine = list(by_clip.get(data["clip_id"], {}).values())
        status, accepted = review_clip(mine, min_iou)
        ious = class_iou(mine[0].regions, mine[1].regions) if len(mine) >= 2 else None
        if ious is not None:
            agreed += agrees(ious, min_iou)
            per_clip_iou.append(statistics.fmean(ious.values()) if ious else 1.0)
            for label, iou in ious.items():
                per_class.setdefault(label, []).append(iou)
                if iou < min_iou:
                    disagreements.append(RegionDisagreement(
                        data["clip_id"], mine[0].task_id, label, iou,
                        (mine[0].annotator, mine[1].annotator)))
        flagged += bool(data.get(SECOND_REVIEW_FIELD))
        done += bool(data.get(SECOND_REVIEW_FIELD)) and len(mine) >= 2
        rows.append(_row(task, status, accepted, mine, ious))
    report = RegionAgreement(
        n_clips=sum(bool(v) for v in by_clip.values()), n_double=len(per_clip_iou),
        n_flagged=flagged, n_flagged_done=done,
        mean_iou=statistics.fmean(per_clip_iou) if per_clip_iou else None,
        class_iou={k: statistics.fmean(v) for k, v in sorted(per_class.items())},
        n_agreed=agreed,
        min_iou=min_iou, disagreements=disagreements)
    return PulledRegions(n_tasks=len(tasks), n_annotations=len(usable), rows=rows,
                         report=report, refused=refused, n_refused=n_refused)


def _spans(regions: Iterable[SoundRegion]) -> list[dict]:
    return [{"label": r.label, "start": r.start_s, "end": r.end_s} for r in regions]


def _row(task: Mapping[str, Any], status: str, accepted: RegionAnnotation | None,
         mine: list[RegionAnnotation], ious: dict[str, float] | None) -> dict:
    data = task["data"]
    task_id = task.get("id")
    sounds = None if accepted is None else [r for r in accepted.regions
                                            if r.label not in NOT_SOUNDS]
    return {
        "clip_id": data["clip_id"], "status": status,
        "regions": None if sounds is None else json.dumps(_spans(sounds)),
        "accepted_annotator": accepted.annotator if accepted else None,
        "n_annotations": len(mine), "annotators": [a.annotator for a in mine],
        "annotations": json.dumps({a.annotator: _spans(a.regions) for a in mine}),
        "class_iou": None if ious is None else json.dumps(
            {k: round(v, 4) for k, v in ious.items()}),
        "mean_iou": None if not ious else round(statistics.fmean(ious.values()), 4),
        "preannotation_source": data.get("preannotation_source"),
        "second_review": bool(data.get(SECOND_REVIEW_FIELD)),
        "task_id": task_id if isinstance(task_id, int) else None,
    }


def human_regions(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[SoundRegion]]:
    """The accepted regions per clip from ``sound_region_reviews`` rows: the chain's ``human``
    source (``region_rows(human=...)``). An accepted clip without regions maps to ``[]``: a
    person heard none of the classes. The last row of a clip wins."""
    out: dict[str, list[SoundRegion]] = {}
    for r in rows:
        if r["status"] == "accepted" and r["regions"] is not None:
            out[r["clip_id"]] = [SoundRegion(s["label"], float(s["start"]), float(s["end"]),
                                             "human") for s in json.loads(r["regions"])]
    return out


def disagreements_markdown(report: RegionAgreement, limit: int = 20) -> str:
    """The disagreements as a markdown table (clip, class, IoU; for Dagster metadata).

    >>> print(disagreements_markdown(RegionAgreement(1, 1, 1, 1, 0.4, {}, 0, 0.5, [
    ...     RegionDisagreement("c1" * 10, 7, "music", 0.25, ("1", "2"))])))
    | task | clip | class | IoU | annotators |
    |---|---|---|---|---|
    | 7 | c1c1c1c1c1c1 | music | 0.25 | 1, 2 |
    """
    if not report.disagreements:
        return "none"
    lines = ["| task | clip | class | IoU | annotators |", "|---|---|---|---|---|"]
    for d in report.disagreements[:limit]:
        lines.append(f"| {d.task_id} | {d.clip_id[:12]} | {d.label} | {d.iou:.2f} | "
                     f"{', '.join(d.annotators)} |")
    if len(report.disagreements) > limit:
        lines.append(f"\n... and {len(report.disagreements) - limit} more")
    return "\n".join(lines)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
