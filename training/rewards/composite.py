"""One scalar reward for online RL on speech, with every component kept for the logs.

``speech_rewards`` computes all components for one hypothesis (those of
:func:`training.rewards.reward_components`, plus the WER-gated accuracy,
keyword recall, language match and, when a voice is given, phoneme
accuracy) and their weighted sum under ``"total"``. Logging every component,
not only the total, is what shows *how* a policy earns its reward (fewer
loops? shorter output?) and catches reward hacking early.

Weights live in :class:`RewardWeights`. Hallucination signals (empty output,
repetition, overlong output, inserted words) enter with negative weights, so
they are penalties on top of the accuracy term.

Example:
    >>> r = speech_rewards("call doctor smith", "call doctor smith", 1.5, keywords=["Dr Smith"])
    >>> r["gated_accuracy"], r["keyword_recall"], r["total"]
    (1.0, 1.0, 2.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields

from training.eval.metrics import error_counts
from training.rewards import reward_components
from training.rewards.language import language_match
from training.rewards.phonemes import accuracy_per, phoneme_error_rate
from training.rewards.text import keyword_recall
from training.rewards.weighting import gated_accuracy

__all__ = ["DEFAULT_WEIGHTS", "REWARD_NAMES", "RewardWeights", "combine", "speech_rewards"]


@dataclass(frozen=True)
class RewardWeights:
    """Weight of each reward component in the total (0 leaves it out, but it is still logged).

    The diagnostics ``wer``, ``cer``, ``per`` and ``length_ratio`` are logged
    but have no field: they are unbounded (``inf`` over an empty reference)
    and not "higher is better" (a plain mapping given to :func:`combine` may
    still weight them; an infinite value then raises). Change a few defaults with
    ``dataclasses.replace(RewardWeights(), empty=-2.0)``, or build from a
    config mapping with :meth:`from_mapping`.

    >>> RewardWeights.from_mapping({"keyword_recall": 1.0}).keyword_recall
    1.0
    """

    gated_accuracy: float = 1.0
    """1 − WER for near misses, a fixed penalty for sentence-level failures: the main term."""
    accuracy_wer: float = 0.0
    """Plain 1 − WER (clipped); an alternative to ``gated_accuracy``."""
    accuracy_cer: float = 0.0
    """1 − CER (clipped); useful for languages without spaces."""
    accuracy_per: float = 0.0
    """1 − phoneme error rate; needs ``voice=`` in ``speech_rewards`` (and espeak-ng)."""
    keyword_recall: float = 0.5
    """Share of the clip's keywords transcribed; 1.0 when the clip has none."""
    language_match: float = 0.5
    """1.0 when the output is in the clip's language."""
    hallucination_ratio: float = -0.5
    """Share of output words that are insertions (a penalty)."""
    empty: float = -1.0
    """1.0 when the output has no words (a penalty)."""
    repetition: float = -0.5
    """Share of repeated word 3-grams: loops (a penalty)."""
    overlong: float = -1.0
    """1.0 when the output has more words than the audio could hold (a penalty)."""

    @classmethod
    def from_mapping(cls, weights: Mapping[str, float]) -> RewardWeights:
        """Defaults overridden by ``weights``; an unknown name raises ``ValueError``."""
        _check_names(weights, known=REWARD_NAMES)
        return cls(**{name: float(w) for name, w in weights.items()})


#: The components a weight can be given to (the fields of :class:`RewardWeights`).
REWARD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(RewardWeights))


def _check_names(weights: Mapping[str, float], known: Iterable[str]) -> None:
    known = sorted(set(known))
    unknown = sorted(set(weights) - set(known))
    if unknown:
        raise ValueError(f"unknown reward components {unknown}; known: {known}")


def combine(components: Mapping[str, float], weights: RewardWeights | Mapping[str, float]) -> float:
    """Weighted sum of reward components.

    A mapping of weights is complete: names it leaves out weigh 0. Each name
    must be a component of ``components`` or a field of ``RewardWeights``;
    a non-zero weight on a component that was not computed (``accuracy_per``
    without a voice) or that is not finite raises ``ValueError``.

    >>> combine({"accuracy_wer": 0.8, "empty": 0.0, "repetition": 0.5},
    ...         {"accuracy_wer": 1.0, "repetition": -0.5})
    0.55
    """
    table = asdict(weights) if isinstance(weights, RewardWeights) else dict(weights)
    _check_names(table, known={*REWARD_NAMES, *components})
    return sum(_term(components, name, w) for name, w in table.items() if w != 0)


def _term(components: Mapping[str, float], name: str, weight: float) -> float:
    if name not in components:
        raise ValueError(
            f"reward component {name!r} has weight {weight} but was not computed "
            f"(computed: {sorted(components)}); set its weight to 0"
            + (" or pass voice= to speech_rewards" if name == "accuracy_per" else "")
        )
    value = components[name]
    if not math.isfinite(value):
        raise ValueError(f"reward component {name!r} is {value}; give it weight 0")
    return weight * value


#: The weights ``speech_rewards`` uses unless given others.
DEFAULT_WEIGHTS = RewardWeights()


def speech_rewards(
    reference: str,
    hypothesis: str | None,
    audio_seconds: float | None,
    *,
    keywords: str | Iterable[str] | None = (),
    language: str = "en",
    voice: str | None = None,
    weights: RewardWeights | Mapping[str, float] = DEFAULT_WEIGHTS,
    gate_threshold: float = 0.5,
    failure_penalty: float = -1.0,
) -> dict[str, float]:
    """Every reward component of one hypothesis, and their weighted sum under ``"total"``.

    ``keywords`` is the clip's keyword tag (a list or a comma-separated
    string); ``language`` the ISO 639-1 code the output should be in;
    ``voice`` an espeak-ng voice (``"en-us"``) to add ``accuracy_per`` and
    ``per``, or ``None`` to skip phonemes. ``gate_threshold`` and
    ``failure_penalty`` configure ``gated_accuracy``.

    >>> r = speech_rewards("the cat sat", "the cat sat sat sat sat sat", 1.0)
    >>> r["gated_accuracy"], r["repetition"], round(r["total"], 3)
    (-1.0, 0.4, -0.486)
    """
    counts = error_counts(reference, hypothesis)
    out = reward_components(reference, hypothesis, audio_seconds)
    out["gated_accuracy"] = gated_accuracy(counts, gate_threshold, failure_penalty)
    out["keyword_recall"] = keyword_recall(hypothesis, keywords)
    out["language_match"] = language_match(hypothesis, language)
    if voice is not None:
        out["per"] = phoneme_error_rate(reference, hypothesis, voice)
        out["accuracy_per"] = accuracy_per(reference, hypothesis, voice)
    out["total"] = combine(out, weights)
    return out
