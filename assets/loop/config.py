"""The TRL loops' Dagster configs, derived from `training.trl_backend.config.TrlConfig`.

Defaults are TrlConfig's except where a stage differs: GRPO's learning rate is 1e-6 (R1-AQA
and VLM-R1 train 7B/3B models at 1e-6; TrlConfig's 1e-5 suits SFT). A run config sets any of
them per loop (`rlfoundry run --task … --config FILE`).

Example:
    >>> GrpoStageConfig().learning_rate, GrpoStageConfig().base_model
    (1e-06, 'sft')
    >>> sorted(set(SftStageConfig.model_fields) - set(GRPO_FIELDS))
    ['base_model']
"""

from __future__ import annotations

from dagster import Config
from pydantic import Field

from assets.stage_config import stage_config
from training.trl_backend.config import TrlConfig

SHARED = ("max_steps", "batch_size", "grad_accum_steps", "learning_rate", "lr_scheduler",
          "warmup_steps", "seed", "save_every", "precision", "gradient_checkpointing",
          "max_frames", "max_length", "point_format", "point_scale", "answer_style")
GRPO_ONLY = ("num_generations", "loss_type", "beta", "epsilon", "epsilon_high",
             "scale_rewards", "reward_weights", "point_sigma", "max_completion_length",
             "temperature", "entropy_stop_fraction")
GRPO_FIELDS = SHARED + GRPO_ONLY


def _defaults(names, **own) -> dict:
    return {name: own.get(name, TrlConfig.model_fields[name].default) for name in names}


SftStageConfig = stage_config(
    "SftStageConfig", "Cold-start SFT on the training set's gold answers (TRL's SFTTrainer).",
    TrlConfig, _defaults(SHARED),
    base_model=(str, Field("promoted", description="Model to start from: 'promoted' = the "
                           "family's champion (the hub's default model before any promotion); "
                           "'' = the hub's default; or a path/id.")))
GrpoStageConfig = stage_config(
    "GrpoStageConfig", "GRPO on the training set's rows, scored by the chains' verifiable "
    "rewards (TRL's GRPOTrainer).", TrlConfig, _defaults(GRPO_FIELDS, learning_rate=1e-6),
    base_model=(str, Field("sft", description="Model to start from (also the KL reference): "
                           "'sft' = this loop's SFT model; 'promoted'; '' = the hub's default; "
                           "or a path/id.")))


class TrainingSetConfig(Config):
    train_batches: list[str] = Field(default_factory=list, description="Batches to train on; "
                                     "empty = every batch with role 'train' whose dataset "
                                     "was materialized.")
    eval_batches: list[str] = Field(default_factory=list, description="Held-out batches to "
                                    "evaluate on; empty = every 'eval' batch with a dataset.")
    tasks: list[str] = Field(default_factory=list, description="Chain tasks to use (vlm: "
                             "pointing, video_qa; alm: audio_qa); empty = all of the family's.")


class LoopEvalConfig(Config):
    tolerance: float = Field(0.0, description="The candidate passes when its score (mean of "
                             "the tasks' metrics, 0-1) is at most this much below the "
                             "incumbent's.")
    max_task_drop: float = Field(0.05, description="Refuse a candidate that loses more than "
                                 "this on any one task (e.g. video accuracy), whatever its "
                                 "score.")
    batch_size: int = Field(8, description="Rows per generation batch.", ge=1)
