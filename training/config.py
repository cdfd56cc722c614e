"""The one training configuration: a typed pydantic model, every field with its description.

The trainer reads it from a JSON file (`training/run.py`); the Dagster configs of the
training assets are built from the same fields (`training.stage_config`), so a type, a
choice or a range is declared once, and a bad value fails in the asset, naming the field,
before anything is launched. Unknown keys and bad values raise :class:`ConfigError`.

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
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Objective = Literal["sft", "dpo", "mpo", "grpo", "mwer"]
GrpoVariant = Literal["grpo", "bnpo", "dr_grpo", "dapo"]
Curriculum = Literal["none", "steps", "reward"]
Precision = Literal["fp32", "bf16", "fp16"]
MpoLossType = Literal["sigmoid", "bco_pair", "sft"]
SftTarget = Literal["chosen", "reference"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)
ONLINE_OBJECTIVES = ("grpo", "mwer")
GRPO_VARIANTS: tuple[str, ...] = get_args(GrpoVariant)
CURRICULA: tuple[str, ...] = get_args(Curriculum)
PRECISIONS: tuple[str, ...] = get_args(Precision)
MPO_LOSS_TYPES: tuple[str, ...] = get_args(MpoLossType)


class ConfigError(ValueError):
    """A bad training config; `field` names the offending key."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        super().__init__(f"config field {field_name!r}: {message}")

    @classmethod
    def of(cls, exc: ValidationError) -> ConfigError:
        """The first problem of a pydantic ValidationError, in this module's words."""
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"]) or "<root>"
        kind, ctx, got = err["type"], err.get("ctx", {}), err.get("input")
        if kind == "literal_error":
            allowed = [a.strip().strip("'") for a in
                       str(ctx.get("expected", "")).replace(" or ", ", ").split(", ")]
            return cls(name, f"must be one of {allowed}, got {got!r}")
        bounds = {"greater_than": (">", "gt"), "greater_than_equal": (">=", "ge"),
                  "less_than": ("<", "lt"), "less_than_equal": ("<=", "le")}
        if kind in bounds:
            op, key = bounds[kind]
            return cls(name, f"must be {op} {ctx[key]}, got {got!r}")
        if kind == "extra_forbidden":
            return cls(name, f"unknown field; known fields: {sorted(TrainConfig.model_fields)}")
        if kind == "missing":
            return cls(name, "is required")
        if kind == "value_error":  # a cross-field check: "<field>: <what is wrong>"
            text = str(ctx.get("error", err["msg"]))
            field_name, _, rest = text.partition(": ")
            if field_name in TrainConfig.model_fields:
                return cls(field_name, rest)
            return cls(name, text)
        return cls(name, f"{err['msg'][0].lower()}{err['msg'][1:]}, got {got!r}")


def _f(default: Any = ..., description: str = "", **constraints: Any) -> Any:
    return Field(default, description=description, **constraints)


class JsonConfig:
    """Reading and writing a pydantic config as JSON; errors are :class:`ConfigError`."""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]):
        """A validated config from a mapping; unknown or missing keys raise ConfigError."""
        if not isinstance(raw, dict):
            raise ConfigError("<root>", f"expected a JSON object, got {type(raw).__name__}")
        return cls(**raw)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]):
        """Read and validate a JSON config file."""
        try:
            raw = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError("<file>", f"{path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise ConfigError("<file>", f"{path} is not valid JSON: {exc}") from None
        return cls.from_dict(raw)

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the config as indented JSON (atomically)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.model_dump(), indent=2) + "\n")  # type: ignore[attr-defined]
        os.replace(tmp, path)
        return path


