"""Whisper as the pipeline's ASR model: transcripts, n-best lists and teacher-forced scores.

One small interface, `WhisperASR`, shared by labeling (transcripts), preference
mining (n-best lists) and evaluation (scores). The choices that matter downstream:

* **Encoder once per batch.** On short clips the 30 s mel encoder is most of
  Whisper's cost, so its output is computed once per batch and reused for
  greedy, beam search, sampling and scoring. Decoding calls
  `GenerationMixin.generate` directly: in transformers 5.23
  `WhisperForConditionalGeneration.generate` given precomputed encoder outputs
  fails (`'NoneType' object has no attribute 'repeat_interleave'`) as soon as
  `num_return_sequences > 1`, i.e. for n-best beams and samples.
* **Comparable scores.** Every hypothesis, beam, sample or human reference, is
  scored by one teacher-forced function, `score` (:mod:`models.whisper.scoring`),
  and that is the quantity preference training optimises.
* **Bounded decoding, seeded sampling, lean beam search.** A token cap per clip
  (:func:`models.whisper.inputs.token_cap`), one random stream per sample and
  a beam search without the stock per-step copies
  (:mod:`models.whisper.decoding`).
* **Determinism.** Greedy and beam search do the same computation for a clip
  whatever else is in its batch, and each sample has its own stream. So the
  same audio and seed give the same hypotheses regardless of `batch_size`
  and input order (identical clips get identical samples); only float
  rounding in batched matrix products differs, which can flip an exact tie.

Example (real weights are needed for meaningful text):
    >>> from models.testing import build_tiny_whisper
    >>> import numpy as np, tempfile
    >>> asr = WhisperASR.from_pretrained(str(build_tiny_whisper(tempfile.mkdtemp())), device="cpu")
    >>> audio = np.zeros(16_000, dtype=np.float32)
    >>> [h.kind for h in asr.nbest([audio], num_beams=2, num_samples=1)[0]]
    ['beam', 'beam', 'sample']
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from transformers import (
    GenerationConfig,
    GenerationMixin,
    LogitsProcessor,
    LogitsProcessorList,
    WhisperForConditionalGeneration,
    WhisperProcessor,
)
from transformers.modeling_outputs import BaseModelOutput

from models.whisper.cross_kv import shared_cross_cache
from models.whisper.decoding import (
    BeamCache,
    EndAtCap,
    SeededSampler,
    SuppressTokens,
    plain_generation_config,
    token_mask,
)
from models.whisper.inputs import (
    SAMPLE_RATE,
    audio_durations,
    decoder_prompt,
    over_batches,
    token_cap,
)
from models.whisper.nbest import NBestLists, Progress
from models.whisper.scoring import TeacherForcedScoring

_T = TypeVar("_T")


class WhisperASR(NBestLists, TeacherForcedScoring):
    """A Hugging Face Whisper model behind the pipeline's ASR interface.

    Audio is float32 mono at 16 kHz, at most 30 s a clip. Results come back in
    input order; clips are batched by duration internally.
    """

    sample_rate: int = SAMPLE_RATE

    def __init__(
        self,
        model: WhisperForConditionalGeneration,
        processor: WhisperProcessor,
        *,
        name: str,
        language: str | None = None,
        tokens_per_second: float = 8.0,
        extra_tokens: int = 16,
    ):
        """Wrap a loaded model; `from_pretrained` is the usual way in."""
        self.model = model.eval()
        self.processor = processor
        self.name = name
        self.tokens_per_second = tokens_per_second
        self.extra_tokens = extra_tokens
        self.prompt_ids = decoder_prompt(model, processor.tokenizer, language)
        self._generation = plain_generation_config(model.generation_config)
        eos = self._generation.eos_token_id
        self.eos_id: int = eos[0] if isinstance(eos, list) else eos
        self.window = model.config.max_target_positions - len(self.prompt_ids) - 1
        vocab = model.config.vocab_size
        self._suppress = SuppressTokens(
            token_mask(self._generation.suppress_tokens, vocab, model.device),
            token_mask(self._generation.begin_suppress_tokens, vocab, model.device),
            begin_index=len(self.prompt_ids),
        )
        self._stock_generate = False  # tests only: transformers' own suppression and beam cache

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str,
        *,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        language: str | None = None,
        tokens_per_second: float = 8.0,
        extra_tokens: int = 16,
    ) -> WhisperASR:
        """Load from a local directory or a Hub id (from the local cache under HF_HUB_OFFLINE=1).

        `device` defaults to CUDA when present, else CPU; `dtype` to float32 on
        CPU and float16 on GPU.
        """
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = dtype or (torch.float32 if device == "cpu" else torch.float16)
        local = Path(path_or_id).is_dir()
        model = WhisperForConditionalGeneration.from_pretrained(
            path_or_id, dtype=dtype, local_files_only=local
        ).to(device)
        processor = WhisperProcessor.from_pretrained(path_or_id, local_files_only=local)
        return cls(
            model,
            processor,
            name=str(path_or_id),
            language=language,
            tokens_per_second=tokens_per_second,
            extra_tokens=extra_tokens,
        )

    @property
    def device(self) -> torch.device:
        return self.model.device

    # ------------------------------------------------------------------------- public API

    def transcribe(
        self,
        audios: Sequence[np.ndarray],
        *,
        batch_size: int = 8,
        progress: Progress | None = None,
    ) -> list[str]:
        """Greedy transcripts, in input order. `progress(done, total)` runs after each batch."""

        def run(batch: list[np.ndarray], seconds: list[float]) -> list[str]:
            encoded = self._encode(batch)
            return self._decode(self._generate(encoded, self._caps(seconds)))

        return self._over_batches(audios, batch_size, progress, run)
    def score(self, audio: np.ndarray, texts: Sequence[str]) -> list[tuple[float, int]]:
        """Teacher-forced (avg_logprob, num_tokens) of each text as the transcript of `audio`.

        Texts are scored as Whisper would emit them (leading space, then
        end-of-text); tokens past the decoder window are not scored.
        """
        audio_durations([audio])
        encoded = self._encode([audio])
        return self._score(encoded, [0] * len(texts), list(texts))

    @torch.inference_mode()
    def sample_encoded(
        self, encoded: torch.Tensor, seconds: Sequence[float], *, num_samples: int,
        temperature: float, seeds: Sequence[int],
    ) -> list[list[str]]:
        """`num_samples` temperature samples per clip from precomputed encoder states.

        For online RL rollouts: the policy's encoder output is computed once and
        shared with scoring. Row `i`'s draws come from a generator seeded with
        `seeds[i]`, so a rollout is reproducible (a resumed run redraws the same
        samples) and does not depend on which other rows share the batch (or rank).
        """
        if not temperature > 0:
            raise ValueError(f"temperature must be positive to sample, got {temperature}")
        if len(seeds) != len(encoded):
            raise ValueError(f"one seed per clip: {len(seeds)} seeds for {len(encoded)} clips")
        uniforms = torch.cat([
            torch.rand(num_samples, self.window + 1,
                       generator=torch.Generator().manual_seed(int(seed)))
            for seed in seeds])
        sampler = SeededSampler(uniforms.to(self.device), len(self.prompt_ids), temperature)
        ids = self._generate(encoded, self._caps(seconds), rows_per_clip=num_samples,
                             sampler=sampler)
        texts = self._decode(ids)
        return [texts[i * num_samples : (i + 1) * num_samples] for i in range(len(encoded))]

    @torch.inference_mode()
    def beams_encoded(
        self, encoded: torch.Tensor, seconds: Sequence[float], *, num_beams: int,
    ) -> list[list[str]]:
        """The `num_beams` finished beams per clip (best first) from precomputed encoder states."""
        ids = self._generate(encoded, self._caps(seconds), num_beams=num_beams,
                             rows_per_clip=num_beams)
        texts = self._decode(ids)
        return [texts[i * num_beams : (i + 1) * num_beams] for i in range(len(encoded))]

    # ------------------------------------------------------------------------- batching

    def _over_batches(self, audios: Sequence[np.ndarray], batch_size: int,
                      progress: Progress | None,
                      run: Callable[[list[np.ndarray], list[float]], list[_T]]) -> list[_T]:
        return over_batches(audios, batch_size, progress, run)

    def _caps(self, seconds: Sequence[float]) -> torch.Tensor:
        """Per-clip token caps (see `token_cap`) as a tensor on the model's device."""
        caps = [
            token_cap(s, self.tokens_per_second, self.extra_tokens, self.window) for s in seconds
        ]
        return torch.tensor(caps, device=self.device)

    # ------------------------------------------------------------------------- encoder / decoder

    @torch.inference_mode()
    def _encode(self, audios: Sequence[np.ndarray]) -> torch.Tensor:
        """Encoder hidden states [clips, frames, width] of 30 s-padded log-mel features."""
        features = self.processor.feature_extractor(
            list(audios), sampling_rate=SAMPLE_RATE, return_tensors="pt"
        ).input_features
        features = features.to(self.device, self.model.dtype)
        return self.model.get_encoder()(features).last_hidden_state

    @torch.inference_mode()
    def _generate(
        self,
        encoded: torch.Tensor,
        caps: torch.Tensor,
        *,
        num_beams: int = 1,
        rows_per_clip: int = 1,
        sampler: SeededSampler | None = None,
    ) -> torch.Tensor:
        """Generated token ids [clips x rows_per_clip, tokens], prompt removed, clip-major rows.

        Beam search returns its `rows_per_clip` best beams; otherwise each clip
        is repeated `rows_per_clip` times (greedy search refuses
        `num_return_sequences > 1`), which with `sampler` gives independent samples.
        """
        clip_states = encoded
        if num_beams == 1 and rows_per_clip > 1:
            encoded = encoded.repeat_interleave(rows_per_clip, dim=0)
        returned = rows_per_clip if num_beams > 1 else 1
        row_caps = caps.repeat_interleave(rows_per_clip)
        config = self._generation_config(int(caps.max()), num_beams, returned)
        # suppression first, as in the stock order (it precedes user processors)
        processors: list[LogitsProcessor] = []
        extra = {}
        if not self._stock_generate:
            # as arguments: None in the config would be filled in from the model's config
            extra.update(suppress_tokens=None, begin_suppress_tokens=None)
            processors.append(self._suppress)
            per_clip = num_beams if num_beams > 1 else rows_per_clip
            if per_clip > 1:  # cross-attention keys/values projected per clip, not per row
                cache = (BeamCache(self.model.config.get_text_config(decoder=True))
                         if num_beams > 1 else None)
                rows = torch.arange(len(caps), device=self.device).repeat_interleave(per_clip)
                extra["past_key_values"] = shared_cross_cache(self.model, clip_states, rows,
                                                              cache)
        if sampler is not None:
            processors.append(sampler)
        processors.append(EndAtCap(row_caps, len(self.prompt_ids), self.eos_id))
        prompt = torch.tensor([self.prompt_ids], device=self.device).expand(len(encoded), -1)
        sequences = GenerationMixin.generate(
            self.model,
            # a fresh wrapper each call: generate expands encoder outputs in place for beams
            encoder_outputs=BaseModelOutput(last_hidden_state=encoded),
            decoder_input_ids=prompt,
            generation_config=config,
            logits_processor=LogitsProcessorList(processors),
            **extra,
        )
        return sequences[:, len(self.prompt_ids) :]

    def _generation_config(self, cap: int, num_beams: int, returned: int) -> GenerationConfig:
        """Search settings for one call: up to `cap` text tokens plus the forced end-of-text."""
        config = copy.deepcopy(self._generation)
        config.max_length = len(self.prompt_ids) + cap + 1
        config.num_beams, config.num_return_sequences = num_beams, returned
        return config

    def _decode(self, token_ids: torch.Tensor) -> list[str]:
        """Texts of generated ids, special tokens stripped, whitespace trimmed."""
        texts = self.processor.tokenizer.batch_decode(token_ids, skip_special_tokens=True)
        return [text.strip() for text in texts]
