"""SFT, GRPO, DPO and MPO of a vision- or audio-language model with TRL's trainers, resumable,
recorded like Whisper's.

:func:`train` reads the chains' rows (:mod:`training.trl_backend.data`), builds TRL's
``SFTTrainer`` (prompt-completion rows, loss on the completion only) or ``GRPOTrainer`` (the
rewards of :mod:`training.trl_backend.rewards`, weighted; for the ``alm`` family their audio
versions, :mod:`training.trl_backend.audio_trainer`) or ``DPOTrainer`` (preference pairs,
:mod:`training.trl_backend.preference`), adds the
:class:`~training.trl_backend.callback.MetricsCallback` and trains. Checkpoints are TRL's (the
Trainer's): ``<output_dir>/checkpoints/checkpoint-N`` with ``model.safetensors``, the processor,
optimizer, scheduler and RNG states (read back with ``weights_only=True``); a run whose
output_dir holds a complete one resumes from it (same step count, data order, optimizer).

One optimizer step = ``grad_accum_steps`` micro-batches of ``batch_size`` prompts per process
(GRPO: each with ``num_generations`` completions, so TRL's per-device batch is their product).
Under ``torchrun`` the Trainer (accelerate) runs DDP itself: nccl on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from training.monitors import EntropyWatch, TrainingStopped
from training.trl_backend.callback import Log, MetricsCallback
from training.trl_backend.config import TrlConfig
from training.trl_backend.data import read_rows, to_dataset, trl_rows
from training.trl_backend.rewards import reward_functions

CHECKPOINTS = "checkpoints"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")



@dataclass
class TrlResult:
    """What a finished run reports: final step, checkpoint folder and last metrics."""

    step: int
    checkpoint: Path
    metrics: dict[str, Any]
    output_dir: Path
    resumed_from: int | None
    stopped: str | None = None
    skipped: list[dict[str, Any]] = field(default_factory=list)


def last_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint (the Trainer writes ``trainer_state.json`` last)."""
    folder = Path(output_dir) / CHECKPOINTS
    if not folder.is_dir():
        return None
    done = [(int(m.group(1)), p) for p in folder.iterdir()
            if (m := _CHECKPOINT.match(p.name)) and (p / "trainer_state.json").is_file()]
    return max(done)[1] if done else None


def train(config: TrlConfig, *, log: Log | None = None) -> TrlResult:
    """Train (or resume) per ``config``; see the module docstring."""
    from training.runtime.distributed import seed_all

    out = Path(config.output_dir)
    resume = last_checkpoint(out)
    seed_all(config.seed)  # deterministic kernels: a rerun is bitwise the same run
    trainer, skipped = build_trainer(config)
    watch = (EntropyWatch(config.entropy_warn_fraction, config.entropy_stop_fraction,
                          config.collapse_patience, config.entropy_window)
             if config.objective == "grpo" else None)  # SFT's entropy falls as it learns
    callback = MetricsCallback(out, log=log, log_every=config.log_every, watch=watch)
    trainer.add_callback(callback)
    if resume is None and trainer.is_world_process_zero():
        out.mkdir(parents=True, exist_ok=True)
        config.to_json(out / "config.json")
    with warnings.catch_warnings():  # TRL 1.16 asks transformers 5 by the deprecated name
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated",
                                FutureWarning)
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    checkpoint = last_checkpoint(out)
    if checkpoint is None:
        if callback.stopped:
            raise TrainingStopped(f"{callback.stopped}; no checkpoint had been saved yet "
                                  "(lower save_every to keep one)")
        raise RuntimeError(f"{out}: training ended without a checkpoint")
    step = int(_CHECKPOINT.match(checkpoint.name).group(1))
    resumed = int(_CHECKPOINT.match(resume.name).group(1)) if resume else None
    return TrlResult(step if callback.stopped else trainer.state.global_step, checkpoint,
                     callback.last, out, resumed, callback.stopped, skipped)


def build_trainer(config: TrlConfig):
    """TRL's trainer for ``config`` (not yet trained) and the rows it skipped: the ``vlm``
    family's here, the ``alm`` family's in :mod:`training.trl_backend.audio_trainer`."""
    from transformers import AutoProcessor, PrinterCallback

    processor = AutoProcessor.from_pretrained(config.model)
    with warnings.catch_warnings():  # TRL's and transformers' notices about their own defaults
        warnings.simplefilter("ignore", FutureWarning)
        if config.objective in ("dpo", "mpo"):
            from training.trl_backend.preference import build_preference_trainer

            trainer, skipped = build_preference_trainer(config, processor)
        elif config.family == "alm":
            from training.trl_backend.audio_trainer import build_audio_trainer

            trainer, skipped = build_audio_trainer(config, processor)
        else:
            trainer, skipped = _vision_trainer(config, processor)
    trainer.remove_callback(PrinterCallback)  # stdout is the reporter's (JSON lines)
    _resume_weights_as_saved(trainer)
    return trainer, skipped


