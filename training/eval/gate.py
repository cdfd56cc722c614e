"""The promotion gate every task shares: is the candidate not worse than the incumbent?

A task's spec names the metric that decides and its direction (`training.tasks.TaskSpec`);
the gate knows nothing else. A tolerance loosens it (a positive one lets a candidate be
that much worse) or tightens it (a negative one demands a gain of that much).

Example:
    >>> print(gate("WER", 0.508, 0.576, higher_is_better=False, percent=True).reason)
    candidate WER 50.8% is better than incumbent WER 57.6% (-6.8 points)
    >>> print(gate("WER", 0.58, 0.576, higher_is_better=False, tolerance=0.01).reason)
    candidate WER 0.580 is worse than incumbent WER 0.576 (+0.004), within the tolerance 0.01
    >>> v = gate("accuracy", 0.61, 0.64, higher_is_better=True, tolerance=0.01)
    >>> v.passed, round(v.delta, 2), v.reason
    (False, -0.03, 'candidate accuracy 0.610 is worse than incumbent accuracy 0.640 (-0.030)')
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """The gate's answer and the numbers behind it."""

    passed: bool
    metric: str
    candidate: float
    incumbent: float
    reason: str

    @property
    def delta(self) -> float:
        """Candidate minus incumbent, in the metric's units."""
        return self.candidate - self.incumbent


def gate(metric: str, candidate: float, incumbent: float, *, higher_is_better: bool,
         tolerance: float = 0.0, percent: bool = False) -> Verdict:
    """Pass when `candidate` is not worse than `incumbent` by more than `tolerance`.

    `percent` shows the values as percentages and the difference in points.
    """
    if not (math.isfinite(candidate) and math.isfinite(incumbent)):
        raise ValueError(f"{metric} is undefined (candidate {candidate}, incumbent "
                         f"{incumbent}): the eval set may be empty")
    if higher_is_better:
        passed = candidate >= incumbent - tolerance
    else:
        passed = candidate <= incumbent + tolerance
    gain = incumbent - candidate if not higher_is_better else candidate - incumbent
    verdict = "better than" if gain > 0 else "as good as" if gain == 0 else "worse than"
    if percent:
        shown = (f"{100 * candidate:.1f}%", f"{100 * incumbent:.1f}%",
                 f"{100 * (candidate - incumbent):+.1f} points")
    else:
        shown = (f"{candidate:.3f}", f"{incumbent:.3f}", f"{candidate - incumbent:+.3f}")
    reason = (f"candidate {metric} {shown[0]} is {verdict} incumbent {metric} {shown[1]} "
              f"({shown[2]})")
    if passed and gain < 0:
        reason += f", within the tolerance {tolerance:g}"
    elif not passed and gain >= 0:  # a negative tolerance demanded a larger gain
        reason += f", short of the gain demanded ({-tolerance:g})"
    return Verdict(passed, metric, candidate, incumbent, reason)
