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

from models.audio_chunks import AudioLoader, iter_audio_chunks
from models.whisper.asr import WhisperASR
from models.whisper.inputs import check_clip
from training.eval.metrics import error_counts
from training.eval.report import EvalReport, grouped_scores


@dataclass
class EvalResult:
    """The grouped report, one row per utterance, and the clips that could not be loaded."""

    report: EvalReport
    utterances: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[Mapping[str, Any], Exception]] = field(default_factory=list)


def evaluate_clips(
    asr: WhisperASR, clips: Sequence[Mapping[str, Any]], load: AudioLoader,
    group_by: Sequence[str] = (), *, batch_size: int = 8, chunk_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Greedy-transcribe every clip that has a reference and score it (WER/CER, per group)."""
    labeled = [c for c in clips if c.get("text")]
    utterances, failures, done = [], [], 0
    for chunk, audio, failed in iter_audio_chunks(labeled, load, chunk_size, check=check_clip):
        failures += failed
        inner = (lambda d, _t, base=done: progress(base + d, len(labeled))) if progress else None
        texts = asr.transcribe(audio, batch_size=batch_size, progress=inner) if audio else []
        utterances += [_utterance(clip, hyp) for clip, hyp in zip(chunk, texts, strict=True)]
        done += len(chunk) + len(failed)
        if progress:
            progress(done, len(labeled))
    report = grouped_scores(utterances, group_by)
    return EvalResult(report, utterances, failures)


def _utterance(clip: Mapping[str, Any], hypothesis: str) -> dict[str, Any]:
    counts = error_counts(clip["text"], hypothesis)
    return {
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
