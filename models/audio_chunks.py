"""Loading clips' audio a chunk at a time, so memory stays flat on large batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

AudioLoader = Callable[[str], np.ndarray]


def iter_audio_chunks(
    clips: Sequence[Mapping[str, Any]], load: AudioLoader, size: int = 64
) -> Iterator[tuple[list[Mapping[str, Any]], list[np.ndarray], list[tuple[Mapping, Exception]]]]:
    """Yield (clips, their 16 kHz audio, clips that failed to load with the error) per chunk.

    A file that decoded at ingestion may be gone or changed since: it is
    reported, never fatal, so one bad file cannot stop a long labeling run.
    """
    for start in range(0, len(clips), size):
        ok, audio, failed = [], [], []
        for clip in clips[start : start + size]:
            try:
                audio.append(load(clip["source_path"]))
                ok.append(clip)
            except Exception as exc:  # noqa: BLE001 - any decode failure is reported per clip
                failed.append((clip, exc))
        yield ok, audio, failed