class TrainConfig(JsonConfig, BaseModel):
    """Everything one training run needs; `run.py` reads it from a JSON file.

    Example config file (SFT needs `data` rows with `audio` + `text`; DPO/MPO the
    pairs JSONL that `training.data.preference_data.export_pairs` writes)::

        {"objective": "dpo", "model": ".rlfoundry/models/whisper-tiny.en",
         "output_dir": "runs/dpo-1", "data": "exports/pairs.jsonl", "max_steps": 200}
    """

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)

    objective: Objective = _f(description="'sft' (NLL of `text`), 'dpo' (TRL "
                              "loss_type='sigmoid'), 'mpo' (weighted `loss_types`), or online "
                              "RL on SFT rows: 'grpo' (sampled groups, verifiable rewards) or "
                              "'mwer' (N-best).")
    model: str = _f(description="Starting model: a local transformers Whisper folder (also "
                    "the frozen DPO/MPO reference).", min_length=1)
    output_dir: str = _f(description="Where metrics.jsonl, the reference cache and "
                         "checkpoints go; a run resumes from here.", min_length=1)
    data: str = _f(description="JSONL: pairs (prompt, chosen, rejected, audio, pair_id) for "
                   "dpo/mpo; audio + text for sft. Relative audio paths are resolved against "
                   "the JSONL's folder.", min_length=1)
    beta: float = _f(0.1, "DPO/MPO temperature: larger keeps the policy closer to the "
                     "reference.", gt=0.0)
    label_smoothing: float = _f(0.0, "cDPO label-flip probability for 'sigmoid', in [0, 0.5); "
                                "0 is exactly TRL 1.16.", ge=0.0, lt=0.5)
    loss_types: list[MpoLossType] = _f(["sigmoid", "bco_pair", "sft"], "MPO terms, named as "
                                       "TRL's DPOConfig.loss_type.", min_length=1)
    loss_weights: list[float] = _f([0.8, 0.2, 1.0], "MPO weight of each term in `loss_types` "
                                   "(TRL's loss_weights).")
    sft_target: SftTarget = _f("chosen", "DPO's sft_weight term and MPO's 'sft' term imitate "
                               "'chosen' (the mined best hypothesis, as TRL does) or "
                               "'reference' (the clip's verified transcript; a pair without "
                               "one falls back to its chosen side, counted in "
                               "`sft/on_reference`).")
    sft_weight: float = _f(0.0, "DPO only: adds sft_weight x NLL of the `sft_target` "
                           "transcript (RPO-style regulariser).", ge=0.0)
    anchor_kl: float = _f(0.0, "sft/dpo/mpo: adds anchor_kl x KL(start ‖ policy), the KL "
                          "from the frozen starting model's next-token distribution to the "
                          "policy's, per token of the imitated transcript (sft: `text`; "
                          "dpo/mpo: the SFT term's `sft_target`, else chosen): distillation "
                          "toward the start, so fine-tuning keeps its language prior. Costs a "
                          "second model in memory and one decoder forward without grad; 0 = "
                          "off. Logged as `loss/anchor_kl`. GRPO's KL is `kl_beta`.", ge=0.0)
    learning_rate: float = _f(1e-5, "Peak AdamW learning rate.", gt=0.0)
    weight_decay: float = _f(0.0, "AdamW weight decay.", ge=0.0)
    max_grad_norm: float = _f(1.0, "Gradient clipping norm; 0 turns clipping off.", ge=0.0)
    warmup_steps: int = _f(0, "Linear warmup from 0 to learning_rate over this many "
                           "optimizer steps.", ge=0)
    max_steps: int = _f(100, "Optimizer steps to train for (a resumed run stops at the same "
                        "total).", ge=1)
    lr_schedule_steps: int | None = _f(None, "Length of the linear decay to 0; None means "
                                       "max_steps. Set it when a run may be stopped and "
                                       "extended, so a step's learning rate does not depend "
                                       "on max_steps.", ge=1)
    batch_size: int = _f(4, "Examples (pairs or SFT rows; clips for online RL) per "
                         "micro-batch per process.", ge=1)
    grad_accum_steps: int = _f(1, "Micro-batches per optimizer step.", ge=1)
    seed: int = _f(0, "Seeds torch/numpy/python and the data order.", ge=0)
    save_every: int = _f(100, "Checkpoint every this many optimizer steps (and always at the "
                         "last step): what a resumed run starts from.", ge=1)
    log_every: int = _f(10, "Report to Dagster every this many steps (metrics.jsonl gets "
                        "every step).", ge=1)
    precision: Precision = _f("fp32", "'fp32', 'bf16' or 'fp16' autocast on CUDA (fp16 adds a "
                              "grad scaler); CPU always runs fp32.")
    freeze_encoder: bool = _f(True, "Train the decoder only: cheap and stable for small data; "
                              "the encoder runs without grad.")
    encoder_cache_mb: int = _f(4096, "With a frozen encoder, keep each clip's encoder output "
                               "after its first use, up to this many MB per process (tiny.en: "
                               "2.3 MB a clip); later visits skip the encoder. 0: recompute "
                               "every time.", ge=0)
    device: str = _f("auto", "'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'; under "
                     "torchrun: cuda:LOCAL_RANK.", min_length=1)
    language: str | None = _f(None, "Transcript language for multilingual checkpoints (None: "
                              "English); ignored by .en models.")

    # --- online RL (grpo, mwer); `batch_size` counts clips, each with its group / N-best
    num_generations: int = _f(4, "GRPO: transcripts sampled per clip (the group whose "
                              "rewards are normalised).", ge=2)
    rollout_temperature: float = _f(0.7, "GRPO: sampling temperature of the rollouts (log-"
                                    "probs are taken at it too). On the sample, 0.7 lowered "
                                    "dev WER where 1.0 barely moved it.", gt=0.0)
    grpo_variant: GrpoVariant = _f("dapo", "'grpo' (per-sequence mean), 'bnpo', 'dr_grpo' or "
                                   "'dapo' (token-level; TRL's default).")
    epsilon_low: float = _f(0.2, "Lower clip of the policy ratio (1 - epsilon_low).", ge=0.0)
    epsilon_high: float | None = _f(None, "Upper clip (1 + epsilon_high); None = epsilon_low. "
                                    "DAPO's clip-higher uses 0.28.", ge=0.0)
    kl_beta: float = _f(0.04, "Weight of the k3 KL to the frozen starting model (0 = no KL "
                        "term; KL is logged anyway).", ge=0.0)
    reward_weights: dict[str, float] = _f({}, "Weights of reward components "
                                          "(training.rewards.composite.RewardWeights); {} = "
                                          "the defaults.")
    gate_threshold: float = _f(0.5, "WER above which a transcript is a sentence-level failure "
                               "(gated_accuracy's penalty).", ge=0.0)
    failure_penalty: float = _f(-1.0, "gated_accuracy's reward for a sentence-level failure.")
    nbest_size: int = _f(4, "MWER: beams per clip from the current policy.", ge=2)
    mwer_ce_weight: float = _f(0.01, "MWER: weight of the cross-entropy on the reference.",
                               ge=0.0)
    entropy_warn_fraction: float = _f(0.5, "Warn when policy entropy falls below this "
                                      "fraction of its start (every objective but sft).",
                                      ge=0.0, le=1.0)
    entropy_stop_fraction: float = _f(0.2, "Stop (keeping the last checkpoint) below this "
                                      "fraction of the start entropy; 0 turns the stop off.",
                                      ge=0.0, le=1.0)
    curriculum: Curriculum = _f("none", "'none', 'steps' (open easy → medium → hard at "
                                "`curriculum_boundaries` of the run) or 'reward' (GRPO: open "
                                "the next bucket when the mean reward of `curriculum_window` "
                                "steps reaches `curriculum_threshold`); sft/grpo/mwer rows.")
    curriculum_boundaries: list[float] = _f([0.3, 0.6], "'steps': fractions of max_steps at "
                                            "which medium, then hard, clips join.")
    curriculum_threshold: float = _f(0.5, "'reward': mean reward that opens the next bucket.")
    curriculum_window: int = _f(5, "'reward': steps averaged.", ge=1)
    entropy_window: int = _f(5, "The watch compares the mean entropy of the last N steps with "
                             "that of the first N.", ge=1)
    collapse_patience: int = _f(5, "Stop after this many consecutive steps in which no "
                                "group's rewards varied (GRPO).", ge=1)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError.of(exc) from None

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if len(self.loss_weights) != len(self.loss_types) or min(self.loss_weights) < 0:
            raise ValueError(f"loss_weights: must be a list with one weight >= 0 per loss type "
                             f"({len(self.loss_types)}), got {self.loss_weights!r}")
        if self.anchor_kl > 0 and self.objective in ONLINE_OBJECTIVES:
            raise ValueError(f"anchor_kl: applies to sft, dpo and mpo, not "
                             f"{self.objective!r} (GRPO's KL to the start is kl_beta)")
        if self.curriculum != "none" and self.objective in ("dpo", "mpo"):
            raise ValueError("curriculum: applies to sft, grpo and mwer rows, not pairs")
        if self.curriculum == "reward" and self.objective != "grpo":
            raise ValueError("curriculum: 'reward' follows GRPO's reward; use 'steps'")
        bounds = self.curriculum_boundaries
        if not (len(bounds) == 2 and 0 <= bounds[0] <= bounds[1] <= 1):
            raise ValueError(f"curriculum_boundaries: must be two increasing fractions in "
                             f"[0, 1], got {bounds!r}")
        from training.rewards.composite import REWARD_NAMES

        unknown = sorted(set(self.reward_weights) - set(REWARD_NAMES))
        if unknown:
            raise ValueError(f"reward_weights: unknown components {unknown}; known: "
                             f"{list(REWARD_NAMES)}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def validate(self) -> TrainConfig:  # type: ignore[override]
        """Return self, re-checked (fields may have been assigned since), or raise
        ConfigError naming the first bad field."""
        return type(self)(**self.model_dump())

    @property
    def schedule_steps(self) -> int:
        """Optimizer steps over which the learning rate decays to 0."""
        return self.lr_schedule_steps or self.max_steps
