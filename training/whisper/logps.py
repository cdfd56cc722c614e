"""Teacher-forced per-sequence log-probabilities of transcripts under Whisper, batched, with grad.

The preference losses in :mod:`training.objectives.losses` need, per transcript, the summed
log-probability of its tokens. This module computes it exactly as
``models.whisper.asr.WhisperASR.score`` does (text tokenised with the leading space Whisper emits,
cut to the decoder window, then end-of-text; the decoder prompt is conditioned on but not scored),
so what training optimises is what scoring and pair mining measured. ``tests/test_trainer.py``
checks the two agree.

Several texts may share one clip (a pair's chosen and rejected): encoder states are given once per
clip and ``clips[i]`` says which clip text ``i`` belongs to.

Example:
    >>> decoder_batch([1, 2], [[5, 6, 0], [7, 0]], pad_id=0)[0].tolist()
    [[1, 2, 5, 6], [1, 2, 7, 0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import WhisperForConditionalGeneration

from models.whisper.cross_kv import shared_cross_cache, worth_sharing
from models.whisper.inputs import decoder_prompt

__all__ = [
    "SequenceLogps",
    "TokenLogps",
    "WhisperScorer",
    "WhisperTokens",
    "decoder_batch",
    "sequence_logps",
    "target_ids",
    "token_logps",
]


@dataclass(frozen=True)
class WhisperTokens:
    """The token facts of one model: prompt, end-of-text id and the text window."""

    prompt_ids: list[int]
    eos_id: int
    window: int

    @classmethod
    def of(cls, model: WhisperForConditionalGeneration, tokenizer, language: str | None = None):
        """The same prompt, end-of-text and window as ``WhisperASR`` uses for `model`."""
        prompt = decoder_prompt(model, tokenizer, language)
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = model.config.eos_token_id
        eos_id = eos[0] if isinstance(eos, list) else eos
        return cls(prompt, int(eos_id), model.config.max_target_positions - len(prompt) - 1)

    def target(self, tokenizer, text: str) -> list[int]:
        return target_ids(tokenizer, text, self.window, self.eos_id)


def target_ids(tokenizer, text: str, window: int, eos_id: int) -> list[int]:
    """Text tokens as Whisper emits them (leading space) cut to `window`, then end-of-text.

    Identical to ``WhisperASR._target_ids``; an empty text is just end-of-text.
    """
    text = text.strip()
    ids = tokenizer(" " + text, add_special_tokens=False).input_ids if text else []
    return list(ids[:window]) + [eos_id]


@dataclass
class SequenceLogps:
    """Per-text results, each ``[texts]``; only `logps` carries gradient."""

    logps: torch.Tensor
    """Summed log-probability of the target tokens (text + end-of-text), float32."""
    tokens: torch.Tensor
    """Number of target tokens scored (long)."""
    entropy: torch.Tensor
    """Mean over the text's positions of the predictive distribution's entropy (nats), detached."""


def decoder_batch(
    prompt_ids: Sequence[int], targets: Sequence[Sequence[int]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decoder inputs ``prompt + target[:-1]`` right-padded, target labels and their mask.

    Returns ``input_ids [texts, P + L - 1]``, ``labels [texts, L]``, ``mask [texts, L]`` where
    ``L`` is the longest target; the decoder state at ``P - 1 + j`` predicts label ``j``. Right
    padding is safe: a causal decoder never lets a real position see a padded one.
    """
    width = max(len(t) for t in targets)
    prompt = torch.tensor(list(prompt_ids), dtype=torch.long)
    inputs = torch.full((len(targets), len(prompt) + width - 1), pad_id, dtype=torch.long)
    labels = torch.full((len(targets), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(targets), width), dtype=torch.bool)
    inputs[:, : len(prompt)] = prompt
    for row, target in enumerate(targets):
        target = torch.tensor(list(target), dtype=torch.long)
        inputs[row, len(prompt) : len(prompt) + len(target) - 1] = target[:-1]
        labels[row, : len(target)] = target
        mask[row, : len(target)] = True
    return inputs, labels, mask


@dataclass
class TokenLogps:
    """Per-token results, each ``[texts, L]`` (right-padded; `mask` marks real tokens)."""

    logps: torch.Tensor
    """Log-probability of each target token, float32, 0 at padding; carries gradient."""
    mask: torch.Tensor
    entropy: torch.Tensor
    """Entropy (nats) of the predictive distribution at each target position, detached."""
    distribution: torch.Tensor | None = None
    """Only when asked (``keep_distribution``): the whole log-softmax ``[tokens, vocab]`` at
    the target positions, in `mask` order (row by row), with gradient: what a token-level KL
    to another model needs."""

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """`distribution` rows of texts ``start:stop`` (their target positions, in order)."""
        if self.distribution is None:
            raise ValueError("no distribution kept: score with keep_distribution=True")
        counts = self.mask.sum(dim=1)
        first = int(counts[:start].sum())
        return self.distribution[first : first + int(counts[start:stop].sum())]

    def sequences(self) -> SequenceLogps:
        """Summed per text, as :func:`sequence_logps` returns."""
        counts = self.mask.sum(dim=1)
        return SequenceLogps(self.logps.sum(dim=1), counts,
                             (self.entropy.sum(dim=1) / counts.clamp_min(1)).detach())


