"""Pulling point QC back: exported tasks -> votes -> a verdict per point, agreement, and the
points the pointing dataset keeps.

* A **vote** is one annotator's yes/no on one task (the ``Choices`` result
  ``{"choices": ["yes"]}``); cancelled (skipped) annotations and annotations
  without an answer are not votes. An annotator's last vote on a point wins.
* A point's **verdict** is the majority of its voters; an even split (1-1)
  gives none (``verdict`` NULL). ``agreement`` is the share of voters who
  agree with the majority, as in the speech QC.
* Agreement **between annotators** is computed over the points two or more
  people answered (the second-review share): percent agreement and Cohen's
  kappa of the first two voters (:mod:`labeling.qc.agreement`).
* The dataset (:func:`filter_points`): ``require_yes`` keeps, once a batch has
  verdicts, only the points whose verdict is yes; ``drop_no`` drops the
  refused points and keeps the rest; ``ignore`` uses geometric verification
  alone. A verdict is matched to a point by image, phrase and location
  (:func:`labeling.qc.points.point_id`), which is what the question was about.

Reading is all-or-nothing, as for the pairwise export: any malformed task or
annotation raises :class:`PointExportError` listing every problem.

Example:
    >>> from labeling.qc.points import choices_result
    >>> task = {"id": 7, "data": {"point_id": "p1", "image_id": "im", "region": 0, "point": 0,
    ...                           "phrase": "cup", "x": 2.5, "y": 1.5, "second_review": True},
    ...         "annotations": [{"completed_by": u, "result": [choices_result(a)]}
    ...                         for u, a in [(1, "yes"), (2, "yes"), (3, "no")]]}
    >>> pulled = pull_point_verdicts([task])
    >>> row = pulled.rows[0]
    >>> row["verdict"], row["n_yes"], round(row["agreement"], 3), row["annotators"]
    ('yes', 2, 0.667, ['1', '2', '3'])
    >>> pulled.report.n_double, pulled.report.percent
    (1, 1.0)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from labeling.qc.agreement import cohens_kappa, percent_agreement
from labeling.qc.export import LabelStudioExportError, annotation
from labeling.qc.points import ANSWERS, CHOICES, point_id
from labeling.qc.review import SECOND_REVIEW_FIELD

QcMode = Literal["require_yes", "drop_no", "ignore"]


class PointExportError(LabelStudioExportError):
    """A point-QC export that cannot be read; ``problems`` lists each one."""

    kind = "point-QC"


@dataclass(frozen=True)
class PointVote:
    """One annotator's answer on one point."""

    task_id: int | None
    point_id: str
    annotator: str
    """``completed_by``: the user's email when the export has it, else the user id."""
    answer: str
    """'yes' or 'no'."""
    lead_time: float | None = None


def parse_point_export(tasks: Any, source: str | Path = "export") -> list[PointVote]:
    """The votes in exported tasks (``[{id, data, annotations}, ...]``), in export order."""
    if not isinstance(tasks, list):
        raise PointExportError(source, [f"top level is a JSON {type(tasks).__name__}, expected "
                                        "a list of tasks (export as JSON)"])
    problems: list[str] = []
    votes: list[PointVote] = []
    for i, task in enumerate(tasks):
        votes += _task_votes(i, task, problems)
    if problems:
        raise PointExportError(source, problems)
    return votes


def _task_votes(i: int, task: Any, problems: list[str]) -> list[PointVote]:
    where = f"task #{i} (id={task.get('id') if isinstance(task, dict) else None})"
    data = task.get("data") if isinstance(task, dict) else None
    if not isinstance(data, dict):
        problems.append(f"{where}: not an object with a 'data' object")
        return []
    pid = data.get("point_id")
    if not isinstance(pid, str) or not pid:
        problems.append(f"{where}: data.point_id missing (not a task rlfoundry pushed)")
        return []
    annotations = task.get("annotations") or []
    if not isinstance(annotations, list):
        problems.append(f"{where}: 'annotations' is not a list")
        return []
    task_id = task.get("id") if isinstance(task.get("id"), int) else None
    votes = []
    for j, ann in enumerate(annotations):
        vote = _vote(f"{where}, annotation #{j}", ann, problems)
        if vote is not None:
            votes.append(PointVote(task_id, pid, *vote))
    return votes


