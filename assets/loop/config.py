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

from typing import Literal

from dagster import Config
from pydantic import Field

from assets.stage_config import stage_config
from training.trl_backend.config import TrlConfig

SHARED = ("max_steps", "batch_size", "grad_accum_steps", "learning_rate", "lr_scheduler",
          "warmup_steps", "seed", "save_every", "precision", "gradient_checkpointing",
          "max_frames", "max_length", "point_format", "point_scale", "answer_style",
          "curriculum")
GRPO_ONLY = ("num_generations", "loss_type", "beta", "epsilon", "epsilon_high",
             "scale_rewards", "reward_weights", "point_sigma", "max_completion_length",
             "temperature", "entropy_stop_fraction", "collapse_patience", "temporal_bonus",
             "temporal_ratio")
GRPO_FIELDS = SHARED + GRPO_ONLY
PREFERENCE_FIELDS = SHARED + ("dpo_beta", "mpo_loss_types", "mpo_loss_weights")


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


PreferenceStageConfig = stage_config(
    "PreferenceStageConfig", "DPO or MPO on preference pairs of the training rows (TRL's "
    "DPOTrainer); nothing is trained when no row gives a pair.", TrlConfig,
    _defaults(PREFERENCE_FIELDS, learning_rate=1e-6),
    plain={"mpo_loss_types": list[str]},  # TrlConfig checks each name before a launch
    objective=(Literal["dpo", "mpo"], Field("mpo", description="'mpo' (MPO's preference + "
                                            "quality + generation terms, mpo_loss_types) or "
                                            "'dpo' (the sigmoid loss alone).")),
    pairs_from=(Literal["human", "verified"], Field(
        "human", description="Where pairs come from: 'human' = only people's verdicts (a "
        "point they said no to; a question they accepted, against its distractors); "
        "'verified' = also every multiple-choice question against a distractor and every "
        "pointing row against its mirrored point (training/trl_backend/pairs.py).")),
    max_pairs_per_row=(int, Field(1, ge=1, description="Pairs drawn from one row at most "
                                  "(distractors or rejected points, seeded).")),
    base_model=(str, Field("sft", description="Model to start from (also the frozen "
                           "reference): 'sft' = this loop's SFT model; 'promoted'; '' = the "
                           "hub's default; or a path/id.")))


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
