"""Preference pairs from N-best Whisper hypotheses, ranked by WER against a reference.

For one clip, every hypothesis (greedy, beam, sampled; an empty output too)
is scored with :func:`training.eval.metrics.error_counts`, so pairs rank exactly as
evaluation reports them. Candidates are put in *quality order* -- primary
metric ascending, then the other metric ascending, then ``avg_logprob``
descending (the model's own preference breaks what the metrics cannot), then
``rank``, ``kind`` and input position so the order is total and
deterministic -- and a strategy picks (chosen, rejected) pairs from it.

Decisions (all tested):

* ``chosen``/``rejected`` are the hypotheses' *raw* texts, as the model wrote
  them: DPO trains on the model's output format, not on normalised text.
* A pair needs ``rejected - chosen >= min_wer_margin`` on the primary
  ``metric`` *and* a strictly positive difference, so exact ties are never
  paired, even with ``min_wer_margin=0``. (The name says WER; with
  ``metric="cer"`` the margin is in CER.)
* The secondary metric only orders candidates; it never creates a pair on
  its own (two hypotheses with equal WER are a tie however their CER differ).
* An empty hypothesis (``""`` or ``None``) is a candidate like any other: a
  model that outputs nothing is a legitimate rejected.
* No pairs when the reference is missing or empty after normalisation
  (``"[noise]"``, ``"Um."``): WER has no finite value there.
* Dedupe (default on): hypotheses with the same normalised text are one
  candidate; the one kept has the best ``avg_logprob`` (then quality order).

Strategies (``max_pairs_per_clip`` caps each):

* ``best_vs_worst``: the best vs the worst, then the best vs the next worst,
  and so on upward -- the easiest, largest-margin pairs first.
* ``best_vs_each``: the best vs each worse candidate whose margin passes,
  *hardest first* (closest in quality), so under the cap it yields the hard
  negatives that ``best_vs_worst`` leaves out. Without a cap both give the
  same set, in opposite orders.
* ``adjacent``: each pair of consecutive candidates in quality order whose
  margin passes, from the top down -- a ranking-style ladder.

>>> ref = "the cat sat on the mat"
>>> hyps = [
...     {"text": "The cat sat on the mat.", "kind": "greedy", "rank": 0, "avg_logprob": -0.2},
...     {"text": "the cat sat on a mat", "kind": "beam", "rank": 1, "avg_logprob": -0.4},
...     {"text": "the cat sat", "kind": "sample", "rank": 0, "avg_logprob": -0.9},
...     {"text": "", "kind": "sample", "rank": 1, "avg_logprob": -1.5},
... ]
>>> [(h.kind, h.rank, round(h.wer, 3)) for h in score_hypotheses(ref, hyps)]
[('greedy', 0, 0.0), ('beam', 1, 0.167), ('sample', 0, 0.5), ('sample', 1, 1.0)]
>>> for p in mine_pairs(ref, hyps, PairConfig()):
...     print(repr(p.chosen), ">", repr(p.rejected), round(p.margin, 3))
'The cat sat on the mat.' > '' 1.0
'The cat sat on the mat.' > 'the cat sat' 0.5
>>> for p in mine_pairs(ref, hyps, PairConfig(strategy="adjacent", max_pairs_per_clip=3)):
...     print(repr(p.chosen), ">", repr(p.rejected), round(p.margin, 3))
'The cat sat on the mat.' > 'the cat sat on a mat' 0.167
'the cat sat on a mat' > 'the cat sat' 0.333
'the cat sat' > '' 0.5
>>> mine_pairs("", hyps, PairConfig())
[]
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from training.eval.metrics import error_counts, normalize

__all__ = ["Pair", "PairConfig", "ScoredHypothesis", "mine_pairs", "score_hypotheses"]

Strategy = Literal["best_vs_worst", "best_vs_each", "adjacent"]
Metric = Literal["wer", "cer"]

_STRATEGIES = ("best_vs_worst", "best_vs_each", "adjacent")
_METRICS = ("wer", "cer")
# Rates are ratios of small integers; this absorbs float noise such as
# 0.3 - 0.2 < 0.1 without letting a real difference of one error slip.
_EPS = 1e-9


@dataclass(frozen=True)
class PairConfig:
    """How pairs are mined from one clip's hypotheses.

    >>> PairConfig(strategy="adjacent", max_pairs_per_clip=None).metric
    'wer'
    """

    strategy: Strategy = "best_vs_worst"
    """Which (chosen, rejected) pairs to take; see the module docstring."""
    min_wer_margin: float = 0.05
    """The rejected's primary metric must exceed the chosen's by at least this
    (and by more than 0: exact ties are never pairs). In CER when ``metric="cer"``."""
    max_pairs_per_clip: int | None = 2
    """At most this many pairs per clip; ``None`` for no cap."""
    metric: Metric = "wer"
    """Primary metric, ranks candidates and sets the margin; the other one breaks ties."""
    dedupe: bool = True
    """Hypotheses with identical normalised text are one candidate (best avg_logprob kept)."""

    def __post_init__(self) -> None:
        if self.strategy not in _STRATEGIES:
            raise ValueError(f"strategy must be one of {_STRATEGIES}, got {self.strategy!r}")
        if self.metric not in _METRICS:
            raise ValueError(f"metric must be one of {_METRICS}, got {self.metric!r}")
        if not (self.min_wer_margin >= 0 and math.isfinite(self.min_wer_margin)):
            raise ValueError(f"min_wer_margin must be >= 0, got {self.min_wer_margin!r}")
        if self.max_pairs_per_clip is not None and self.max_pairs_per_clip < 1:
            raise ValueError(
                f"max_pairs_per_clip must be >= 1 or None, got {self.max_pairs_per_clip!r}"
            )


@dataclass(frozen=True)
class ScoredHypothesis:
    """One hypothesis with its error rates against the clip's reference."""

    text: str
    kind: str
    rank: int
    avg_logprob: float | None
    wer: float
    cer: float
    normalized: str
    index: int
    """Position in the input list (last tie-break, and for tracing back to the row)."""

    def rate(self, metric: Metric) -> float:
        return self.wer if metric == "wer" else self.cer


