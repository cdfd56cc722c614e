"""Scores per group of rows, and how they are shown: text and markdown tables, a PNG chart.

Builds on :mod:`training.eval.metrics` (normalisation and edit counts): rows are scored one by
one and their counts pooled, overall and per value of each tag key, into an :class:`EvalReport`.
matplotlib is imported only by :func:`report_figure` (and :func:`plot_report`, which saves it).

Example:
    >>> rows = [{"reference": "a b", "hypothesis": "a b", "tags": {"accent": "x"}},
    ...         {"reference": "a b", "hypothesis": "a", "tags": {}}]
    >>> report = grouped_scores(rows, ["accent"])
    >>> report.overall.wer, [(g.value, g.wer) for g in report.groups["accent"]]
    (0.25, [('x', 0.0), ('unknown', 0.5)])
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.eval.metrics import ErrorCounts, error_counts, json_rate
from training.eval.text_table import aligned

__all__ = [
    "UNKNOWN",
    "EvalReport",
    "GroupScore",
    "format_table",
    "grouped_scores",
    "plot_report",
    "report_figure",
    "to_markdown",
]

#: Group value given to a row whose tags lack the group key (or hold ``None``).
UNKNOWN = "unknown"

# --------------------------------------------------------------------------- groups


@dataclass(frozen=True)
class GroupScore:
    """Pooled score of the rows sharing one value of one group key.

    ``group`` is the tag key (e.g. ``"accent"``) and ``value`` the tag value
    as a string (``"unknown"`` when missing). The overall score of a report
    has ``group == "overall"`` and ``value == "all"``.
    """

    group: str
    value: str
    n_utterances: int
    counts: ErrorCounts

    @property
    def wer(self) -> float:
        return self.counts.wer

    @property
    def cer(self) -> float:
        return self.counts.cer

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n_utterances, **self.counts.to_dict()}


@dataclass(frozen=True)
class EvalReport:
    """Overall score plus, for each key of ``group_by``, one score per value.

    ``groups[key]`` lists that key's scores sorted by value, with
    ``"unknown"`` last.
    """

    overall: GroupScore
    group_by: tuple[str, ...] = ()
    groups: dict[str, list[GroupScore]] = field(default_factory=dict)

    def score(self, group: str, value: Any) -> GroupScore:
        """The score of one group value; ``KeyError`` if absent."""
        for gs in self.groups[group]:
            if gs.value == str(value):
                return gs
        raise KeyError(f"no value {value!r} in group {group!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable (strict JSON: infinite rates become ``None``).

        ``{"overall": {n, wer, cer, substitutions, ...}, "group_by": [...],
        "groups": {key: {value: {n, wer, cer, ...}}}}``
        """
        return {
            "overall": self.overall.to_dict(),
            "group_by": list(self.group_by),
            "groups": {
                key: {gs.value: gs.to_dict() for gs in scores}
                for key, scores in self.groups.items()
            },
        }

    def to_rows(self) -> list[dict[str, Any]]:
        """Flat rows for a table or DataFrame, overall first.

        Columns: scope (``"overall"`` | ``"group"``), group, value, n, wer,
        cer (fractions, ``None`` when infinite), sub, del, ins, ref_words.
        """
        rows = []
        for scope, gs in self._scores():
            c = gs.counts
            rows.append(
                {
                    "scope": scope,
                    "group": gs.group,
                    "value": gs.value,
                    "n": gs.n_utterances,
                    "wer": json_rate(c.wer),
                    "cer": json_rate(c.cer),
                    "sub": c.substitutions,
                    "del": c.deletions,
                    "ins": c.insertions,
                    "ref_words": c.ref_words,
                }
            )
        return rows

    def _scores(self) -> list[tuple[str, GroupScore]]:
        out = [("overall", self.overall)]
        for key in self.group_by:
            out.extend(("group", gs) for gs in self.groups.get(key, []))
        return out

    def __str__(self) -> str:
        return format_table(self)


def _tag_value(tags: Any, key: str) -> str:
    if not isinstance(tags, Mapping):
        return UNKNOWN
    value = tags.get(key)
    return UNKNOWN if value is None else str(value)


def _value_order(value: str) -> tuple[bool, bool, float, str]:
    """Numbers first, in numeric order (0, 5, 10, 20), then words, "unknown" last."""
    try:
        number = float(value)
    except ValueError:
        number = math.inf
    return (value == UNKNOWN, number == math.inf, number, value)


def grouped_scores(
    rows: Iterable[Mapping[str, Any]],
    group_by: Sequence[str] = (),
    *,
    ref_key: str = "reference",
    hyp_key: str = "hypothesis",
    tags_key: str = "tags",
    normalized: bool = False,
) -> EvalReport:
    """Score rows overall and per value of each tag key in ``group_by``.

    Each row maps ``ref_key`` to the reference, ``hyp_key`` to the hypothesis
    and ``tags_key`` to a dict of tags. A row whose tags lack a key, hold
    ``None`` for it, or that has no tags dict at all, is counted under the
    value ``"unknown"`` for that key. Other tag values are grouped by
    ``str(value)``. Every row counts once in the overall score and once per
    group key. ``rows`` is read once, so a generator is fine; each text is
    normalised once.
    """
    if isinstance(group_by, str):
        raise TypeError("group_by must be a sequence of tag keys, not a str")
    keys = tuple(dict.fromkeys(group_by))  # dedupe, keep order
    overall = ErrorCounts()
    n = 0
    acc: dict[str, dict[str, tuple[int, ErrorCounts]]] = {k: {} for k in keys}
    for row in rows:
        counts = error_counts(row[ref_key], row.get(hyp_key), normalized=normalized)
        overall = overall + counts
        n += 1
        tags = row.get(tags_key)
        for key in keys:
            value = _tag_value(tags, key)
            m, c = acc[key].get(value, (0, ErrorCounts()))
            acc[key][value] = (m + 1, c + counts)
    groups = {
        key: [
            GroupScore(group=key, value=value, n_utterances=m, counts=c)
            for value, (m, c) in sorted(acc[key].items(), key=lambda kv: _value_order(kv[0]))
        ]
        for key in keys
    }
    return EvalReport(
        overall=GroupScore(group="overall", value="all", n_utterances=n, counts=overall),
        group_by=keys,
        groups=groups,
    )


