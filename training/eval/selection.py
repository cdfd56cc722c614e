"""Which of a loop's trained models competes for promotion, and the guard batches' veto.

Every model a loop trains is a contender (SFT, then DPO/MPO; or GRPO/MWER): a later
stage is not better for being later (DPO can collapse into deleting words while the
SFT model it started from is far better). A **guard** batch is held-out speech the
loop must not forget (e.g. real, clean recordings when the train data is synthetic):
a model whose pooled WER on a guard batch rises more than that batch's tolerance
above the incumbent's *regresses* there.

The candidate is the contender with the lowest WER on the target eval batches among
those that regress on no guard; when every contender regresses somewhere, it is the
lowest-WER one, and the gate refuses it naming the guard. Ties go to the earlier
stage (the simpler model).

Example:
    >>> guards = {"sft": [GuardResult("real", 0.05, 0.04, 0.005)],
    ...           "dpo": [GuardResult("real", 0.041, 0.04, 0.005)]}
    >>> choice = choose({"sft": 0.30, "dpo": 0.32}, guards)
    >>> choice.stage
    'dpo'
    >>> print(choice.why)
    dpo: lowest eval WER (32.0%) of those passing the guards; sft (30.0%) regresses on real
    >>> print(guards["sft"][0].reason)
    guard real: WER 5.0% vs incumbent 4.0% (+1.0 points, limit +0.5)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

EPS = 1e-12  # WERs equal up to float noise compare equal


@dataclass(frozen=True)
class GuardResult:
    """One model against the incumbent on one guard batch (pooled WER, as fractions)."""

    batch: str
    wer: float
    incumbent_wer: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.wer <= self.incumbent_wer + self.tolerance + EPS

    @property
    def reason(self) -> str:
        return (f"guard {self.batch}: WER {100 * self.wer:.1f}% vs incumbent "
                f"{100 * self.incumbent_wer:.1f}% ({100 * (self.wer - self.incumbent_wer):+.1f} "
                f"points, limit +{100 * self.tolerance:.1f})")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "reason": self.reason}


def guard_results(wers: Mapping[str, float], incumbent_wers: Mapping[str, float],
                  tolerance: float, per_batch: Mapping[str, float] | None = None,
                  ) -> list[GuardResult]:
    """A model's results on each guard batch: {batch: WER} against the incumbent's, with
    `per_batch` tolerances overriding `tolerance`."""
    per_batch = per_batch or {}
    unknown = sorted(set(per_batch) - set(wers))
    if unknown:
        raise ValueError(f"guard tolerances name batches that are not guards of this loop: "
                         f"{', '.join(unknown)}")
    return [GuardResult(b, wers[b], incumbent_wers[b], per_batch.get(b, tolerance))
            for b in sorted(wers)]


@dataclass(frozen=True)
class Choice:
    """The contender that competes for promotion, why, and its guard results."""

    stage: str
    why: str
    guards: tuple[GuardResult, ...]

    @property
    def regressions(self) -> list[GuardResult]:
        return [g for g in self.guards if not g.passed]


def choose(target: Mapping[str, float],
           guards: Mapping[str, Sequence[GuardResult]] | None = None) -> Choice:
    """The candidate among `target` ({stage: WER on the eval batches}, in stage order)."""
    if not target:
        raise ValueError("no trained model to choose from")
    guards = guards or {}
    order = list(target)

    def regresses(stage: str) -> list[str]:
        return [g.batch for g in guards.get(stage, ()) if not g.passed]

    clean = [s for s in order if not regresses(s)]
    pool = clean or order
    best = min(pool, key=lambda s: (round(target[s], 9), order.index(s)))
    if len(order) == 1:
        why = f"{best}: the only model this loop trained"
    elif not clean:
        why = (f"{best}: lowest eval WER ({100 * target[best]:.1f}%); every model regresses "
               "on a guard batch")
    else:
        dropped = [f"{s} ({100 * target[s]:.1f}%) regresses on {', '.join(regresses(s))}"
                   for s in order if s not in clean and target[s] < target[best] - EPS]
        why = (f"{best}: lowest eval WER ({100 * target[best]:.1f}%) of those passing the "
               "guards" if guards else
               f"{best}: lowest eval WER ({100 * target[best]:.1f}%) of "
               f"{', '.join(f'{s} {100 * target[s]:.1f}%' for s in order)}")
        if dropped:
            why += "; " + "; ".join(dropped)
    return Choice(best, why, tuple(guards.get(best, ())))
