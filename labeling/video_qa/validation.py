"""The video chain's side of human validation: which questions go to Label Studio, how the
statuses that come back are stored, and which questions the dataset then keeps.

Policy:

* **One task per question, not per form.** Both forms of a question (multiple choice and
  open) share its ``group_id``, its question and its answer, so a person judges the question
  once: the task shows the whole video (the truth is in its last 30 %), the question, and its
  multiple-choice options with the marked letter (the open form, answer spelled out, when
  the question has no multiple-choice form). The task's ``question_id`` is the group id,
  and the status that comes back (``accepted``, ``rejected``, ``disputed``, ``unreviewed``:
  :mod:`labeling.qc.question_checks`) is every form's ``qc``
  (``sql/queries/video_questions_for_batch.sql`` joins it in).
* **Which statuses enter the dataset** (:func:`kept_states`), by the dataset's ``human_qc``
  setting: ``require_accepted`` (default) keeps only accepted questions *once the batch has
  any human verdict*; before anyone has answered, every question is ``unreviewed`` and all
  are kept, as before validation existed (the dataset's metadata says which case it is).
  ``drop_rejected`` drops the rejected ones alone (unreviewed, disputed and accepted stay);
  ``ignore`` keeps every status. A question made after the batch was reviewed (a re-run of
  ``video_questions`` with new wording) is ``unreviewed``: ``require_accepted`` leaves it out
  until it is pushed and answered.

Example:
    >>> questions = [
    ...     {"question_id": "q1c", "group_id": "g1", "form": "choice", "question": "Next?",
    ...      "options": ["up", "down", "left", "right"], "answer": "B", "answer_text": "down",
    ...      "source_path": "/v/a.mp4"},
    ...     {"question_id": "q1o", "group_id": "g1", "form": "open", "question": "Next? Say.",
    ...      "options": [], "answer": "down", "answer_text": "down", "source_path": "/v/a.mp4"},
    ...     {"question_id": "q2o", "group_id": "g2", "form": "open", "question": "Then?",
    ...      "options": [], "answer": "it stops", "answer_text": "it stops",
    ...      "source_path": "/v/b.mp4"}]
    >>> [(r["question_id"], r["options"], r["answer"]) for r in qc_rows(questions)]
    [('g1', ['up', 'down', 'left', 'right'], 'B'), ('g2', [], 'it stops')]
    >>> kept_states("require_accepted", reviewed=0), kept_states("require_accepted", reviewed=2)
    (('unreviewed', 'accepted'), ('accepted',))
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from labeling.video_qa.chain import QC_STATES

HumanQc = Literal["require_accepted", "drop_rejected", "ignore"]
VERDICT_COLUMNS = ("status", "verdict", "n_annotators", "n_yes", "agreement", "annotators",
                   "answers", "comments", "second_review", "task_id")


def qc_rows(questions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One validation row per question group (``question_id`` = the group id, ``media`` the
    video), its multiple-choice form when it has one, in the order groups first appear."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for q in questions:
        if q["group_id"] not in chosen or (q["form"] == "choice"
                                           and chosen[q["group_id"]]["form"] != "choice"):
            chosen[q["group_id"]] = q
    return [{"question_id": group, "media": q["source_path"], "question": q["question"],
             "options": list(q["options"] or []), "answer": q["answer"]}
            for group, q in chosen.items()]


def verdict_rows(pulled: Iterable[Mapping[str, Any]], *, project_id: int,
                 pulled_at: datetime) -> list[dict[str, Any]]:
    """``video_question_verdicts`` rows from the pulled question rows (the task's
    ``question_id`` is the group id)."""
    return [{"group_id": r["question_id"], **{k: r[k] for k in VERDICT_COLUMNS},
             "project_id": project_id, "pulled_at": pulled_at} for r in pulled]


def kept_states(mode: HumanQc, *, reviewed: int) -> tuple[str, ...]:
    """The ``qc`` statuses the dataset keeps under ``mode``, given how many of the batch's
    questions have a human verdict (``reviewed``: accepted, rejected or disputed).

    >>> kept_states("drop_rejected", reviewed=3), kept_states("ignore", reviewed=3)
    (('unreviewed', 'accepted', 'disputed'), ('unreviewed', 'accepted', 'rejected', 'disputed'))
    """
    if mode == "ignore":
        return QC_STATES
    if mode == "require_accepted":  # before any verdict: as before validation existed
        return ("accepted",) if reviewed else ("unreviewed", "accepted")
    if mode == "drop_rejected":
        return tuple(s for s in QC_STATES if s != "rejected")
    raise ValueError(f"human_qc must be 'require_accepted', 'drop_rejected' or 'ignore'; "
                     f"got {mode!r}")


def qc_note(mode: HumanQc, verdicts: Sequence[Mapping[str, Any]],
            questions: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, ...], str]:
    """The statuses kept and a sentence for the dataset's metadata saying why: ``verdicts``
    are the batch's ``video_question_verdicts`` rows, ``questions`` its question rows (``qc``
    joined in).

    >>> qs = [{"group_id": "g1", "qc": "unreviewed"}]
    >>> qc_note("require_accepted", [], qs)[1]  # doctest: +ELLIPSIS
    'no human verdict on this batch yet: every question kept (all unreviewed); ...'
    >>> states, note = qc_note("require_accepted", [{"group_id": "g0", "status": "accepted"}],
    ...                        qs)
    >>> states, note  # doctest: +ELLIPSIS
    (('accepted',), '1 question(s) with a human verdict (accepted: 1); only accepted kept; ...')
    """
    statuses = Counter(v["status"] for v in verdicts if v["status"] != "unreviewed")
    reviewed = sum(statuses.values())
    states = kept_states(mode, reviewed=reviewed)
    if mode == "ignore":
        return states, "human_qc = ignore: every question kept whatever its status"
    if not reviewed:
        return states, ("no human verdict on this batch yet: every question kept (all "
                        "unreviewed); run video_qc_push, answer in Label Studio, then "
                        "video_qc_pull" + ("; from then on only accepted ones are kept"
                                           if mode == "require_accepted" else ""))
    counts = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
    known = {v["group_id"] for v in verdicts}
    stale = len(known - {q["group_id"] for q in questions})
    later = len({q["group_id"] for q in questions} - known)
    return states, (
        f"{reviewed} question(s) with a human verdict ({counts}); "
        + ("only accepted kept" if mode == "require_accepted" else "rejected left out")
        + f"; {later} question(s) never pushed, {stale} verdict(s) on questions no longer "
        "in video_questions")
