"""Audio decoding for ingestion: any supported file to mono float32 at one rate, with its facts.

Audio is decoded with soundfile (libsndfile: wav, flac, ogg, mp3) and, for what
libsndfile cannot open (m4a/aac, opus, audio inside video containers), with
PyAV (FFmpeg). Either way it is downmixed to mono, resampled with soxr to one
rate and returned as float32 in [-1, 1], block by block so memory stays near
the size of the output.

Truncation is detected where the file says how long it should be: a WAV's
`data` chunk size, a decoder's declared length (an MP3 Xing header, an MP4
sample table, a Matroska duration) against what actually decoded. libsndfile
silently clamps a cut WAV to the bytes present, so the RIFF header is read
directly for that case.

Invalid numbers are never patched into audio. Float formats can carry NaN and
±inf samples; every decoded sample is checked (before downmixing, so one bad
channel counts) and a file holding any is quarantined as `invalid_samples`
with how many of how many samples were bad. It is not clipped to full scale,
reported `silent` or zeroed. The mono mix is computed in float64 so finite
but huge float samples cannot overflow into inf.

Headers that declare what no real recording is are refused before decoding:
more than `MAX_CHANNELS` channels is `too_many_channels` (a corrupt channel
count otherwise reinterprets the data as a garbage clip), and 64-bit
*integer* PCM (FFmpeg's s64, which no recorder writes; a bit-depth field
rewritten to 64 decodes 16-bit data as noise) is `undecodable`. 64-bit float
("double") WAV/FLAC is a real format and is accepted.

Segments: a path with a media fragment, `rec.wav#t=3.5,7.25` (see
:mod:`labeling.ingest.spans`), decodes just that span of the file (soundfile
seeks to it; PyAV seeks, then trims by timestamp), and `AudioInfo` then
describes the span (its duration and levels). A span that ends before it
starts, starts past the end of the recording, or ends more than
`spans.SPAN_SLACK_S` after it is `bad_segment`; `max_seconds` applies to the span.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np
import soundfile as sf
import soxr

from labeling.ingest.media import (
    MediaError,
    StrPath,
    check_declared_length,
    check_file,
    check_running_length,
    declared_seconds,
    media_probe,
    open_av,
)
from labeling.ingest.spans import Window, split_span, window_frames

# Extensions libsndfile decodes well; everything else goes straight to PyAV.
_SOUNDFILE_EXTS = frozenset({".wav", ".flac", ".ogg", ".mp3"})

DBFS_FLOOR = -120.0  # reported level of digital silence instead of -inf
_BLOCK_FRAMES = 1 << 16  # soundfile read size (frames): bounds transient memory
MAX_CHANNELS = 32  # more declared channels than this: a corrupt header, not a recording
_INT64_FORMATS = frozenset({"s64", "s64p"})  # FFmpeg sample formats refused (see docstring)
_PREROLL_S = 0.5  # decoded and dropped before a segment after a PyAV seek
@dataclass(frozen=True)
class AudioInfo:
    """What was decoded. Levels are of the returned mono, resampled signal."""

    sample_rate: int  # of the source
    channels: int  # of the source
    duration_s: float  # of the source: decoded frames / source rate
    codec: str  # "container/codec", lower case, e.g. "wav/pcm_16", "mov/aac", "ogg/opus"
    rms_dbfs: float  # DBFS_FLOOR for digital silence
    peak_dbfs: float  # DBFS_FLOOR for digital silence
    decoder: Literal["soundfile", "pyav"] = "soundfile"
    path: str = ""  # the decoded file, so later checks can name it


def _dbfs(value: float) -> float:
    """Level in dBFS, floored at DBFS_FLOOR so silence stays a finite number."""
    if value <= 0.0 or not math.isfinite(value):
        return DBFS_FLOOR
    return max(DBFS_FLOOR, 20.0 * math.log10(value))


def _is_short(declared_s: float | None, decoded_s: float) -> bool:
    """Whether decoding stopped clearly before the length the file declares.

    Lossy codecs legitimately differ from their headers by encoder delay and
    padding (tens of ms) and libsndfile estimates the length of an MP3 without
    a Xing header, so a shortfall counts only past 100 ms and 2 %.
    """
    if declared_s is None or declared_s <= 0:
        return False
    return declared_s - decoded_s > max(0.1, 0.02 * declared_s)


class _MonoSink:
    """Collects mono blocks at the source rate, resampling them to `target_sr` as they come."""

    def __init__(self, source_sr: int, target_sr: int) -> None:
        self.source_frames = 0
        self.samples = 0  # source samples seen, all channels
        self.invalid = 0  # of them NaN or ±inf
        self._parts: list[np.ndarray] = []
        self._stream = (
            None if source_sr == target_sr
            else soxr.ResampleStream(source_sr, target_sr, 1, dtype="float32", quality="HQ")
        )

    def push_block(self, block: np.ndarray, channel_axis: int) -> None:
        """Count non-finite samples of a multichannel block, then push its channel mean."""
        self.samples += block.size
        self.invalid += int(block.size - np.count_nonzero(np.isfinite(block)))
        with np.errstate(invalid="ignore", over="ignore"):  # counted above, refused in _finish
            self.push(block.mean(axis=channel_axis, dtype=np.float64))

    def push(self, mono: np.ndarray) -> None:
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        self.source_frames += len(mono)
        self._parts.append(mono if self._stream is None else self._stream.resample_chunk(mono))

    def finish(self) -> np.ndarray:
        if self._stream is not None:
            self._parts.append(self._stream.resample_chunk(np.zeros(0, np.float32), last=True))
        out = np.concatenate(self._parts) if self._parts else np.zeros(0, np.float32)
        self._parts = []
        return np.clip(out, -1.0, 1.0, out=out)


def _wav_truncation(path: StrPath, size: int) -> str | None:
    """Why a RIFF/WAVE file is cut short, or None if it is not (or is not a WAV).

    libsndfile clamps a WAV whose `data` chunk declares more bytes than the file
    holds and returns the shorter audio without complaint, so the header is
    checked here. Sizes 0 and 0xFFFFFFFF are streaming placeholders: unknown.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or (len(head) == 12 and head[8:12] != b"WAVE"):
            return None
        if len(head) < 12:
            return f"RIFF header cut short ({size} bytes)"
        riff_end = struct.unpack("<I", head[4:8])[0] + 8
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                present = size - pos - 8
                if chunk_size not in (0, 0xFFFFFFFF) and chunk_size > present:
                    return f"data chunk declares {chunk_size} bytes, only {present} present"
                return None
            pos += 8 + chunk_size + (chunk_size & 1)
    if riff_end - 8 not in (0, 0xFFFFFFFF) and riff_end > size:
        return f"RIFF header declares {riff_end} bytes, file has {size}; no data chunk"
    return None