def _vote(where: str, ann: Any, problems: list[str]) -> tuple[str, str, float | None] | None:
    checked = annotation(where, ann, problems)
    if checked is None:
        return None
    where, annotator, result = checked
    choices = [r for r in result if isinstance(r, dict) and r.get("type") == "choices"
               and r.get("from_name") == CHOICES]
    if len(choices) > 1:
        problems.append(f"{where}: {len(choices)} answers to {CHOICES!r}, expected one")
        return None
    if not choices or annotator is None:
        return None
    value = choices[0].get("value")
    picked = value.get("choices") if isinstance(value, dict) else None
    if not (isinstance(picked, list) and len(picked) == 1 and picked[0] in ANSWERS):
        problems.append(f"{where}: answer {picked!r} is not one of {list(ANSWERS)}")
        return None
    lead = ann.get("lead_time")
    return annotator, picked[0], float(lead) if isinstance(lead, int | float) else None


def votes_by_point(votes: Iterable[PointVote]) -> dict[str, dict[str, PointVote]]:
    """``{point_id: {annotator: vote}}`` in order of first appearance; an annotator's last vote
    on a point wins (and moves last, as in :func:`labeling.qc.pairwise.votes_by_pair`)."""
    by_point: dict[str, dict[str, PointVote]] = {}
    for v in votes:
        mine = by_point.setdefault(v.point_id, {})
        mine.pop(v.annotator, None)
        mine[v.annotator] = v
    return by_point


def majority(answers: Sequence[str]) -> tuple[str | None, int]:
    """(the majority answer or None on an even split, how many gave the top answer).

    >>> majority(["yes", "no", "yes"]), majority(["yes", "no"])
    (('yes', 2), (None, 1))
    """
    (top, n_top), *rest = Counter(answers).most_common()
    return (None if rest and rest[0][1] == n_top else top), n_top


@dataclass(frozen=True)
class PointDisagreement:
    """A point whose annotators did not all answer the same."""

    point_id: str
    image_id: str | None
    phrase: str | None
    task_id: int | None
    votes: dict[str, str]
    tied: bool


@dataclass(frozen=True)
class PointAgreement:
    """Inter-annotator agreement over one batch's points."""

    n_points: int
    """Points with at least one vote."""
    n_double: int
    """Points answered by two or more annotators: what percent and kappa are over."""
    n_flagged: int
    """Points routed to a second review."""
    n_flagged_done: int
    """Of those, the ones two annotators have answered."""
    percent: float | None
    kappa: float | None
    disagreements: list[PointDisagreement] = field(default_factory=list)


@dataclass(frozen=True)
class PulledPoints:
    """What one batch's tasks in Label Studio say."""

    n_tasks: int
    n_votes: int
    rows: list[dict]
    """One row per point with a vote: the ``point_verdicts`` table's shape (without batch,
    project and time)."""
    report: PointAgreement

    def count(self, verdict: str | None) -> int:
        return sum(r["verdict"] == verdict for r in self.rows)


