"""A TRL loop's training set: the chains' dataset rows of its train and eval batches, frozen.

The loop's SFT and GRPO train on ``train.jsonl`` and its evaluation scores ``eval.jsonl``
(media paths absolute, so the snapshot reads from anywhere); ``snapshot.json`` says which
batches, tasks and curriculum buckets went in, and every model trained from it records it.
"""


import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

import sql
import training.trl_backend.data
from assets.loop.config import TrainingSetConfig
from pipelines.partitions import loops
from resources.warehouse import Warehouse
from training.data.training_set import TrainingSetError, check_selection, write_jsonl
from training.tasks import TaskSpec
from training.trl_backend.data import read_rows

THIS = sys.modules[__name__]


def dataset_file(warehouse: Warehouse, spec: TaskSpec, task: str, batch: str) -> Path:
    """Where batch `batch`'s dataset of chain task `task` is (whether or not it exists)."""
    asset_name, filename = spec.datasets[task]
    return warehouse.report_dir(asset_name, batch) / filename


def batches_with_datasets(warehouse: Warehouse, spec: TaskSpec, role: str,
                          tasks: list[str]) -> list[str]:
    """Registered batches of `role` holding a dataset of one of `tasks`, in registration
    order."""
    return [b for b in warehouse.batches_by_role().get(role, [])
            if any(dataset_file(warehouse, spec, t, b).is_file() for t in tasks)]


def build_training_set(spec: TaskSpec) -> AssetsDefinition:
    deps = [AssetDep(asset_name, partition_mapping=AllPartitionMapping())
            for asset_name, _ in spec.datasets.values()]

    @asset(name=spec.training_set, group_name=f"{spec.family}_loop", partitions_def=loops,
           deps=deps, code_version=sql.version(THIS, training.trl_backend.data))
    def _training_set(context: AssetExecutionContext, config: TrainingSetConfig,
                      warehouse: Warehouse) -> MaterializeResult:
        """The rows one loop run trains (train.jsonl) and evaluates (eval.jsonl) on: the
        datasets of the chains' tasks for its train and eval batches."""
        tasks = _tasks(spec, config.tasks)
        train = config.train_batches or batches_with_datasets(warehouse, spec, "train", tasks)
        evals = config.eval_batches or batches_with_datasets(warehouse, spec, "eval", tasks)
        registered = [b for bs in warehouse.batches_by_role().values() for b in bs]
        check_selection(train, evals, registered)
        out = warehouse.report_dir(spec.training_set, context.partition_key)
        rows = {role: _rows(warehouse, spec, tasks, batches)
                for role, batches in (("train", train), ("eval", evals))}
        snap = {"dir": str(out.resolve()), "train_batches": train, "eval_batches": evals,
                "tasks": tasks, "created_at": datetime.now(UTC).isoformat(),
                **{f"{role}_data": str(write_jsonl(r, out / f"{role}.jsonl").resolve())
                   for role, r in rows.items()},
                "counts": {role: dict(Counter(_task(r) for r in rs)) for role, rs in rows.items()},
                "per_batch": {role: dict(Counter(r["_batch"] for r in rs))
                              for role, rs in rows.items()},
                "buckets": dict(Counter(f"{_task(r)}/{r.get('bucket') or 'unscored'}"
                                        for r in rows["train"]))}
        warehouse.write_output(spec.training_set, context.partition_key, snap)
        return MaterializeResult(metadata={
            "train_batches": MetadataValue.json(train), "eval_batches": MetadataValue.json(evals),
            "train_rows": len(rows["train"]), "eval_rows": len(rows["eval"]),
            "rows_per_task": MetadataValue.json(snap["counts"]),
            "per_batch": MetadataValue.json(snap["per_batch"]),
            "curriculum_buckets": MetadataValue.json(snap["buckets"]),
            "snapshot": MetadataValue.path(snap["dir"]),
        })

    return _training_set


def _tasks(spec: TaskSpec, wanted: list[str]) -> list[str]:
    unknown = sorted(set(wanted) - set(spec.datasets))
    if unknown:
        raise TrainingSetError(f"Unknown tasks {unknown} for the {spec.family} loop; its tasks: "
                               f"{', '.join(spec.datasets)}.")
    return list(wanted or spec.datasets)


def _rows(warehouse: Warehouse, spec: TaskSpec, tasks: list[str], batches: list[str]
          ) -> list[dict]:
    """Every dataset row of `batches` for `tasks`, media paths absolute, tagged with its
    batch; a TrainingSetError naming the batches when none has a dataset."""
    out = []
    for batch in batches:
        for task in tasks:
            path = dataset_file(warehouse, spec, task, batch)
            if path.is_file():
                out += [{**r, "_batch": batch} for r in read_rows([path])]
    if not out:
        jobs = " or ".join(f"`rlfoundry job {_label_job(t)} --batch NAME`" for t in tasks)
        raise TrainingSetError(f"Batches {batches} have no {'/'.join(tasks)} dataset rows: "
                               f"label them first ({jobs}).")
    return out


def _label_job(task: str) -> str:
    from assets.loop.specs import CHAINS

    return CHAINS[task][1]


def _task(row: dict) -> str:
    from training.trl_backend.data import task_of

    return task_of(row)
