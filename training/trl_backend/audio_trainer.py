"""TRL's trainers for Qwen2-Audio-class models (the ``alm`` family): the clip reaches the model.

TRL 1.16 has no audio path: its GRPOTrainer prompts a processor with images only, and its
log-prob passes forward only vision tensors. Like R1-AQA's fork for Qwen2-Audio, a small
subclass adds the clip's ``input_features`` and ``feature_attention_mask``:

* :class:`AudioGRPOTrainer` (``GRPOTrainer``): prompts are tokenized with their clips
  (:class:`~training.trl_backend.audio.AudioPrompts`: the ``<|AUDIO|>`` placeholder expanded
  to the clip's length, the log-mel features), the features go to ``generate`` and, row for
  row, to every log-prob pass (the policy's, the frozen reference's for the KL, the old
  policy's) and travel with the completions through TRL's shuffling and splitting of a
  generation batch. Everything else (sampling, rewards, advantages, loss, logging) is TRL's.
* :class:`AudioSFTCollator` (for ``SFTTrainer``): prompt (with the clip) + gold completion,
  labels on the completion only, and the clip's features.

The blind control (``blind=true``) drops the ``audio`` column: prompts are text only and no
features reach the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from trl import GRPOTrainer

from training.trl_backend.audio import AudioPrompts, audio_messages, audio_trl_rows
from training.trl_backend.config import TrlConfig
from training.trl_backend.data import DataError, read_rows, to_dataset

AUDIO_KEYS = ("input_features", "feature_attention_mask")


class AudioGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose rows carry an ``audio`` path (see the module docstring).

    The clips' features of the rows being scored are held in ``self._audio`` for the length
    of one :meth:`_generate_and_score_completions` (generation and the no-grad log-prob
    passes) or one :meth:`_compute_loss` (the policy's pass): TRL's methods in between take
    vision tensors only.
    """

    def __init__(self, model, *, args, **kwargs: Any):
        model = _loaded(model, args)
        config = model.config
        # TRL suppresses sampling `config.image_token_id` with any processor (a sampled media
        # token would mismatch the features) and fails where there is none; an audio LM's
        # counterpart is its audio token
        borrowed = not hasattr(config, "image_token_id")
        if borrowed:
            config.image_token_id = config.audio_token_id
        try:
            super().__init__(model, args=args, **kwargs)
        finally:
            if borrowed:
                del config.image_token_id
        self.audio_prompts = AudioPrompts(self.processing_class)
        self._clips: list[str | None] = []
        self._audio: dict[str, torch.Tensor] = {}

    def _generate_and_score_completions(self, inputs):
        self._clips = [row.get("audio") for row in inputs]
        try:
            output = super()._generate_and_score_completions(inputs)
            output.update(self._audio)  # row-aligned with the completions: shuffled with them
        finally:
            self._audio, self._clips = {}, []
        return output

    def _tokenize_prompts(self, prompts: list):
        encoded = self.audio_prompts.encode(prompts, self._clips, dtype=self.model.dtype)
        self._audio = {k: v.to(self.accelerator.device) for k, v in encoded.fields().items()}
        return encoded.ids, None, dict(self._audio)

    def _compute_loss(self, model, inputs):
        self._audio = {k: inputs[k] for k in AUDIO_KEYS if k in inputs}
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._audio = {}

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask,
                                           logits_to_keep, batch_size=None,
                                           compute_entropy=False, compute_aux_loss=False,
                                           **vision):
        """TRL's log-prob pass (fused LM head, in chunks of ``batch_size`` rows) with each
        row's clip features; without audio, TRL's own."""
        if not self._audio:
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy,
                compute_aux_loss, **vision)
        batch_size = batch_size or input_ids.size(0)
        logps, entropies, aux = [], [], []
        for start in range(0, input_ids.size(0), batch_size):
            ids = input_ids[start:start + batch_size]
            mask = attention_mask[start:start + batch_size]
            labels = ids.masked_fill(mask == 0, -100)  # only the completion is scored
            labels[:, :-logits_to_keep] = -100
            extra = {k: v[start:start + batch_size] for k, v in self._audio.items()}
            if compute_aux_loss:
                extra["output_router_logits"] = True
            with self.accelerator.autocast():
                out = model(input_ids=ids, attention_mask=mask, labels=labels,
                            fused_lm_head=True, **extra)
            logps.append(out.log_probs[:, -logits_to_keep:])
            if compute_entropy:
                entropies.append(out.entropy[:, -logits_to_keep:])
            if compute_aux_loss:
                aux.append(out.aux_loss)
        return (torch.cat(logps), torch.cat(entropies) if compute_entropy else None,
                torch.stack(aux).mean() if compute_aux_loss else None)