def _decode_soundfile(path: StrPath, target_sr: int, max_seconds: float | None,
                      window: Window | None = None, shown: StrPath | None = None,
                      ) -> tuple[np.ndarray, AudioInfo] | None:
    """Decode with libsndfile (only `window` of the file, when given; errors name `shown`);
    None if it cannot open the file (PyAV gets a try)."""
    shown = path if shown is None else shown
    try:
        f = sf.SoundFile(os.fspath(path))
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError):
        return None
    with f:
        sr, channels, declared = f.samplerate, f.channels, f.frames
        _check_channels(shown, channels)
        first, last = (0, None) if window is None else window.frames(sr)
        if window is None:
            check_declared_length(shown, declared / sr if sr else None, max_seconds)
        else:
            window.check(shown, declared / sr if sr else None, max_seconds)
            f.seek(first)
        sink = _MonoSink(sr, target_sr)
        try:
            # Not f.blocks(): it ignores short reads and, on a file shorter than its
            # header says (a cut MP3 with a Xing header), yields stale buffer contents.
            while (want := _BLOCK_FRAMES if last is None else
                   min(_BLOCK_FRAMES, last - first - sink.source_frames)) > 0 \
                    and len(block := f.read(want, dtype="float32", always_2d=True)):
                sink.push_block(block, channel_axis=1)
                check_running_length(shown, sink.source_frames / sr, max_seconds)
        except (sf.SoundFileError, RuntimeError, ValueError) as err:
            raise MediaError("truncated", shown, f"decoding stopped after "
                             f"{sink.source_frames / sr:.3f} s: {err}") from None
        codec = f"{f.format}/{f.subtype}".lower()
    decoded_s = sink.source_frames / sr
    if window is not None:
        reached = (first + sink.source_frames) / sr
        window.check_end(shown, reached, _is_short(declared / sr, reached))
        if sink.source_frames == 0:
            raise MediaError("empty_audio", shown, "decoded 0 samples")
        return _finish(shown, sink, sr, channels, codec, "soundfile")
    if _is_short(declared / sr, decoded_s):
        raise MediaError("truncated", path, f"header declares {declared / sr:.3f} s, "
                         f"only {decoded_s:.3f} s decoded")
    if sink.source_frames == 0:
        raise MediaError("empty_audio", path, "decoded 0 samples")
    return _finish(path, sink, sr, channels, codec, "soundfile")


