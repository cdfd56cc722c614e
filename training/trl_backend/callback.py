"""A TrainerCallback that records a TRL run the way the Whisper trainer records its own.

Per optimizer step, ``<output_dir>/metrics.jsonl`` (:mod:`training.runtime.metrics_log`) gets
one row, in the Whisper trainer's names where both have the quantity, so the curves
(:func:`training.runtime.curves.plot_curves`), the MLflow upload
(:func:`resources.training_runs.log_training_run`) and the loop's assets read either run:

* TRL's ``reward``/``reward_std`` → ``reward/mean``/``reward/std``; ``rewards/<name>/mean`` →
  ``rewards/<name>`` (one per component, weight 0 included; ``rewards/<name>/std`` kept);
  ``learning_rate`` → ``lr``; ``completions/mean_length`` → ``completion_tokens``; ``kl``,
  ``entropy``, ``loss``, ``grad_norm``, ``frac_reward_zero_std`` and every other TRL metric
  as TRL names it; plus ``step`` and ``step_time_s``.
* GRPO runs are watched (:class:`training.monitors.EntropyWatch`): a warning is written to the
  row (``watch``) and reported once; a stop ends training without saving the collapsed
  weights (the result is the last checkpoint before).

Rows go to ``log`` (the Pipes reporter's ``log``) every ``log_every`` steps, at the last step,
at the first warning and at a stop. A resumed run first drops the rows logged after its
checkpoint. At the end ``curves.png`` is drawn. Only the main process writes.

Example:
    >>> renamed({"reward": 0.5, "rewards/point_in_mask/mean": 0.4, "learning_rate": 1e-5,
    ...          "kl": 0.01, "epoch": 0.1})
    {'reward/mean': 0.5, 'rewards/point_in_mask': 0.4, 'lr': 1e-05, 'kl': 0.01, 'epoch': 0.1}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from training.monitors import EntropyWatch, Verdict
from training.runtime.curves import plot_curves
from training.runtime.metrics_log import (
    METRICS_NAME,
    append_metrics,
    read_metrics,
    truncate_metrics,
)

Log = Callable[[dict[str, Any]], None]
RENAMES = {"reward": "reward/mean", "reward_std": "reward/std", "learning_rate": "lr",
           "completions/mean_length": "completion_tokens"}
SUMMARY_KEYS = ("train_runtime", "train_loss")  # the Trainer's end-of-run summary, not a step


def renamed(logs: Mapping[str, Any]) -> dict[str, Any]:
    """TRL's log keys in the Whisper trainer's names (see the module docstring)."""
    out = {}
    for key, value in logs.items():
        if key.startswith("rewards/") and key.endswith("/mean"):
            key = key[: -len("/mean")]
        out[RENAMES.get(key, key)] = value
    return out


class MetricsCallback(TrainerCallback):
    """metrics.jsonl, the entropy watch, Pipes progress and the curves of one TRL run."""

    def __init__(self, output_dir: str | Path, *, log: Log | None = None, log_every: int = 10,
                 watch: EntropyWatch | None = None):
        self.out = Path(output_dir)
        self.path = self.out / METRICS_NAME
        self.log = log
        self.log_every = log_every
        self.watch = watch
        self.stopped: str | None = None
        self.last: dict[str, Any] = {}
        self._step_started: float | None = None
        self._step_time: float | None = None

    # ------------------------------------------------------------------ run start / end

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.out.mkdir(parents=True, exist_ok=True)
            if state.global_step > 0:  # resumed: the log must match the checkpoint
                self.last = truncate_metrics(self.path, state.global_step)
            else:
                self.path.unlink(missing_ok=True)
        if self.watch is not None and state.global_step > 0:
            first = [r["entropy"] for r in read_metrics(self.path)[: self.watch.window]
                     if r.get("entropy") is not None]
            if len(first) == self.watch.window:
                self.watch.start = sum(first) / len(first)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.path.is_file():
            plot_curves(self.path, self.out / "curves.png")
        return control

    # ------------------------------------------------------------------ steps

    def on_step_begin(self, args, state, control, **kwargs):
        self._step_started = time.perf_counter()
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if self._step_started is not None:
            self._step_time = time.perf_counter() - self._step_started
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        if not logs or any(key in logs for key in SUMMARY_KEYS):
            return control
        record = {"step": state.global_step, **renamed(logs)}
        if self._step_time is not None:
            record["step_time_s"] = self._step_time
        verdict = self._watch(record)
        if verdict.level != "ok":
            record["watch"] = f"{verdict.level}: {verdict.message}"
        if verdict.level == "stop":
            self.stopped = f"stopped at step {state.global_step}: {verdict.message}"
            control.should_training_stop = True
            control.should_save = False  # keep the last good checkpoint, not these weights
        else:
            self.last = record
        if state.is_world_process_zero:
            append_metrics(self.path, record)
            warned = self.watch is not None and self.watch.warned
            due = (verdict.level == "stop" or state.global_step % self.log_every == 0
                   or state.global_step >= state.max_steps
                   or (verdict.level == "warn" and not warned))
            if self.log is not None and due:
                self.log(record)
        if self.watch is not None:
            self.watch.warned = self.watch.warned or verdict.level == "warn"
        return control

    def _watch(self, record: Mapping[str, Any]) -> Verdict:
        entropy = record.get("entropy")
        if self.watch is None or entropy is None:
            return Verdict("ok")
        return self.watch.update(float(entropy), record.get("frac_reward_zero_std"))
