"""Promotion of an ASR model: the shared gate (`training.eval.gate`) on pooled WER, plus
the ASR numbers a person checks beside it.

Pure code over :class:`training.eval.report.EvalReport`s of the same eval clips. The
rule is the product's contract: a candidate whose pooled WER on the eval set is
worse than the incumbent's (the promoted model, or the baseline before any
promotion) is never promoted. A candidate that wins on WER by deleting words
(emitting less) is flagged: its deletion rate is reported next to the WER so a
person can see it, and a warning check uses it.

Example:
    >>> from training.eval.report import grouped_scores
    >>> ref = [{"reference": "a b c d", "hypothesis": h, "tags": {}} for h in ("a b c d", "a b")]
    >>> tuned, base = grouped_scores(ref[:1]), grouped_scores(ref[1:])
    >>> decide(tuned, base).passed, decide(base, tuned).passed
    (True, False)
    >>> print(decide(base, tuned).reason)
    candidate WER 50.0% is worse than incumbent WER 0.0% (+50.0 points)
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from training.eval.gate import gate
from training.eval.report import EvalReport, GroupScore
from training.eval.selection import Choice
from training.eval.text_table import aligned


@dataclass(frozen=True)
class PromotionDecision:
    """Whether the candidate may replace the incumbent, and the numbers behind it."""

    passed: bool
    candidate_wer: float
    incumbent_wer: float
    candidate_deletion_rate: float
    incumbent_deletion_rate: float
    reason: str
    stage: str = ""  # which of the loop's trained models the candidate is (sft, dpo, ...)
    selection: str = ""  # why that one (training.eval.selection.choose)
    guards: tuple[dict[str, Any], ...] = ()  # its results on the guard batches

    @property
    def wer_delta(self) -> float:
        """Candidate minus incumbent WER (negative is better)."""
        return self.candidate_wer - self.incumbent_wer

    @property
    def deletion_rate_delta(self) -> float:
        return self.candidate_deletion_rate - self.incumbent_deletion_rate

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "wer_delta": self.wer_delta,
                "deletion_rate_delta": self.deletion_rate_delta}


def deletion_rate(score: GroupScore) -> float:
    """Deleted reference words per reference word (0 when there are none)."""
    c = score.counts
    return c.deletions / c.ref_words if c.ref_words else 0.0


def decide(candidate: EvalReport, incumbent: EvalReport,
           max_wer_increase: float = 0.0) -> PromotionDecision:
    """Pass when the candidate's pooled WER is at most the incumbent's plus a tolerance.

    Both reports must cover the same number of utterances: scores over different
    clip sets are not comparable, so that raises ``ValueError``.
    """
    cand, inc = candidate.overall, incumbent.overall
    if cand.n_utterances != inc.n_utterances or cand.counts.ref_words != inc.counts.ref_words:
        raise ValueError(
            f"candidate and incumbent were scored on different eval sets "
            f"({cand.n_utterances} vs {inc.n_utterances} utterances, "
            f"{cand.counts.ref_words} vs {inc.counts.ref_words} reference words)")
    if not (math.isfinite(cand.wer) and math.isfinite(inc.wer)):
        raise ValueError("the eval set has no reference words: WER is undefined")
    verdict = gate("WER", cand.wer, inc.wer, higher_is_better=False,
                   tolerance=max_wer_increase, percent=True)
    return PromotionDecision(verdict.passed, cand.wer, inc.wer, deletion_rate(cand),
                             deletion_rate(inc), verdict.reason)


def with_choice(decision: PromotionDecision, choice: Choice) -> PromotionDecision:
    """`decision` on the eval batches, with the chosen stage and why, and the guards' veto:
    a candidate that regresses on a guard batch does not pass, whatever its eval WER."""
    regressions = choice.regressions
    reason = decision.reason
    if regressions:
        reason += "; refused: it regresses on " + "; ".join(g.reason for g in regressions)
    return replace(decision, passed=decision.passed and not regressions, reason=reason,
                   stage=choice.stage, selection=choice.why,
                   guards=tuple(g.to_dict() for g in choice.guards))


def comparison_rows(reports: Mapping[str, EvalReport]) -> list[dict[str, Any]]:
    """One row per group value (overall first) with each model's WER, CER and S/D/I.

    ``reports`` maps a model label (e.g. ``baseline``, ``sft``, ``candidate``) to
    its report; every report must use the same ``group_by``.
    """
    labels = list(reports)
    first = reports[labels[0]]
    keys = [("overall", "all")] + [
        (key, gs.value) for key in first.group_by for gs in first.groups.get(key, [])
    ]
    rows = []
    for group, value in keys:
        row: dict[str, Any] = {"group": group, "value": value}
        for label in labels:
            score = _score(reports[label], group, value)
            row["n"] = score.n_utterances if score else row.get("n", 0)
            row[label] = score
        rows.append(row)
    return rows


def _score(report: EvalReport, group: str, value: str) -> GroupScore | None:
    if group == "overall":
        return report.overall
    try:
        return report.score(group, value)
    except KeyError:
        return None


def _pct(score: GroupScore | None) -> str:
    if score is None or not math.isfinite(score.wer):
        return "-"
    return f"{100 * score.wer:.1f}"


def comparison_table(reports: Mapping[str, EvalReport], markdown: bool = False) -> str:
    """WER (%) per group value, one column per model, plus S/D/I of each model overall.

    The last column is the change of the last model against the first.
    """
    labels = list(reports)
    header = ["group", "value", "n", *[f"{lbl} WER" for lbl in labels],
              f"Δ {labels[-1]}"]
    lines = []
    for row in comparison_rows(reports):
        first, last = row[labels[0]], row[labels[-1]]
        delta = ("-" if first is None or last is None or not math.isfinite(first.wer)
                 or not math.isfinite(last.wer) else f"{100 * (last.wer - first.wer):+.1f}")
        lines.append([row["group"], row["value"], str(row["n"]),
                      *[_pct(row[lbl]) for lbl in labels], delta])
    sdi = ["overall substitutions/deletions/insertions: " + "  ".join(
        f"{lbl} S/D/I {r.overall.counts.substitutions}/{r.overall.counts.deletions}/"
        f"{r.overall.counts.insertions}" for lbl, r in reports.items())]
    if markdown:
        out = ["| " + " | ".join(header) + " |",
               "| " + " | ".join([":---", ":---"] + ["---:"] * (len(header) - 2)) + " |"]
        out += ["| " + " | ".join(cells) + " |" for cells in lines]
        return "\n".join(out + ["", sdi[0]])
    text, rule = aligned([header, *lines], right=range(2, len(header)))
    return "\n".join([text[0], rule, *text[1:], "", sdi[0]])


_COLORS = ("#8C8C8C", "#4C72B0", "#55A868", "#C44E52", "#8172B2")


def plot_comparison(reports: Mapping[str, EvalReport], path: str | Path) -> Path:
    """PNG: grouped bars of WER (%) per group value, one bar per model."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = list(reports)
    rows = comparison_rows(reports)
    fig = Figure(figsize=(min(24, 1.0 + 0.45 * len(rows) * len(labels)), 3.8), dpi=90,
                 layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        heights = [100 * r[label].wer if r[label] is not None and math.isfinite(r[label].wer)
                   else 0.0 for r in rows]
        ax.bar([x + i * width for x in range(len(rows))], heights, width,
               label=label, color=_COLORS[i % len(_COLORS)])
    ax.set_xticks([x + width * (len(labels) - 1) / 2 for x in range(len(rows))])
    ax.set_xticklabels([f"{r['group']}={r['value']}" if r["group"] != "overall" else "overall"
                        for r in rows], rotation=40, ha="right", fontsize=7)
    ax.set_ylabel("WER (%)", fontsize=8)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title("WER per group: " + " vs ".join(labels), fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    path.write_bytes(buf.getvalue())
    return path
