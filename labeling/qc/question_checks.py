"""Human validation of generated questions in Label Studio: "does this question make sense,
and is the marked answer right?", yes or no, for any chain (video, audio or image).

Plain in, plain out: rows are mappings (or :class:`QuestionRow`) with ``question_id``,
``media`` (a path to the video, audio clip or image), ``question``, ``options`` (a list,
empty for an open question) and ``answer`` (the right option's letter, or the answer text
of an open question); nothing here knows which chain made them.

* One task per question: the media (``Video``, ``Audio`` or ``Image`` tag, one kind per
  project: :func:`question_config_xml`), the question, the options lettered A, B, ... as
  text, the marked answer spelled out, a required yes/no ``Choices`` (**not** pre-selected:
  a pre-selected yes invites rubber-stamping) and an optional comment. ``data`` carries the
  ``question_id``, ``batch`` and ``second_review`` (:mod:`labeling.qc.review`, keyed by the
  question id) besides what is shown.
* A **vote** is one annotator's yes/no; cancelled annotations and annotations without a
  choice are not votes (an annotator's last vote wins). A question's **status**:
  ``accepted`` (majority yes), ``rejected`` (majority no), ``disputed`` (an even split: no
  verdict) or ``unreviewed`` (no vote yet). Only accepted questions are validated
  (:func:`validated`).
* **Agreement** over the questions two or more people answered (the second-review share),
  their first two votes: the share where both agree, and Cohen's kappa
  (:mod:`labeling.qc.agreement`; None when both only ever said the same one thing).

Example:
    >>> row = {"question_id": "q1", "media": "/m/clip.mp4", "question": "What happens next?",
    ...        "options": ["it stops", "it bounces", "it melts", "it flies"], "answer": "B"}
    >>> (task,) = question_tasks([row], batch="b1", share=1.0)
    >>> print(task["data"]["options_text"])
    A. it stops
    B. it bounces
    C. it melts
    D. it flies
    >>> task["data"]["answer_text"], task["data"]["second_review"]
    ('Marked answer: B. it bounces', True)
    >>> task["id"], task["annotations"] = 9, [
    ...     {"completed_by": u, "result": [choice_result(a)]} for u, a in [(1, "yes"), (2, "no")]]
    >>> pulled = pull_question_checks([task])
    >>> pulled.rows[0]["status"], pulled.report.percent, validated(pulled.rows)
    ('disputed', 0.0, set())
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Literal

from labeling.qc.agreement import cohens_kappa, percent_agreement
from labeling.qc.export import LabelStudioExportError, annotation
from labeling.qc.point_verdicts import majority
from labeling.qc.review import SECOND_REVIEW_FIELD, second_review

MediaKind = Literal["video", "audio", "image"]
#: Names of the labeling config's tags (the results' ``from_name``/``to_name``).
MEDIA, QUESTION, VALID, COMMENT = "media", "question", "valid", "comment"
ANSWERS = ("yes", "no")
STATUSES = ("accepted", "rejected", "disputed", "unreviewed")
LETTERS = "ABCDEFGHIJ"
_TAGS = {"video": "Video", "audio": "Audio", "image": "Image"}
_EXTENSIONS = {
    "video": {".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v", ".ogv"},
    "audio": {".wav", ".ogg", ".oga", ".flac", ".mp3", ".m4a", ".opus", ".aac"},
    "image": {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"},
}
PROMPT = "Does this question make sense, and is the marked answer right?"


@dataclass(frozen=True)
class QuestionRow:
    """A question to validate (what :func:`question_tasks` takes; a plain dict works too).

    >>> QuestionRow("q1", "/m/a.wav", "Which sound is longest?", ["dog", "rain"], "A").answer
    'A'
    """

    question_id: str
    media: str
    question: str
    options: Sequence[str] = ()
    """Empty for an open question."""
    answer: str = ""
    """The right option's letter, or the answer of an open question."""


def media_kind(path: str) -> MediaKind | None:
    """The kind of a media file by its extension (None: unknown).

    >>> media_kind("/m/a.MP4"), media_kind("b.ogg"), media_kind("c.jpeg"), media_kind("d.txt")
    ('video', 'audio', 'image', None)
    """
    suffix = Path(str(path).split("?", 1)[0]).suffix.lower()
    return next((k for k, exts in _EXTENSIONS.items() if suffix in exts), None)  # type: ignore


