"""The Whisper trainer's configuration: one plain JSON file, one dataclass.

Each field's comment is its documentation. Unknown keys and bad values raise
:class:`ConfigError`, which names the field and says what to do.

Example:
    >>> cfg = TrainConfig(objective="dpo", model="m", output_dir="out", data="pairs.jsonl")
    >>> cfg.validate().beta
    0.1
    >>> TrainConfig.from_dict({"objective": "ppo", "model": "m", "output_dir": "o", "data": "d"})
    Traceback (most recent call last):
    ...
    training.config.ConfigError: config field 'objective': must be one of [...], got 'ppo'
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

OBJECTIVES = ("sft", "dpo", "mpo", "grpo", "mwer")
ONLINE_OBJECTIVES = ("grpo", "mwer")
GRPO_VARIANTS = ("grpo", "bnpo", "dr_grpo", "dapo")
CURRICULA = ("none", "steps", "reward")
PRECISIONS = ("fp32", "bf16", "fp16")
MPO_LOSS_TYPES = ("sigmoid", "bco_pair", "sft")


class ConfigError(ValueError):
    """A bad training config; `field` names the offending key."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        super().__init__(f"config field {field_name!r}: {message}")


@dataclass
class TrainConfig:
    """Everything one training run needs; `run.py` reads it from a JSON file.

    Example config file (SFT needs `data` rows with `audio` + `text`; DPO/MPO the
    pairs JSONL that `training.preference_data.export_pairs` writes)::

        {"objective": "dpo", "model": ".rlfoundry/models/whisper-tiny.en",
         "output_dir": "runs/dpo-1", "data": "exports/pairs.jsonl", "max_steps": 200}
    """

    objective: str
    # "sft" (NLL of `text`), "dpo" (TRL loss_type="sigmoid"), "mpo" (weighted `loss_types`),
    # or online RL on SFT rows: "grpo" (sampled groups, verifiable rewards) or "mwer" (N-best).
    model: str
    # Starting model: a local transformers Whisper folder (also the frozen DPO/MPO reference).
    output_dir: str
    # Where metrics.jsonl, the reference cache and checkpoints go; a run resumes from here.
    data: str
    # JSONL: pairs (prompt, chosen, rejected, audio, pair_id) for dpo/mpo; audio + text for sft.
    # Relative audio paths are resolved against the JSONL's folder.
    beta: float = 0.1
    # DPO/MPO temperature: larger keeps the policy closer to the reference.
    label_smoothing: float = 0.0
    # cDPO label-flip probability for "sigmoid", in [0, 0.5); 0 is exactly TRL 1.16.
    loss_types: list[str] = field(default_factory=lambda: list(MPO_LOSS_TYPES))
    # MPO terms, named as TRL's DPOConfig.loss_type.
    loss_weights: list[float] = field(default_factory=lambda: [0.8, 0.2, 1.0])
    # MPO weight of each term in `loss_types` (TRL's loss_weights).
    sft_weight: float = 0.0
    # DPO only: adds sft_weight x NLL of the chosen transcript (RPO-style regulariser).
    learning_rate: float = 1e-5
    # Peak AdamW learning rate.
    weight_decay: float = 0.0
    # AdamW weight decay.
    max_grad_norm: float = 1.0
    # Gradient clipping norm; 0 turns clipping off.
    warmup_steps: int = 0
    # Linear warmup from 0 to learning_rate over this many optimizer steps.
    max_steps: int = 100
    # Optimizer steps to train for (a resumed run stops at the same total).
    lr_schedule_steps: int | None = None
    # Length of the linear decay to 0; None means max_steps. Set it when a run may be
    # stopped and extended, so the learning rate of a step does not depend on max_steps.
    batch_size: int = 4
    # Examples (pairs or SFT rows) per micro-batch per process.
    grad_accum_steps: int = 1
    # Micro-batches per optimizer step.
    seed: int = 0
    # Seeds torch/numpy/python and the data order (epoch e uses permutation(seed, e)).
    save_every: int = 100
    # Checkpoint every this many optimizer steps (and always at the last step).
    log_every: int = 10
    # Print / report to Dagster every this many steps (metrics.jsonl gets every step).
    precision: str = "fp32"
    # "fp32", "bf16" or "fp16" autocast on CUDA (fp16 adds a grad scaler); CPU always runs fp32.
    freeze_encoder: bool = True
    # Train the decoder only: cheap and stable for small data; the encoder runs without grad.
    device: str = "auto"
    # "auto" (CUDA when available), "cpu", "cuda" or "cuda:N"; under torchrun: cuda:LOCAL_RANK.
    language: str | None = None
    # Transcript language for multilingual checkpoints (None: English); ignored by .en models.

    # --- online RL (grpo, mwer); `batch_size` counts clips, each with its group / N-best
    num_generations: int = 4
    # GRPO: transcripts sampled per clip (the group whose rewards are normalised).
    rollout_temperature: float = 0.7
    # GRPO: sampling temperature of the rollouts (log-probs are taken at it too). On the sample,
    # 0.7 lowered dev WER where 1.0 barely moved it: cooler samples stay near the greedy output.
    grpo_variant: str = "dapo"
    # "grpo" (per-sequence mean), "bnpo", "dr_grpo" or "dapo" (token-level; TRL's default).
    epsilon_low: float = 0.2
    # Lower clip of the policy ratio (1 - epsilon_low).
    epsilon_high: float | None = None
    # Upper clip (1 + epsilon_high); None = epsilon_low. DAPO's clip-higher uses 0.28.
    kl_beta: float = 0.04
    # Weight of the k3 KL to the frozen starting model (0 = no KL term; KL is logged anyway).
    reward_weights: dict[str, float] = field(default_factory=dict)
    # Weights of reward components (training.reward_composite.RewardWeights); {} = defaults.
    gate_threshold: float = 0.5
    # WER above which a transcript is a sentence-level failure (gated_accuracy's penalty).
    failure_penalty: float = -1.0
    # gated_accuracy's reward for a sentence-level failure.
    nbest_size: int = 4
    # MWER: beams per clip from the current policy.
    mwer_ce_weight: float = 0.01
    # MWER: weight of the cross-entropy on the reference transcript.
    entropy_warn_fraction: float = 0.5
    # Warn when policy entropy falls below this fraction of its first-step value (every
    # objective but sft, whose entropy on the references is meant to fall).
    entropy_stop_fraction: float = 0.2
    # Stop (keeping the last checkpoint) below this fraction; 0 turns the stop off.
    curriculum: str = "none"
    # "none", "steps" (open easy → medium → hard at `curriculum_boundaries` of the run) or
    # "reward" (GRPO: open the next bucket when the mean reward of `curriculum_window` steps
    # reaches `curriculum_threshold`). Rows need a `bucket` (curriculum_buckets); sft/grpo/mwer.
    curriculum_boundaries: list[float] = field(default_factory=lambda: [0.3, 0.6])
    # "steps": fractions of max_steps at which medium, then hard, clips join.
    curriculum_threshold: float = 0.5
    # "reward": mean reward that opens the next bucket.
    curriculum_window: int = 5
    # "reward": steps averaged.
    entropy_window: int = 5
    # The watch compares the mean entropy of the last N steps with that of the first N.
    collapse_patience: int = 5
    # Stop after this many consecutive steps in which no group's rewards varied (GRPO).

    # ------------------------------------------------------------------ file in/out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        """A validated config from a mapping; unknown or missing keys raise ConfigError."""
        if not isinstance(raw, dict):
            raise ConfigError("<root>", f"expected a JSON object, got {type(raw).__name__}")
        known = {f.name for f in fields(cls)}
        for key in raw:
            if key not in known:
                raise ConfigError(key, f"unknown field; known fields: {sorted(known)}")
        for name in ("objective", "model", "output_dir", "data"):
            if name not in raw:
                raise ConfigError(name, "is required")
        return cls(**raw).validate()

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> TrainConfig:
        """Read and validate a JSON config file."""
        try:
            raw = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError("<file>", f"{path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise ConfigError("<file>", f"{path} is not valid JSON: {exc}") from None
        return cls.from_dict(raw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the config as indented JSON (atomically)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        os.replace(tmp, path)
        return path

    # ------------------------------------------------------------------ checks

    def validate(self) -> TrainConfig:
        """Return self, or raise ConfigError naming the first bad field."""
        _one_of("objective", self.objective, OBJECTIVES)
        _one_of("precision", self.precision, PRECISIONS)
        for name in ("model", "output_dir", "data", "device"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ConfigError(name, f"must be a non-empty string, got {value!r}")
        _number("beta", self.beta, low=0.0, low_open=True)
        _number("label_smoothing", self.label_smoothing, low=0.0, high=0.5, high_open=True)
        _number("learning_rate", self.learning_rate, low=0.0, low_open=True)
        _number("weight_decay", self.weight_decay, low=0.0)
        _number("max_grad_norm", self.max_grad_norm, low=0.0)
        _number("sft_weight", self.sft_weight, low=0.0)
        for name, low in (
            ("warmup_steps", 0), ("max_steps", 1), ("batch_size", 1), ("grad_accum_steps", 1),
            ("save_every", 1), ("log_every", 1), ("seed", 0),
        ):
            _integer(name, getattr(self, name), low)
        if self.lr_schedule_steps is not None:
            _integer("lr_schedule_steps", self.lr_schedule_steps, 1)
        if not isinstance(self.freeze_encoder, bool):
            raise ConfigError(
                "freeze_encoder", f"must be true or false, got {self.freeze_encoder!r}"
            )
        self._validate_mpo()
        self._validate_online()
        return self

    def _validate_online(self) -> None:
        _one_of("grpo_variant", self.grpo_variant, GRPO_VARIANTS)
        _integer("num_generations", self.num_generations, 2)
        _integer("nbest_size", self.nbest_size, 2)
        _integer("collapse_patience", self.collapse_patience, 1)
        _integer("entropy_window", self.entropy_window, 1)
        _one_of("curriculum", self.curriculum, CURRICULA)
        if self.curriculum != "none" and self.objective in ("dpo", "mpo"):
            raise ConfigError("curriculum", "applies to sft, grpo and mwer rows, not pairs")
        if self.curriculum == "reward" and self.objective != "grpo":
            raise ConfigError("curriculum", "'reward' follows GRPO's reward; use 'steps'")
        _integer("curriculum_window", self.curriculum_window, 1)
        _number("curriculum_threshold", self.curriculum_threshold)
        bounds = self.curriculum_boundaries
        if not (isinstance(bounds, list) and len(bounds) == 2 and all(
                isinstance(b, int | float) for b in bounds) and 0 <= bounds[0] <= bounds[1] <= 1):
            raise ConfigError("curriculum_boundaries",
                              f"must be two increasing fractions in [0, 1], got {bounds!r}")
        _number("rollout_temperature", self.rollout_temperature, low=0.0, low_open=True)
        _number("epsilon_low", self.epsilon_low, low=0.0)
        if self.epsilon_high is not None:
            _number("epsilon_high", self.epsilon_high, low=0.0)
        _number("kl_beta", self.kl_beta, low=0.0)
        _number("gate_threshold", self.gate_threshold, low=0.0)
        _number("failure_penalty", self.failure_penalty)
        _number("mwer_ce_weight", self.mwer_ce_weight, low=0.0)
        _number("entropy_stop_fraction", self.entropy_stop_fraction, low=0.0, high=1.0)
        _number("entropy_warn_fraction", self.entropy_warn_fraction, low=0.0, high=1.0)
        if not isinstance(self.reward_weights, dict):
            raise ConfigError("reward_weights", f"must be an object, got {self.reward_weights!r}")
        from training.reward_composite import REWARD_NAMES

        unknown = sorted(set(self.reward_weights) - set(REWARD_NAMES))
        if unknown:
            raise ConfigError("reward_weights", f"unknown components {unknown}; known: "
                              f"{list(REWARD_NAMES)}")

    def _validate_mpo(self) -> None:
        if not isinstance(self.loss_types, list) or not self.loss_types:
            raise ConfigError("loss_types", f"must be a non-empty list, got {self.loss_types!r}")
        for loss_type in self.loss_types:
            _one_of("loss_types", loss_type, MPO_LOSS_TYPES)
        if not isinstance(self.loss_weights, list) or len(self.loss_weights) != len(
            self.loss_types
        ):
            raise ConfigError(
                "loss_weights",
                f"must be a list with one weight per loss type ({len(self.loss_types)}), "
                f"got {self.loss_weights!r}",
            )
        for weight in self.loss_weights:
            _number("loss_weights", weight, low=0.0)

    @property
    def schedule_steps(self) -> int:
        """Optimizer steps over which the learning rate decays to 0."""
        return self.lr_schedule_steps or self.max_steps


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(name, f"must be one of {list(allowed)}, got {value!r}")


def _number(
    name: str, value: Any, *, low: float | None = None, high: float | None = None,
    low_open: bool = False, high_open: bool = False,
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(name, f"must be a number, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ConfigError(name, f"must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ConfigError(name, f"must be {'<' if high_open else '<='} {high}, got {value!r}")


def _integer(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be an integer, got {value!r}")
    if value < low:
        raise ConfigError(name, f"must be >= {low}, got {value!r}")
