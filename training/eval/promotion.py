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

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
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

    The last column is the change of the last model against the first. The markdown form
    (for the Dagster UI, where a column of a long model id does not fit) names columns by
    :func:`short_labels` and says below the table which model each name is.
    """
    labels = list(reports)
    lines = []
    for row in comparison_rows(reports):
        first, last = row[labels[0]], row[labels[-1]]
        delta = ("-" if first is None or last is None or not math.isfinite(first.wer)
                 or not math.isfinite(last.wer) else f"{100 * (last.wer - first.wer):+.1f}")
        lines.append([row["group"], row["value"], str(row["n"]),
                      *[_pct(row[lbl]) for lbl in labels], delta])
    if markdown:
        return _markdown_table(reports, lines)
    header = ["group", "value", "n", *[f"{lbl} WER" for lbl in labels], f"Δ {labels[-1]}"]
    sdi = "overall substitutions/deletions/insertions: " + "  ".join(
        f"{lbl} {_sdi(r)}" for lbl, r in reports.items())
    text, rule = aligned([header, *lines], right=range(2, len(header)))
    return "\n".join([text[0], rule, *text[1:], "", sdi])


def _sdi(report: EvalReport) -> str:
    c = report.overall.counts
    return f"S/D/I {c.substitutions}/{c.deletions}/{c.insertions}"


def _markdown_table(reports: Mapping[str, EvalReport], lines: list[list[str]]) -> str:
    """Kept short: the Dagster UI shows markdown under 1,000 characters in place (the
    demo's table fits), longer in a modal."""
    short = short_labels(list(reports))
    names = list(short.values())
    header = ["group", "value", "n", *[f"{name} WER" for name in names], f"Δ {names[-1]}"]
    out = [f"WER %; Δ = {names[-1]} − {names[0]}", "", _md_row(header),
           "|:-|:-|" + "-:|" * (len(header) - 2)]
    out += [_md_row(cells) for cells in lines]
    out += ["", "|model|id|S/D/I|", "|:-|:-|:-|"]
    out += [_md_row([short[lbl], lbl, _sdi(r)[6:]]) for lbl, r in reports.items()]
    return "\n".join(out)


def _md_row(cells: Sequence[str]) -> str:
    return "|" + "|".join(cells) + "|"


def short_labels(labels: Sequence[str]) -> dict[str, str]:
    """A short column name per model label: the stage of a loop's model id (and its
    checkpoint step), ``promoted`` for the promoted incumbent; the label itself where two
    would share a name.

    >>> short_labels(["promoted dpo-asr-1-a", "sft-asr-2-b", "dpo-asr-2-b.step25"])
    {'promoted dpo-asr-1-a': 'promoted', 'sft-asr-2-b': 'sft', 'dpo-asr-2-b.step25': 'dpo.step25'}
    >>> short_labels(["baseline", "/models/whisper-small.en"])  # not a loop's model: as it is
    {'baseline': 'baseline', '/models/whisper-small.en': '/models/whisper-small.en'}
    """
    def short(label: str) -> str:
        if label.startswith("promoted "):
            return "promoted"
        loop_model = re.fullmatch(r"([a-z]+)-[a-z]+-[\w-]+?((?:\.step\d+)?)", label)
        return loop_model.group(1) + loop_model.group(2) if loop_model else label
    names = {lbl: short(lbl) for lbl in labels}
    counts = Counter(names.values())
    return {lbl: name if counts[name] == 1 else lbl for lbl, name in names.items()}


_COLORS = ("#8C8C8C", "#4C72B0", "#55A868", "#C44E52", "#8172B2")
_GROUP_IN = 0.22  # width per model bar in a group; a panel is at most a row wide
_ROW_IN = 2.2  # height per row of panels (two rows and the legend fit a laptop screen)


def comparison_figure(reports: Mapping[str, EvalReport]) -> Any:
    """The figure :func:`plot_comparison` saves: grouped bars of WER (%) per group value,
    one bar per model, a panel per group key (overall first), panels wrapped into rows at
    most 880 px wide (:mod:`training.eval.figures`), the legend below them."""
    from training.eval import figures

    labels = list(reports)
    panels: dict[str, list[dict[str, Any]]] = {}
    for row in comparison_rows(reports):
        panels.setdefault(row["group"], []).append(row)
    widths = [max(1.8, _GROUP_IN * len(labels) * len(rows) + 1.0) for rows in panels.values()]
    n_rows = len(figures.pack_rows([min(w, figures.MAX_WIDTH_IN) for w in widths]))
    ncol = max(1, min(len(labels), figures.MAX_WIDTH_PX // (6 * max(map(len, labels)) + 40)))
    legend_in = 0.25 * -(-len(labels) // ncol)
    fig = figures.new_figure(_ROW_IN * n_rows + 0.4 + legend_in)
    axes = figures.panel_grid(fig, widths)
    heights = {lbl: [100 * r[lbl].wer if r[lbl] is not None and math.isfinite(r[lbl].wer)
                     else 0.0 for rows in panels.values() for r in rows] for lbl in labels}
    top = max([h for hs in heights.values() for h in hs] + [1.0]) * 1.15
    width = 0.8 / len(labels)
    for ax, (group, rows) in zip(axes, panels.items(), strict=True):
        for i, label in enumerate(labels):
            ys = [100 * r[label].wer if r[label] is not None and math.isfinite(r[label].wer)
                  else 0.0 for r in rows]
            ax.bar([x - 0.4 + width * (i + 0.5) for x in range(len(rows))], ys, width,
                   label=label, color=_COLORS[i % len(_COLORS)])
        figures.bar_panel(ax, group, [r["value"] for r in rows], top)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=ncol,
               fontsize=8, frameon=False)
    fig.suptitle("WER per group (%)", fontsize=10)
    return fig


def plot_comparison(reports: Mapping[str, EvalReport], path: str | Path) -> Path:
    """PNG: grouped bars of WER (%) per group value, one bar per model, at most 880 px
    wide so the Dagster UI shows it whole (:func:`comparison_figure`)."""
    from training.eval.figures import save_png

    return save_png(comparison_figure(reports), path, max_bytes=150_000)
