"""A finished training run, logged to MLflow: config as params, curves as metrics, artifacts.

Training runs out of process and writes `metrics.jsonl` (one JSON object per step, with a
`step` field; see `training.runtime.metrics_log.read_metrics`); this logs it afterwards from the
orchestrator, so the trainer needs no MLflow and a failed upload cannot fail a training run.
Metrics go in `log_batch` calls of at most MLflow's 1000 values, params of at most 100.

Example:
    >>> _flatten({"lr": 1e-5, "reward_weights": {"wer": 1.0}, "curriculum": None})
    {'lr': '1e-05', 'reward_weights.wer': '1.0', 'curriculum': 'null'}
    >>> _key("loss/dpo (mean)!")
    'loss/dpo _mean__'
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

MAX_PARAM_VALUE = 6000  # MLflow's limits: param value length, params / metrics per log_batch
PARAMS_PER_BATCH, METRICS_PER_BATCH = 100, 1000


def log_training_run(
    client: MlflowClient, experiment_id: str, *, family: str, stage: str, loop: str,
    config: Mapping[str, Any], data_snapshot: Mapping[str, Any],
    metrics_path: str | Path | None = None, curves_png: str | Path | None = None,
    status: str = "FINISHED", started_ms: int | None = None, ended_ms: int | None = None,
) -> str:
    """Create a run named `<stage>-<loop>` and log the run's record to it; returns its id.

    Params: the config, flattened (`a.b`), values as text cut to MLflow's 6000 characters.
    Metrics: every finite number of each `metrics.jsonl` row at that row's step (strings,
    booleans and nulls are skipped). Artifacts: `data_snapshot.json`, the curves PNG and
    `metrics.jsonl` itself; never the checkpoint (the model version points at its folder).
    The run ends `status`, or FAILED if logging raises.
    """
    from mlflow.entities import Metric, Param

    from training.runtime.metrics_log import read_metrics

    run = client.create_run(experiment_id, start_time=started_ms, run_name=f"{stage}-{loop}",
                            tags={"family": family, "stage": stage, "loop": loop})
    run_id = run.info.run_id
    try:
        params = [Param(_key(k), v[:MAX_PARAM_VALUE]) for k, v in _flatten(config).items()]
        for chunk in _chunks(params, PARAMS_PER_BATCH):
            client.log_batch(run_id, params=chunk, synchronous=True)
        now = int(time.time() * 1000)
        rows = read_metrics(metrics_path) if metrics_path else []
        metrics = [Metric(_key(k), float(v), now, int(row["step"])) for row in rows
                   if "step" in row for k, v in row.items() if k != "step" and _is_number(v)]
        for chunk in _chunks(metrics, METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=chunk, synchronous=True)
        client.log_dict(run_id, dict(data_snapshot), "data_snapshot.json")
        for path in (curves_png, metrics_path):
            if path and Path(path).is_file():
                client.log_artifact(run_id, str(path))
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, status, end_time=ended_ms)
    return run_id


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _key(name: str) -> str:
    """A param/metric name MLflow accepts: alphanumerics, `_-./: `, at most 250 characters."""
    return re.sub(r"[^\w\-./: ]", "_", name).strip("/")[:250] or "_"


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts dotted (`{"a": {"b": 1}}` -> `{"a.b": "1"}`), other values as text/JSON."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            out[f"{prefix}{key}"] = text
    return out


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
