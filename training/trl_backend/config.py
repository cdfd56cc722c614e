"""The typed config of a TRL run (SFT or GRPO on a vision- or audio-language model).

Same style as :mod:`training.config` (one pydantic model, every field described, unknown keys
and bad values raise :class:`training.config.ConfigError` naming the field); the Dagster
configs of the VLM loop can derive from it and validate before launching anything.

Example:
    >>> cfg = TrlConfig(objective="grpo", model="m", data="rows.jsonl", output_dir="out")
    >>> cfg.loss_type, cfg.num_generations, cfg.weights()["point_in_mask"]
    ('dapo', 4, 1.0)
    >>> alm = TrlConfig(family="alm", objective="grpo", model="m", data="d", output_dir="o")
    >>> alm.weights()
    {'choice_correct': 1.0, 'numeric_correct': 1.0, 'text_correct': 1.0, 'answer_format': 0.1}
    >>> TrlConfig.from_dict({"objective": "grpo", "model": "m", "data": "d", "output_dir": "o",
    ...                      "loss_type": "ppo"})
    Traceback (most recent call last):
    ...
    training.config.ConfigError: config field 'loss_type': must be one of [...], got 'ppo'
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from training.config import ConfigError, JsonConfig

Family = Literal["vlm", "alm"]
Objective = Literal["sft", "grpo", "dpo", "mpo"]
PreferenceLoss = Literal["sigmoid", "bco_pair", "sft", "ipo", "hinge"]
LossType = Literal["grpo", "dapo", "dr_grpo"]
ScaleRewards = Literal["group", "batch", "none"]
PointFormat = Literal["json", "molmo", "tuple"]
PointScale = Literal["pixels", "norm1000", "percent"]
AnswerStyle = Literal["auto", "plain", "tagged", "think"]
Precision = Literal["fp32", "bf16", "fp16"]
Scheduler = Literal["linear", "cosine", "constant"]
Curriculum = Literal["none", "easy_to_hard"]

#: Reward components of the ``vlm`` family and their default weights: pointing rows get the
#: first two, video multiple-choice rows the last two (a component is None, i.e. left out, on
#: other rows).
DEFAULT_REWARD_WEIGHTS: dict[str, float] = {
    "point_in_mask": 1.0, "point_format": 0.1, "choice_correct": 1.0, "answer_format": 0.1,
}
#: Reward components of each family and their default weights. ``alm`` (audio questions):
#: each row is scored by the component of its ``answer_type`` (multiple choice, a number
#: within the row's tolerance, a sound's name) and by the answer format.
FAMILY_REWARD_WEIGHTS: dict[str, dict[str, float]] = {
    "vlm": DEFAULT_REWARD_WEIGHTS,
    "alm": {"choice_correct": 1.0, "numeric_correct": 1.0, "text_correct": 1.0,
            "answer_format": 0.1},
}


def _f(default: Any = ..., description: str = "", **constraints: Any) -> Any:
    return Field(default, description=description, **constraints)


class TrlConfig(JsonConfig, BaseModel):
    """One TRL run; ``python -m training.trl_backend.run CONFIG.json`` reads it.

    Example config file::

        {"objective": "grpo", "model": "runs/sft-1/checkpoints/checkpoint-200",
         "data": "exports/pointing/pointing.jsonl", "output_dir": "runs/grpo-1",
         "max_steps": 300, "num_generations": 8, "loss_type": "dapo", "beta": 0.04}
    """

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)

    backend: Literal["trl"] = _f("trl", "The trainer: always 'trl' here; `python -m "
                                 "training.run` (the launcher's entry) reads it to hand this "
                                 "config to training.trl_backend.run.")

    family: Family = _f("vlm", "Model family: 'vlm' (image pointing and video multiple "
                        "choice; LLaVA-class models whose processor builds here) or 'alm' "
                        "(audio questions; Qwen2-Audio-class models: the clip reaches the model "
                        "as input_features and feature_attention_mask).")
    objective: Objective = _f(description="'sft' (cold start: the gold answer of each row, "
                              "completion-only loss), 'grpo' (sampled groups scored by the "
                              "chains' verifiable rewards), or 'dpo' / 'mpo' (TRL's "
                              "DPOTrainer on preference pairs: rows with a `rejected` answer, "
                              "training/trl_backend/pairs.py).")
    model: str = _f(description="Starting model: a local transformers folder (a hub id on a "
                    "machine with the hub). GRPO's frozen KL reference is reloaded from it.",
                    min_length=1)
    data: str = _f(description="JSONL of the chains' dataset rows: pointing.jsonl "
                   "(pointing_dataset) and/or video_qa.jsonl (video_qa_dataset) for 'vlm', "
                   "audio_qa.jsonl (audio_qa_dataset) for 'alm'; one or several files joined "
                   "by ','. Relative media paths are resolved against the JSONL's folder.",
                   min_length=1)
    output_dir: str = _f(description="metrics.jsonl, curves.png, config.json and "
                         "checkpoints/checkpoint-N (safetensors) go here; a run resumes from "
                         "its last checkpoint.", min_length=1)
    blind: bool = _f(False, "Withhold the media (the blind control): text-only prompts, no "
                     "images or audio; a gain that needs no image or clip shows up as a blind "
                     "run that learns as well.")
    max_steps: int = _f(100, "Optimizer steps (a resumed run stops at the same total).", ge=1)
    batch_size: int = _f(4, "Prompts (dataset rows) per micro-batch per process; GRPO samples "
                         "num_generations completions of each.", ge=1)
    grad_accum_steps: int = _f(1, "Micro-batches per optimizer step.", ge=1)
    learning_rate: float = _f(1e-5, "Peak AdamW learning rate.", gt=0.0)
    lr_scheduler: Scheduler = _f("linear", "Decay after warmup: 'linear' or 'cosine' to 0 at "
                                 "max_steps, or 'constant' (extending a resumed run then keeps "
                                 "its schedule).")
    warmup_steps: int = _f(0, "Linear warmup steps.", ge=0)
    weight_decay: float = _f(0.0, "AdamW weight decay.", ge=0.0)
    max_grad_norm: float = _f(1.0, "Gradient clipping norm.", gt=0.0)
    seed: int = _f(0, "Seeds torch/numpy/python, the data order and the sampling.", ge=0)
    save_every: int = _f(100, "Checkpoint every this many steps (and at the last step).", ge=1)
    log_every: int = _f(10, "Report to Dagster every this many steps (metrics.jsonl gets "
                        "every step).", ge=1)
    precision: Precision = _f("fp32", "'bf16'/'fp16' mixed precision on CUDA; CPU trains fp32.")
    gradient_checkpointing: bool = _f(False, "Recompute activations in backward (TRL's default "
                                      "is on): saves GPU memory on real models, costs time.")
    curriculum: Curriculum = _f("none", "'easy_to_hard': read the rows easy first (their "
                                "bucket: video rows the chain's, audio rows separated / "
                                "touching / overlapping sounds; pointing rows by the "
                                "target's size, large = easy), shuffled within each bucket "
                                "by the seed; 'none': shuffled "
                                "(training/trl_backend/curriculum.py).")
    max_frames: int = _f(8, "Video rows: at most this many context frames, evenly spaced.",
                         ge=1)
    temporal_bonus: float = _f(0.0, "GRPO, vlm: Video-R1's temporal contrast bonus alpha "
                               "(T-GRPO; Video-R1 uses 0.3; 0 = off). Each video question is "
                               "also sampled (num_generations // 2 completions, not trained on) "
                               "on its frames shuffled; when the ordered group's accuracy is >= "
                               "temporal_ratio x the shuffled one's, its right completions get "
                               "+alpha (reward component temporal_bonus). One more generation "
                               "pass per step (training/trl_backend/temporal.py).", ge=0.0)
    temporal_ratio: float = _f(0.8, "GRPO, vlm: mu of the temporal bonus: paid when ordered "
                               "accuracy >= mu x shuffled accuracy (Video-R1: 0.8).", ge=0.0)
    max_length: int | None = _f(None, "SFT: truncate prompt + completion to this many tokens "
                                "(None: no truncation; image tokens must not be cut).", ge=8)
    point_format: PointFormat = _f("json", "How pointing answers are written (SFT targets; "
                                   "point_format reward): 'json' [{\"point_2d\": [x, y], "
                                   "\"label\": ...}], 'molmo' <point x= y=> (always percent), "
                                   "'tuple' (x, y).")
    point_scale: PointScale = _f("norm1000", "Coordinates of 'json'/'tuple' points: 'norm1000' "
                                 "(0-1000, Qwen2-VL), 'percent' (0-100) or 'pixels' of the "
                                 "original image.")
    answer_style: AnswerStyle = _f("auto", "Question answers (SFT targets; the "
                                   "answer_format reward): 'auto' follows each row's prompt "
                                   "(asks for <think>/<answer> tags: 'think'; for <answer> "
                                   "alone: 'tagged'; else 'plain'), 'plain' (the letter, "
                                   "number or name), 'tagged' (<answer>B</answer>) or 'think' "
                                   "(<think>the option's text</think><answer>B</answer>).")

    # --- DPO / MPO
    dpo_beta: float = _f(0.1, "DPO/MPO temperature β: larger keeps the policy closer to the "
                         "starting model (the frozen reference).", gt=0.0)
    mpo_loss_types: list[PreferenceLoss] = _f(["sigmoid", "bco_pair", "sft"], "MPO: TRL's "
                                              "loss terms (MPO: preference, quality, "
                                              "generation); 'dpo' is ['sigmoid'] alone.")
    mpo_loss_weights: list[float] = _f([0.8, 0.2, 1.0], "MPO: weight of each term of "
                                       "mpo_loss_types, same length.")

    # --- GRPO
    num_generations: int = _f(4, "GRPO: completions sampled per prompt (the group whose "
                              "rewards are normalised).", ge=2)
    loss_type: LossType = _f("dapo", "GRPO loss: 'grpo' (per-sequence mean), 'dapo' "
                             "(token-level, TRL's default) or 'dr_grpo' (fixed normaliser).")
    beta: float = _f(0.04, "Weight of the k3 KL to the frozen starting model. TRL computes "
                     "(and logs) KL only when beta > 0; 0 loads no reference.", ge=0.0)
    epsilon: float = _f(0.2, "Lower clip of the policy ratio (1 - epsilon).", gt=0.0)
    epsilon_high: float | None = _f(None, "Upper clip (1 + epsilon_high); None = epsilon. "
                                    "DAPO's clip-higher uses 0.28.", gt=0.0)
    scale_rewards: ScaleRewards = _f("group", "Advantage scaling: by the group's std "
                                     "('group'), the batch's ('batch') or not ('none', Dr GRPO).")
    reward_weights: dict[str, float] = _f({}, "Weights of reward components, overriding "
                                          "the family's defaults (vlm: "
                                          f"{DEFAULT_REWARD_WEIGHTS}; alm: "
                                          f"{FAMILY_REWARD_WEIGHTS['alm']}); every component "
                                          "is logged, weight 0 included.")
    point_sigma: float = _f(0.0, "point_in_mask: px scale of the exp(-d/sigma) partial credit "
                            "for a near miss (0: inside or nothing).", ge=0.0)
    max_completion_length: int = _f(64, "GRPO: tokens sampled per completion at most.", ge=1)
    temperature: float = _f(1.0, "GRPO: sampling temperature of the rollouts.", gt=0.0)
    entropy_warn_fraction: float = _f(0.5, "GRPO: warn when policy entropy falls below this "
                                      "fraction of its start.", ge=0.0, le=1.0)
    entropy_stop_fraction: float = _f(0.2, "GRPO: stop (keeping the last checkpoint) below this "
                                      "fraction of the start entropy; 0 turns the stop off.",
                                      ge=0.0, le=1.0)
    entropy_window: int = _f(5, "The watch compares the mean entropy of the last N steps with "
                             "that of the first N.", ge=1)
    collapse_patience: int = _f(5, "GRPO: stop after this many steps in a row in which no "
                                "group's rewards varied.", ge=1)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _error(exc) from None

    @model_validator(mode="after")
    def _consistent(self) -> TrlConfig:
        known = FAMILY_REWARD_WEIGHTS[self.family]
        unknown = sorted(set(self.reward_weights) - set(known))
        if unknown:
            raise ValueError(f"reward_weights: unknown components {unknown} for family "
                             f"'{self.family}'; known: {list(known)}")
        if len(self.mpo_loss_weights) != len(self.mpo_loss_types):
            raise ValueError(f"mpo_loss_weights: {len(self.mpo_loss_weights)} weights for "
                             f"{len(self.mpo_loss_types)} mpo_loss_types")
        if self.temporal_bonus > 0 and (problem := self._temporal_problem()):
            raise ValueError(f"temporal_bonus: {problem}")
        if self.objective == "grpo" and not any(self.weights().values()):
            raise ValueError("reward_weights: every weight is 0: GRPO would have no reward")
        return self

    def preference_losses(self) -> tuple[list[str], list[float]]:
        """TRL's ``loss_type`` and ``loss_weights`` of a DPO (``sigmoid``) or MPO run.

        >>> TrlConfig(objective="mpo", model="m", data="d", output_dir="o").preference_losses()
        (['sigmoid', 'bco_pair', 'sft'], [0.8, 0.2, 1.0])
        """
        if self.objective == "mpo":
            return list(self.mpo_loss_types), list(self.mpo_loss_weights)
        return ["sigmoid"], [1.0]

    def _temporal_problem(self) -> str | None:
        """Why this run cannot take the temporal bonus (it needs GRPO on video frames)."""
        if self.objective != "grpo":
            return f"only GRPO samples groups to compare; objective is '{self.objective}'"
        if self.family != "vlm":
            return f"it is for the vlm family's video questions; family is '{self.family}'"
        if self.blind:
            return "a blind run shows no frames to shuffle"
        if self.max_frames < 2:
            return f"needs max_frames >= 2 (frames to shuffle), got {self.max_frames}"
        return None

    def weights(self) -> dict[str, float]:
        """Every reward component's weight: the family's defaults overridden by
        ``reward_weights``."""
        return {**FAMILY_REWARD_WEIGHTS[self.family], **self.reward_weights}


def _error(exc: ValidationError) -> ConfigError:
    """The first problem, in :class:`ConfigError`'s words, naming this config's fields."""
    err = exc.errors()[0]
    name = ".".join(str(p) for p in err["loc"]) or "<root>"
    if err["type"] == "extra_forbidden":
        return ConfigError(name, f"unknown field; known fields: {sorted(TrlConfig.model_fields)}")
    if err["type"] == "value_error":  # a cross-field check: "<field>: <what is wrong>"
        text = str(err.get("ctx", {}).get("error", err["msg"]))
        field_name, _, rest = text.partition(": ")
        if field_name in TrlConfig.model_fields:
            return ConfigError(field_name, rest)
        return ConfigError(name, text)
    return ConfigError.of(exc)