def pull_point_verdicts(tasks: Sequence[Any], source: str | Path = "export") -> PulledPoints:
    """Votes, verdicts and agreement of exported point tasks (errors name `source`)."""
    by_point = votes_by_point(parse_point_export(list(tasks), source))
    info = {t["data"]["point_id"]: t for t in tasks}
    flagged = {p for p, t in info.items() if t["data"].get(SECOND_REVIEW_FIELD)}
    rows, ratings, disagreements = [], [], []
    for pid, by_annotator in by_point.items():
        votes = list(by_annotator.values())
        answers = [v.answer for v in votes]
        verdict, n_agree = majority(answers)
        task = info[pid]
        if len(votes) >= 2:
            ratings.append((answers[0], answers[1]))
        if len(set(answers)) > 1:
            disagreements.append(PointDisagreement(
                pid, task["data"].get("image_id"), task["data"].get("phrase"), votes[0].task_id,
                {v.annotator: v.answer for v in votes}, verdict is None))
        rows.append(_row(task, verdict, votes, n_agree))
    double = {p for p, by in by_point.items() if len(by) >= 2}
    report = PointAgreement(
        n_points=len(by_point), n_double=len(double), n_flagged=len(flagged),
        n_flagged_done=len(flagged & double), percent=percent_agreement(ratings),
        kappa=cohens_kappa(ratings), disagreements=disagreements)
    return PulledPoints(n_tasks=len(tasks), n_votes=sum(len(v) for v in by_point.values()),
                        rows=rows, report=report)


def _row(task: Mapping[str, Any], verdict: str | None, votes: list[PointVote],
         n_agree: int) -> dict:
    data = task["data"]
    task_id = task.get("id")
    return {
        "point_id": data["point_id"], "image_id": data.get("image_id"),
        "region": data.get("region"), "point": data.get("point"), "phrase": data.get("phrase"),
        "x": data.get("x"), "y": data.get("y"), "verdict": verdict,
        "n_annotators": len(votes), "n_yes": sum(v.answer == "yes" for v in votes),
        "n_agree": n_agree, "agreement": n_agree / len(votes),
        "annotators": [v.annotator for v in votes], "answers": [v.answer for v in votes],
        "second_review": bool(data.get(SECOND_REVIEW_FIELD)),
        "task_id": task_id if isinstance(task_id, int) else None,
    }


def disagreements_markdown(report: PointAgreement, limit: int = 20) -> str:
    """The disagreements as a markdown table (for Dagster metadata), at most `limit` rows.

    >>> print(disagreements_markdown(PointAgreement(1, 1, 1, 1, 0.0, None, [
    ...     PointDisagreement("p1", "im1", "red cup", 7, {"1": "yes", "2": "no"}, True)])))
    | task | image | phrase | votes | tied |
    |---|---|---|---|---|
    | 7 | im1 | red cup | 1: yes; 2: no | yes |
    """
    if not report.disagreements:
        return "none"
    lines = ["| task | image | phrase | votes | tied |", "|---|---|---|---|---|"]
    for d in report.disagreements[:limit]:
        votes = "; ".join(f"{who}: {answer}" for who, answer in d.votes.items())
        phrase = (d.phrase or "").replace("|", "\\|")
        lines.append(f"| {d.task_id} | {(d.image_id or '')[:12]} | {phrase} | {votes} | "
                     f"{'yes' if d.tied else 'no'} |")
    if len(report.disagreements) > limit:
        lines.append(f"\n... and {len(report.disagreements) - limit} more")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the dataset


