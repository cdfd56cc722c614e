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
* **Comparable scores.** A hypothesis' `avg_logprob` is the teacher-forced score
  of its *text* (re-tokenized with the leading space Whisper emits, plus
  end-of-text) under the raw model: temperature 1, no token suppression. Beams,
  samples and human references are thus scored by one function, `score`, and
  that is the quantity preference training optimises. Scoring runs the prompt
  once per clip and shares its cached cross-attention keys and values among
  that clip's texts (half the cost of a plain forward pass per text).
* **Bounded decoding.** A clip of `d` seconds may emit at most
  `min(window, ceil(tokens_per_second * d) + extra_tokens)` text tokens, then
  end-of-text is forced (`window` is the decoder's length less the prompt and
  end-of-text). Whisper tiny.en falls into repetition loops on noisy speech;
  this bounds what a loop costs. English speech runs about 3-5 tokens a
  second, so the default 8 leaves room.
* **Sampling.** Samples are pure temperature sampling over the whole
  vocabulary (what `do_sample=True, top_k=0` means), drawn by a logits
  processor from one seeded random stream per (seed, clip samples, draw
  index) rather than by `do_sample`, whose draws come from torch's global
  generator and depend on what else is in the batch.
* **Determinism.** Greedy and beam search do the same computation for a clip
  whatever else is in its batch, and each sample has its own stream. So the
  same audio and seed give the same hypotheses regardless of `batch_size`
  and input order (identical clips get identical samples); only float
  rounding in batched matrix products differs, which can flip an exact tie.
* **Lean beam search.** Two per-step costs of the stock `generate` path are
  avoided without changing a single score: the cross-attention keys and
  values are not reordered at each beam step (`_BeamCache`: a clip's beams
  all attend to that clip's encoder output, so those rows are already
  identical; the stock reorder copies them all, over half of beam-search
  CPU time on tiny.en), and token suppression uses masks built once
  (`_SuppressTokens`) instead of `torch.isin` over the vocabulary per step.

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
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, TypeVar

import numpy as np
import torch
from transformers import (
    DynamicCache,
    EncoderDecoderCache,
    GenerationConfig,
    GenerationMixin,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    WhisperForConditionalGeneration,
    WhisperProcessor,
)
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

from models.batching import batches_by_duration

SAMPLE_RATE = 16_000
MAX_SECONDS = 30.0  # Whisper's input window
_SCORE_ROWS_PER_CHUNK = 32  # texts run through the decoder at once when scoring
_SCORE_POSITIONS_PER_CHUNK = 1024  # logit rows (x vocabulary) materialised at once

Kind = Literal["greedy", "beam", "sample"]
Progress = Callable[[int, int], None]
_T = TypeVar("_T")


@dataclass(frozen=True)
class Hypothesis:
    """One candidate transcript of a clip, with its teacher-forced score.

    Example:
        >>> Hypothesis("hello world", -0.2, 3, "beam", 0, None).text
        'hello world'
    """

    text: str
    """Decoded text, special tokens stripped, whitespace trimmed."""
    avg_logprob: float
    """Mean log-probability per scored token (text tokens + end-of-text), teacher-forced."""
    num_tokens: int
    """Tokens scored: text tokens + end-of-text, so `avg_logprob * num_tokens` is the total."""
    kind: Kind
    """How it was decoded: "greedy", "beam" or "sample"."""
    rank: int
    """0-based within its kind: beams by beam score, samples in draw order."""
    temperature: float | None
    """Sampling temperature; None for greedy and beam search."""


class _Draft(NamedTuple):
    """A decoded text awaiting its score."""

    clip: int
    kind: Kind
    rank: int
    temperature: float | None
    text: str


# ----------------------------------------------------------------------------- audio checks


def audio_durations(audios: Sequence[np.ndarray]) -> list[float]:
    """Seconds of each clip, after checking it is float32 mono 16 kHz within Whisper's window."""
    return [_checked_seconds(index, audio) for index, audio in enumerate(audios)]


def _checked_seconds(index: int, audio: np.ndarray) -> float:
    """Seconds of one clip; a ValueError naming `index` and the fix if Whisper cannot take it."""
    if not isinstance(audio, np.ndarray):
        raise ValueError(f"audio {index}: expected a numpy array, got {type(audio).__name__}")
    if audio.dtype != np.float32:
        raise ValueError(
            f"audio {index}: expected float32 samples, got {audio.dtype}; "
            "convert with .astype(np.float32)"
        )
    if audio.ndim != 1:
        raise ValueError(f"audio {index}: expected mono 1-D samples, got shape {audio.shape}")
    if audio.size == 0:
        raise ValueError(f"audio {index}: is empty")
    seconds = audio.size / SAMPLE_RATE
    if seconds > MAX_SECONDS:
        raise ValueError(
            f"audio {index}: is {seconds:.1f} s long at {SAMPLE_RATE} Hz; Whisper takes at most "
            f"{MAX_SECONDS:.0f} s, so split it first"
        )
    if not np.isfinite(audio).all():
        raise ValueError(f"audio {index}: contains NaN or infinite samples")
    return seconds


