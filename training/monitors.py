"""Entropy watch: notice a policy collapsing before it wastes the run.

Online RL's usual failure is entropy collapse: the policy puts all its mass on
one transcript per clip, every sample of a group gets the same reward, the
advantages vanish and learning stops (or the model degenerates into a short
safe output). The watch compares each step's policy entropy with the first
step's, and counts steps in which no group's rewards varied:

Per-step entropy is measured on that step's clips and samples, so it is noisy:
the watch compares the mean of the last ``window`` steps with the mean of the
first ``window`` steps, and says nothing before it has seen ``window`` steps.

- below ``warn_fraction`` of the starting entropy (or any step with every group
  at zero reward variance): a warning, once per episode;
- below ``stop_fraction`` (or ``patience`` steps in a row with no reward
  variance): stop. The loop then ends without saving the collapsed weights,
  and the run's result is the last checkpoint saved before it.

Example:
    >>> watch = EntropyWatch(warn_fraction=0.5, stop_fraction=0.2, patience=2, window=2)
    >>> [watch.update(e).level for e in (2.0, 2.2, 0.9, 0.9, 0.3)]
    ['ok', 'ok', 'ok', 'warn', 'warn']
    >>> verdict = watch.update(0.1)
    >>> verdict.level, verdict.message
    ('stop', 'policy entropy 0.200 is 10% of its starting 2.100 (stop below 20%)')
"""

from __future__ import annotations

from dataclasses import dataclass, field


class TrainingStopped(RuntimeError):
    """The entropy watch stopped a run before it had saved any checkpoint."""


@dataclass(frozen=True)
class Verdict:
    level: str  # "ok" | "warn" | "stop"
    message: str = ""


@dataclass
class EntropyWatch:
    """Stateful check, fed once per optimizer step."""

    warn_fraction: float = 0.5
    stop_fraction: float = 0.2
    patience: int = 5
    window: int = 5
    start: float | None = None
    flat_steps: int = 0
    warned: bool = False
    recent: list[float] = field(default_factory=list)

    def update(self, entropy: float, zero_variance_fraction: float | None = None) -> Verdict:
        """The verdict for this step's mean policy entropy (and GRPO's zero-variance share)."""
        self.recent = [*self.recent, entropy][-self.window :]
        if self.start is None and len(self.recent) == self.window:
            self.start = sum(self.recent) / self.window
        self.flat_steps = self.flat_steps + 1 if zero_variance_fraction == 1.0 else 0
        if self.start is None:
            return self._flat_verdict() or Verdict("ok")
        entropy = sum(self.recent) / len(self.recent)
        ratio = entropy / self.start if self.start > 0 else 1.0
        entropy_msg = (f"policy entropy {entropy:.3f} is {ratio:.0%} of its starting "
                       f"{self.start:.3f}")
        if self.stop_fraction > 0 and ratio < self.stop_fraction:
            return Verdict("stop", f"{entropy_msg} (stop below {self.stop_fraction:.0%})")
        flat = self._flat_verdict()
        if flat is not None and flat.level == "stop":
            return flat
        if ratio < self.warn_fraction:
            return Verdict("warn", f"{entropy_msg} (warn below {self.warn_fraction:.0%})")
        return flat or Verdict("ok")

    def _flat_verdict(self) -> Verdict | None:
        if self.flat_steps >= self.patience:
            return Verdict("stop", f"no group's rewards varied for {self.flat_steps} steps: "
                           "no learning signal left (reward variance collapsed)")
        if self.flat_steps:
            return Verdict("warn", f"no group's rewards varied this step "
                           f"({self.flat_steps} in a row)")
        return None
