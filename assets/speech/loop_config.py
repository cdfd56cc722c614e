"""The training assets' Dagster configs, derived from the one training config.

Each stage (SFT, DPO/MPO, online RL) exposes the `training.config.TrainConfig` fields a
user tunes for it, with the same type, choices, range and description; only the default
may differ, and the stage defaults below are the only place where they do. Dagster shows
the choices in the launchpad and rejects a wrong type or choice before the run starts;
pydantic rejects an out-of-range value when the asset starts, naming the field, before
anything is launched.

Example:
    >>> SFTConfig().warmup_steps, SFTConfig.model_fields["warmup_steps"].description[:21]
    (5, 'Linear warmup from 0 ')
    >>> RLConfig(objective="mwer").objective
    'mwer'
"""

from __future__ import annotations

from typing import Any, Literal

from dagster import Config
from pydantic import Field

from assets.stage_config import settings_of, stage_config
from training.config import TrainConfig

# What each stage exposes, and its defaults where they differ from TrainConfig's
# (measured on the sample: see the README's tables).
SFT_DEFAULTS = {"learning_rate": 1e-5, "max_steps": 100, "batch_size": 8, "warmup_steps": 5,
                "save_every": 25, "log_every": 10, "seed": 0}
# DPO/MPO: an SFT term on each clip's reference transcript beside the preference loss (RPO on
# the reference). On a new, harder dataset plain DPO collapsed into deletions (18 -> 103 of 873
# words) and ended 3.7 points worse than its SFT start; with this term it ended 4.4 points better
# (README, "Speech: every default on a new, harder dataset").
PREFERENCE_DEFAULTS = {"beta": 0.1, "learning_rate": 1e-5, "max_steps": 100, "batch_size": 4,
                       "sft_weight": 1.0, "sft_target": "reference", "save_every": 25,
                       "log_every": 10, "seed": 0}
RL_DEFAULTS = {"learning_rate": 1e-5, "max_steps": 30, "batch_size": 4, "num_generations": 6,
               "rollout_temperature": 0.7, "grpo_variant": "dapo", "epsilon_high": 0.28,
               "kl_beta": 0.04, "reward_weights": {}, "nbest_size": 4,
               "entropy_stop_fraction": 0.2, "curriculum": "none", "curriculum_threshold": 0.5,
               "save_every": 10, "log_every": 10, "seed": 0}


def _stage(name: str, doc: str, defaults: dict[str, Any], **own: Any) -> type[Config]:
    """A Dagster Config class with `own` fields plus the TrainConfig fields in `defaults`
    (epsilon_high: a plain float, since the stage always sets it: DAPO's clip-higher)."""
    return stage_config(name, doc, TrainConfig, defaults, plain={"epsilon_high": float}, **own)


SFTConfig = _stage(
    "SFTConfig", "Cold-start SFT on the training set's verified transcripts.", SFT_DEFAULTS,
    base_model=(str, Field("promoted", description="Model to start from: 'promoted' = the "
                           "family's champion (the hub's baseline before any promotion), so "
                           "each round builds on the last; '' = the hub's baseline; or a "
                           "path/id.")))
PreferenceTrainingConfig = _stage(
    "PreferenceTrainingConfig", "DPO or MPO on the training set's preference pairs.",
    PREFERENCE_DEFAULTS,
    objective=(Literal["dpo", "mpo"], Field("dpo", description="dpo | mpo (weighted sigmoid "
                                            "+ bco_pair + sft).")),
    base_model=(str, Field("sft", description="Model to tune (also the frozen reference): "
                           "'sft' = this loop's whisper_sft_model (else the family's newest "
                           "SFT model); '' = the hub's baseline; 'promoted'; or a path/id.")))
RLConfig = _stage(
    "RLConfig", "Online RL (GRPO or MWER) with verifiable rewards.", RL_DEFAULTS,
    objective=(Literal["grpo", "mwer"], Field("grpo", description="grpo (sampled groups, "
                                              "verifiable rewards) | mwer (expected word "
                                              "errors over the policy's N-best).")),
    base_model=(str, Field("preference", description="Model to start from (also the KL "
                           "reference): 'preference' = this loop's DPO/MPO model, else the "
                           "family's newest one; 'sft' likewise; 'promoted'; '' = the hub's "
                           "baseline; or a path/id.")))


def train_settings(config: Config) -> dict[str, Any]:
    """The TrainConfig fields a stage config sets (everything but the asset's own)."""
    return settings_of(config, TrainConfig)