def _vision_trainer(config: TrlConfig, processor):
    rows, skipped = trl_rows(read_rows(config.data), blind=config.blind,
                             max_frames=config.max_frames, point_format=config.point_format,
                             point_scale=config.point_scale, answer_style=config.answer_style)
    rows = ordered(rows, config)
    media = [] if config.blind else ["images"]
    if config.objective == "sft":
        from trl import SFTTrainer

        trainer = SFTTrainer(model=config.model, args=sft_args(config),
                             processing_class=processor,
                             train_dataset=to_dataset(rows, ["prompt", "completion", *media]))
    else:
        from trl import GRPOTrainer

        funcs, weights = reward_functions(config)
        columns = [c for c in rows[0] if c not in ("completion", "images")] + media
        trainer_class, temporal = GRPOTrainer, {}
        if config.temporal_bonus > 0:  # Video-R1's shuffled-frames contrast
            from training.trl_backend.temporal import TemporalGRPOTrainer

            trainer_class = TemporalGRPOTrainer
            temporal = dict(temporal_bonus=config.temporal_bonus,
                            temporal_ratio=config.temporal_ratio)
        trainer = trainer_class(model=config.model, reward_funcs=funcs,
                                args=grpo_args(config, weights), processing_class=processor,
                                train_dataset=to_dataset(rows, columns), **temporal)
    return trainer, skipped


def ordered(rows: list, config: TrlConfig) -> list:
    """The rows in the order the run reads them: as given (the trainer shuffles), or easy to
    hard (``curriculum``)."""
    if config.curriculum == "none":
        return rows
    from training.trl_backend.curriculum import easy_to_hard

    return easy_to_hard(rows, config.seed)


def sft_args(config: TrlConfig, **extra: Any):
    """TRL's SFTConfig of a run: completion-only loss, the shared Trainer arguments."""
    from trl import SFTConfig

    return SFTConfig(**_common(config, config.batch_size), max_length=config.max_length,
                     completion_only_loss=True, **extra)


def grpo_args(config: TrlConfig, weights: list[float], **extra: Any):
    """TRL's GRPOConfig of a run. Its per-device batch counts completions, not prompts:
    ``batch_size`` prompts of ``num_generations`` completions each."""
    from trl import GRPOConfig

    return GRPOConfig(
        **_common(config, config.batch_size * config.num_generations),
        num_generations=config.num_generations, loss_type=config.loss_type,
        beta=config.beta, epsilon=config.epsilon, epsilon_high=config.epsilon_high,
        scale_rewards=config.scale_rewards, reward_weights=weights,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature, shuffle_dataset=config.curriculum == "none", **extra)


def _resume_weights_as_saved(trainer) -> None:
    """Make the Trainer's resume load a checkpoint's weights the way ``from_pretrained`` does.

    transformers 5 saves LLaVA-class models under their original key names
    (``language_model.model.*``, ``vision_tower.*``) and renames them on load; the Trainer's
    resume reads the raw file with ``load_state_dict(strict=False)``, so no key matches and a
    resumed run silently continues from the *starting* weights. Here the checkpoint is read
    with ``from_pretrained`` (every renaming and conversion applied) and copied in, strictly.
    FSDP and DeepSpeed checkpoints keep their own loaders.
    """
    original = trainer._load_from_checkpoint

    def load(resume_from_checkpoint: str, model=None) -> None:
        if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled:
            return original(resume_from_checkpoint, model)
        model = model if model is not None else trainer.model
        saved = type(model).from_pretrained(resume_from_checkpoint, dtype=model.dtype)
        model.load_state_dict(saved.state_dict(), strict=True)
        del saved
        return None

    trainer._load_from_checkpoint = load


def _common(config: TrlConfig, per_device: int) -> dict[str, Any]:
    """The Trainer arguments SFT and GRPO share."""
    cuda = torch.cuda.is_available()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return dict(
        output_dir=str(Path(config.output_dir) / CHECKPOINTS), max_steps=config.max_steps,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=config.grad_accum_steps,
        learning_rate=config.learning_rate, lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_steps, weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm, seed=config.seed, data_seed=config.seed,
        save_strategy="steps", save_steps=config.save_every, logging_steps=1,
        train_sampling_strategy="random" if config.curriculum == "none" else "sequential",
        report_to="none", disable_tqdm=True, dataloader_num_workers=0,
        use_cpu=not cuda, bf16=cuda and config.precision == "bf16",
        fp16=cuda and config.precision == "fp16",
        gradient_checkpointing=config.gradient_checkpointing,
        ddp_backend=None if cuda or world == 1 else "gloo",
    )
