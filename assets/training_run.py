"""One training run of a loop stage: launched out of process, logged, registered, reported.

Every family's training assets (Whisper's SFT, DPO/MPO, GRPO/MWER; a VLM's or audio LM's SFT
and GRPO through the TRL backend) end the same way: validate the whole config as the trainer
will read it (a bad value stops here, before anything is launched), run it through the
training launcher (`torchrun -m training.run`, Pipes), log the run to MLflow, register the
checkpoint as a model version of the loop's family, record the asset's output for the loop's
next assets, and show the curves in the asset's metadata.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from dagster import (
    AssetExecutionContext,
    Failure,
    FloatMetadataValue,
    MaterializeResult,
    MetadataValue,
)

from assets.common import png_markdown
from pipelines.partitions import family_of
from resources.registry import ModelRegistry
from resources.training_launcher import TrainingLauncher
from resources.warehouse import Warehouse
from training.config import ConfigError
from training.runtime.curves import bucket_summary, plot_curves
from training.runtime.metrics_log import read_metrics


def train_and_record(context: AssetExecutionContext, warehouse: Warehouse,
                     registry: ModelRegistry, launcher: TrainingLauncher, *, stage: str,
                     base: str, snap: dict, train_config: dict[str, Any],
                     validate: Callable[[dict[str, Any]], Any]) -> MaterializeResult:
    """Run `train_config` (its `output_dir` is the asset's report folder for the loop),
    register the checkpoint as `<stage>-<loop>` and report its curves."""
    asset_name, loop = context.asset_key.path[-1], context.partition_key
    model_id = f"{stage}-{loop}"
    out = warehouse.report_dir(asset_name, loop)
    train_config = {**train_config, "output_dir": str(out)}
    try:  # the whole config, as the trainer will read it: a bad value stops here
        validate(train_config)
    except ConfigError as exc:
        raise Failure(f"Training not launched: {exc}") from None
    started_ms = int(time.time() * 1000)
    reported = launcher.launch(context, train_config).get_materialize_result()
    ended_ms = int(time.time() * 1000)
    metrics = {k: v.value if hasattr(v, "value") else v
               for k, v in (reported.metadata or {}).items()}
    checkpoint, family = str(metrics["checkpoint"]), family_of(loop)
    curves = plot_curves(out / "metrics.jsonl", out / "curves.png")
    recorded = {**train_config, "snapshot": snap["dir"], "dagster_run": context.run_id}
    run_id = registry.log_training_run(family, stage=stage, loop=loop, config=recorded,
                                       data_snapshot=snap, metrics_path=out / "metrics.jsonl",
                                       curves_png=curves, started_ms=started_ms,
                                       ended_ms=ended_ms)
    version = registry.record(family, model_id=model_id, stage=stage, checkpoint=checkpoint,
                              base_model=base, train_batches=snap["train_batches"],
                              eval_batches=snap["eval_batches"], config=recorded,
                              run_id=run_id, loop=loop, train_metrics=metrics)
    warehouse.write_output(asset_name, loop, {"model_id": model_id, "checkpoint": checkpoint,
                                              "base_model": base, "snapshot": snap["dir"],
                                              "stop_reason": metrics.get("stop_reason") or "",
                                              "config": train_config})
    by_bucket = bucket_summary(read_metrics(out / "metrics.jsonl"))
    if by_bucket:  # a curriculum run: how big each bucket is and how its reward moved
        metrics_meta = {"bucket_sizes": MetadataValue.json(snap.get("buckets", {})),
                        "reward_by_bucket": MetadataValue.json(by_bucket)}
    else:
        metrics_meta = {}
    return MaterializeResult(metadata={
        **metrics_meta,
        **rounded_metadata(reported.metadata or {}),
        "model_id": model_id,
        "registered": MetadataValue.text(f"{version['name']} version {version['version']}"),
        "mlflow_run": MetadataValue.text(f"run {run_id} in experiment {version['name']} "
                                         f"({registry.uri()}; open it with `mlflow ui "
                                         "--backend-store-uri` on that store)"),
        "base_model": MetadataValue.path(base),
        "train_batches": MetadataValue.json(snap["train_batches"]),
        "config": MetadataValue.json(train_config),
        "curves": png_markdown(curves, "training curves"),
        "metrics_file": MetadataValue.path(str(out / "metrics.jsonl")),
    })


def rounded(value: Any, digits: int = 4) -> Any:
    """A float to `digits` significant digits, as the UI should show a metric; any other
    value as it is.

    >>> rounded(2.5000000000000004e-07), rounded(0.6931471805), rounded(3), rounded("x")
    (2.5e-07, 0.6931, 3, 'x')
    """
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{digits}g}")
    return value


def rounded_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The trainer's reported metadata with every float metric `rounded` (the registry and
    ``metrics.jsonl`` keep the full values)."""
    out = {}
    for key, value in metadata.items():
        if isinstance(value, FloatMetadataValue) and value.value is not None:
            value = MetadataValue.float(rounded(value.value))
        out[key] = rounded(value)
    return out