# --------------------------------------------------------------------------- rendering

_HEADERS = ("group", "value", "n", "words", "WER %", "CER %", "S", "D", "I")
_NUMERIC = (False, False, True, True, True, True, True, True, True)


def _pct(rate: float) -> str:
    return f"{100 * rate:.1f}" if math.isfinite(rate) else "inf"


def _cells(report: EvalReport) -> list[tuple[str, ...]]:
    out = []
    for _, gs in report._scores():
        c = gs.counts
        out.append(
            (
                gs.group,
                gs.value,
                str(gs.n_utterances),
                str(c.ref_words),
                _pct(c.wer),
                _pct(c.cer),
                str(c.substitutions),
                str(c.deletions),
                str(c.insertions),
            )
        )
    return out


def format_table(report: EvalReport) -> str:
    """Plain-text table, columns aligned (text left, numbers right).

    One line for the overall score, then one per group value; WER/CER are
    percentages with one decimal (``inf`` when the group has no reference
    words but has insertions). Monospace only: in Dagster markdown metadata
    wrap it in a code fence, or use :func:`to_markdown`.
    """
    lines, rule = aligned([_HEADERS, *_cells(report)],
                          right={i for i, num in enumerate(_NUMERIC) if num})
    out = [lines[0], rule, lines[1]]
    if len(lines) > 2:
        out += [rule, *lines[2:]]
    return "\n".join(out)


def _md_escape(cell: str) -> str:
    return cell.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(report: EvalReport) -> str:
    """The same table as GitHub-flavoured markdown (for ``MetadataValue.md``)."""
    align = ["---:" if num else ":---" for num in _NUMERIC]
    lines = [
        "| " + " | ".join(_HEADERS) + " |",
        "| " + " | ".join(align) + " |",
    ]
    for r in _cells(report):
        lines.append("| " + " | ".join(_md_escape(c) for c in r) + " |")
    return "\n".join(lines)


_MAX_LABELLED_BARS = 16
_MAX_PNG_BYTES = 100_000
_BAR_IN = 0.5  # width per bar; a panel is at most a row wide (figures.MAX_WIDTH_IN)
_ROW_IN = 2.9  # height per row of panels


def report_figure(report: EvalReport) -> Any:
    """The figure :func:`plot_report` saves: one panel of WER (%) bars per group key, panels
    wrapped into rows at most 880 px wide (:mod:`training.eval.figures`)."""
    from training.eval import figures

    panels: list[tuple[str, list[GroupScore]]] = [
        (key, report.groups.get(key, [])) for key in report.group_by
    ] or [("overall", [report.overall])]
    widths = [max(2.2, _BAR_IN * len(scores) + 1.2) for _, scores in panels]
    n_rows = len(figures.pack_rows([min(w, figures.MAX_WIDTH_IN) for w in widths]))
    fig = figures.new_figure(_ROW_IN * n_rows + 0.4)
    axes = figures.panel_grid(fig, widths)
    overall = report.overall.wer
    finite = [gs.wer for _, s in panels for gs in s if math.isfinite(gs.wer)]
    if math.isfinite(overall):
        finite.append(overall)
    top = max([100 * w for w in finite] + [1.0]) * 1.3

    for ax, (key, scores) in zip(axes, panels, strict=True):
        labels = [gs.value for gs in scores]
        heights = [100 * gs.wer if math.isfinite(gs.wer) else 0.0 for gs in scores]
        xs = range(len(scores))
        bars = ax.bar(xs, heights, color="#4C72B0", width=0.7)
        # Value labels only while they fit; a crowded panel keeps bars + axis.
        for bar, gs in zip(bars, scores if len(scores) <= _MAX_LABELLED_BARS else [], strict=False):
            ax.annotate(f"{_pct(gs.wer)}\nn={gs.n_utterances}",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 2),
                        textcoords="offset points", ha="center", va="bottom", fontsize=7)
        if math.isfinite(overall):
            ax.axhline(100 * overall, color="#C44E52", linestyle="--", linewidth=1.2)
        figures.bar_panel(ax, key, labels, top)
    fig.suptitle(
        f"WER by group; dashed line = overall {_pct(overall)}%"
        f" (n={report.overall.n_utterances}, {report.overall.counts.ref_words} words)",
        fontsize=10,
    )
    return fig


def plot_report(report: EvalReport, path: str | Path) -> Path:
    """Write a PNG bar chart of WER (%) per group value, one panel per group key.

    The overall WER is a dashed red reference line in every panel (its value is in the
    title); each bar is labelled with its WER and n while a panel has at most 16 bars.
    With no group keys, a single bar shows the overall WER. At most 880 px wide (panels
    wrap into rows), so the Dagster UI shows it whole; the dpi is lowered (100 -> 50) if
    needed to keep the file under 100 KB (typically 20-60 KB). Parent folders are created.
    Returns the path.
    """
    from training.eval.figures import save_png

    return save_png(report_figure(report), path, max_bytes=_MAX_PNG_BYTES)
