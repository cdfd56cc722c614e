"""`rlfoundry run`: the speech loop for named batches, as the same Dagster runs the UI launches.

1. every train batch without preference pairs (or all, with ``--relabel``) gets a
   ``speech_data`` run (ingest, N-best, pairs, rewards) for its partition;
2. one ``speech_loop`` run trains on the train batches and evaluates on the eval
   batches, with the blocking promotion check deciding ``promoted_model``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click

LOOP_JOB = "speech_loop"
LABEL_JOB = "speech_data"


def loop_run_config(base: dict, train: list[str], evals: list[str], objective: str) -> dict:
    """The speech_loop run config: the file's, with batches and objective set."""
    ops = dict(base.get("ops", {}))
    ts = dict(ops.get("speech_training_set", {}).get("config", {}))
    if train:
        ts["train_batches"] = train
    if evals:
        ts["eval_batches"] = evals
    ops["speech_training_set"] = {"config": ts}
    pm = dict(ops.get("whisper_preference_model", {}).get("config", {}))
    pm["objective"] = objective
    ops["whisper_preference_model"] = {"config": pm}
    return {**base, "ops": ops}


def batches_to_label(instance, train: list[str], relabel: bool) -> list[str]:
    """Train batches whose preference pairs were never materialized (all with relabel)."""
    from dagster import AssetKey

    done = instance.get_materialized_partitions(AssetKey("preference_pairs"))
    return [b for b in train if relabel or b not in done]


def run_loop(train: list[str], evals: list[str], objective: str, config_file: Path | None,
             relabel: bool, instance_factory: Callable, run_job: Callable) -> None:
    from pipelines.partitions import BATCHES
    from resources.warehouse import Warehouse

    warehouse = Warehouse()
    roles = warehouse.batches_by_role()
    train = train or roles["train"]
    evals = evals or roles["eval"]
    instance = instance_factory()
    missing = [b for b in train + evals if not instance.has_dynamic_partition(BATCHES, b)]
    if missing:
        raise click.ClickException(f"Batches not registered: {', '.join(missing)}. Register "
                                   "them with `rlfoundry ingest PATH --batch NAME`.")
    base = json.loads(config_file.read_text()) if config_file else {}
    for batch in batches_to_label(instance, train, relabel):
        click.echo(f"\n### labeling train batch {batch} ({LABEL_JOB})")
        run_job(LABEL_JOB, batch, None)
    click.echo(f"\n### {LOOP_JOB}: train on {train or 'every train batch'}, "
               f"evaluate on {evals or 'every eval batch'}")
    config = loop_run_config(base, train, evals, objective)
    before = _latest_eval(warehouse)
    try:
        run_job(LOOP_JOB, None, config)
    finally:
        after = _latest_eval(warehouse)
        if after is not None and after != before:
            _print_outcome(after)


def _latest_eval(warehouse) -> dict | None:
    try:
        return warehouse.read_pointer("asr_eval")
    except FileNotFoundError:
        return None


def _print_outcome(evaluation: dict) -> None:
    """The comparison table and the promotion decision of this run's evaluation."""
    click.echo("\n" + evaluation["table"])
    decision = evaluation["decision"]
    verdict = "PROMOTED" if decision["passed"] else "NOT PROMOTED"
    click.echo(f"\n{verdict} {evaluation['models']['candidate']['model_id']}: "
               f"{decision['reason']}")