def token_cap(seconds: float, tokens_per_second: float, extra_tokens: int, window: int) -> int:
    """Most text tokens a clip of `seconds` may emit: bounds the cost of repetition loops.

    Example:
        >>> token_cap(2.5, tokens_per_second=8.0, extra_tokens=16, window=445)
        36
    """
    return min(window, math.ceil(tokens_per_second * seconds) + extra_tokens)


def _clip_digest(audio: np.ndarray) -> bytes:
    """A fingerprint of a clip's samples: seeds its random stream, whatever batch it is in."""
    return hashlib.sha256(np.ascontiguousarray(audio).tobytes()).digest()


def _stream_seed(seed: int, digest: bytes, draw: int) -> int:
    """A 63-bit seed for one draw of one clip under one user seed."""
    mixed = hashlib.sha256(f"{seed}:{draw}:".encode() + digest).digest()
    return int.from_bytes(mixed[:8], "little") >> 1


# ----------------------------------------------------------------------------- prompt


def is_multilingual(model: PreTrainedModel) -> bool:
    """Whether `model` expects language and task tokens (`.en` models do not)."""
    flag = getattr(model.generation_config, "is_multilingual", None)
    if flag is not None:
        return bool(flag)
    return model.config.vocab_size >= 51865  # openai-whisper's own rule


def decoder_prompt(model: PreTrainedModel, tokenizer, language: str | None = None) -> list[int]:
    """Token ids that start every transcript: no timestamps, and language + task if multilingual.

    A multilingual model without a `language` is told English: detecting it per
    clip would split batches by language for a project whose data is English.
    """
    start = model.generation_config.decoder_start_token_id or model.config.decoder_start_token_id
    no_timestamps = _special_id(tokenizer, "<|notimestamps|>")
    if not is_multilingual(model):
        if language is not None and _language_code(language) != "en":
            raise ValueError(f"the model is English-only; it cannot transcribe {language!r}")
        return [start, no_timestamps]
    code = _language_code(language or "en")
    return [
        start,
        _special_id(tokenizer, f"<|{code}|>"),
        _special_id(tokenizer, "<|transcribe|>"),
        no_timestamps,
    ]


def _language_code(language: str) -> str:
    """The language code of a name or code: "English", "english", "en" and "<|en|>" give "en"."""
    language = language.lower().strip("<|>")
    return TO_LANGUAGE_CODE.get(language, language)


def _special_id(tokenizer, token: str) -> int:
    """The id of a special token, or a ValueError saying the tokenizer lacks it."""
    token_id = tokenizer.get_vocab().get(token)
    if token_id is None:
        raise ValueError(f"the tokenizer has no {token} token (unknown language or not Whisper?)")
    return token_id


def _plain_generation_config(config: GenerationConfig) -> GenerationConfig:
    """The model's generation config without the Whisper-only prompt fields we replace."""
    config = copy.deepcopy(config)
    config.forced_decoder_ids = None
    config.return_dict_in_generate = False
    config.do_sample = False
    return config


