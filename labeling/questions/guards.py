"""Ambiguity guards: a comparison is asked only when its answer is clearly apart.

Annotations are approximate: a region a human marks, or a detector finds, may be off by a
few hundred milliseconds at each end. A question whose answer would flip within that error
is not verifiable, so it is skipped with a reason:

* ``too_few_items`` (the chain may rename it, e.g. ``too_few_classes``): a comparison needs
  at least two things to compare;
* ``near_tie``: the best and the runner-up differ by less than the :class:`Margin`, which is
  ``max(abs, rel × the larger of the two magnitudes)`` (default ``max(0.5 s, 10 %)``).

Example:
    >>> pick = extreme({"dog": 4.0, "rain": 1.2, "horn": 3.8}, highest=True)
    >>> pick.passed, pick.reason, pick.detail
    (False, 'near_tie', 'dog 4 vs horn 3.8: 0.2 apart, margin 0.5')
    >>> extreme({"dog": 4.0, "rain": 1.2}, highest=True).winner
    'dog'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labeling.questions.templates import format_number


@dataclass(frozen=True)
class Margin:
    """How far apart two values must be: ``max(abs, rel × max(|a|, |b|))``.

    Example:
        >>> Margin(abs=0.5, rel=0.1).of(10.0, 8.0), Margin(abs=0.5, rel=0.1).of(1.0, 2.0)
        (1.0, 0.5)
    """

    abs: float = 0.5
    """The least separation, in the values' unit (seconds for durations)."""
    rel: float = 0.10
    """The least separation as a share of the larger magnitude."""

    def of(self, a: float, b: float) -> float:
        return max(self.abs, self.rel * max(abs(a), abs(b)))


@dataclass(frozen=True)
class Pick:
    """The outcome of a guard: the winner, or the reason there is none."""

    winner: str | None
    reason: str | None = None
    detail: str = ""
    measured: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def passed(self) -> bool:
        return self.winner is not None


def extreme(
    values: Mapping[str, float], *, highest: bool, margin: Margin = Margin(), unit: str = "",
    too_few: str = "too_few_items",
) -> Pick:
    """The key with the highest (or lowest) value, if it beats the runner-up by ``margin``.

    ``measured`` holds the values, the runner-up, the gap and the margin, passed or not.

    >>> extreme({"a": 1.0, "b": 2.0, "c": 5.0}, highest=False, unit=" s").winner
    'a'
    >>> p = extreme({"a": 1.0}, highest=True, too_few="too_few_classes")
    >>> p.reason, p.detail
    ('too_few_classes', '1 present (a); 2 needed')
    """
    if len(values) < 2:
        names = ", ".join(sorted(values)) or "none"
        return Pick(None, too_few, f"{len(values)} present ({names}); 2 needed",
                    {"values": dict(values)})
    ranked = sorted(values.items(), key=lambda kv: (-kv[1] if highest else kv[1], kv[0]))
    (best, top), (second, runner_up) = ranked[0], ranked[1]
    gap, needed = abs(top - runner_up), margin.of(top, runner_up)
    measured = {"values": dict(values), "runner_up": second, "gap": gap, "margin": needed}
    if gap < needed:
        return Pick(None, "near_tie",
                    f"{best} {format_number(top, 2)}{unit} vs {second} "
                    f"{format_number(runner_up, 2)}{unit}: {format_number(gap, 2)}{unit} apart, "
                    f"margin {format_number(needed, 2)}{unit}", measured)
    return Pick(best, measured=measured)