@dataclass(frozen=True)
class Pair:
    """A preference: ``chosen`` has a lower error rate than ``rejected`` by ``margin``."""

    chosen: str
    rejected: str
    chosen_wer: float
    chosen_cer: float
    rejected_wer: float
    rejected_cer: float
    margin: float
    """rejected - chosen on ``metric``."""
    metric: Metric
    strategy: Strategy
    chosen_kind: str
    chosen_rank: int
    rejected_kind: str
    rejected_rank: int

    def to_row(self) -> dict[str, Any]:
        """A flat dict (one warehouse row, to which the caller adds clip_id etc.)."""
        return asdict(self)


def score_hypotheses(
    reference: str, hypotheses: Sequence[Mapping[str, Any]]
) -> list[ScoredHypothesis]:
    """WER and CER of each hypothesis row against ``reference``, in input order.

    Rows look like ``asr_hypotheses`` rows: ``text`` (``None`` is ``""``),
    and optionally ``kind`` (default ``"unknown"``), ``rank`` (default: the
    position) and ``avg_logprob`` (default ``None``, ranked below any value).
    ``reference`` must be a str (``TypeError`` otherwise, as in
    :func:`training.eval.metrics.error_counts`).
    """
    ref_norm = normalize(reference)
    out = []
    for i, hyp in enumerate(hypotheses):
        text = hyp.get("text") or ""
        norm = normalize(text)
        counts = error_counts(ref_norm, norm, normalized=True)
        logprob = hyp.get("avg_logprob")
        out.append(
            ScoredHypothesis(
                text=text,
                kind=str(hyp.get("kind") or "unknown"),
                rank=int(hyp["rank"]) if hyp.get("rank") is not None else i,
                avg_logprob=None if logprob is None else float(logprob),
                wer=counts.wer,
                cer=counts.cer,
                normalized=norm,
                index=i,
            )
        )
    return out


