"""Agreement between annotators, computed by us (Label Studio Community has none).

Over the items two annotators labelled: percent agreement and Cohen's kappa,
which discounts the agreement two annotators would reach by chance given how
often each picks each label. For a pair with more than two votes, the first
two (in export order: the order they were submitted) are the two raters;
every vote still counts in the majority (:mod:`labeling.qc.pairwise`).

The label compared is whether an annotator sided with the model's pick (the
pair's ``a`` text when a task carries no model pick), so kappa measures
agreement on "was the model right", independent of the side shown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from labeling.qc.pairwise import HumanPreference

Rating = tuple[Hashable, Hashable]


def percent_agreement(ratings: Sequence[Rating]) -> float | None:
    """Share of items on which both raters gave the same label (None without items).

    >>> percent_agreement([("yes", "yes"), ("no", "no"), ("yes", "no"), ("yes", "yes")])
    0.75
    >>> percent_agreement([]) is None
    True
    """
    if not ratings:
        return None
    return sum(a == b for a, b in ratings) / len(ratings)


def cohens_kappa(ratings: Sequence[Rating]) -> float | None:
    """Cohen's kappa of two raters: (p_o - p_e) / (1 - p_e).

    ``p_o`` is the observed agreement, ``p_e`` the agreement expected by
    chance from each rater's label frequencies. 1 = perfect, 0 = chance
    level, negative = worse than chance. None without items, or when chance
    agreement is already 1 (both raters always gave one and the same label:
    kappa is undefined there, look at the percent agreement).

    >>> cohens_kappa([("yes", "yes"), ("no", "no"), ("yes", "no"), ("yes", "yes")])
    0.5
    >>> cohens_kappa([("a", "a"), ("b", "b")]), cohens_kappa([("a", "b"), ("b", "a")])
    (1.0, -1.0)
    >>> cohens_kappa([("a", "a"), ("a", "a")]) is None
    True
    """
    n = len(ratings)
    if n == 0:
        return None
    first, second = Counter(a for a, _ in ratings), Counter(b for _, b in ratings)
    p_o = sum(a == b for a, b in ratings) / n
    p_e = sum(first[k] * second[k] for k in first) / n**2
    if p_e == 1.0:
        return None
    return (p_o - p_e) / (1.0 - p_e)


@dataclass(frozen=True)
class Disagreement:
    """A pair whose annotators did not all pick the same text."""

    pair_id: str
    clip_id: str | None
    task_id: int | None
    votes: dict[str, str]
    """annotator -> the text they chose."""
    tied: bool
    """No majority: the pair yields no verdict."""


@dataclass(frozen=True)
class AgreementReport:
    """Inter-annotator agreement over one set of pairs (e.g. one batch's tasks)."""

    n_pairs: int
    """Pairs with at least one vote."""
    n_double: int
    """Pairs labelled by two or more annotators: the items the statistics are over."""
    n_flagged: int
    """Pairs routed to a second review (voted on or not)."""
    n_flagged_done: int
    """Of those, the ones two annotators have labelled."""
    percent: float | None
    kappa: float | None
    disagreements: list[Disagreement] = field(default_factory=list)


def agreement_report(
    votes: Mapping[str, Mapping[str, HumanPreference]],
    reference: Mapping[str, str],
    flagged: Iterable[str] = (),
) -> AgreementReport:
    """Agreement over `votes` (:func:`labeling.qc.pairwise.votes_by_pair`).

    `reference` maps a pair id to the text a vote is compared with (the
    model's pick); `flagged` lists the pair ids routed to a second review.

    >>> def vote(who, chosen):
    ...     return HumanPreference(1, "c", "p1", None, chosen, "yx"[chosen == "y"], who, "left")
    >>> r = agreement_report({"p1": {"u1": vote("u1", "x"), "u2": vote("u2", "y")}},
    ...                      {"p1": "x"}, flagged=["p1"])
    >>> r.n_double, r.n_flagged_done, r.percent, r.disagreements[0].tied
    (1, 1, 0.0, True)
    """
    flagged = set(flagged)
    ratings: list[Rating] = []
    disagreements: list[Disagreement] = []
    n_pairs = 0
    for pair_id, by_annotator in votes.items():
        vs = list(by_annotator.values())
        if not vs:
            continue
        n_pairs += 1
        ref = reference.get(pair_id, vs[0].chosen)
        if len(vs) >= 2:
            ratings.append((vs[0].chosen == ref, vs[1].chosen == ref))
        counts = Counter(v.chosen for v in vs)
        if len(counts) > 1:
            top = counts.most_common(2)
            disagreements.append(Disagreement(
                pair_id=pair_id, clip_id=vs[0].clip_id, task_id=vs[0].task_id,
                votes={v.annotator: v.chosen for v in vs}, tied=top[0][1] == top[1][1]))
    double = {p for p, by in votes.items() if len(by) >= 2}
    return AgreementReport(
        n_pairs=n_pairs, n_double=len(double), n_flagged=len(flagged),
        n_flagged_done=len(flagged & double), percent=percent_agreement(ratings),
        kappa=cohens_kappa(ratings), disagreements=disagreements)


def disagreements_markdown(report: AgreementReport, limit: int = 20) -> str:
    """The disagreements as a markdown table (for Dagster metadata), at most `limit` rows.

    >>> print(disagreements_markdown(AgreementReport(1, 1, 0, 0, 0.0, None, [
    ...     Disagreement("p1", "c1", 7, {"1": "the cat", "2": "the cap"}, True)])))
    | task | clip | pair | votes | tied |
    |---|---|---|---|---|
    | 7 | c1 | p1 | 1: the cat; 2: the cap | yes |
    """
    if not report.disagreements:
        return "none"
    lines = ["| task | clip | pair | votes | tied |", "|---|---|---|---|---|"]
    for d in report.disagreements[:limit]:
        votes = "; ".join(f"{who}: {_cell(text)}" for who, text in d.votes.items())
        lines.append(f"| {d.task_id} | {d.clip_id} | {d.pair_id} | {votes} | "
                     f"{'yes' if d.tied else 'no'} |")
    if len(report.disagreements) > limit:
        lines.append(f"\n... and {len(report.disagreements) - limit} more")
    return "\n".join(lines)


def _cell(text: str, limit: int = 60) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
