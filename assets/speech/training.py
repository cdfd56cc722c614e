"""Training assets: the loop's training set, cold-start SFT, then DPO or MPO, out of process.

These assets are partitioned by loop (`pipelines.partitions.loops`): one loop run trains
on several batch partitions and evaluates on others. `speech_training_set` freezes those
batches' rows into the loop's snapshot; each model reads its own loop's snapshot, trains
into a folder keyed by loop and stage (so re-running a failed loop resumes from its last
checkpoint), and records its snapshot and config in the model registry.
"""

import sys
from typing import Any

from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

import assets.label_sets
import assets.training_run
import sql
import training
import training.data.training_set
from assets.label_sets import stale_labels, stale_message
from assets.speech import loop_config as stage_configs
from assets.speech.loop_config import PreferenceTrainingConfig, RLConfig, SFTConfig, train_settings
from assets.speech.spec import SPEECH
from assets.training_run import train_and_record
from pipelines.partitions import family_of, loops
from resources.model_hub import ModelHub
from resources.registry import ModelRegistry
from resources.training_launcher import TrainingLauncher
from resources.warehouse import Warehouse
from training.config import TrainConfig
from training.data.training_set import TrainingSetError, check_selection, write_snapshot

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version
# the whole trainer
TRAINER_VERSION = sql.version(THIS, stage_configs, assets.training_run, training)

SNAPSHOT_SQL = ("queries/sft_rows", "queries/pairs_for_batches", "queries/eval_clips",
                "queries/batches_by_role", "queries/batches_holding", "queries/clip_sets",
                "queries/label_sets")


class TrainingSetConfig(Config):
    train_batches: list[str] = Field(default_factory=list, description="Batches to train on; "
                                     "empty = every batch with role 'train' that holds audio.")
    eval_batches: list[str] = Field(default_factory=list, description="Held-out batches to "
                                    "evaluate on; empty = every 'eval' batch that holds audio.")
    eval_splits: list[str] = Field(default_factory=list, description="Only eval clips whose "
                                   "`split` tag is one of these; empty = all.")
    guard_batches: list[str] = Field(default_factory=list, description="Held-out batches a "
                                     "candidate must not get worse on (e.g. real, clean "
                                     "speech); empty = every 'guard' batch that holds audio.")


@asset(group_name="training", partitions_def=loops,
       deps=[AssetDep(name, partition_mapping=AllPartitionMapping())
             for name in ("audio_clips", "preference_pairs", "curriculum_buckets")],
       code_version=sql.version(*SNAPSHOT_SQL, THIS, assets.label_sets,
                                training.data.training_set))
def speech_training_set(
    context: AssetExecutionContext, config: TrainingSetConfig, warehouse: Warehouse,
) -> MaterializeResult:
    """The rows one loop run uses: verified transcripts and pairs (train), labeled clips
    (eval, and the guard batches a candidate must not get worse on)."""
    roles = warehouse.batches_by_role()
    train, evals, guards = (getattr(config, f"{role}_batches")
                            or warehouse.batches_holding(SPEECH.media_table, role)
                            for role in ("train", "eval", "guard"))
    check_selection(train, evals, [b for bs in roles.values() for b in bs], guards)
    stale = stale_labels(warehouse, SPEECH.media_table, SPEECH.label_tables, train)
    if stale:
        raise TrainingSetError(stale_message(stale, SPEECH.label_job))
    out = warehouse.report_dir("speech_training_set", context.partition_key)
    snap = write_snapshot(out, train_batches=train, eval_batches=evals, guard_batches=guards,
                          **_rows(warehouse, config, train, evals, guards))
    unlabeled = [b for b in snap["per_batch"]["sft"] if b not in snap["per_batch"]["pairs"]]
    if unlabeled:
        context.log.warning(f"Train batches without preference pairs (SFT only): {unlabeled}; "
                            "run `rlfoundry job speech_data --batch NAME` to label them.")
    warehouse.write_output("speech_training_set", context.partition_key, snap)
    return MaterializeResult(metadata={
        "train_batches": MetadataValue.json(train), "eval_batches": MetadataValue.json(evals),
        "sft_rows": snap["counts"]["sft"], "pairs": snap["counts"]["pairs"],
        "eval_clips": snap["counts"]["eval"], "guard_clips": snap["counts"]["guard"],
        "without_pairs": MetadataValue.json(unlabeled),
        "per_batch": MetadataValue.json(snap["per_batch"]),
        "curriculum_buckets": MetadataValue.json(snap["buckets"]),
        "snapshot": MetadataValue.path(snap["dir"]),
    })


def _rows(warehouse: Warehouse, config: TrainingSetConfig, train: list[str], evals: list[str],
          guards: list[str]) -> dict[str, list[dict]]:
    """The snapshot's rows, or a TrainingSetError saying what is missing."""
    params = {"batches": train}
    rows = {"sft": warehouse.fetch_dicts(sql.load("queries/sft_rows"), params),
            "pairs": warehouse.fetch_dicts(sql.load("queries/pairs_for_batches"), params),
            "eval_clips": warehouse.fetch_dicts(sql.load("queries/eval_clips"), {
                "batches": evals, "splits": config.eval_splits}),
            "guard_clips": warehouse.fetch_dicts(sql.load("queries/eval_clips"), {
                "batches": guards, "splits": []})}
    if not rows["sft"]:
        raise TrainingSetError(f"Train batches {train} have no clips with transcripts: "
                               "ingest them first (`rlfoundry ingest PATH --batch NAME`).")
    if not rows["eval_clips"]:
        where = f" in splits {config.eval_splits}" if config.eval_splits else ""
        raise TrainingSetError(f"Eval batches {evals} have no labeled clips{where}: "
                               "ingest them first.")
    empty = sorted(set(guards) - {r["batch"] for r in rows["guard_clips"]})
    if empty:
        raise TrainingSetError(f"Guard batches {empty} have no labeled clips: ingest them "
                               "with transcripts, or drop them from guard_batches.")
    return rows


