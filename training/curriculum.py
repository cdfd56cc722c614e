"""Curriculum sampling: which difficulty buckets a training step may draw from.

Rows carry a ``bucket`` (``easy`` / ``medium`` / ``hard``, from the
``curriculum_buckets`` asset); rows without one count as ``medium``. Stage *k*
allows the first *k + 1* buckets of :data:`ORDER`, so a run starts on easy clips
and ends on all of them. Two schedules:

- ``steps``: stage boundaries at fractions of the run (``boundaries``, e.g.
  ``[0.3, 0.6]`` of ``max_steps``): the stage of a step is a pure function of it;
- ``reward``: advance one stage when the mean reward of the last ``window`` steps
  reaches ``threshold`` (the loop logs each step's stage, so a resumed run
  continues from it).

Within the allowed buckets, rows are drawn without replacement from a seeded
permutation per (seed, stage, epoch), so the order is reproducible.

Example:
    >>> buckets = ["easy", "hard", "medium", "easy", None, "hard"]
    >>> allowed_rows(buckets, stage=0), allowed_rows(buckets, stage=1)
    ([0, 3], [0, 2, 3, 4])
    >>> [stage_for_step(s, 10, [0.3, 0.6]) for s in (0, 2, 3, 5, 6, 9)]
    [0, 0, 1, 1, 2, 2]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

ORDER = ("easy", "medium", "hard")
DEFAULT_BUCKET = "medium"


def allowed_rows(buckets: Sequence[str | None], stage: int) -> list[int]:
    """Indices of rows whose bucket is open at `stage` (all rows past the last stage)."""
    open_ = set(ORDER[: stage + 1])
    rows = [i for i, b in enumerate(buckets) if (b or DEFAULT_BUCKET) in open_]
    return rows or list(range(len(buckets)))  # an empty stage would stall the run


def stage_for_step(step: int, max_steps: int, boundaries: Sequence[float]) -> int:
    """`steps` schedule: how many boundaries (fractions of the run) step `step` has passed."""
    return sum(step >= b * max_steps for b in boundaries)


def curriculum_batch(buckets: Sequence[str | None], stage: int, batch_size: int, *,
                     seed: int, index: int) -> list[int]:
    """Rows of micro-batch `index` drawn from the buckets open at `stage`, seeded."""
    pool = allowed_rows(buckets, stage)
    out = []
    for position in range(index * batch_size, (index + 1) * batch_size):
        epoch, offset = divmod(position, len(pool))
        order = np.random.default_rng([seed, stage, epoch]).permutation(len(pool))
        out.append(pool[int(order[offset])])
    return out


@dataclass
class RewardSchedule:
    """`reward` schedule: advance when the recent mean reward reaches `threshold`."""

    threshold: float
    window: int = 5
    stage: int = 0
    recent: list[float] = field(default_factory=list)

    def update(self, reward: float) -> int:
        """Record one step's mean reward; returns the stage for the next step."""
        self.recent = [*self.recent, reward][-self.window :]
        full = len(self.recent) == self.window
        if full and sum(self.recent) / self.window >= self.threshold and self.stage < 2:
            self.stage += 1
            self.recent = []
        return self.stage
