"""Speech regions (the `region_detector` role) with silero-vad.

The PyPI package `silero-vad` ships its weights (MIT), so this role runs
offline with real weights. The TorchScript model is loaded straight from the
package's data folder (no torchaudio: audio comes in as arrays, read with
soundfile by the caller). Clips are padded into one batch and run through the
model's `audio_forward` (one speech probability per 32 ms window); silero's
own `get_speech_timestamps_from_probs` turns probabilities into regions, and a
region's score is its mean speech probability. Clips at other rates are
resampled to 16 kHz.

Importing `silero_vad` sets torch to one thread; the thread count is put back.

Example:
    >>> import numpy as np
    >>> vad = SileroVAD.from_pretrained()
    >>> vad.regions([np.zeros(16_000, dtype=np.float32)])
    [[]]
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from models.roles import Region

BUNDLED_VAD = "bundled:silero-vad"
SAMPLE_RATE = 16_000
_WINDOW = 512  # samples per probability at 16 kHz


def bundled_vad_path() -> Path:
    """The TorchScript silero-vad model inside the installed `silero-vad` package."""
    spec = importlib.util.find_spec("silero_vad")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "The bundled speech-region model comes from the PyPI package 'silero-vad'; "
            "install it with `pip install -c constraints.txt silero-vad`."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.jit"


def _timestamps_from_probs():
    threads = torch.get_num_threads()
    try:
        from silero_vad.utils_vad import get_speech_timestamps_from_probs
    finally:
        torch.set_num_threads(threads)  # silero_vad's import sets it to 1
    return get_speech_timestamps_from_probs


class SileroVAD:
    """Speech regions of clips: silero-vad v6 probabilities, silero's own hysteresis."""

    def __init__(
        self, model, *, name: str, threshold: float = 0.5, min_speech_ms: int = 250,
        min_silence_ms: int = 100, speech_pad_ms: int = 30, batch_size: int = 16,
    ):
        self.model = model
        self.name = name
        self.threshold = threshold
        self.min_speech_ms = min_speech_ms
        self.min_silence_ms = min_silence_ms
        self.speech_pad_ms = speech_pad_ms
        self.batch_size = batch_size
        self._to_timestamps = _timestamps_from_probs()

    @classmethod
    def from_pretrained(cls, path: str = BUNDLED_VAD, *, device: str | None = None, **options):
        """`bundled:silero-vad`, a silero `.jit` file, or a folder holding `silero_vad.jit`.

        Runs on CPU unless `device` says otherwise (it is 2 MB and fast).
        """
        file = bundled_vad_path() if path == BUNDLED_VAD else Path(path).expanduser()
        if file.is_dir():
            file = file / "silero_vad.jit"
        if not file.is_file() or file.suffix != ".jit":
            raise FileNotFoundError(
                f"No silero-vad TorchScript model at {file}: pass '{BUNDLED_VAD}', a .jit file, "
                "or a folder with silero_vad.jit."
            )
        model = torch.jit.load(str(file), map_location=device or "cpu").eval()
        return cls(model, name=str(path), **options)

    def speech_probs(self, audios: Sequence[np.ndarray], sample_rate: int = SAMPLE_RATE):
        """Per clip, one speech probability per 32 ms window (a float32 array)."""
        clips = [_as_16k(a, sample_rate) for a in audios]
        probs: list[np.ndarray] = []
        for start in range(0, len(clips), self.batch_size):
            batch = clips[start : start + self.batch_size]
            longest = max([len(c) for c in batch] + [_WINDOW])  # silero refuses less
            padded = np.zeros((len(batch), longest), dtype=np.float32)
            for row, clip in enumerate(batch):
                padded[row, : len(clip)] = clip
            with torch.inference_mode():
                self.model.reset_states()
                out = self.model.audio_forward(torch.from_numpy(padded), SAMPLE_RATE).numpy()
            probs += [out[row, : -(-len(c) // _WINDOW)] for row, c in enumerate(batch)]
        return probs

    def regions(self, audios: Sequence[np.ndarray], *, sample_rate: int = SAMPLE_RATE):
        """Per clip, its speech regions in time order (label "speech"), seconds in the clip."""
        out: list[list[Region]] = []
        for clip_probs, audio in zip(self.speech_probs(audios, sample_rate), audios, strict=True):
            length = round(len(audio) * SAMPLE_RATE / sample_rate)
            stamps = self._to_timestamps(
                clip_probs.tolist(), sampling_rate=SAMPLE_RATE, threshold=self.threshold,
                min_speech_duration_ms=self.min_speech_ms,
                min_silence_duration_ms=self.min_silence_ms, speech_pad_ms=self.speech_pad_ms,
                audio_length_samples=length,
            )
            out.append([_region(s["start"], s["end"], clip_probs) for s in stamps])
        return out


def _region(start: int, end: int, probs: np.ndarray) -> Region:
    windows = probs[start // _WINDOW : max(start // _WINDOW + 1, -(-end // _WINDOW))]
    return Region(
        start_s=start / SAMPLE_RATE, end_s=end / SAMPLE_RATE, label="speech",
        score=float(windows.mean()),
    )


def _as_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono (1-D), got shape {audio.shape}")
    if sample_rate != SAMPLE_RATE:
        import soxr

        audio = soxr.resample(audio, sample_rate, SAMPLE_RATE).astype(np.float32)
    return audio