def question_config_xml(kind: MediaKind = "video") -> str:
    """The labeling config for questions about one kind of media.

    >>> xml = question_config_xml("audio")
    >>> '<Audio name="media" value="$media"' in xml, 'name="valid"' in xml
    (True, True)
    """
    if kind not in _TAGS:
        raise ValueError(f"media kind must be one of {sorted(_TAGS)}, got {kind!r}")
    extra = ' zoom="true" zoomControl="true"' if kind == "image" else ""
    return (
        "<View>\n"
        f'  <Header value="{PROMPT}"/>\n'
        f'  <{_TAGS[kind]} name="{MEDIA}" value="$media"{extra}/>\n'
        f'  <Text name="{QUESTION}" value="$question"/>\n'
        '  <Text name="options" value="$options_text"/>\n'
        '  <Text name="answer" value="$answer_text"/>\n'
        f'  <Choices name="{VALID}" toName="{QUESTION}" choice="single-radio" required="true" '
        'showInline="true">\n'
        '    <Choice value="yes" hotkey="y"/>\n'
        '    <Choice value="no" hotkey="n"/>\n'
        "  </Choices>\n"
        f'  <TextArea name="{COMMENT}" toName="{QUESTION}" maxSubmissions="1" '
        'placeholder="If no: what is wrong? (optional)"/>\n'
        "</View>\n"
    )


def _plain(row: Any) -> Mapping[str, Any]:
    return asdict(row) if is_dataclass(row) and not isinstance(row, type) else row


def options_text(options: Sequence[str]) -> str:
    """The options as lettered lines ("" for an open question).

    >>> options_text(["red", "blue"])
    'A. red\\nB. blue'
    """
    if len(options) > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} options, got {len(options)}")
    return "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))


def answer_text(options: Sequence[str], answer: str) -> str:
    """The marked answer spelled out; a letter outside the options raises ``ValueError``.

    >>> answer_text(["red", "blue"], "b"), answer_text([], "3.5 seconds")
    ('Marked answer: B. blue', 'Marked answer: 3.5 seconds')
    """
    if not options:
        return f"Marked answer: {answer}"
    letter = str(answer).strip().upper()
    if len(letter) != 1 or LETTERS.find(letter) not in range(len(options)):
        raise ValueError(f"answer {answer!r} is not the letter of one of {len(options)} options")
    return f"Marked answer: {letter}. {options[LETTERS.index(letter)]}"


def question_tasks(
    rows: Iterable[Mapping[str, Any] | QuestionRow],
    *,
    batch: str,
    kind: MediaKind | None = None,
    media_url: Callable[[str], str | None] | None = None,
    share: float = 0.2,
    seed: int = 0,
) -> list[dict]:
    """Import-ready tasks for question rows (see the module). `kind` is the project's media
    kind (None: the first row's, by extension); a row of another kind, an unknown
    extension, or an answer that is not one of its options' letters raises ``ValueError``
    naming the question. `media_url` turns a path into the URL Label Studio serves it at
    (None keeps the path)."""
    tasks = []
    for row in map(_plain, rows):
        qid, path = str(row["question_id"]), str(row["media"])
        found = media_kind(path)
        kind = kind or found
        if found is None or found != kind:
            raise ValueError(f"question {qid}: media {path!r} is "
                             f"{found or 'of an unknown kind'}, the project shows {kind}: "
                             "push each kind of media to a project of its own")
        options = [str(o) for o in row.get("options") or []]
        try:
            marked = answer_text(options, str(row["answer"]))
        except ValueError as exc:
            raise ValueError(f"question {qid}: {exc}") from None
        tasks.append({"data": {
            MEDIA: (media_url(path) if media_url else None) or path,
            QUESTION: str(row["question"]), "options_text": options_text(options),
            "answer_text": marked, "question_id": qid, "media_path": path,
            "options": options, "answer": str(row["answer"]), "batch": batch,
            SECOND_REVIEW_FIELD: second_review(qid, share, seed)}})
    return tasks


