"""ASR evaluation: transcribe clips with a model, score against references, group by tags.

Backs both `rlfoundry evaluate` and the `asr_baseline_eval` asset, so the
numbers a person sees in the terminal and in the UI come from one code path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.audio_chunks import AudioLoader, iter_audio_chunks
from models.whisper.asr import WhisperASR
from models.whisper.inputs import MAX_SECONDS, SAMPLE_RATE, check_clip
from training.eval.metrics import error_counts
from training.eval.report import EvalReport, grouped_scores


@dataclass
class EvalResult:
    """The grouped report, one row per utterance, and the clips that could not be loaded."""

    report: EvalReport
    utterances: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[Mapping[str, Any], Exception]] = field(default_factory=list)


Split = Callable[[np.ndarray], Sequence[tuple[float, float]]]


def evaluate_clips(
    asr: WhisperASR, clips: Sequence[Mapping[str, Any]], load: AudioLoader,
    group_by: Sequence[str] = (), *, batch_size: int = 8, chunk_size: int = 64,
    progress: Callable[[int, int], None] | None = None, split: Split | None = None,
) -> EvalResult:
    """Greedy-transcribe every clip that has a reference and score it (WER/CER, per group).

    Long-form: a clip longer than Whisper's window is a failure, unless `split` is given:
    `split(audio)` then gives the [start, end) seconds of pieces that tile it, each within
    the window (e.g. `labeling.ingest.segment.LongFormSplitter`); the pieces'
    transcripts, joined in order, are scored against the clip's whole reference, and its
    utterance row says how many pieces (`chunks`).
    """
    labeled = [c for c in clips if c.get("text")]
    utterances, failures, done = [], [], 0
    check = None if split else check_clip
    for chunk, audio, failed in iter_audio_chunks(labeled, load, chunk_size, check=check):
        failures += failed
        chunk, pieces, counts = _pieces(chunk, audio, split, failures)
        scale = len(chunk) / max(len(pieces), 1)  # progress counts clips, not pieces
        inner = ((lambda d, _t, base=done, k=scale: progress(base + int(d * k), len(labeled)))
                 if progress else None)
        texts = asr.transcribe(pieces, batch_size=batch_size, progress=inner) if pieces else []
        utterances += [_utterance(clip, hyp, n) for clip, hyp, n in
                       zip(chunk, _joined(texts, counts), counts, strict=True)]
        done += len(chunk) + len(failed)
        if progress:
            progress(done, len(labeled))
    report = grouped_scores(utterances, group_by)
    return EvalResult(report, utterances, failures)


def _pieces(
    clips: Sequence[Mapping[str, Any]], audios: Sequence[np.ndarray], split: Split | None,
    failures: list[tuple[Mapping[str, Any], Exception]],
) -> tuple[list[Mapping[str, Any]], list[np.ndarray], list[int]]:
    """The clips Whisper can take (whole, or in `split`'s pieces when longer than its
    window), all their pieces in order, and how many pieces each has; the others go to
    `failures` with the reason."""
    kept, pieces, counts = [], [], []
    for clip, audio in zip(clips, audios, strict=True):
        try:
            parts = [audio]
            if split is not None and audio.size > MAX_SECONDS * SAMPLE_RATE:
                parts = [audio[round(a * SAMPLE_RATE): round(b * SAMPLE_RATE)]
                         for a, b in split(audio)]
            for part in parts:
                check_clip(part)
        except Exception as exc:  # noqa: BLE001 - a clip that cannot be split is reported
            failures.append((clip, exc))
            continue
        kept.append(clip)
        pieces += parts
        counts.append(len(parts))
    return kept, pieces, counts


def _joined(texts: Sequence[str], counts: Sequence[int]) -> list[str]:
    """One text per clip: its pieces' texts (`counts` of them, in order) joined by spaces.

    >>> _joined(["a b", "", "c", "d"], [1, 2, 1])
    ['a b', 'c', 'd']
    """
    out, at = [], 0
    for n in counts:
        out.append(" ".join(t for t in texts[at: at + n] if t))
        at += n
    return out


def _utterance(clip: Mapping[str, Any], hypothesis: str, chunks: int = 1) -> dict[str, Any]:
    counts = error_counts(clip["text"], hypothesis)
    row = {
        "clip_id": clip.get("clip_id") or clip["source_path"],
        "reference": clip["text"],
        "hypothesis": hypothesis,
        "tags": clip.get("tags") or {},
        "substitutions": counts.substitutions,
        "deletions": counts.deletions,
        "insertions": counts.insertions,
        "ref_words": counts.ref_words,
        "char_errors": counts.char_errors,
        "ref_chars": counts.ref_chars,
    }
    if chunks > 1:  # transcribed long-form, in this many pieces
        row["chunks"] = chunks
    return row


def write_report(result: EvalResult, model: str, path: str | Path) -> Path:
    """The report as JSON: model, overall and per-group scores, and every utterance."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": model,
        **result.report.to_dict(),
        "failed_clips": [
            {"source_path": c["source_path"], "error": str(e)} for c, e in result.failures
        ],
        "utterances": result.utterances,
    }
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
    return path
