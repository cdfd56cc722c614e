"""Loading clips' audio a chunk at a time, so memory stays flat on large batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

AudioLoader = Callable[[str], np.ndarray]


def iter_audio_chunks(
    clips: Sequence[Mapping[str, Any]], load: AudioLoader, size: int = 64,
    check: Callable[[np.ndarray], object] | None = None,
) -> Iterator[tuple[list[Mapping[str, Any]], list[np.ndarray], list[tuple[Mapping, Exception]]]]:
    """Yield (clips, their 16 kHz audio, clips that failed to load with the error) per chunk.

    A file that decoded at ingestion may be gone or changed since, or be longer than the
    model takes (`check` raises for audio the model cannot take): it is reported with its
    path, never fatal, so one bad or long file cannot stop a long labeling or eval run.
    """
    for start in range(0, len(clips), size):
        ok, audio, failed = [], [], []
        for clip in clips[start : start + size]:
            try:
                samples = load(clip["source_path"])
                if check is not None:
                    check(samples)
                audio.append(samples)
                ok.append(clip)
            except Exception as exc:  # noqa: BLE001 - any decode failure is reported per clip
                failed.append((clip, exc))
        yield ok, audio, failed