def _token_mask(
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


class _BeamCache(EncoderDecoderCache):
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


# ----------------------------------------------------------------------------- logits processors


class _SuppressTokens(LogitsProcessor):
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


class _EndAtCap(LogitsProcessor):
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


class _SeededSampler(LogitsProcessor):
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


# ----------------------------------------------------------------------------- the adapter


class WhisperASR:
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
        self._generation = _plain_generation_config(model.generation_config)
        eos = self._generation.eos_token_id
        self.eos_id: int = eos[0] if isinstance(eos, list) else eos
        self.window = model.config.max_target_positions - len(self.prompt_ids) - 1
        vocab = model.config.vocab_size
        self._suppress = _SuppressTokens(
            _token_mask(self._generation.suppress_tokens, vocab, model.device),
            _token_mask(self._generation.begin_suppress_tokens, vocab, model.device),
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

    def nbest(
        self,
        audios: Sequence[np.ndarray],
        *,
        num_beams: int = 4,
        num_samples: int = 4,
        temperature: float = 0.7,
        seed: int = 0,
        batch_size: int = 8,
        progress: Progress | None = None,
        include_greedy: bool = False,
    ) -> list[list[Hypothesis]]:
        """Candidate transcripts per clip, in input order, each scored by `score`.

        Per clip: the greedy transcript if `include_greedy`, then `num_beams`
        beams (best beam score first), then `num_samples` samples at
        `temperature` in draw order. Duplicates are kept: callers decide.
        Hypotheses depend only on the clip, the model and `seed`.
        """
        if num_beams < 0 or num_samples < 0:
            raise ValueError(
                f"num_beams and num_samples must be >= 0, got {num_beams}, {num_samples}"
            )
        if num_samples and not temperature > 0:
            raise ValueError(f"temperature must be positive to sample, got {temperature}")

        def run(batch: list[np.ndarray], seconds: list[float]) -> list[list[Hypothesis]]:
            encoded = self._encode(batch)
            caps = self._caps(seconds)
            drafts = self._greedy_drafts(encoded, caps) if include_greedy else []
            drafts += self._beam_drafts(encoded, caps, num_beams) if num_beams else []
            if num_samples:
                digests = [_clip_digest(audio) for audio in batch]
                drafts += self._sample_drafts(
                    encoded, caps, digests, num_samples, temperature, seed
                )
            return self._scored(encoded, drafts, len(batch))

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
        sampler = _SeededSampler(uniforms.to(self.device), len(self.prompt_ids), temperature)
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

    def _over_batches(
        self,
        audios: Sequence[np.ndarray],
        batch_size: int,
        progress: Progress | None,
        run: Callable[[list[np.ndarray], list[float]], list[_T]],
    ) -> list[_T]:
        """Check every clip, run `run` on duration-sorted batches, return results in input order."""
        seconds = audio_durations(audios)
        results: list[_T | None] = [None] * len(audios)
        done = 0
        for batch in batches_by_duration(seconds, batch_size):
            outputs = run([audios[i] for i in batch], [seconds[i] for i in batch])
            for index, output in zip(batch, outputs, strict=True):
                results[index] = output
            done += len(batch)
            if progress is not None:
                progress(done, len(audios))
        return results  # type: ignore[return-value]

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
        sampler: _SeededSampler | None = None,
    ) -> torch.Tensor:
        """Generated token ids [clips x rows_per_clip, tokens], prompt removed, clip-major rows.

        Beam search returns its `rows_per_clip` best beams; otherwise each clip
        is repeated `rows_per_clip` times (greedy search refuses
        `num_return_sequences > 1`), which with `sampler` gives independent samples.
        """
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
            if num_beams > 1:
                decoder_config = self.model.config.get_text_config(decoder=True)
                extra["past_key_values"] = _BeamCache(decoder_config)
        if sampler is not None:
            processors.append(sampler)
        processors.append(_EndAtCap(row_caps, len(self.prompt_ids), self.eos_id))
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

    # ------------------------------------------------------------------------- n-best kinds

    def _greedy_drafts(self, encoded: torch.Tensor, caps: torch.Tensor) -> list[_Draft]:
        """The greedy transcript of each clip."""
        texts = self._decode(self._generate(encoded, caps))
        return [_Draft(clip, "greedy", 0, None, text) for clip, text in enumerate(texts)]

    def _beam_drafts(self, encoded: torch.Tensor, caps: torch.Tensor, beams: int) -> list[_Draft]:
        """All `beams` finished beams of each clip, best beam score first."""
        ids = self._generate(encoded, caps, num_beams=beams, rows_per_clip=beams)
        texts = self._decode(ids)
        return [_Draft(row // beams, "beam", row % beams, None, t) for row, t in enumerate(texts)]

    def _sample_drafts(
        self,
        encoded: torch.Tensor,
        caps: torch.Tensor,
        digests: list[bytes],
        samples: int,
        temperature: float,
        seed: int,
    ) -> list[_Draft]:
        """`samples` temperature samples of each clip, each from its own seeded stream."""
        uniforms = self._uniforms(digests, samples, seed).to(self.device)
        sampler = _SeededSampler(uniforms, len(self.prompt_ids), temperature)
        ids = self._generate(encoded, caps, rows_per_clip=samples, sampler=sampler)
        texts = self._decode(ids)
        return [
            _Draft(row // samples, "sample", row % samples, temperature, text)
            for row, text in enumerate(texts)
        ]

    def _uniforms(self, digests: list[bytes], samples: int, seed: int) -> torch.Tensor:
        """[clips x samples, window + 1] uniforms; fixed length, so no row depends on the batch."""
        rows = []
        for digest in digests:
            for draw in range(samples):
                generator = torch.Generator().manual_seed(_stream_seed(seed, digest, draw))
                rows.append(torch.rand(self.window + 1, generator=generator))
        return torch.stack(rows)

    def _scored(
        self, encoded: torch.Tensor, drafts: list[_Draft], clips: int
    ) -> list[list[Hypothesis]]:
        """Hypotheses per clip from drafts, each scored teacher-forced against its clip."""
        scores = self._score(encoded, [d.clip for d in drafts], [d.text for d in drafts])
        per_clip: list[list[Hypothesis]] = [[] for _ in range(clips)]
        for draft, (avg_logprob, num_tokens) in zip(drafts, scores, strict=True):
            per_clip[draft.clip].append(
                Hypothesis(
                    draft.text, avg_logprob, num_tokens, draft.kind, draft.rank, draft.temperature
                )
            )
        return per_clip

    # ------------------------------------------------------------------------- scoring

    def _score(
        self, encoded: torch.Tensor, clips: list[int], texts: list[str]
    ) -> list[tuple[float, int]]:
        """Teacher-forced (avg_logprob, num_tokens) of `texts[i]` against clip `clips[i]`.

        Texts are taken clip by clip, so a clip's prompt pass is shared by its texts.
        """
        order = sorted(range(len(texts)), key=lambda i: clips[i])
        results: list[tuple[float, int]] = [(0.0, 0)] * len(texts)
        for start in range(0, len(order), _SCORE_ROWS_PER_CHUNK):
            rows = order[start : start + _SCORE_ROWS_PER_CHUNK]
            scores = self._score_chunk(encoded, [clips[i] for i in rows], [texts[i] for i in rows])
            for row, score in zip(rows, scores, strict=True):
                results[row] = score
        return results

    @torch.inference_mode()
    def _score_chunk(
        self, encoded: torch.Tensor, clips: list[int], texts: list[str]
    ) -> list[tuple[float, int]]:
        """Scores of a few texts, in two decoder passes for all of them."""
        targets = [self._target_ids(text) for text in texts]
        states = self._teacher_forced_states(encoded, clips, targets)
        labels, mask = _label_grid(targets, self.eos_id)
        logprobs = self._token_logprobs(states[mask.to(self.device)], labels[mask].to(self.device))
        counts = [len(t) for t in targets]
        sums = [float(part.sum()) for part in logprobs.split(counts)]
        return [(total / count, count) for total, count in zip(sums, counts, strict=True)]

    def _target_ids(self, text: str) -> list[int]:
        """Text tokens as Whisper emits them (leading space) cut to the window, then end-of-text."""
        text = text.strip()
        ids = (
            self.processor.tokenizer(" " + text, add_special_tokens=False).input_ids if text else []
        )
        return ids[: self.window] + [self.eos_id]

    def _teacher_forced_states(
        self, encoded: torch.Tensor, clips: list[int], targets: list[list[int]]
    ) -> torch.Tensor:
        """Decoder states [texts, longest target, width]; state j predicts target token j.

        The prompt runs once per clip; its cache (self-attention, and the
        cross-attention keys and values, the costly part) is then shared by
        all of that clip's texts. Right padding is safe under causal masking.
        """
        decoder = self.model.get_decoder()
        unique, local = torch.tensor(clips, device=self.device).unique(return_inverse=True)
        prompt = torch.tensor([self.prompt_ids], device=self.device).expand(len(unique), -1)
        first = decoder(input_ids=prompt, encoder_hidden_states=encoded[unique], use_cache=True)
        states = first.last_hidden_state[local, -1:]
        width = max(len(t) for t in targets)
        if width == 1:
            return states
        cache = first.past_key_values
        cache.batch_select_indices(local)
        inputs = torch.full((len(targets), width - 1), self.eos_id, dtype=torch.long)
        for row, target in enumerate(targets):
            inputs[row, : len(target) - 1] = torch.tensor(target[:-1], dtype=torch.long)
        rest = decoder(
            input_ids=inputs.to(self.device),
            encoder_hidden_states=encoded[unique[local]],  # keys and values come from the cache
            past_key_values=cache,
            use_cache=True,
        ).last_hidden_state
        return torch.cat([states, rest], dim=1)

    def _token_logprobs(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """log p(label | prefix) per position, a chunk of positions at a time to bound memory."""
        project = self.model.get_output_embeddings()
        chunk = _SCORE_POSITIONS_PER_CHUNK
        parts = []
        for h, y in zip(hidden.split(chunk), labels.split(chunk), strict=True):
            logprobs = project(h).float().log_softmax(dim=-1)
            parts.append(logprobs.gather(1, y[:, None]).squeeze(1))
        return torch.cat(parts).cpu()


def _label_grid(targets: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets right-padded into [texts, longest] labels, and the mask of real tokens."""
    width = max(len(t) for t in targets)
    labels = torch.full((len(targets), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(labels, dtype=torch.bool)
    for row, target in enumerate(targets):
        labels[row, : len(target)] = torch.tensor(target, dtype=torch.long)
        mask[row, : len(target)] = True
    return labels, mask