def _decode_pyav(path: StrPath, target_sr: int, max_seconds: float | None,
                 soundfile_rejected: bool, window: Window | None = None,
                 shown: StrPath | None = None) -> tuple[np.ndarray, AudioInfo]:
    """Decode the first audio stream with PyAV (FFmpeg), frame by frame (only `window` of
    it, when given: a seek, then frames trimmed by their timestamps; errors name `shown`)."""
    shown = path if shown is None else shown
    container = open_av(path)
    with container:
        if not container.streams.audio:
            raise MediaError("no_audio_stream", shown, "no audio stream in the container")
        stream = container.streams.audio[0]
        cc = stream.codec_context
        sr, channels = int(cc.sample_rate), int(cc.layout.nb_channels)
        if sr <= 0:
            raise MediaError("undecodable", shown, "audio stream has no sample rate")
        _check_channels(shown, channels)
        if cc.format is not None and cc.format.name in _INT64_FORMATS:
            raise MediaError("undecodable", shown, f"declares 64-bit integer samples "
                             f"({cc.name}), which no recorder writes: a corrupt header")
        declared_s = declared_seconds(container, stream)
        first, last, pos = 0, None, 0  # pos: frames of the file before the next block
        if window is None:
            check_declared_length(shown, declared_s, max_seconds)
        else:
            window.check(shown, declared_s, max_seconds)
            first, last = window.frames(sr)
            pos = _seek(container, stream, window.start)
        # Convert only the sample format (to planar float); channels are averaged below.
        to_float = av.AudioResampler(format="fltp", rate=sr)
        sink = _MonoSink(sr, target_sr)

        def push(converted: av.AudioFrame) -> None:
            nonlocal pos
            block = converted.to_ndarray()
            part = window_frames(block, pos, first, last)
            if part.shape[1]:
                sink.push_block(part, channel_axis=0)
            pos += block.shape[1]

        try:
            for frame in container.decode(stream):
                if pos is None:  # after a seek: where decoding resumed
                    pos = _frame_position(frame, sr, shown)
                for converted in to_float.resample(frame):
                    push(converted)
                check_running_length(shown, sink.source_frames / sr, max_seconds)
                if last is not None and pos >= last:
                    break
            for converted in to_float.resample(None):
                push(converted)
        except (av.FFmpegError, ValueError, RuntimeError) as err:
            raise MediaError("truncated", shown, f"decoding stopped after "
                             f"{sink.source_frames / sr:.3f} s: {err}") from None
        codec = f"{container.format.name.split(',')[0]}/{cc.name}".lower()
    decoded_s = sink.source_frames / sr
    if window is not None:
        reached = (pos or 0) / sr
        window.check_end(shown, reached, _is_short(declared_s, reached))
        if sink.source_frames == 0:
            raise MediaError("empty_audio", shown, "decoded 0 samples")
        return _finish(shown, sink, sr, channels, codec, "pyav")
    if _is_short(declared_s, decoded_s):
        raise MediaError("truncated", path, f"container declares {declared_s:.3f} s, "
                         f"only {decoded_s:.3f} s decoded")
    if sink.source_frames == 0:
        if soundfile_rejected:
            raise MediaError("undecodable", path, "no decoder could read audio from it")
        raise MediaError("empty_audio", path, "decoded 0 samples")
    return _finish(path, sink, sr, channels, codec, "pyav")


def _seek(container: av.container.InputContainer, stream: av.stream.Stream, start: float,
          ) -> int | None:
    """Seek to a frame `_PREROLL_S` before `start` seconds (lapped codecs such as AAC, MP3 and
    Opus decode the first frames after a seek wrongly): None, for the next frame's timestamp
    to say where decoding resumed; 0 when nothing was skipped."""
    if start <= _PREROLL_S or not stream.time_base:
        return 0
    try:
        container.seek(int((start - _PREROLL_S) / stream.time_base), stream=stream)
    except (av.FFmpegError, ValueError, OverflowError):
        container.seek(0, stream=stream)  # unseekable: decode from the start, trim
        return 0
    return None


def _frame_position(frame: av.AudioFrame, sr: int, path: StrPath) -> int:
    """The file frame a decoded frame starts at, from its timestamp."""
    if frame.pts is None or not frame.time_base:
        raise MediaError("undecodable", path, "the stream has no timestamps, so the segment "
                         "cannot be located after a seek")
    return max(round(float(frame.pts * frame.time_base) * sr), 0)


