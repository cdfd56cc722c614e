"""Builders of small media files and manifests for tests and examples.

Every test makes its data the same way, here, in milliseconds.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_tone(d / "a.wav", seconds=0.5).stat().st_size > 0
    True
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf


def write_tone(
    path: str | Path, *, seconds: float = 1.0, sample_rate: int = 16000, channels: int = 1,
    freq: float = 440.0, amplitude: float = 0.3, seed: int = 0,
) -> Path:
    """A tone with a little noise (so each seed gives different bytes), in the format of `path`."""
    path = Path(path)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    noise = np.random.default_rng(seed).normal(0, 0.01, t.shape)
    mono = amplitude * np.sin(2 * np.pi * freq * t) + noise
    data = np.stack([mono] * channels, axis=1) if channels > 1 else mono
    sf.write(path, data.astype(np.float32), sample_rate)
    return path


def write_silence(path: str | Path, *, seconds: float = 1.0, sample_rate: int = 16000) -> Path:
    sf.write(path, np.zeros(int(seconds * sample_rate), dtype=np.float32), sample_rate)
    return Path(path)


def write_image(path: str | Path, size: tuple[int, int] = (64, 48), color=(200, 30, 30)) -> Path:
    from PIL import Image

    Image.new("RGB", size, color).save(path)
    return Path(path)


def write_video(path: str | Path, *, frames: int = 10, fps: int = 10,
                size: tuple[int, int] = (64, 48)) -> Path:
    """A short H.264 video of a square moving left to right."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            img = np.zeros((size[1], size[0], 3), dtype=np.uint8)
            x = (i * 4) % (size[0] - 8)
            img[10:18, x : x + 8] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return Path(path)


def write_manifest(path: str | Path, records: Iterable[Mapping[str, Any] | bytes]) -> Path:
    """A JSONL manifest; a `bytes` record is written raw (to make broken lines)."""
    path = Path(path)
    with path.open("wb") as fh:
        for rec in records:
            fh.write(rec if isinstance(rec, bytes) else json.dumps(rec).encode())
            fh.write(b"\n")
    return path


def speech_like(seconds: float = 2.0, *, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A vowel-like signal: a 100-140 Hz pulse train through three formants, in 4 Hz syllables.

    Not speech, but silero-vad scores it as speech (about 0.9), where a pure
    tone scores about 0. Numpy only: each formant is a two-pole resonator
    applied by convolving with its (truncated) impulse response.

    Example:
        >>> x = speech_like(0.5)
        >>> x.dtype, x.shape, float(abs(x).max()) <= 0.31
        (dtype('float32'), (8000,), True)
    """
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    phase = np.cumsum((120 + 20 * np.sin(2 * np.pi * 0.5 * t)) / sample_rate)
    voiced = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
    k = np.arange(sample_rate // 20)  # 50 ms of each resonator's ringing
    for freq, bandwidth in [(700, 130), (1220, 70), (2600, 160)]:
        r, theta = np.exp(-np.pi * bandwidth / sample_rate), 2 * np.pi * freq / sample_rate
        ringing = (1 - r) * r**k * np.sin(theta * (k + 1)) / np.sin(theta)
        voiced = np.convolve(voiced, ringing)[:n]
    voiced *= 0.5 * (1 - np.cos(2 * np.pi * 4 * t))  # syllables
    noise = np.random.default_rng(seed).normal(0, 0.002, n)
    return (0.3 * voiced / max(np.abs(voiced).max(), 1e-9) + noise).clip(-1, 1).astype(np.float32)


def write_hf_cache(cache_dir: str | Path, repo_id: str, splits: Mapping[str, Any]) -> Path:
    """`splits` (split name → `datasets.Dataset`) laid out in the `datasets` cache at
    `cache_dir` as a download of hub dataset `repo_id` leaves it, so that offline
    `load_dataset(repo_id)` (with that cache) reads it: written by `datasets`' own Parquet
    builder into `<name>/default/0.0.0/local/` (`<name>-<split>.arrow`, `dataset_info.json`),
    then moved to `<namespace>___<name>/` as the hub's builder names it. Returns that folder.
    """
    import tempfile

    from datasets.packaged_modules.parquet.parquet import Parquet

    namespace, _, name = repo_id.rpartition("/")
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for split, dataset in splits.items():
            files[split] = str(Path(tmp) / f"{split}.parquet")
            dataset.to_parquet(files[split])
        builder = Parquet(cache_dir=str(cache_dir), dataset_name=name, config_id="default",
                          hash="local", data_files=files)
        builder.download_and_prepare()
    folder = Path(cache_dir) / builder.dataset_name
    if namespace:
        folder = folder.rename(folder.with_name(f"{namespace}___{builder.dataset_name}"))
    return folder