def mine_pairs(
    reference: str | None,
    hypotheses: Sequence[Mapping[str, Any]],
    config: PairConfig | None = None,
) -> list[Pair]:
    """Preference pairs for one clip; ``[]`` when the reference is missing or empty.

    Deterministic: the same inputs give the same pairs in the same order.
    """
    config = config or PairConfig()
    if reference is None or not normalize(reference):
        return []
    candidates = _quality_order(score_hypotheses(reference, hypotheses), config.metric)
    if config.dedupe:
        candidates = _dedupe(candidates)
    out: list[Pair] = []
    for chosen, rejected in _STRATEGY_FNS[config.strategy](candidates, config):
        if config.max_pairs_per_clip is not None and len(out) >= config.max_pairs_per_clip:
            break
        out.append(_pair(chosen, rejected, config))
    return out


# --------------------------------------------------------------------------- internals


def _sort_key(h: ScoredHypothesis, metric: Metric) -> tuple:
    other: Metric = "cer" if metric == "wer" else "wer"
    logprob = -math.inf if h.avg_logprob is None else h.avg_logprob
    return (h.rate(metric), h.rate(other), -logprob, h.rank, h.kind, h.index)


def _quality_order(hyps: list[ScoredHypothesis], metric: Metric) -> list[ScoredHypothesis]:
    return sorted(hyps, key=lambda h: _sort_key(h, metric))


def _dedupe(ordered: list[ScoredHypothesis]) -> list[ScoredHypothesis]:
    """Keep one hypothesis per normalised text: the best avg_logprob, ties by order."""
    # Same text => same rates, so quality order already ranks duplicates by logprob.
    seen: set[str] = set()
    out = []
    for h in ordered:
        if h.normalized not in seen:
            seen.add(h.normalized)
            out.append(h)
    return out


def _passes(chosen: ScoredHypothesis, rejected: ScoredHypothesis, config: PairConfig) -> bool:
    margin = rejected.rate(config.metric) - chosen.rate(config.metric)
    return margin > _EPS and margin >= config.min_wer_margin - _EPS


Candidates = list[ScoredHypothesis]
PairIter = Iterator[tuple[ScoredHypothesis, ScoredHypothesis]]


def _best_vs_worst(c: Candidates, config: PairConfig) -> PairIter:
    # Margins shrink going up from the worst, so the first failure ends it.
    for rejected in reversed(c[1:]):
        if not _passes(c[0], rejected, config):
            return
        yield c[0], rejected


def _best_vs_each(c: Candidates, config: PairConfig) -> PairIter:
    yield from ((c[0], r) for r in c[1:] if _passes(c[0], r, config))


def _adjacent(c: Candidates, config: PairConfig) -> PairIter:
    yield from ((a, b) for a, b in zip(c, c[1:], strict=False) if _passes(a, b, config))


_STRATEGY_FNS = {
    "best_vs_worst": _best_vs_worst,
    "best_vs_each": _best_vs_each,
    "adjacent": _adjacent,
}


def _pair(chosen: ScoredHypothesis, rejected: ScoredHypothesis, config: PairConfig) -> Pair:
    return Pair(
        chosen=chosen.text,
        rejected=rejected.text,
        chosen_wer=chosen.wer,
        chosen_cer=chosen.cer,
        rejected_wer=rejected.wer,
        rejected_cer=rejected.cer,
        margin=rejected.rate(config.metric) - chosen.rate(config.metric),
        metric=config.metric,
        strategy=config.strategy,
        chosen_kind=chosen.kind,
        chosen_rank=chosen.rank,
        rejected_kind=rejected.kind,
        rejected_rank=rejected.rank,
    )
