"""Reward components for speech: small, pure functions of (reference, hypothesis, audio length).

Each returns a float and has an example that runs as a doctest. Text is
compared after the project's normaliser (`training.eval.metrics.normalize`), so a
reward never pays for casing or punctuation. RL objectives combine these by
configured weights; `reward_components` gives all of them for one hypothesis,
which the `reward_shaping` asset stores per hypothesis so every component can
be inspected and logged.

More components live in the other modules of :mod:`training.rewards`, which
re-exports them with these.

Example:
    >>> r = reward_components("the cat sat", "the cat sat sat sat sat sat", audio_seconds=1.0)
    >>> round(r["accuracy_wer"], 2), round(r["hallucination_ratio"], 2), r["empty"]
    (0.0, 0.57, 0.0)
"""

from __future__ import annotations

import math
from collections import Counter

from training.eval.metrics import ErrorCounts, error_counts, normalize

__all__ = [
    "accuracy_cer",
    "accuracy_wer",
    "hallucination_ratio",
    "is_empty",
    "length_ratio",
    "overlong",
    "repetition_ratio",
    "reward_components",
]

MAX_WORDS_PER_SECOND = 6.0  # faster than any natural speech: more words is hallucination


def accuracy_wer(counts: ErrorCounts) -> float:
    """1 − WER, clipped to [0, 1] (insertion loops drive WER past 1).

    >>> accuracy_wer(error_counts("a b c d", "a b x d"))
    0.75
    """
    return _clip01(1.0 - counts.wer) if math.isfinite(counts.wer) else 0.0


def accuracy_cer(counts: ErrorCounts) -> float:
    """1 − CER, clipped to [0, 1].

    >>> accuracy_cer(error_counts("abcd", "abcd"))
    1.0
    """
    return _clip01(1.0 - counts.cer) if math.isfinite(counts.cer) else 0.0


def hallucination_ratio(counts: ErrorCounts) -> float:
    """Share of the hypothesis' words that are insertions (0 = none invented).

    >>> hallucination_ratio(error_counts("hello", "hello there my friend"))
    0.75
    """
    return counts.insertions / counts.hyp_words if counts.hyp_words else 0.0


def is_empty(hypothesis: str | None) -> float:
    """1.0 when the hypothesis has no words after normalisation.

    >>> is_empty("  [noise] um "), is_empty("yes")
    (1.0, 0.0)
    """
    return 0.0 if normalize(hypothesis or "").split() else 1.0


def repetition_ratio(hypothesis: str | None, n: int = 3) -> float:
    """Share of the hypothesis' word n-grams that repeat an earlier one (loops score near 1).

    >>> repetition_ratio("go go go go go go go")
    0.8
    >>> repetition_ratio("the quick brown fox jumps")
    0.0
    """
    words = normalize(hypothesis or "").split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    repeats = sum(c - 1 for c in Counter(grams).values())
    return repeats / len(grams)


def length_ratio(counts: ErrorCounts) -> float:
    """Hypothesis words over reference words (1.0 is right; inf when the reference is empty).

    >>> length_ratio(error_counts("the cat sat down", "the cat"))
    0.5
    """
    if counts.ref_words == 0:
        return 1.0 if counts.hyp_words == 0 else math.inf
    return counts.hyp_words / counts.ref_words


def overlong(hypothesis: str | None, audio_seconds: float | None) -> float:
    """1.0 when the hypothesis has more words than the audio could hold (> 6 words/s).

    >>> overlong("a cat and a dog and a bird and a fish", audio_seconds=1.0)
    1.0
    """
    if not audio_seconds:
        return 0.0
    words = len(normalize(hypothesis or "").split())
    return 1.0 if words > MAX_WORDS_PER_SECOND * audio_seconds + 2 else 0.0


def reward_components(
    reference: str, hypothesis: str | None, audio_seconds: float | None = None
) -> dict[str, float]:
    """Every component for one hypothesis, keyed by name (what `reward_shaping` stores)."""
    counts = error_counts(reference, hypothesis)
    return {
        "accuracy_wer": accuracy_wer(counts),
        "accuracy_cer": accuracy_cer(counts),
        "hallucination_ratio": hallucination_ratio(counts),
        "empty": is_empty(hypothesis),
        "repetition": repetition_ratio(hypothesis),
        "length_ratio": length_ratio(counts),
        "overlong": overlong(hypothesis, audio_seconds),
        "wer": counts.wer,
        "cer": counts.cer,
    }


def _clip01(x: float) -> float:
    return min(1.0, max(0.0, x))