def _check_channels(path: StrPath, channels: int) -> None:
    """Refuse a header declaring more than MAX_CHANNELS channels."""
    if channels > MAX_CHANNELS:
        raise MediaError("too_many_channels", path, f"header declares {channels} channels "
                         f"(at most {MAX_CHANNELS} accepted)")


def _finish(path: StrPath, sink: _MonoSink, sr: int, channels: int, codec: str,
            decoder: Literal["soundfile", "pyav"]) -> tuple[np.ndarray, AudioInfo]:
    """Resampled mono signal and its AudioInfo; MediaError("invalid_samples") on NaN/±inf."""
    if sink.invalid:
        raise MediaError("invalid_samples", path, f"{sink.invalid} of {sink.samples} decoded "
                         f"samples are NaN or infinite ({sink.invalid / sink.samples:.2%})")
    source_frames = sink.source_frames
    audio = sink.finish()
    if not np.isfinite(audio).all():  # not expected after the check above; never patched
        raise MediaError("invalid_samples", path, "resampled signal is not finite")
    if len(audio):
        rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
        peak = float(np.max(np.abs(audio)))
    else:
        rms = peak = 0.0
    info = AudioInfo(sample_rate=sr, channels=channels, duration_s=source_frames / sr,
                     codec=codec, rms_dbfs=_dbfs(rms), peak_dbfs=_dbfs(peak), decoder=decoder,
                     path=os.fspath(path))
    return audio, info


@media_probe
def load_audio(path: StrPath, target_sr: int = 16000, *, max_seconds: float | None = None,
               ) -> tuple[np.ndarray, AudioInfo]:
    """Decode `path` to mono float32 in [-1, 1] at `target_sr`, with facts about the source.

    soundfile first for wav/flac/ogg/mp3, PyAV for the rest and for whatever
    libsndfile cannot open. Channels are averaged; resampling is soxr HQ,
    streamed block by block. `max_seconds`, when given, stops a long file
    early (from its header, or as soon as decoding passes the limit) instead of
    decoding it all only for `check_audio` to reject it.

    A path with a media fragment (`rec.wav#t=3.5,7.25`) decodes just that span
    (module docstring); errors then name the path with its fragment.

    Raises MediaError: missing, not_a_file, unreadable, empty_file, truncated,
    undecodable (also whatever else a decoder raises on hostile bytes, see
    `media_probe`), no_audio_stream, empty_audio, too_long, too_many_channels,
    invalid_samples (any NaN or ±inf sample), bad_segment.
    """
    file, start, end = split_span(path)
    window = None if start is None else Window(start, end)
    size = check_file(file)
    if problem := _wav_truncation(file, size):
        raise MediaError("truncated", path, problem)
    soundfile_rejected = False
    if Path(file).suffix.lower() in _SOUNDFILE_EXTS:
        decoded = _decode_soundfile(file, target_sr, max_seconds, window, path)
        if decoded is not None:
            return decoded
        soundfile_rejected = True
    return _decode_pyav(file, target_sr, max_seconds, soundfile_rejected, window, path)


def audio_seconds(path: StrPath) -> float | None:
    """The length a file's header declares, in seconds, without decoding it; None when it
    cannot be read or declares none (the decoders then say why)."""
    try:
        if Path(path).suffix.lower() in _SOUNDFILE_EXTS:
            try:
                info = sf.info(os.fspath(path))
                return info.frames / info.samplerate if info.samplerate else None
            except (sf.SoundFileError, RuntimeError, TypeError, ValueError):
                pass  # PyAV gets a try
        with open_av(path) as container:
            streams = container.streams.audio
            return declared_seconds(container, streams[0]) if streams else None
    except (MediaError, OSError, ValueError, av.FFmpegError):
        return None


def load_audio_16k(path: StrPath) -> np.ndarray:
    """Just the 16 kHz mono samples of `path` (what the ASR model takes)."""
    return load_audio(path)[0]


def check_audio(info: AudioInfo, *, max_seconds: float, silence_dbfs: float = -60.0,
                path: StrPath | None = None) -> None:
    """Raise MediaError "too_long" or "silent" when a decoded clip is unusable for training.

    Silence is judged on RMS (not peak), so a silent take with one click still
    counts as silent. The message names `path`, else `info.path`.
    """
    where = path if path is not None else (info.path or "(audio)")
    if info.duration_s > max_seconds:
        raise MediaError("too_long", where, f"{info.duration_s:.2f} s is over the "
                         f"{max_seconds:g} s limit")
    if info.rms_dbfs < silence_dbfs:
        raise MediaError("silent", where, f"RMS {info.rms_dbfs:.1f} dBFS is below the "
                         f"{silence_dbfs:g} dBFS silence threshold")