def _loaded(model, args):
    """The model as GRPOTrainer would load it from a path (TRL's ``create_model_from_path``
    with ``model_init_kwargs``); an instance as is."""
    if not isinstance(model, str):
        return model
    from trl.trainer.utils import create_model_from_path

    kwargs = dict(args.model_init_kwargs or {})
    if args.distributed_state.distributed_type in ("MULTI_GPU", "DEEPSPEED"):
        kwargs["device_map"] = None
    return create_model_from_path(model, **kwargs)


@dataclass
class AudioSFTCollator:
    """SFT batches of audio TRL rows: the prompt rendered with its clip, the gold completion
    as TRL's chat template ends it, labels on the completion only (``-100`` elsewhere),
    right-padded, and the clips' ``input_features`` / ``feature_attention_mask``.

    ``max_length`` cuts a row's completion, never its prompt (that would cut audio tokens).
    """

    prompts: AudioPrompts
    max_length: int | None = None

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        tokenizer = self.prompts.tokenizer
        encoded = self.prompts.encode([e["prompt"] for e in examples],
                                      [e.get("audio") for e in examples])
        rows: list[tuple[list[int], list[int]]] = []
        for example, prompt_ids in zip(examples, encoded.ids, strict=True):
            completion = answer_ids(self.prompts, example, prompt_ids, example["completion"],
                                    self.max_length)
            rows.append((prompt_ids + completion, [-100] * len(prompt_ids) + completion))
        width = max(len(ids) for ids, _ in rows)
        pad = tokenizer.pad_token_id
        batch = {
            "input_ids": torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows]),
            "attention_mask": torch.tensor([[1] * len(ids) + [0] * (width - len(ids))
                                            for ids, _ in rows]),
            "labels": torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows]),
        }
        return {**batch, **encoded.fields()}


def answer_ids(prompts: AudioPrompts, example: Mapping[str, Any], prompt_ids: list[int],
               answer: Sequence[Mapping[str, Any]], max_length: int | None) -> list[int]:
    """The token ids of `answer` (assistant messages) as the chat template ends it after the
    example's prompt, cut so that prompt + answer fit `max_length`: the answer is cut, never
    the prompt (that would cut audio tokens); a prompt alone that long is a DataError."""
    text = completion_text(prompts.processor, example["prompt"], answer,
                           audio=example.get("audio") is not None)
    ids = prompts.tokenizer(text, add_special_tokens=False)["input_ids"]
    if max_length is None or len(prompt_ids) + len(ids) <= max_length:
        return ids
    if len(prompt_ids) >= max_length:
        raise DataError(f"row {example.get('example_id', '?')}: its prompt has "
                        f"{len(prompt_ids)} tokens (audio included), max_length is "
                        f"{max_length}; raise max_length")
    return ids[:max_length - len(prompt_ids)]


def completion_text(processor, prompt: Sequence[Mapping[str, Any]],
                    completion: Sequence[Mapping[str, Any]], *, audio: bool) -> str:
    """A completion as the chat template writes it after the prompt (the answer, the
    end-of-turn token and what follows it), as TRL renders prompt-completion rows."""
    from trl.data_utils import apply_chat_template

    rendered = apply_chat_template(
        {"prompt": audio_messages(prompt, audio=audio),
         "completion": [dict(m) for m in completion]}, processor)
    return rendered["completion"]


def build_audio_trainer(config: TrlConfig, processor):
    """The ``alm`` run's trainer (SFTTrainer with :class:`AudioSFTCollator`, or
    :class:`AudioGRPOTrainer`) and the rows it skipped."""
    from training.trl_backend.rewards import reward_functions
    from training.trl_backend.train import grpo_args, sft_args

    rows, skipped = audio_trl_rows(read_rows(config.data), blind=config.blind,
                                   answer_style=config.answer_style)
    from training.trl_backend.train import ordered

    rows = ordered(rows, config)
    media = [] if config.blind else ["audio"]
    if config.objective == "sft":
        from trl import SFTTrainer

        args = sft_args(config, remove_unused_columns=False,
                        dataset_kwargs={"skip_prepare_dataset": True})
        collator = AudioSFTCollator(AudioPrompts(processor), max_length=config.max_length)
        trainer = SFTTrainer(model=config.model, args=args, processing_class=processor,
                             data_collator=collator,
                             train_dataset=to_dataset(rows, ["example_id", "prompt",
                                                             "completion", *media]))
        return trainer, skipped
    funcs, weights = reward_functions(config)
    columns = [c for c in rows[0] if c not in ("completion", "audio")] + media
    trainer = AudioGRPOTrainer(model=config.model, reward_funcs=funcs,
                               args=grpo_args(config, weights), processing_class=processor,
                               train_dataset=to_dataset(rows, columns))
    return trainer, skipped
