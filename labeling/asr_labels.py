"""Model-assisted labels for speech: N-best transcripts per clip, as warehouse rows."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from models.audio_chunks import AudioLoader, iter_audio_chunks
from models.whisper.asr import WhisperASR
from models.whisper.inputs import check_clip


@dataclass(frozen=True)
class NBestParams:
    """How many hypotheses per clip, and how they are drawn."""

    num_beams: int = 4
    num_samples: int = 4
    temperature: float = 0.7
    seed: int = 0
    batch_size: int = 8
    include_greedy: bool = True


def hypothesis_rows(
    asr: WhisperASR, clips: Sequence[Mapping[str, Any]], params: NBestParams,
    load: AudioLoader, *, chunk_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of `asr_hypotheses` for `clips`, and quarantine items for clips that fail to load."""
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    now, done = datetime.now(UTC), 0
    for chunk, audio, failed in iter_audio_chunks(clips, load, chunk_size, check=check_clip):
        failures += [_failure(clip, exc) for clip, exc in failed]
        nbest = asr.nbest(
            audio, num_beams=params.num_beams, num_samples=params.num_samples,
            temperature=params.temperature, seed=params.seed, batch_size=params.batch_size,
            include_greedy=params.include_greedy, progress=_offset(progress, done, len(clips)),
        ) if audio else []
        for clip, hyps in zip(chunk, nbest, strict=True):
            rows += [_row(asr.name, clip["clip_id"], h, params.seed, now) for h in hyps]
        done += len(chunk) + len(failed)
        if progress:
            progress(done, len(clips))
    return rows, failures


def _offset(progress, done: int, total: int):
    """Per-batch progress inside a chunk, reported against the whole run."""
    return (lambda d, _t: progress(done + d, total)) if progress else None


def _row(model: str, clip_id: str, hyp, seed: int, now: datetime) -> dict[str, Any]:
    return {
        "clip_id": clip_id, "model": model, "kind": hyp.kind, "rank": hyp.rank,
        "temperature": hyp.temperature, "seed": seed, "text": hyp.text,
        "avg_logprob": hyp.avg_logprob, "num_tokens": hyp.num_tokens, "created_at": now,
    }


def _failure(clip: Mapping[str, Any], exc: Exception) -> dict[str, Any]:
    return {
        "source_path": clip["source_path"], "line": None,
        "reason": getattr(exc, "reason", "undecodable"),
        "detail": f"{clip['source_path']}: not labeled: {exc}"
        + ("" if hasattr(exc, "reason") else "; re-ingest the batch if the file changed."),
    }
