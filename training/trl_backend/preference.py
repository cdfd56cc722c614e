"""DPO and MPO of a vision- or audio-language model on preference pairs, with TRL's DPOTrainer.

The data is a pairs JSONL (:mod:`training.trl_backend.pairs`: chain rows with a ``rejected``
answer); each row becomes TRL's conversational ``prompt`` / ``chosen`` / ``rejected`` with
its media. ``dpo`` is TRL's ``sigmoid`` loss; ``mpo`` the weighted terms of
``mpo_loss_types`` (MPO: ``sigmoid`` + ``bco_pair`` + ``sft``, 0.8 / 0.2 / 1.0), both at
``dpo_beta`` against the frozen starting model.

* ``vlm``: TRL's own vision path (its ``DataCollatorForVisionPreference`` renders the prompt
  with the images; video rows give their frames, evenly spaced, at most ``max_frames``).
* ``alm``: TRL has no audio path, so :class:`AudioDPOTrainer` reads the rows as they are and
  :class:`AudioPreferenceCollator` builds TRL's batch (chosen rows, then rejected rows; the
  ``completion_mask``) with each clip's ``input_features`` / ``feature_attention_mask``
  repeated for both halves; DPOTrainer hands every extra key to the model's forward.

``blind: true`` trains without the media (text-only prompts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from trl import DPOTrainer

from training.trl_backend.config import TrlConfig
from training.trl_backend.data import DataError, evenly, read_rows, to_dataset
from training.trl_backend.pairs import preference_row


def preference_rows(config: TrlConfig) -> list[dict[str, Any]]:
    """The run's pairs as TRL preference rows, with the family's media column unless
    blind."""
    rows = []
    for pair in read_rows(config.data):
        row = preference_row(pair, point_format=config.point_format,
                             point_scale=config.point_scale, answer_style=config.answer_style)
        if not config.blind:
            if config.family == "alm":
                if not pair.get("audio"):
                    raise DataError(f"pair {row['example_id']}: no `audio` (train with "
                                    "blind=true for a text-only control)")
                row["audio"] = str(pair["audio"])
            else:
                images = list(pair.get("images") or [])
                if not images:
                    raise DataError(f"pair {row['example_id']}: no `images` (train with "
                                    "blind=true for a text-only control)")
                row["images"] = (evenly(images, config.max_frames)
                                 if row["task"] == "video_qa" else images)
        rows.append(row)
    if not rows:
        raise DataError(f"{config.data}: no preference pairs to train on")
    return rows


def dpo_args(config: TrlConfig, **extra: Any):
    """TRL's DPOConfig of a run: the shared Trainer arguments, β and the loss terms."""
    from trl import DPOConfig

    from training.trl_backend.train import _common

    loss_types, loss_weights = config.preference_losses()
    return DPOConfig(**_common(config, config.batch_size), beta=config.dpo_beta,
                     loss_type=loss_types, loss_weights=loss_weights,
                     max_length=config.max_length, **extra)


def build_preference_trainer(config: TrlConfig, processor):
    """The run's DPOTrainer (``vlm``) or :class:`AudioDPOTrainer` (``alm``); no row is
    skipped (pairs were chosen when they were built)."""
    from training.trl_backend.train import ordered

    rows = ordered(preference_rows(config), config)
    if config.family == "alm":
        from training.trl_backend.audio import AudioPrompts

        media = [] if config.blind else ["audio"]
        collator = AudioPreferenceCollator(AudioPrompts(processor), max_length=config.max_length)
        trainer = AudioDPOTrainer(
            model=config.model, args=dpo_args(config, remove_unused_columns=False),
            processing_class=processor, data_collator=collator,
            train_dataset=to_dataset(rows, ["example_id", "prompt", "chosen", "rejected",
                                            *media]))
        return trainer, []
    media = [] if config.blind else ["images"]
    trainer = DPOTrainer(model=config.model, args=dpo_args(config), processing_class=processor,
                         train_dataset=to_dataset(rows, ["prompt", "chosen", "rejected",
                                                         *media]))
    return trainer, []


class AudioDPOTrainer(DPOTrainer):
    """DPOTrainer whose rows carry an ``audio`` path: the rows stay as they are (TRL would
    tokenize them text-only) and :class:`AudioPreferenceCollator` processes them with their
    clips."""

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        return dataset


@dataclass
class AudioPreferenceCollator:
    """DPOTrainer batches of audio preference rows: ``input_ids`` / ``attention_mask`` of
    prompt + chosen for every row, then prompt + rejected (right-padded), the
    ``completion_mask`` over the answers, and the clips' features twice (both halves).

    ``max_length`` cuts an answer, never a prompt (that would cut audio tokens).
    """

    prompts: Any  # training.trl_backend.audio.AudioPrompts
    max_length: int | None = None

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        from training.trl_backend.audio_trainer import answer_ids

        encoded = self.prompts.encode([e["prompt"] for e in examples],
                                      [e.get("audio") for e in examples])
        tokenizer = self.prompts.tokenizer
        rows = [(prompt_ids, answer_ids(self.prompts, example, prompt_ids, example[side],
                                        self.max_length))
                for side in ("chosen", "rejected")
                for example, prompt_ids in zip(examples, encoded.ids, strict=True)]
        width = max(len(p) + len(a) for p, a in rows)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None \
            else tokenizer.eos_token_id
        batch = {
            "input_ids": torch.tensor([p + a + [pad] * (width - len(p) - len(a))
                                       for p, a in rows]),
            "attention_mask": torch.tensor([[1] * (len(p) + len(a))
                                            + [0] * (width - len(p) - len(a)) for p, a in rows]),
            "completion_mask": torch.tensor([[0] * len(p) + [1] * len(a)
                                             + [0] * (width - len(p) - len(a))
                                             for p, a in rows]),
        }
        return {**batch, **{k: torch.cat([v, v]) for k, v in encoded.fields().items()}}
