"""Human validation of any chain's questions in Label Studio, for assets to call: push
question rows as yes/no tasks, pull each question's status and the agreement back.

A chain's push asset calls :func:`push_questions` with its rows (``question_id``, ``media``,
``question``, ``options``, ``answer``; see :mod:`labeling.qc.question_checks`) and returns
the metadata it gives; its pull asset calls :func:`pull_questions`, stores the rows and
keeps only the ``accepted`` questions (:func:`labeling.qc.question_checks.validated`).
One project per media kind (its labeling config shows a ``Video``, ``Audio`` or ``Image``).

Example (in an asset, with a server running)::

    meta = push_questions(label_studio, rows, batch=batch)      # rows: list of dicts
    project, pulled = pull_questions(label_studio, batch=batch, kind="video")
    keep = validated(pulled.rows)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, is_dataclass
from typing import Any

from dagster import MetadataValue

from assets.qc import exported_tasks, import_tasks
from labeling.qc import question_checks as checks
from labeling.qc import tasks
from resources.label_studio import LabelStudio

DESCRIPTION = ("Answer yes if the question makes sense for the media and the marked answer is "
               "right, no otherwise (say why in the comment). Tasks with second_review = true "
               "need a second annotator.")


def project_title(kind: str) -> str:
    """The default project of a media kind's questions.

    >>> project_title("video")
    'rlfoundry: check the video questions'
    """
    return f"rlfoundry: check the {kind} questions"


def push_questions(
    label_studio: LabelStudio, rows: Iterable[Mapping[str, Any] | checks.QuestionRow], *,
    batch: str, kind: checks.MediaKind | None = None, project: str | None = None,
    share: float = 0.2, seed: int = 0,
) -> dict[str, Any]:
    """Push the questions of `batch` not in the project yet (created for the rows' media kind
    if missing: `kind`, else the first row's); returns the push's metadata."""
    rows = [asdict(r) if is_dataclass(r) and not isinstance(r, type) else dict(r) for r in rows]
    kind = kind or (checks.media_kind(rows[0]["media"]) if rows else None) or "video"
    title = project or project_title(kind)
    project_id = label_studio.ensure_project(title, checks.question_config_xml(kind), DESCRIPTION)
    there = {t["data"].get("question_id")
             for t in tasks.batch_tasks(label_studio.export_tasks(project_id), batch)}
    new = [r for r in rows if str(r["question_id"]) not in there]
    for directory in tasks.storage_dirs([r["media"] for r in new], label_studio.root):
        label_studio.ensure_local_storage(project_id, directory)
    pushed = checks.question_tasks(new, batch=batch, kind=kind, media_url=label_studio.media_url,
                                   share=share, seed=seed)
    flagged = import_tasks(label_studio, project_id, pushed)
    served = sum(t["data"][checks.MEDIA].startswith("/data/local-files/") for t in pushed)
    return {
        "project": MetadataValue.url(label_studio.project_url(project_id)),
        "project_id": project_id, "media_kind": kind, "questions": len(rows),
        "already_in_label_studio": len(rows) - len(new), "pushed": len(pushed),
        "second_review": len(flagged), "media_not_served": len(pushed) - served,
    }


def pull_questions(label_studio: LabelStudio, *, batch: str, kind: str = "video",
                   project: str | None = None) -> tuple[int, checks.PulledQuestions]:
    """The project's id and what its tasks of `batch` say (statuses, votes, agreement)."""
    title = project or project_title(kind)
    project_id, mine = exported_tasks(label_studio, title, batch, "the question push")
    return project_id, checks.pull_question_checks(
        mine, source=label_studio.project_url(project_id))


def pull_metadata(pulled: checks.PulledQuestions) -> dict[str, Any]:
    """A pull's counts, agreement and disagreements as Dagster metadata."""
    report = pulled.report

    def rounded(x: float | None) -> MetadataValue:
        return MetadataValue.null() if x is None else MetadataValue.float(round(x, 4))

    return {
        "tasks": pulled.n_tasks, "votes": pulled.n_votes,
        **{status: pulled.count(status) for status in checks.STATUSES},
        "annotations_without_answer": pulled.n_unanswered,
        "double_reviewed": report.n_double, "second_review_flagged": report.n_flagged,
        "second_review_done": report.n_flagged_done,
        "percent_agreement": rounded(report.percent), "cohens_kappa": rounded(report.kappa),
        "disagreements": MetadataValue.md(checks.disagreements_markdown(report)),
    }
