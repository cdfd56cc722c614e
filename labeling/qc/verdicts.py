"""Pulling QC back: a batch's annotated tasks -> verdict rows, agreement, and merged pairs.

A *verdict* is the majority of a pair's annotators (ties give none). The
``pairwise_verdicts`` table holds one row per verdict; ``preference_pairs``
reads it and :func:`apply_verdicts` lets each verdict replace the mined pair
of the same clip and texts, in whichever direction the humans chose.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeling.qc.agreement import AgreementReport, agreement_report
from labeling.qc.export import parse_pairwise_export
from labeling.qc.pairwise import AggregatedPreference, PreferenceSummary, summarize, votes_by_pair
from labeling.qc.review import SECOND_REVIEW_FIELD
from labeling.qc.tasks import MODEL_CHOICE, task_pair_id


@dataclass(frozen=True)
class Pulled:
    """What one batch's tasks in Label Studio say."""

    n_tasks: int
    n_votes: int
    summary: PreferenceSummary
    report: AgreementReport
    rows: list[dict]
    """Verdict rows, the ``pairwise_verdicts`` table's shape (without batch and time)."""

    @property
    def n_agree_with_model(self) -> int:
        return sum(bool(r["agrees_with_model"]) for r in self.rows)


def pull_verdicts(tasks: Sequence[Any], source: str | Path = "export") -> Pulled:
    """Votes, verdicts and agreement of exported tasks (errors name `source`).

    >>> from labeling.qc.tasks import pairwise_result, qc_tasks
    >>> (t,) = qc_tasks([{"pair_id": "p1", "clip_id": "c1", "audio": "/c1.wav",
    ...                   "chosen": "the cat", "rejected": "the cap"}], batch="b", share=1.0)
    >>> t["id"], t["annotations"] = 5, [
    ...     {"completed_by": u, "result": [pairwise_result(s)]} for u, s in [(1, "left"),
    ...                                                                       (2, "right")]]
    >>> p = pull_verdicts([t])
    >>> p.rows, p.summary.tied_pair_ids, p.report.percent
    ([], ['p1'], 0.0)
    """
    prefs = parse_pairwise_export(list(tasks), source)
    info = {task_pair_id(t["data"]): t for t in tasks}
    model_text = {pid: _model_text(t) for pid, t in info.items()}
    flagged = [pid for pid, t in info.items() if t["data"].get(SECOND_REVIEW_FIELD)]
    summary = summarize(prefs)
    report = agreement_report(votes_by_pair(prefs),
                              {p: text for p, text in model_text.items() if text}, flagged)
    rows = [_row(agg, info[agg.pair_id], model_text.get(agg.pair_id))
            for agg in summary.preferences]
    return Pulled(n_tasks=len(tasks), n_votes=summary.n_votes, summary=summary,
                  report=report, rows=rows)


def _model_text(task: Mapping[str, Any]) -> str | None:
    choice = (task.get("meta") or {}).get(MODEL_CHOICE)
    return task["data"].get(choice) if choice in ("a", "b") else None


def _row(agg: AggregatedPreference, task: Mapping[str, Any], model: str | None) -> dict:
    task_id = task.get("id")
    return {
        "pair_id": agg.pair_id, "clip_id": agg.clip_id, "chosen": agg.chosen,
        "rejected": agg.rejected, "model_chosen": model,
        "agrees_with_model": None if model is None else agg.chosen == model,
        "n_annotators": agg.n_annotators, "n_agree": agg.n_agree,
        "agreement": agg.agreement, "annotators": list(agg.annotators),
        "second_review": bool(task["data"].get(SECOND_REVIEW_FIELD)),
        "task_id": task_id if isinstance(task_id, int) else None,
    }


def preferences_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[AggregatedPreference]:
    """``pairwise_verdicts`` rows back as :class:`AggregatedPreference` (for ``human_pairs``).

    >>> (p,) = preferences_from_rows([{"clip_id": "c", "pair_id": "p", "chosen": "x",
    ...     "rejected": "y", "n_annotators": 3, "n_agree": 2, "annotators": ["1", "2", "3"]}])
    >>> round(p.agreement, 3), p.annotators
    (0.667, ('1', '2', '3'))
    """
    return [AggregatedPreference(
        clip_id=r["clip_id"], pair_id=r["pair_id"], audio=None, chosen=r["chosen"],
        rejected=r["rejected"], n_annotators=int(r["n_annotators"]), n_agree=int(r["n_agree"]),
        annotators=tuple(r.get("annotators") or ())) for r in rows]


def apply_verdicts(
    pairs: Sequence[Mapping[str, Any]], human: Sequence[Mapping[str, Any]]
) -> tuple[list[dict], int]:
    """`pairs` with each human row replacing the pairs of its clip and its two texts (in
    either direction); returns the rows and how many pairs were replaced. Among human rows
    for the same clip and texts the last wins.

    >>> mined = [{"clip_id": "c", "chosen": "x", "rejected": "y", "source": "model"},
    ...          {"clip_id": "c", "chosen": "x", "rejected": "z", "source": "model"}]
    >>> rows, n = apply_verdicts(mined, [{"clip_id": "c", "chosen": "y", "rejected": "x",
    ...                                   "source": "human"}])
    >>> n, [(r["chosen"], r["rejected"], r["source"]) for r in rows]
    (1, [('x', 'z', 'model'), ('y', 'x', 'human')])
    """
    def key(r: Mapping[str, Any]) -> tuple:
        return (r["clip_id"], frozenset((r["chosen"], r["rejected"])))

    verdicts = {key(h): dict(h) for h in human}
    kept = [dict(p) for p in pairs if key(p) not in verdicts]
    return kept + list(verdicts.values()), len(pairs) - len(kept)
