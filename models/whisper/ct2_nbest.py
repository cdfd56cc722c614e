"""N-best lists decoded by CTranslate2: `WhisperASR.nbest` at CTranslate2's speed.

`CT2WhisperASR` takes any transformers Whisper checkpoint, converts it once into a cache
(:func:`models.whisper.ct2_convert.converted_whisper`), and runs features (the checkpoint's
own `WhisperFeatureExtractor`), the encoder once per batch, then greedy search, beam search and
temperature sampling in CTranslate2 (float32 by default). It returns the same
:class:`~models.whisper.nbest.Hypothesis` lists as `WhisperASR.nbest`: the same kinds, ranks
and counts per clip, the same prompt, token suppression and token cap, and the same greedy text.
What differs, and why:

* **Where `avg_logprob` comes from.** From CTranslate2's search, not from a second pass.
  With `return_scores`, CTranslate2 reports per hypothesis the *sum* of the log-probabilities
  of every decoded token, end-of-text included, divided by the number of text tokens
  (length penalty 1; end-of-text is not part of a Whisper hypothesis). The log-probabilities
  are those the search used: after token suppression, and at temperature 1 for samples too
  (the temperature only shapes the draw: `sampling.cc` gathers the sampled ids' scores from
  the untempered log-softmax), so beams and samples are on one scale. This module turns that
  into the project's definition, a mean over text tokens + end-of-text:
  ``avg_logprob = score * n / (n + 1)`` and ``num_tokens = n + 1`` for `n` text tokens. A
  hypothesis stopped by the token cap has no end-of-text term: its mean is over the `n`
  decoded tokens (still ``num_tokens = n + 1``, the text plus the end-of-text that
  `WhisperASR` forces there). Against the teacher-forced score of the same text
  (:mod:`models.whisper.scoring`: raw model, no suppression) the search score is slightly
  higher (suppressed tokens' mass is renormalised away) and can differ when re-tokenising
  the text does not give back the decoded ids: on the greedy transcripts of 16 sample clips
  the gap was 0.008 median, 0.034 at most (CTranslate2's raw score: 0.056 and 0.139). The
  only consumer, pair mining (`training/data/pairs.py`), uses it to break ties.
  `rescore=True` replaces it with the teacher-forced score of `WhisperASR.score` (the
  transformers model is loaded on first use; costs the torch encoder and a decoder pass per
  clip); a hypothesis with no text tokens (possible only for a model that does not suppress
  end-of-text at the first step) is always rescored, since its search score (a sum divided
  by 0) carries nothing.
* **Seeding.** CTranslate2 draws every sample of a call from one generator per worker thread,
  seeded once, when that thread first samples (`ctranslate2.set_random_seed` does not reseed
  a running model), and the rows of a batch share it. So per-clip streams are impossible:
  here each `nbest` call that samples reloads the model (a fresh worker thread, ~0.1 s for
  tiny.en) after seeding CTranslate2 (process-wide: the seed is global) from `seed` and the
  call's clips. The same seed, clips, order and `batch_size` give the same hypotheses, in
  any process; unlike `WhisperASR`, a clip's samples also depend on the other clips of the
  call. CTranslate2 returns a clip's samples best search score first, so a sample's `rank`
  is its place in that order, not its draw order.
* **Token cap.** A clip of `d` seconds may emit `token_cap(d)` text tokens, as in
  `WhisperASR`: that bounds what a runaway repetition loop costs. CTranslate2 takes one
  `max_length` per call and, for Whisper, decodes at most min(max_length / 2, max_length -
  prompt + 1) steps (`src/models/whisper.cc` keeps half the context for a previous-text
  prompt), so a batch gets twice its largest cap, loops stop there, and each clip's tokens are
  then cut to its own cap. Clips are batched by duration, so a batch's caps are close.

Example:
    >>> from models.testing import build_tiny_whisper
    >>> import numpy as np, tempfile
    >>> src = build_tiny_whisper(tempfile.mkdtemp())
    >>> asr = CT2WhisperASR.from_pretrained(str(src), cache_dir=tempfile.mkdtemp(), threads=1)
    >>> audio = np.zeros(16_000, dtype=np.float32)
    >>> [h.kind for h in asr.nbest([audio], num_beams=2, num_samples=1)[0]]
    ['beam', 'beam', 'sample']
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import ctranslate2
import numpy as np
from transformers import GenerationConfig, WhisperConfig, WhisperProcessor

from models.whisper.ct2_convert import converted_whisper, local_checkpoint
from models.whisper.decoding import clip_digest, stream_seed
from models.whisper.inputs import (
    SAMPLE_RATE,
    decoder_prompt,
    over_batches,
    token_cap,
)
from models.whisper.nbest import Hypothesis, Kind, Progress

_T = TypeVar("_T")
_RANDOM_SEED = 2**32 - 1  # CTranslate2 reads this seed as "draw one from std::random_device"


class CT2WhisperASR:
    """A transformers Whisper checkpoint decoded by CTranslate2, behind the pipeline's ASR role.

    Audio is float32 mono at 16 kHz, at most 30 s a clip; results come back in input order.
    """

    sample_rate: int = SAMPLE_RATE

    def __init__(
        self, ct2_dir: str | Path, checkpoint: str | Path, *, name: str, device: str = "cpu",
        compute_type: str = "float32", threads: int = 1, language: str | None = None,
        tokens_per_second: float = 8.0, extra_tokens: int = 16, rescore: bool = False,
    ):
        """Wrap a converted model; `from_pretrained` converts and is the usual way in."""
        self.ct2_dir, self.checkpoint, self.name = Path(ct2_dir), Path(checkpoint), name
        self.device, self.compute_type, self.threads = device, compute_type, threads
        self.tokens_per_second, self.extra_tokens, self.rescore = (
            tokens_per_second, extra_tokens, rescore)
        self.processor = WhisperProcessor.from_pretrained(self.checkpoint, local_files_only=True)
        config = WhisperConfig.from_pretrained(self.checkpoint, local_files_only=True)
        try:
            generation = GenerationConfig.from_pretrained(self.checkpoint, local_files_only=True)
        except OSError:  # no generation_config.json: what transformers falls back to
            generation = GenerationConfig.from_model_config(config)
        like_model = SimpleNamespace(config=config, generation_config=generation)
        self.prompt_ids = decoder_prompt(like_model, self.processor.tokenizer, language)
        self.window = config.max_target_positions - len(self.prompt_ids) - 1
        # as WhisperASR: the generation config's lists; CTranslate2 takes the begin-suppressed
        # ids from the converted config.json only, which must hold the same ones
        begin = list(generation.begin_suppress_tokens or [])
        converted = json.loads((self.ct2_dir / "config.json").read_text(encoding="utf-8"))
        if list(converted.get("suppress_ids_begin") or []) != begin:
            raise ValueError(
                f"{self.ct2_dir / 'config.json'} suppresses other tokens at the start than "
                f"{self.checkpoint}'s generation config ({begin}); delete {self.ct2_dir} so "
                "that it is converted again")
        self._suppress = {"suppress_tokens": list(generation.suppress_tokens or []),
                          "suppress_blank": bool(begin)}
        self.model = self._load()
        self._scorer: Any = None

    @classmethod
    def from_pretrained(
        cls, path_or_id: str, *, cache_dir: str | Path, device: str | None = None,
        compute_type: str = "float32", threads: int | None = None, language: str | None = None,
        tokens_per_second: float = 8.0, extra_tokens: int = 16, rescore: bool = False,
    ) -> CT2WhisperASR:
        """Convert (once, cached under `cache_dir` by content) and load a transformers checkpoint.

        `device` defaults to CUDA when CTranslate2 sees a GPU, else CPU; `threads` (CPU threads
        per call) to torch's current setting, so both backends use the same threads.
        """
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        device = device or ("cuda" if ctranslate2.get_cuda_device_count() else "cpu")
        checkpoint = local_checkpoint(path_or_id)
        return cls(converted_whisper(checkpoint, cache_dir), checkpoint, name=str(path_or_id),
                   device=device, compute_type=compute_type, threads=threads, language=language,
                   tokens_per_second=tokens_per_second, extra_tokens=extra_tokens,
                   rescore=rescore)

    # ------------------------------------------------------------------------- public API

    def transcribe(
        self, audios: Sequence[np.ndarray], *, batch_size: int = 8,
        progress: Progress | None = None,
    ) -> list[str]:
        """Greedy transcripts, in input order. `progress(done, total)` runs after each batch."""

        def run(batch: list[np.ndarray], seconds: list[float]) -> list[str]:
            caps = self._caps(seconds)
            results = self._generate(self._features(batch), caps, beam_size=1)
            return [hyps[0].text for hyps in self._hypotheses(results, caps, "greedy", None)]

        return self._over_batches(audios, batch_size, progress, run)

    def nbest(
        self, audios: Sequence[np.ndarray], *, num_beams: int = 4, num_samples: int = 4,
        temperature: float = 0.7, seed: int = 0, batch_size: int = 8,
        progress: Progress | None = None, include_greedy: bool = False,
    ) -> list[list[Hypothesis]]:
        """Candidate transcripts per clip, in input order, as `WhisperASR.nbest` gives them.

        Per clip: the greedy transcript if `include_greedy`, then `num_beams` beams (best beam
        score first), then `num_samples` samples at `temperature` (best search score first).
        Duplicates are kept. Scores and seeding: see the module docstring.
        """
        if num_beams < 0 or num_samples < 0:
            raise ValueError(
                f"num_beams and num_samples must be >= 0, got {num_beams}, {num_samples}")
        if num_samples and not temperature > 0:
            raise ValueError(f"temperature must be positive to sample, got {temperature}")
        if num_samples and audios:
            self._reseed(seed, audios)

        def run(batch: list[np.ndarray], seconds: list[float]) -> list[list[Hypothesis]]:
            caps = self._caps(seconds)
            encoded = self.model.encode(self._features(batch))
            per_clip: list[list[Hypothesis]] = [[] for _ in batch]
            searches: list[tuple[Kind, float | None, dict[str, Any]]] = []
            if include_greedy:
                searches.append(("greedy", None, {"beam_size": 1}))
            if num_beams:
                searches.append(("beam", None, {"beam_size": num_beams,
                                                "num_hypotheses": num_beams}))
            if num_samples:
                searches.append(("sample", temperature, {
                    "beam_size": 1, "sampling_topk": 0, "sampling_temperature": temperature,
                    "num_hypotheses": num_samples}))
            for kind, temp, options in searches:
                results = self._generate(encoded, caps, **options)
                for mine, hyps in zip(per_clip, self._hypotheses(results, caps, kind, temp),
                                      strict=True):
                    mine += hyps
            return self._rescored(batch, per_clip)

        return self._over_batches(audios, batch_size, progress, run)

    # ------------------------------------------------------------------------- decoding

    def _load(self) -> ctranslate2.models.Whisper:
        """The converted model; one worker, so one random generator (see `_reseed`)."""
        return ctranslate2.models.Whisper(
            str(self.ct2_dir), device=self.device, compute_type=self.compute_type,
            intra_threads=self.threads, inter_threads=1)

    def _reseed(self, seed: int, audios: Sequence[np.ndarray]) -> None:
        """Reload the model so its (new) worker thread seeds its generator from `seed` + clips."""
        clips = hashlib.sha256(b"".join(clip_digest(a) for a in audios)).digest()
        ctranslate2.set_random_seed(stream_seed(seed, clips, 0) % _RANDOM_SEED)
        self.model = None  # free the old replica (and its thread) before loading the new one
        self.model = self._load()

    def _features(self, audios: list[np.ndarray]) -> ctranslate2.StorageView:
        """30 s-padded log-mel features [clips, mels, 3000], as WhisperASR computes them."""
        mel = self.processor.feature_extractor(
            audios, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(mel, dtype=np.float32))

    def _caps(self, seconds: Sequence[float]) -> list[int]:
        return [token_cap(s, self.tokens_per_second, self.extra_tokens, self.window)
                for s in seconds]

    def _generate(self, features: ctranslate2.StorageView, caps: list[int], **options: Any):
        """One CTranslate2 search over a batch, at most max(caps) text tokens per row."""
        return self.model.generate(
            features, [self.prompt_ids] * len(caps),
            max_length=ct2_max_length(max(caps), len(self.prompt_ids)),
            return_scores=True, **self._suppress, **options)

    def _hypotheses(
        self, results: list, caps: list[int], kind: Kind, temperature: float | None
    ) -> list[list[Hypothesis]]:
        """Hypotheses per clip from CTranslate2 results, ids cut to each clip's own cap."""
        steps = max(caps)
        rows = [(clip, rank, ids, score) for clip, result in enumerate(results)
                for rank, (ids, score) in enumerate(
                    zip(result.sequences_ids, result.scores, strict=True))]
        texts = self.processor.tokenizer.batch_decode(
            [ids[: caps[clip]] for clip, _, ids, _ in rows], skip_special_tokens=True)
        per_clip: list[list[Hypothesis]] = [[] for _ in results]
        for (clip, rank, ids, score), text in zip(rows, texts, strict=True):
            per_clip[clip].append(Hypothesis(
                text.strip(), search_avg_logprob(score, len(ids), ended=len(ids) < steps),
                min(len(ids), caps[clip]) + 1, kind, rank, temperature))
        return per_clip

    def _rescored(
        self, batch: list[np.ndarray], per_clip: list[list[Hypothesis]]
    ) -> list[list[Hypothesis]]:
        """Teacher-forced scores for every hypothesis if `rescore`, else for unscored ones."""
        for clip, hyps in enumerate(per_clip):
            todo = [i for i, h in enumerate(hyps) if self.rescore or math.isnan(h.avg_logprob)]
            if not todo:
                continue
            scores = self._teacher_forced().score(batch[clip], [hyps[i].text for i in todo])
            for i, (avg_logprob, num_tokens) in zip(todo, scores, strict=True):
                hyps[i] = replace(hyps[i], avg_logprob=avg_logprob, num_tokens=num_tokens)
        return per_clip

    def _teacher_forced(self):
        """The checkpoint as a transformers `WhisperASR`, loaded on first use, for scoring."""
        if self._scorer is None:
            from models.whisper.asr import WhisperASR

            self._scorer = WhisperASR.from_pretrained(
                str(self.checkpoint), device=self.device,
                tokens_per_second=self.tokens_per_second, extra_tokens=self.extra_tokens)
        return self._scorer

    def _over_batches(self, audios: Sequence[np.ndarray], batch_size: int,
                      progress: Progress | None,
                      run: Callable[[list[np.ndarray], list[float]], list[_T]]) -> list[_T]:
        return over_batches(audios, batch_size, progress, run)


def ct2_max_length(steps: int, prompt_length: int) -> int:
    """CTranslate2 Whisper's `max_length` for at most `steps` decoded tokens.

    Whisper's `generate` decodes min(max_length // 2, max_length - (prompt_length - 1)) steps.

    Example:
        >>> ct2_max_length(36, 2), ct2_max_length(1, 4)
        (72, 4)
    """
    return max(2 * steps, steps + prompt_length - 1)


def search_avg_logprob(score: float, n: int, *, ended: bool) -> float:
    """Mean log-prob per decoded token from CTranslate2's score (sum over tokens / `n` text
    tokens); `ended`: the sum includes an end-of-text token. NaN when `n` is 0.

    Example:
        >>> search_avg_logprob(-1.5, 2, ended=True), search_avg_logprob(-1.5, 2, ended=False)
        (-1.0, -1.5)
    """
    if n == 0:
        return math.nan
    return score * n / (n + int(ended))