def choice_result(answer: str) -> dict:
    """The yes/no answer as the UI writes it (``{"choices": ["yes"]}``)."""
    return {"from_name": VALID, "to_name": QUESTION, "type": "choices", "origin": "manual",
            "value": {"choices": [answer]}}


def comment_result(text: str) -> dict:
    """A comment as the UI writes a ``TextArea`` result."""
    return {"from_name": COMMENT, "to_name": QUESTION, "type": "textarea", "origin": "manual",
            "value": {"text": [text]}}


# --------------------------------------------------------------------------- pulling back


class QuestionExportError(LabelStudioExportError):
    """A question-check export that cannot be read; ``problems`` lists each one."""

    kind = "question-check"


@dataclass(frozen=True)
class QuestionVote:
    """One annotator's answer on one question."""

    task_id: int | None
    question_id: str
    annotator: str
    answer: str
    """'yes' or 'no'."""
    comment: str | None = None


def parse_question_export(tasks: Any, source: str | Path = "export"
                          ) -> tuple[list[QuestionVote], int]:
    """The votes in exported tasks, in export order, and how many annotations had no answer;
    anything malformed raises :class:`QuestionExportError` listing every problem."""
    if not isinstance(tasks, list):
        raise QuestionExportError(source, [f"top level is a JSON {type(tasks).__name__}, "
                                           "expected a list of tasks (export as JSON)"])
    problems: list[str] = []
    votes: list[QuestionVote] = []
    unanswered = 0
    for i, task in enumerate(tasks):
        where = f"task #{i} (id={task.get('id') if isinstance(task, dict) else None})"
        data = task.get("data") if isinstance(task, dict) else None
        qid = data.get("question_id") if isinstance(data, dict) else None
        if not isinstance(qid, str) or not qid:
            problems.append(f"{where}: data.question_id missing (not a task rlfoundry pushed)")
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
            before = len(problems)
            vote = _vote(*checked, problems)
            if vote is not None:
                votes.append(QuestionVote(task_id, qid, checked[1], *vote))
            elif len(problems) == before:  # no choice made (a comment alone, or nothing)
                unanswered += 1
    if problems:
        raise QuestionExportError(source, problems)
    return votes, unanswered


def _vote(where: str, annotator: str, result: list, problems: list[str]
          ) -> tuple[str, str | None] | None:
    """(answer, comment), or None: without an answer, or malformed (a problem recorded)."""
    def mine(kind: str, name: str) -> list[dict]:
        return [r for r in result if isinstance(r, dict) and r.get("type") == kind
                and r.get("from_name") == name]

    choices = mine("choices", VALID)
    if len(choices) > 1:
        problems.append(f"{where}: {len(choices)} answers to {VALID!r}, expected one")
        return None
    if not choices:
        return None
    value = choices[0].get("value")
    picked = value.get("choices") if isinstance(value, dict) else None
    if not (isinstance(picked, list) and len(picked) == 1 and picked[0] in ANSWERS):
        problems.append(f"{where}: answer {picked!r} is not one of {list(ANSWERS)}")
        return None
    texts = [t for r in mine("textarea", COMMENT) if isinstance(r.get("value"), dict)
             for t in r["value"].get("text") or [] if isinstance(t, str) and t.strip()]
    return picked[0], " ".join(t.strip() for t in texts) or None


@dataclass(frozen=True)
class QuestionDisagreement:
    """A question whose annotators did not all answer the same."""

    question_id: str
    task_id: int | None
    votes: dict[str, str]
    tied: bool


@dataclass(frozen=True)
class QuestionAgreement:
    """Inter-annotator agreement over one batch's questions."""

    n_questions: int
    """Questions with at least one vote."""
    n_double: int
    """Questions answered by two or more: what percent and kappa are over."""
    n_flagged: int
    n_flagged_done: int
    percent: float | None
    """Share of double-answered questions whose first two votes agree."""
    kappa: float | None
    disagreements: list[QuestionDisagreement] = field(default_factory=list)


@dataclass(frozen=True)
class PulledQuestions:
    """What one batch's question tasks in Label Studio say."""

    n_tasks: int
    n_votes: int
    n_unanswered: int
    """Annotations submitted without a yes/no (not votes)."""
    rows: list[dict]
    """One row per task, with its ``status``."""
    report: QuestionAgreement

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.rows)


