"""N-best lists: candidate transcripts per clip from greedy search, beams and seeded samples.

Per clip: the greedy transcript if asked, then beams (best beam score first), then temperature
samples in draw order, each with its own random stream (:mod:`models.whisper.decoding`), so the
hypotheses depend only on the clip, the model and the seed. Every hypothesis is scored by the
same teacher-forced function (:mod:`models.whisper.scoring`).

:class:`NBestLists` is a mixin of :class:`models.whisper.asr.WhisperASR`, whose batching,
encoder, ``generate`` and scoring it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch

from models.whisper.decoding import SeededSampler, clip_digest, stream_seed

Kind = Literal["greedy", "beam", "sample"]
Progress = Callable[[int, int], None]


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


class NBestLists:
    """`nbest` for an adapter around a Whisper model."""

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
                digests = [clip_digest(audio) for audio in batch]
                drafts += self._sample_drafts(
                    encoded, caps, digests, num_samples, temperature, seed
                )
            return self._scored(encoded, drafts, len(batch))

        return self._over_batches(audios, batch_size, progress, run)

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
        sampler = SeededSampler(uniforms, len(self.prompt_ids), temperature)
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
                generator = torch.Generator().manual_seed(stream_seed(seed, digest, draw))
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