def verdict_lookup(rows: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """``point_verdicts`` rows by the id of the point they judge (the last row wins)."""
    return {point_id(r["image_id"], r["phrase"], r["x"], r["y"]): r for r in rows}


def filter_points(
    regions: Sequence[Mapping[str, Any]], verdicts: Mapping[str, Mapping[str, Any]],
    mode: QcMode = "require_yes",
) -> tuple[list[dict], list[dict]]:
    """(`regions` with the points `mode` keeps, the points left out) for region rows with
    ``image_id``, ``phrase`` and ``points`` (a list of ``[x, y]``). A left-out point is
    ``{image_id, phrase, x, y, reason, detail}``, `reason` one of ``qc_rejected`` (verdict
    no), ``qc_tied`` and ``qc_unreviewed`` (``require_yes`` only). Without any verdict,
    ``require_yes`` keeps everything: a batch nobody reviewed still builds.

    >>> regions = [{"image_id": "im", "phrase": "cup", "points": [[1.5, 1.5], [2.5, 1.5]]},
    ...            {"image_id": "im", "phrase": "dog", "points": [[4.5, 0.5]]}]
    >>> verdicts = verdict_lookup([{"image_id": "im", "phrase": "cup", "x": 1.5, "y": 1.5,
    ...                             "verdict": "no", "annotators": ["1"], "answers": ["no"]},
    ...                            {"image_id": "im", "phrase": "dog", "x": 4.5, "y": 0.5,
    ...                             "verdict": "yes", "annotators": ["1"], "answers": ["yes"]}])
    >>> kept, out = filter_points(regions, verdicts)
    >>> [r["points"] for r in kept], [(o["x"], o["reason"]) for o in out]
    ([[], [[4.5, 0.5]]], [(1.5, 'qc_rejected'), (2.5, 'qc_unreviewed')])
    >>> [r["points"] for r in filter_points(regions, verdicts, "drop_no")[0]]
    [[[2.5, 1.5]], [[4.5, 0.5]]]
    """
    if mode == "ignore" or not verdicts:
        return [dict(r) for r in regions], []
    kept, out = [], []
    for region in regions:
        points = []
        for x, y in region["points"]:
            v = verdicts.get(point_id(region["image_id"], region["phrase"], x, y))
            verdict = v["verdict"] if v else None
            reason = ("qc_rejected" if verdict == "no" else None if verdict == "yes"
                      else ("qc_tied" if v else "qc_unreviewed") if mode == "require_yes"
                      else None)
            if reason is None:
                points.append([x, y])
                continue
            votes = ", ".join(f"{a}: {b}" for a, b in zip(v["annotators"], v["answers"],
                                                           strict=True)) if v else "none"
            out.append({"image_id": region["image_id"], "phrase": region["phrase"], "x": x,
                        "y": y, "reason": reason,
                        "detail": f"point ({x:g}, {y:g}) on {region['phrase']!r}: votes {votes}"})
        kept.append({**region, "points": points})
    return kept, out


def example_qc(image_id: str, phrase: str, points: Sequence[Sequence[Sequence[float]]],
               verdicts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The QC columns of a ``pointing_examples`` row whose ``points[i]`` are the points of
    mask i: ``qc_verdicts`` (JSON, per mask, per point: null or ``{"verdict", "votes"}``),
    ``qc_annotators`` (who answered on any of its points) and ``human_verified`` (every point
    has a yes verdict).

    >>> v = verdict_lookup([{"image_id": "im", "phrase": "cup", "x": 1.5, "y": 1.5,
    ...                      "verdict": "yes", "annotators": ["1", "2"],
    ...                      "answers": ["yes", "yes"]}])
    >>> qc = example_qc("im", "cup", [[[1.5, 1.5]]], v)
    >>> qc["qc_verdicts"], qc["qc_annotators"], qc["human_verified"]
    ('[[{"verdict": "yes", "votes": {"1": "yes", "2": "yes"}}]]', ['1', '2'], True)
    >>> example_qc("im", "cup", [[[2.5, 1.5]]], v)["human_verified"]
    False
    """
    per_mask, annotators, all_yes = [], {}, bool(points)
    for mask_points in points:
        marks = []
        for x, y in mask_points:
            v = verdicts.get(point_id(image_id, phrase, x, y))
            all_yes = all_yes and bool(v) and v["verdict"] == "yes"
            if v is None:
                marks.append(None)
                continue
            votes = dict(zip(v["annotators"], v["answers"], strict=True))
            annotators.update(dict.fromkeys(votes))
            marks.append({"verdict": v["verdict"], "votes": votes})
        per_mask.append(marks)
    return {"qc_verdicts": json.dumps(per_mask), "qc_annotators": list(annotators),
            "human_verified": all_yes}