def pull_question_checks(tasks: Sequence[Any], source: str | Path = "export") -> PulledQuestions:
    """Votes, statuses and agreement of exported question tasks (errors name `source`)."""
    votes, unanswered = parse_question_export(list(tasks), source)
    by_question: dict[str, dict[str, QuestionVote]] = {}
    for v in votes:
        mine = by_question.setdefault(v.question_id, {})
        mine.pop(v.annotator, None)
        mine[v.annotator] = v
    rows, ratings, disagreements = [], [], []
    flagged = done = 0
    for task in tasks:
        data = task["data"]
        mine = list(by_question.get(data["question_id"], {}).values())
        answers = [v.answer for v in mine]
        verdict = majority(answers)[0] if mine else None
        if len(mine) >= 2:
            ratings.append((answers[0], answers[1]))
        if len(set(answers)) > 1:
            disagreements.append(QuestionDisagreement(
                data["question_id"], mine[0].task_id, {v.annotator: v.answer for v in mine},
                verdict is None))
        flagged += bool(data.get(SECOND_REVIEW_FIELD))
        done += bool(data.get(SECOND_REVIEW_FIELD)) and len(mine) >= 2
        rows.append(_row(task, verdict, mine))
    report = QuestionAgreement(
        n_questions=sum(bool(v) for v in by_question.values()), n_double=len(ratings),
        n_flagged=flagged, n_flagged_done=done, percent=percent_agreement(ratings),
        kappa=cohens_kappa(ratings), disagreements=disagreements)
    return PulledQuestions(n_tasks=len(tasks), n_votes=len(votes), n_unanswered=unanswered,
                           rows=rows, report=report)


def _row(task: Mapping[str, Any], verdict: str | None, votes: list[QuestionVote]) -> dict:
    data = task["data"]
    task_id = task.get("id")
    status = ("unreviewed" if not votes else "disputed" if verdict is None
              else "accepted" if verdict == "yes" else "rejected")
    n_agree = sum(v.answer == verdict for v in votes) if verdict else len(votes) // 2
    return {
        "question_id": data["question_id"], "status": status, "verdict": verdict,
        "n_annotators": len(votes), "n_yes": sum(v.answer == "yes" for v in votes),
        "agreement": n_agree / len(votes) if votes else None,
        "annotators": [v.annotator for v in votes], "answers": [v.answer for v in votes],
        "comments": json.dumps({v.annotator: v.comment for v in votes if v.comment}),
        "second_review": bool(data.get(SECOND_REVIEW_FIELD)),
        "task_id": task_id if isinstance(task_id, int) else None,
    }


def validated(rows: Iterable[Mapping[str, Any]]) -> set[str]:
    """The ids of the accepted questions: the only ones that count as validated."""
    return {r["question_id"] for r in rows if r["status"] == "accepted"}


def statuses(question_ids: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Every question's status, ``unreviewed`` for those not in Label Studio (yet).

    >>> statuses(["q1", "q2"], [{"question_id": "q1", "status": "rejected"}])
    {'q1': 'rejected', 'q2': 'unreviewed'}
    """
    known = {r["question_id"]: r["status"] for r in rows}
    return {q: known.get(q, "unreviewed") for q in question_ids}


def disagreements_markdown(report: QuestionAgreement, limit: int = 20) -> str:
    """The disagreements as a markdown table (for Dagster metadata), at most `limit` rows.

    >>> print(disagreements_markdown(QuestionAgreement(1, 1, 1, 1, 0.0, None, [
    ...     QuestionDisagreement("q1", 7, {"1": "yes", "2": "no"}, True)])))
    | task | question | votes | tied |
    |---|---|---|---|
    | 7 | q1 | 1: yes; 2: no | yes |
    """
    if not report.disagreements:
        return "none"
    lines = ["| task | question | votes | tied |", "|---|---|---|---|"]
    for d in report.disagreements[:limit]:
        votes = "; ".join(f"{who}: {answer}" for who, answer in d.votes.items())
        lines.append(f"| {d.task_id} | {d.question_id[:16]} | {votes} | "
                     f"{'yes' if d.tied else 'no'} |")
    if len(report.disagreements) > limit:
        lines.append(f"\n... and {len(report.disagreements) - limit} more")
    return "\n".join(lines)
