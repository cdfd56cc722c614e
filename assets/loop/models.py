"""A TRL loop's trained models: cold-start SFT, then GRPO from it, each out of process (the
preference stage, DPO/MPO, is `assets.loop.preference`).

Each launches `torchrun -m training.run CONFIG` through the training launcher (the config's
`backend: trl` hands it to `training.trl_backend.run`), train into the asset's report folder
for the loop (a re-run resumes from its last checkpoint), log the run to MLflow and register
the checkpoint in the family's registered model (`train_and_record`).
"""


import sys
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

import assets.training_run
import sql
import training.trl_backend
from assets.image.common import PRETRAINED, RANDOM_TINY, TINY_PARAMETERS
from assets.loop import config as stage_configs
from assets.loop.config import GrpoStageConfig, SftStageConfig
from assets.loop.specs import ROLE
from assets.stage_config import settings_of
from assets.training_run import train_and_record
from pipelines.partitions import loops
from resources.model_hub import ModelHub, ModelUnavailable, check_available, resolve_path_or_id
from resources.registry import ModelRegistry
from resources.training_launcher import TrainingLauncher
from resources.warehouse import Warehouse
from training.tasks import TaskSpec
from training.trl_backend.config import TrlConfig

THIS = sys.modules[__name__]
TRAINER_VERSION = sql.version(THIS, stage_configs, assets.training_run, training.trl_backend)


def build_models(spec: TaskSpec) -> list[AssetsDefinition]:
    group, sft_name = f"{spec.family}_loop", spec.models["sft"]

    @asset(name=sft_name, group_name=group, partitions_def=loops,
           deps=[spec.training_set], pool="gpu", code_version=TRAINER_VERSION)
    def _sft(context: AssetExecutionContext, config: SftStageConfig, warehouse: Warehouse,
             model_hub: ModelHub, training_launcher: TrainingLauncher,
             model_registry: ModelRegistry) -> MaterializeResult:
        """Cold-start SFT: the gold answer of each training row (completion-only loss)."""
        return run_stage(context, spec, "sft", config, warehouse, model_hub,
                         training_launcher, model_registry)

    @asset(name=spec.models["rl"], group_name=group, partitions_def=loops,
           deps=[spec.training_set, sft_name], pool="gpu", code_version=TRAINER_VERSION)
    def _grpo(context: AssetExecutionContext, config: GrpoStageConfig, warehouse: Warehouse,
              model_hub: ModelHub, training_launcher: TrainingLauncher,
              model_registry: ModelRegistry) -> MaterializeResult:
        """GRPO from the SFT model: sampled groups scored by the chains' verifiable rewards
        (every component logged), with the KL to the start and the entropy watch."""
        return run_stage(context, spec, "grpo", config, warehouse, model_hub,
                         training_launcher, model_registry)

    return [_sft, _grpo]


def run_stage(context: AssetExecutionContext, spec: TaskSpec, objective: str, config: Config,
              warehouse: Warehouse, model_hub: ModelHub, launcher: TrainingLauncher,
              registry: ModelRegistry, data: str | None = None) -> MaterializeResult:
    """Train one stage of the loop (on `data`, default the training set's train rows)."""
    loop = context.partition_key
    snap = warehouse.read_output(spec.training_set, loop)
    base = base_model(config.base_model, spec, loop, warehouse, registry, model_hub)
    try:  # a hub id that cannot load here fails in one line, before anything is launched
        check_available(base, ROLE[spec.family])
    except ModelUnavailable as exc:
        raise Failure(f"Training not launched: {exc}") from None
    weights = weights_of(base)
    if weights == RANDOM_TINY:
        context.log.warning(f"RANDOM TINY WEIGHTS: the starting model {base} is a tiny build "
                            f"(under {TINY_PARAMETERS:,} parameters); what it learns is for "
                            "tests and demos only.")
    train_config = {**settings_of(config, TrlConfig), "backend": "trl", "family": spec.family,
                    "objective": objective, "model": base, "data": data or snap["train_data"]}
    result = train_and_record(context, warehouse, registry, launcher, stage=objective,
                              base=base, snap=snap, train_config=train_config,
                              validate=TrlConfig.from_dict)
    return MaterializeResult(metadata={"weights": MetadataValue.text(weights),
                                       **(result.metadata or {})})


def weights_of(path: str) -> str:
    """'random-tiny' when the model folder's safetensors hold fewer than TINY_PARAMETERS
    parameters (a `models.tiny` build, or a model trained from one), else 'pretrained'
    (also for a hub id: nothing is read)."""
    import math

    from safetensors import safe_open

    files = sorted(Path(path).glob("*.safetensors")) if Path(path).is_dir() else []
    if not files:
        return PRETRAINED
    count = 0
    for file in files:
        with safe_open(str(file), "pt") as handle:
            count += sum(math.prod(handle.get_slice(k).get_shape()) for k in handle.keys())
    return RANDOM_TINY if count < TINY_PARAMETERS else PRETRAINED


def base_model(name: str, spec: TaskSpec, loop: str, warehouse: Warehouse,
               registry: ModelRegistry, model_hub: ModelHub) -> str:
    """A starting model from a stage config's name: 'sft' (this loop's SFT checkpoint),
    'promoted' (the family's champion, else the hub's default), '' (the hub's default) or
    a path/id."""
    if name == "sft":
        return warehouse.read_output(spec.models["sft"], loop)["checkpoint"]
    if name == "promoted":
        row = registry.champion(spec.family)
        if row:
            return row["checkpoint"]
        name = ""
    return resolve_path_or_id(name or model_hub.default_name(ROLE[spec.family]))