@asset(group_name="training", partitions_def=loops, deps=["speech_training_set"], pool="gpu",
       code_version=TRAINER_VERSION)
def whisper_sft_model(
    context: AssetExecutionContext, config: SFTConfig, warehouse: Warehouse,
    model_hub: ModelHub, training_launcher: TrainingLauncher, model_registry: ModelRegistry,
) -> MaterializeResult:
    """Cold-start SFT: teacher-forced cross-entropy on the training set's verified transcripts."""
    loop = context.partition_key
    snap = warehouse.read_output("speech_training_set", loop)
    base = _base_model(config.base_model, loop, warehouse, model_registry, model_hub)
    settings = train_settings(config)
    return _train(context, warehouse, model_registry, training_launcher, "sft", base, snap,
                  f"{snap['dir']}/sft.jsonl", settings)


@asset(group_name="training", partitions_def=loops,
       deps=["speech_training_set", "whisper_sft_model"], pool="gpu",
       code_version=TRAINER_VERSION)
def whisper_preference_model(
    context: AssetExecutionContext, config: PreferenceTrainingConfig, warehouse: Warehouse,
    model_hub: ModelHub, training_launcher: TrainingLauncher, model_registry: ModelRegistry,
) -> MaterializeResult:
    """Whisper tuned with DPO or MPO on the training set's preference pairs."""
    loop = context.partition_key
    snap = warehouse.read_output("speech_training_set", loop)
    if not snap["counts"]["pairs"]:
        raise TrainingSetError(f"The training set {snap['dir']} has no preference pairs: run "
                               "`rlfoundry job speech_data --batch NAME` on the train batches.")
    base = _base_model(config.base_model, loop, warehouse, model_registry, model_hub)
    settings = train_settings(config)
    return _train(context, warehouse, model_registry, training_launcher, config.objective, base,
                  snap, f"{snap['dir']}/pairs.jsonl", settings)


@asset(group_name="training", partitions_def=loops,
       deps=["speech_training_set", "whisper_sft_model", "whisper_preference_model"],
       pool="gpu", code_version=TRAINER_VERSION)
def whisper_rl_model(
    context: AssetExecutionContext, config: RLConfig, warehouse: Warehouse,
    model_hub: ModelHub, training_launcher: TrainingLauncher, model_registry: ModelRegistry,
) -> MaterializeResult:
    """Online RL (GRPO or MWER) on the training set's verified transcripts, with rewards,
    entropy and KL curves; an entropy collapse stops it at the last good checkpoint."""
    loop = context.partition_key
    snap = warehouse.read_output("speech_training_set", loop)
    base = _base_model(config.base_model, loop, warehouse, model_registry, model_hub)
    settings = train_settings(config)
    return _train(context, warehouse, model_registry, training_launcher, config.objective, base,
                  snap, f"{snap['dir']}/sft.jsonl", settings)


STAGES = {"sft": ("whisper_sft_model", ("sft",)),
          "preference": ("whisper_preference_model", ("dpo", "mpo"))}


def _base_model(name: str, loop: str, warehouse: Warehouse, registry: ModelRegistry,
                model_hub: ModelHub) -> str:
    """A model path from the config's name: '', 'sft', 'preference', 'promoted', or a path/id.

    'sft' and 'preference' are this loop's model of that stage when it trained one, else the
    newest registered model of that stage in the loop's family (an RL loop starting from an
    earlier loop's DPO model).
    """
    if name in STAGES:
        asset_name, stages = STAGES[name]
        try:
            return warehouse.read_output(asset_name, loop)["checkpoint"]
        except FileNotFoundError:
            row = next((m for m in registry.all_models(family_of(loop))
                        if m["stage"] in stages), None)  # newest first
            if row is None:
                raise FileNotFoundError(
                    f"No {name} model to start from: loop {loop!r} trained none and the "
                    f"{family_of(loop)} registry has no {'/'.join(stages)} model; run "
                    "`rlfoundry run` (SFT, then DPO) first.") from None
            return row["checkpoint"]
    if name == "promoted":
        row = registry.champion(family_of(loop))
        return row["checkpoint"] if row else model_hub.resolve(None)
    return model_hub.resolve(name or None)


def _train(context: AssetExecutionContext, warehouse: Warehouse, registry: ModelRegistry,
           launcher: TrainingLauncher, objective: str, base: str, snap: dict, data: str,
           settings: dict[str, Any]) -> MaterializeResult:
    """Run one Whisper training job through Pipes, register the checkpoint, report curves."""
    return train_and_record(
        context, warehouse, registry, launcher, stage=objective, base=base, snap=snap,
        train_config={**settings, "objective": objective, "model": base, "data": data},
        validate=TrainConfig.from_dict)
