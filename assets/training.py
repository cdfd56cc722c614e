"""Training assets: preference-tuned Whisper from a batch's pairs, trained out of process."""

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from assets.common import batches, png_markdown
from resources.model_hub import ModelHub
from resources.training_launcher import TrainingLauncher
from resources.warehouse import Warehouse
from training.curves import plot_curves


class PreferenceTrainingConfig(Config):
    objective: str = Field("dpo", description="dpo | mpo (weighted sigmoid + bco_pair + sft).")
    base_model: str = Field("", description="Model to tune; empty = the model hub's baseline.")
    beta: float = Field(0.1, description="DPO temperature: how far the policy may move.")
    learning_rate: float = Field(1e-5, description="AdamW learning rate (linear warmup/decay).")
    max_steps: int = Field(100, description="Optimizer steps.")
    batch_size: int = Field(4, description="Pairs per step (per process).")
    seed: int = Field(0, description="Seed of shuffling and initialisation.")


@asset(partitions_def=batches, group_name="training", deps=["preference_pairs"],
       code_version="1")
def whisper_preference_model(
    context: AssetExecutionContext, config: PreferenceTrainingConfig, warehouse: Warehouse,
    model_hub: ModelHub, training_launcher: TrainingLauncher,
) -> MaterializeResult:
    """Whisper tuned with DPO or MPO on the batch's preference pairs; checkpoint in safetensors."""
    batch = context.partition_key
    pairs = warehouse.report_dir("preference_pairs", batch) / "pairs.jsonl"
    if not pairs.is_file():
        raise FileNotFoundError(f"{pairs} is missing: materialize preference_pairs for batch "
                                f"{batch!r} first.")
    out = warehouse.report_dir("whisper_preference_model", batch) / f"run-{context.run_id[:8]}"
    train_config = {
        "objective": config.objective, "model": model_hub.resolve(config.base_model or None),
        "output_dir": str(out), "data": str(pairs), "beta": config.beta,
        "learning_rate": config.learning_rate, "max_steps": config.max_steps,
        "batch_size": config.batch_size, "seed": config.seed,
        "save_every": config.max_steps, "log_every": 1,
    }
    reported = training_launcher.launch(context, train_config).get_materialize_result()
    curves = plot_curves(out / "metrics.jsonl", out / "curves.png")
    return MaterializeResult(metadata={
        **(reported.metadata or {}),
        "config": MetadataValue.json(train_config),
        "curves": png_markdown(curves, "training curves"),
        "metrics_file": MetadataValue.path(str(out / "metrics.jsonl")),
    })

