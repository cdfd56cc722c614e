"""How much a transcript's reward counts: a WER gate, and per-group multipliers.

``gated_accuracy`` separates two kinds of mistakes that ``1 − WER`` blends.
A near miss (a word or two wrong) deserves word-level credit; a sentence-level
failure (the wrong sentence, empty output, a repetition loop) deserves a
clear penalty. Under plain ``1 − WER`` a loop and a half-right transcript can
score about the same (both clip near 0), so RL on it barely beats SFT; a
reward that keeps the two apart gives the policy a signal about which failure
to stop making first.

``group_weights`` turns the last evaluation's WER per group (accent, noise
level, speaker...) into multipliers, so the groups the model is worst at
weigh most in the next round; ``weighted`` applies one to a reward.

``gated_accuracy`` is a reward in TRL's signature (see :mod:`training.rewards.components`);
``group_weights`` and ``weighted`` are not rewards, they scale one.

Example:
    >>> gated_accuracy(["a b x d", ""], reference=["a b c d", "a b"])
    [0.75, -1.0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from training.eval.metrics import ErrorCounts
from training.rewards.components import by_reference

__all__ = ["gated_accuracy", "group_weights", "weighted"]


def gated_accuracy(
    completions: Sequence[Any],
    *,
    reference: Sequence[str | None],
    threshold: float = 0.5,
    failure_penalty: float = -1.0,
    **_: Any,
) -> list[float | None]:
    """``1 − WER`` for a near miss (WER ≤ threshold), ``failure_penalty`` above it.

    The penalty must be below every near-miss reward (``1 − threshold``), or a
    failure would pay more than a near miss. An infinite WER (words invented
    over an empty reference) is a failure. ``threshold`` and ``failure_penalty``
    are settings, not columns: bind them with ``functools.partial``. A row without
    a reference gets ``None``.

    >>> gated_accuracy(["red green blue block"], reference=["red green blue black"])
    [0.75]
    >>> gated_accuracy(["hello hello hello hello"], reference=["hello"], failure_penalty=-0.5)
    [-0.5]
    """
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    if failure_penalty >= 1.0 - threshold:
        raise ValueError(
            f"failure_penalty {failure_penalty} must be below 1 - threshold = {1.0 - threshold}: "
            "lower the penalty or the threshold"
        )
    return by_reference(completions, reference,
                        lambda counts: _gate(counts, threshold, failure_penalty))


def _gate(counts: ErrorCounts, threshold: float, failure_penalty: float) -> float:
    wer = counts.wer
    return 1.0 - wer if math.isfinite(wer) and wer <= threshold else failure_penalty


def group_weights(
    wer_by_group: Mapping[str, float],
    strength: float = 1.0,
    floor: float = 0.5,
    cap: float = 2.0,
    sizes: Mapping[str, int] | None = None,
) -> dict[str, float]:
    """Per-group reward multipliers: proportional to ``wer ** strength``, clipped to [floor, cap].

    The weights are scaled so that their mean is 1, which keeps the overall
    reward scale (and so the learning rate that suits it) unchanged. The mean
    is over groups (each group once) unless ``sizes`` gives each group's clip
    count, in which case it is the clip-weighted mean: the average multiplier
    a training clip sees is then 1. Clipping bounds how much any one group can
    dominate; the scale is chosen after clipping, so both hold. When most
    groups are perfect (WER 0, pinned to the floor) a mean of 1 can be
    impossible within the bounds; the worst groups then get the cap and the
    mean stays below 1. ``strength`` 0 gives every group 1.0; larger values
    sharpen the contrast. All-zero WERs give every group 1.0. Weights are
    rounded to 6 decimals, so they read well in logs.

    >>> group_weights({"us": 0.10, "scottish": 0.30, "indian": 0.20})
    {'us': 0.5, 'scottish': 1.5, 'indian': 1.0}
    >>> group_weights({"clean": 0.05, "noisy": 0.80}, cap=1.5)
    {'clean': 0.5, 'noisy': 1.5}
    """
    _check_bounds(wer_by_group, floor, cap)
    raw = {g: wer**strength for g, wer in wer_by_group.items()}
    if not any(raw.values()):
        return dict.fromkeys(wer_by_group, 1.0)
    scale = _scale_for_unit_mean(raw, _shares(wer_by_group, sizes), floor, cap)
    return {g: round(_clip(scale * r, floor, cap), 6) for g, r in raw.items()}


def _check_bounds(wer_by_group: Mapping[str, float], floor: float, cap: float) -> None:
    if not 0.0 < floor <= 1.0 <= cap:
        raise ValueError(f"need 0 < floor <= 1 <= cap, got floor={floor}, cap={cap}")
    for group, wer in wer_by_group.items():
        if not (math.isfinite(wer) and wer >= 0.0):
            raise ValueError(
                f"WER of group {group!r} is {wer}: drop groups with no reference words "
                "(infinite WER) before weighting"
            )


def _shares(wer_by_group: Mapping[str, float], sizes: Mapping[str, int] | None) -> dict[str, float]:
    if sizes is None:
        return {g: 1.0 / len(wer_by_group) for g in wer_by_group}
    missing = sorted(set(wer_by_group) - set(sizes))
    if missing:
        raise ValueError(f"sizes has no clip count for groups {missing}; give one per group")
    total = sum(sizes[g] for g in wer_by_group)
    if total <= 0:
        raise ValueError("sizes must count at least one clip")
    return {g: sizes[g] / total for g in wer_by_group}


def _scale_for_unit_mean(
    raw: Mapping[str, float], share: Mapping[str, float], floor: float, cap: float
) -> float:
    """Bisect for s with mean(clip(s·raw)) = 1; the mean is monotone in s."""

    def mean(scale: float) -> float:
        return sum(share[g] * _clip(scale * r, floor, cap) for g, r in raw.items())

    low, high = 0.0, cap / min(r for r in raw.values() if r > 0)
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if mean(mid) < 1.0 else (low, mid)
    return high


def weighted(
    reward: float, group: str, weights: Mapping[str, float], default: float = 1.0
) -> float:
    """``reward`` times its group's multiplier (``default`` for a group not in ``weights``).

    A penalty (negative reward) grows too: the model is pushed harder away
    from failures on the groups it is worst at.

    >>> weighted(0.5, "scottish", {"scottish": 1.5}), weighted(0.5, "new accent", {})
    (0.75, 0.5)
    """
    return reward * weights.get(group, default)


def _clip(x: float, low: float, high: float) -> float:
    return min(high, max(low, x))
