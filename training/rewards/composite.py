"""One scalar reward for online RL on speech, with every component kept for the logs.

``reward_table`` calls every reward of :data:`training.rewards.REWARDS` on a batch of
completions in TRL's signature (``fn(completions, **columns)``, the call TRL's ``GRPOTrainer``
makes) and adds, per completion, the diagnostics ``wer``, ``cer``, ``length_ratio`` (and ``per``
when a voice is given) and the weighted sum under ``"total"``: the Whisper trainer's GRPO reward.
``speech_rewards`` is the same for one hypothesis. Logging every component,
not only the total, is what shows *how* a policy earns its reward (fewer
loops? shorter output?) and catches reward hacking early.

Weights live in :class:`RewardWeights`. Hallucination signals (empty output,
repetition, overlong output, inserted words) enter with negative weights, so
they are penalties on top of the accuracy term.

Example:
    >>> t = reward_table(["call doctor smith", ""], reference=["call dr smith"] * 2,
    ...                  keywords=[["Dr Smith"]] * 2, language=["en"] * 2, duration_s=[1.5] * 2)
    >>> t["gated_accuracy"], t["keyword_recall"], t["total"]
    ([1.0, -1.0], [1.0, 0.0], [2.0, -1.5])
    >>> r = speech_rewards("call doctor smith", "call doctor smith", 1.5, keywords=["Dr Smith"])
    >>> r["gated_accuracy"], r["keyword_recall"], r["total"]
    (1.0, 1.0, 2.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from training.rewards import REWARDS
from training.rewards.components import (
    cached_counts,
    length_ratio,
    paired,
)
from training.rewards.phonemes import phoneme_error_rate

__all__ = [
    "DEFAULT_WEIGHTS",
    "REWARD_NAMES",
    "RewardWeights",
    "combine",
    "reward_table",
    "speech_rewards",
]


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


def combine(
    components: Mapping[str, float | None], weights: RewardWeights | Mapping[str, float]
) -> float:
    """Weighted sum of reward components.

    A mapping of weights is complete: names it leaves out weigh 0. Each name
    must be a component of ``components`` or a field of ``RewardWeights``;
    a non-zero weight on a component that was not computed (``accuracy_per``
    without a voice) or that is not finite raises ``ValueError``. A component
    that is ``None`` (the reward does not apply to this row) adds nothing, as
    in TRL's ``nansum``; when every weighted component is ``None`` the sum is
    NaN (TRL's "unscorable": no advantage).

    >>> combine({"accuracy_wer": 0.8, "empty": 0.0, "repetition": 0.5},
    ...         {"accuracy_wer": 1.0, "repetition": -0.5})
    0.55
    """
    table = asdict(weights) if isinstance(weights, RewardWeights) else dict(weights)
    _check_names(table, known={*REWARD_NAMES, *components})
    terms = [_term(components, name, w) for name, w in table.items() if w != 0]
    applied = [t for t in terms if t is not None]
    return math.nan if terms and not applied else sum(applied)


def _term(components: Mapping[str, float | None], name: str, weight: float) -> float | None:
    if name not in components:
        raise ValueError(
            f"reward component {name!r} has weight {weight} but was not computed "
            f"(computed: {sorted(components)}); set its weight to 0"
            + (" or pass voice= to speech_rewards" if name == "accuracy_per" else "")
        )
    value = components[name]
    if value is None:
        return None
    if not math.isfinite(value):
        raise ValueError(f"reward component {name!r} is {value}; give it weight 0")
    return weight * value


#: The weights ``speech_rewards`` uses unless given others.
DEFAULT_WEIGHTS = RewardWeights()


#: The components ``reward_table`` computes, in its order (``accuracy_per`` and ``per`` only
#: with a voice, then ``total``).
_TABLE = (
    "accuracy_wer", "accuracy_cer", "hallucination_ratio", "empty", "repetition",
    "length_ratio", "overlong", "wer", "cer", "gated_accuracy", "keyword_recall",
    "language_match",
)
_DIAGNOSTICS = ("length_ratio", "wer", "cer")


def reward_table(
    completions: Sequence[Any],
    *,
    reference: Sequence[str | None],
    keywords: Sequence[str | Iterable[str] | None],
    language: Sequence[str | None],
    duration_s: Sequence[float | None],
    voice: str | None = None,
    weights: RewardWeights | Mapping[str, float] = DEFAULT_WEIGHTS,
    gate_threshold: float = 0.5,
    failure_penalty: float = -1.0,
    **columns: Any,
) -> dict[str, list[float | None]]:
    """Every reward component of each completion, and their weighted sum under ``"total"``.

    Each reward of :data:`training.rewards.REWARDS` is called as TRL calls a reward function,
    ``fn(completions, reference=..., keywords=..., language=..., duration_s=..., **columns)``
    (other columns are passed on and ignored), so these are the values TRL would get.
    ``keywords`` are each row's keyword tag (a list or a comma-separated string);
    ``language`` the ISO 639-1 code its output should be in; ``duration_s`` the audio length.
    ``voice`` is an espeak-ng voice (``"en-us"``) to add ``accuracy_per`` and ``per``, or
    ``None`` to skip phonemes. ``gate_threshold`` and ``failure_penalty`` configure
    ``gated_accuracy``. A row without a reference gets ``None`` for the components that need one.

    >>> t = reward_table(["the cat sat sat sat sat sat"], reference=["the cat sat"],
    ...                  keywords=[None], language=["en"], duration_s=[1.0])
    >>> t["gated_accuracy"], t["repetition"], [round(x, 3) for x in t["total"]]
    ([-1.0], [0.4], [-0.486])
    """
    row = dict(columns, reference=reference, keywords=keywords, language=language,
               duration_s=duration_s)
    settings = {"gated_accuracy": {"threshold": gate_threshold, "failure_penalty": failure_penalty}}
    diagnostics = _diagnostics(completions, reference)
    table: dict[str, list[float | None]] = {
        name: diagnostics[name] if name in _DIAGNOSTICS
        else REWARDS[name](completions, **row, **settings.get(name, {}))
        for name in _TABLE
    }
    if voice is not None:
        table["per"] = _per(completions, reference, voice)
        table["accuracy_per"] = REWARDS["accuracy_per"](completions, **row, voice=voice)
    table["total"] = [combine(dict(zip(table, values, strict=True)), weights)
                      for values in zip(*table.values(), strict=True)]
    return table


def _diagnostics(
    completions: Sequence[Any], reference: Sequence[str | None]
) -> dict[str, list[float | None]]:
    """``length_ratio``, ``wer`` and ``cer`` per completion (None without a reference)."""
    alignments = [None if ref is None else cached_counts(ref, text)
                  for text, ref in paired(completions, reference, "reference")]
    return {
        "length_ratio": [None if c is None else length_ratio(c) for c in alignments],
        "wer": [None if c is None else c.wer for c in alignments],
        "cer": [None if c is None else c.cer for c in alignments],
    }


def _per(completions: Sequence[Any], reference: Sequence[str | None],
         voice: str) -> list[float | None]:
    return [None if ref is None else phoneme_error_rate(ref, text, voice)
            for text, ref in paired(completions, reference, "reference")]


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

    One row of :func:`reward_table` (see it for the arguments).

    >>> r = speech_rewards("the cat sat", "the cat sat sat sat sat sat", 1.0)
    >>> r["gated_accuracy"], r["repetition"], round(r["total"], 3)
    (-1.0, 0.4, -0.486)
    """
    table = reward_table(
        [hypothesis], reference=[reference], keywords=[keywords], language=[language],
        duration_s=[audio_seconds], voice=voice, weights=weights,
        gate_threshold=gate_threshold, failure_penalty=failure_penalty,
    )
    return {name: values[0] for name, values in table.items()}
