"""The pieces of Whisper decoding that `WhisperASR` adds to transformers' ``generate``.

* **Sampling.** Samples are pure temperature sampling over the whole
  vocabulary (what `do_sample=True, top_k=0` means), drawn by a logits
  processor (`SeededSampler`) from one seeded random stream per (seed, clip
  samples, draw index) (`stream_seed`, `clip_digest`) rather than by
  `do_sample`, whose draws come from torch's global generator and depend on
  what else is in the batch.
* **Bounded decoding.** `EndAtCap` forces end-of-text on each row that holds
  its clip's token cap (:func:`models.whisper.inputs.token_cap`).
* **Lean beam search.** Two per-step costs of the stock `generate` path are
  avoided without changing a single score: the cross-attention keys and
  values are not reordered at each beam step (`BeamCache`: a clip's beams
  all attend to that clip's encoder output, so those rows are already
  identical; the stock reorder copies them all, over half of beam-search
  CPU time on tiny.en), and token suppression uses masks built once
  (`SuppressTokens`, `token_mask`) instead of `torch.isin` over the
  vocabulary per step.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Sequence

import numpy as np
import torch
from transformers import DynamicCache, EncoderDecoderCache, GenerationConfig, LogitsProcessor


def clip_digest(audio: np.ndarray) -> bytes:
    """A fingerprint of a clip's samples: seeds its random stream, whatever batch it is in."""
    return hashlib.sha256(np.ascontiguousarray(audio).tobytes()).digest()


def stream_seed(seed: int, digest: bytes, draw: int) -> int:
    """A 63-bit seed for one draw of one clip under one user seed."""
    mixed = hashlib.sha256(f"{seed}:{draw}:".encode() + digest).digest()
    return int.from_bytes(mixed[:8], "little") >> 1


def plain_generation_config(config: GenerationConfig) -> GenerationConfig:
    """The model's generation config without the Whisper-only prompt fields we replace."""
    config = copy.deepcopy(config)
    config.forced_decoder_ids = None
    config.return_dict_in_generate = False
    config.do_sample = False
    return config


def token_mask(
    token_ids: Sequence[int] | None, vocab_size: int, device: torch.device
) -> torch.Tensor | None:
    """A [vocab_size] boolean mask of `token_ids` on `device`, or None when there are none."""
    if not token_ids:
        return None
    mask = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    mask[
        torch.tensor([t for t in token_ids if 0 <= t < vocab_size], dtype=torch.long, device=device)
    ] = True
    return mask


class BeamCache(EncoderDecoderCache):
    """An encoder-decoder cache whose cross-attention part is not reordered between beam steps.

    Beam search keeps every beam within its clip and all of a clip's rows
    attend to the same encoder output, so the cross-attention keys and values
    of a clip's beams are identical and any within-clip reordering leaves them
    unchanged. The stock `reorder_cache` copies them anyway, every step.
    Only valid for beam search over rows repeated per clip, as `generate` does.
    """

    def __init__(self, config):
        super().__init__(DynamicCache(config=config), DynamicCache(config=config))

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self.self_attention_cache.reorder_cache(beam_idx)


class SuppressTokens(LogitsProcessor):
    """transformers' two token-suppression processors in one, with masks built once.

    Like `SuppressTokensLogitsProcessor` and `SuppressTokensAtBeginLogitsProcessor`,
    sets `always` tokens to -inf at every step and `at_begin` tokens at the
    first generated position (`input_ids` of length `begin_index`), exactly as
    the stock pair does, without rebuilding a vocabulary-wide `torch.isin`
    mask at each step.
    """

    def __init__(
        self, always: torch.Tensor | None, at_begin: torch.Tensor | None, begin_index: int
    ):
        self.always, self.at_begin, self.begin_index = always, at_begin, begin_index

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if self.always is not None:
            scores = scores.masked_fill(self.always.to(scores.device), -math.inf)
        if self.at_begin is not None and input_ids.shape[-1] == self.begin_index:
            scores = scores.masked_fill(self.at_begin.to(scores.device), -math.inf)
        return scores


class EndAtCap(LogitsProcessor):
    """Forces end-of-text on each row that holds its clip's token cap."""

    def __init__(self, row_caps: torch.Tensor, prompt_len: int, eos_id: int):
        self.row_caps, self.prompt_len, self.eos_id = row_caps, prompt_len, eos_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        over = (input_ids.shape[1] - self.prompt_len) >= self.row_caps
        if not bool(over.any()):
            return scores
        forced = torch.full_like(scores[0], -math.inf)
        forced[self.eos_id] = 0.0
        return torch.where(over[:, None], forced, scores)


class SeededSampler(LogitsProcessor):
    """Temperature sampling over the whole vocabulary (no top-k/top-p), one random stream per row.

    Inverse-CDF sampling with pre-drawn uniforms; the chosen token is left as
    the only finite score, so greedy search emits it. Unlike `do_sample`, which
    draws from torch's global generator across the batch, a row's draws do not
    depend on the other rows.
    """

    def __init__(self, uniforms: torch.Tensor, prompt_len: int, temperature: float):
        self.uniforms, self.prompt_len, self.temperature = uniforms, prompt_len, temperature

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        step = input_ids.shape[1] - self.prompt_len
        cdf = torch.softmax(scores.float() / self.temperature, dim=-1).cumsum(dim=-1)
        target = self.uniforms[:, step, None] * cdf[:, -1:]
        choice = torch.searchsorted(cdf, target, right=True).clamp_(max=scores.shape[-1] - 1)
        return torch.full_like(scores, -math.inf).scatter_(1, choice, 0.0)
