"""Progress and results of a training run: to Dagster through Pipes, or as JSON lines on stdout.

When the run was launched by a Dagster asset with Pipes (``DAGSTER_PIPES_CONTEXT`` is set), log
lines and the final asset materialization go back to the orchestrator; otherwise every event is
printed as one JSON object a line, which is just as easy to read from a terminal or a script.
Under Pipes a step's metrics become one line a person reads (`progress_line`: step n/N, loss,
reward, ETA); every metric of every step stays in the run's ``metrics.jsonl``. The launcher
passes the run's ``max_steps`` as the Pipes extra ``max_steps``.

Example:
    >>> with open_reporter(environ={}) as report:
    ...     report.log({"step": 1, "loss": 0.69})
    {"event": "progress", "step": 1, "loss": 0.69}
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

PIPES_ENV = "DAGSTER_PIPES_CONTEXT"


class Reporter:
    """Prints JSON lines; :class:`PipesReporter` sends the same events to Dagster."""

    def log(self, metrics: Mapping[str, Any]) -> None:
        self._print({"event": "progress", **metrics})

    def message(self, text: str) -> None:
        self._print({"event": "message", "text": text})

    def materialize(self, metadata: Mapping[str, Any]) -> None:
        self._print({"event": "materialization", **metadata})

    @staticmethod
    def _print(record: Mapping[str, Any]) -> None:
        print(json.dumps(record, default=str), flush=True)


class PipesReporter(Reporter):
    """Events as Dagster Pipes log lines and one asset materialization."""

    def __init__(self, context, clock=time.monotonic):
        self.context = context
        self.clock = clock
        self.total = _int_or_none(context.extras.get("max_steps"))
        self.first: tuple[int, float] | None = None  # (step, time) of the first report

    def log(self, metrics: Mapping[str, Any]) -> None:
        eta = self._eta(_int_or_none(metrics.get("step")), metrics.get("step_time_s"))
        self.context.log.info(progress_line(metrics, self.total, eta))

    def _eta(self, step: int | None, step_time: Any) -> float | None:
        """Seconds left at the pace since the first report (before a second one: the
        step's own time); None without a step or a total."""
        if step is None:
            return None
        now = self.clock()
        if self.first is None:
            self.first, per_step = (step, now), step_time
        elif step > self.first[0]:
            per_step = (now - self.first[1]) / (step - self.first[0])
        else:
            per_step = None
        if not self.total or not isinstance(per_step, int | float):
            return None
        return max(self.total - step, 0) * per_step

    def message(self, text: str) -> None:
        self.context.log.info(text)

    def materialize(self, metadata: Mapping[str, Any]) -> None:
        self.context.report_asset_materialization(metadata=_pipes_metadata(metadata))


# the reward figure shown: RL's mean reward, else DPO's reward margin
REWARD_KEYS = (("reward/mean", "reward"), ("rewards/margins", "margin"))


def progress_line(metrics: Mapping[str, Any], total: int | None, eta_s: float | None) -> str:
    """One training report as a person reads it: step n/N, loss, the reward (or DPO's reward
    margin), KL, entropy, ETA, and the entropy watch's warning if any.

    >>> progress_line({"step": 10, "loss": 0.85077, "rewards/margins": 0.1109, "kl": 0.1453,
    ...                "entropy": 1.525, "lr": 1e-5}, 70, 154.2)
    'step 10/70  loss 0.8508  margin 0.1109  kl 0.1453  entropy 1.525  ETA 02:34'
    >>> progress_line({"step": 3, "loss": 1.0, "reward/mean": 0.5, "watch": "warn: low"},
    ...               None, None)
    'step 3  loss 1  reward 0.5  (warn: low)'
    """
    reward = next(((k, label) for k, label in REWARD_KEYS if k in metrics), None)
    shown = [("loss", "loss"), *([reward] if reward else []), ("kl", "kl"),
             ("entropy", "entropy")]
    parts = [f"step {metrics.get('step', '?')}" + (f"/{total}" if total else "")]
    for key, label in shown:
        value = metrics.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            parts.append(f"{label} {value:.4g}")
    if eta_s:  # none at the last step
        parts.append(f"ETA {_clock(eta_s)}")
    if metrics.get("watch"):
        parts.append(f"({metrics['watch']})")
    return "  ".join(parts)


def _clock(seconds: float) -> str:
    """mm:ss, or h:mm:ss from an hour on."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _pipes_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Numbers and strings as they are; anything else as its string."""
    out = {}
    for key, value in metadata.items():
        ok = isinstance(value, int | float | str | bool) or value is None
        out[key] = value if ok else str(value)
    return out


@contextlib.contextmanager
def open_reporter(*, enabled: bool = True,
                  environ: Mapping[str, str] | None = None) -> Iterator[Reporter]:
    """A Pipes reporter under Dagster Pipes, else a JSON-lines one (`enabled=False`: silent)."""
    environ = os.environ if environ is None else environ
    if not enabled:
        yield _Silent()
    elif PIPES_ENV in environ:
        from dagster_pipes import open_dagster_pipes

        with open_dagster_pipes() as context:
            yield PipesReporter(context)
    else:
        yield Reporter()


class _Silent(Reporter):
    """For non-zero ranks: reports nothing."""

    def _print(self, record: Mapping[str, Any]) -> None:  # type: ignore[override]
        del record


ERROR_FILE_ENV = "RLFOUNDRY_ERROR_FILE"


def record_error(message: str) -> None:
    """Leave the reason a run died where its launcher looks (``$RLFOUNDRY_ERROR_FILE``)."""
    path = os.environ.get(ERROR_FILE_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(message.rstrip() + "\n")


def fail(message: str, code: int = 2) -> None:
    """Print `message` to stderr, record it for the launcher, and exit with `code`."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    record_error(message)
    raise SystemExit(code)
