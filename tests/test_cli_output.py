"""What the CLI prints while work runs: progress with rate and ETA, training steps as lines a
person reads, Dagster's events and libraries' chatter left out unless --verbose."""

import doctest
import importlib
import logging
import os
import warnings

import pytest

from assets.common import progress_logger
from pipelines.output import QUIET_ENV, ShortFormatter, UserLinesOnly, quiet_libraries
from training.runtime.pipes_report import PipesReporter


@pytest.mark.parametrize("name", ["pipelines.report", "pipelines.batches_cli",
                                  "training.runtime.pipes_report", "assets.common"])
def test_docstring_examples_run(name):
    failures, _ = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert failures == 0


class _Log:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append(text)


class _Context:
    def __init__(self, extras=None):
        self.log = _Log()
        self.extras = extras or {}


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_logs_rate_and_eta_at_most_every_interval_and_the_end_once():
    context, clock = _Context(), _Clock()
    log = progress_logger(context, "hypotheses", min_interval_s=30, clock=clock)
    clock.now = 50.0  # the model took 50 s to load: not the pace of the loop
    log(8, 140)  # the first call sets the pace's origin
    clock.now = 60.0
    log(16, 140)  # 10 s since the last line: too soon
    clock.now = 90.0
    log(40, 140)
    clock.now = 150.0
    log(140, 140)
    log(140, 140)  # a second end call (a caller's own): no second line
    assert context.log.lines == ["hypotheses: 40/140 (0.8/s, ETA 02:05)",
                                 "hypotheses: 140/140 (1.3/s)"]


def test_training_steps_are_one_line_with_total_and_eta():
    context, clock = _Context({"max_steps": 70}), _Clock()
    reporter = PipesReporter(context, clock=clock)
    clock.now = 100.0
    reporter.log({"step": 10, "loss": 0.85077, "kl": 0.145, "entropy": 1.525,
                  "step_time_s": 0.5, "lr": 1e-5, "grad_norm": 3.2})
    clock.now = 120.0  # 10 steps in 20 s: 2 s a step from here on
    reporter.log({"step": 20, "loss": 0.8, "reward/mean": 0.41, "rewards/margins": 0.2})
    clock.now = 220.0
    reporter.log({"step": 70, "loss": 0.3})
    assert context.log.lines == [
        "step 10/70  loss 0.8508  kl 0.145  entropy 1.525  ETA 00:30",  # one step's time
        "step 20/70  loss 0.8  reward 0.41  ETA 01:40",
        "step 70/70  loss 0.3"]


def test_without_a_total_a_step_line_has_no_eta():
    context = _Context()
    PipesReporter(context).log({"step": 3, "loss": 1.25, "watch": "warn: entropy low"})
    assert context.log.lines == ["step 3  loss 1.25  (warn: entropy low)"]


def _record(message, level=logging.INFO, event=None, step="asr_eval"):
    record = logging.LogRecord("dagster", level, __file__, 1, message, None, None)
    record.dagster_meta = {"orig_message": message, "step_key": step, "dagster_event": event}
    return record


def test_the_console_keeps_assets_lines_short_and_drops_dagster_events():
    keep, fmt = UserLinesOnly(), ShortFormatter()
    line = _record("incumbent evaluated: 60/60 (2.1/s)")
    assert keep.filter(line)
    assert fmt.format(line).endswith(" asr_eval: incumbent evaluated: 60/60 (2.1/s)")
    assert fmt.format(_record("odd", logging.WARNING)).endswith(" asr_eval: WARNING: odd")
    assert not keep.filter(_record("Started execution of step", logging.DEBUG, event=object()))
    assert not keep.filter(_record("[pipes] external process successfully opened dagster pipes"))
    assert keep.filter(_record("[pipes] did not receive closed message", logging.WARNING))
    assert not keep.filter(_record("Dependencies for step promoted_model failed: ['x']. Not "
                                   "executing.", logging.ERROR))


def test_libraries_are_quieted_at_the_source(monkeypatch):
    from dagster import PreviewWarning

    for name in QUIET_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")  # a user's own choice stays
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_libraries()
        warnings.warn("a preview API", PreviewWarning, stacklevel=1)
        warnings.warn("a real problem", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["a real problem"]
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "WARNING"
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "info"