def token_logps(
    model: WhisperForConditionalGeneration,
    encoder_states: torch.Tensor,
    clips: Sequence[int] | torch.Tensor,
    targets: Sequence[Sequence[int]],
    prompt_ids: Sequence[int],
    pad_id: int,
    temperature: float = 1.0,
    keep_distribution: bool = False,
) -> TokenLogps:
    """Teacher-forced log-prob of every token of `targets[i]` given clip `clips[i]`'s states.

    `encoder_states` is ``[clips, frames, width]``; gradients flow into the decoder (and into
    `encoder_states` if it requires grad). When clips have several texts, each clip's
    cross-attention keys and values are projected once (:mod:`models.whisper.cross_kv`).
    Logits are materialised only at target positions, in float32. `temperature` divides the
    logits first: the distribution rollouts were sampled from (TRL's GRPO scores the same way),
    so ratio, KL and entropy are of that distribution. `keep_distribution` also returns the
    whole log-softmax at the target positions (``TokenLogps.distribution``).
    """
    device = encoder_states.device
    inputs, labels, mask = decoder_batch(prompt_ids, targets, pad_id)
    inputs, labels, mask = inputs.to(device), labels.to(device), mask.to(device)
    clips = torch.as_tensor(clips, dtype=torch.long, device=device)
    decoder = model.get_decoder()
    if worth_sharing(len(clips), len(encoder_states)):  # project each clip's states once
        hidden = decoder(
            input_ids=inputs, encoder_hidden_states=encoder_states[:1].expand(len(clips), -1, -1),
            past_key_values=shared_cross_cache(model, encoder_states, clips), use_cache=True,
        ).last_hidden_state
    else:
        hidden = decoder(
            input_ids=inputs, encoder_hidden_states=encoder_states[clips], use_cache=False
        ).last_hidden_state
    hidden = hidden[:, len(prompt_ids) - 1 :]  # state j predicts label j
    logits = model.get_output_embeddings()(hidden[mask]).float()
    if temperature != 1.0:
        logits = logits / temperature
    logprobs = logits.log_softmax(dim=-1)
    picked = logprobs.gather(1, labels[mask][:, None]).squeeze(1)
    per_token = torch.zeros(mask.shape, device=device, dtype=torch.float32).masked_scatter(
        mask, picked)
    with torch.no_grad():
        detached = logprobs.detach()
        entropy = torch.zeros(mask.shape, device=device, dtype=torch.float32).masked_scatter(
            mask, -(detached.exp() * detached).sum(dim=-1))
    return TokenLogps(per_token, mask, entropy, logprobs if keep_distribution else None)


def sequence_logps(
    model: WhisperForConditionalGeneration,
    encoder_states: torch.Tensor,
    clips: Sequence[int] | torch.Tensor,
    targets: Sequence[Sequence[int]],
    prompt_ids: Sequence[int],
    pad_id: int,
) -> SequenceLogps:
    """Summed teacher-forced log-probs of `targets[i]` given clip `clips[i]`'s encoder states."""
    return token_logps(model, encoder_states, clips, targets, prompt_ids, pad_id).sequences()


class WhisperScorer(torch.nn.Module):
    """Features in, per-text log-probs out: the module DDP wraps, so its forward does all the work.

    The encoder runs once per clip (under ``no_grad`` when frozen, the cheap default); every text
    then runs through the decoder against its clip's states.
    """

    def __init__(
        self, model: WhisperForConditionalGeneration, tokens: WhisperTokens, freeze_encoder: bool
    ):
        super().__init__()
        self.model = model
        self.tokens = tokens
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            model.get_encoder().requires_grad_(False)

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """Encoder states of `features`; a frozen encoder runs without grad and in eval mode
        (no dropout), so its states are a fixed function of the clip and can be cached."""
        encoder = self.model.get_encoder()
        features = features.to(self.model.device, self.model.dtype)
        if not self.freeze_encoder:
            return encoder(features).last_hidden_state
        was_training = encoder.training
        encoder.eval()
        try:
            with torch.no_grad():
                return encoder(features).last_hidden_state
        finally:
            encoder.train(was_training)

    def forward(
        self, features: torch.Tensor | None, clips: Sequence[int],
        targets: Sequence[Sequence[int]], *, per_token: bool = False,
        states: torch.Tensor | None = None, temperature: float = 1.0,
        keep_distribution: bool = False,
    ) -> SequenceLogps | TokenLogps:
        """Log-probs of `targets` (summed per text, or per token) at `temperature`; `states`
        skips the encoder (only valid with a frozen encoder, where they carry no gradient).
        `keep_distribution` (per token only) keeps the whole log-softmax at target positions."""
        if keep_distribution and not per_token:
            raise ValueError("keep_distribution needs per_token=True")
        if states is None:
            states = self.encode(features)
        elif not self.freeze_encoder:
            raise ValueError("precomputed encoder states need a frozen encoder")
        out = token_logps(
            self.model, states, clips, targets, self.tokens.prompt_ids, self.tokens.eos_id,
            temperature=temperature, keep_distribution=keep_distribution,
        )
        return out if per_token else out.sequences()
