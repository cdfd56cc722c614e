"""Raw media for ingestion: kinds, files, content hashes, and the one error every probe raises.

Pure code: no Dagster, no torch. Every failure a bad file can cause surfaces as
a `MediaError` whose `reason` is a short code an asset can group and count
(quarantine tables, metadata), so one broken file never fails a partition.
Decoding and probing are per kind: :mod:`labeling.ingest.audio` (soundfile,
PyAV), :mod:`labeling.ingest.image` (Pillow), :mod:`labeling.ingest.video`
(PyAV); the checks they share (the file itself, a declared or running length
over the limit, opening a container with FFmpeg) are here.

MP4/M4A/MOV files (ISO base media: a chain of `[size][type]` boxes) are
checked for being cut short before FFmpeg opens them, because FFmpeg only
says "Invalid data" when the index (`moov` box) is missing, which is what an
interrupted copy of a file whose index is written last looks like. A box
declaring more bytes than the file holds, or no `moov` box at all, is
`truncated`; a file whose boxes are all whole but which FFmpeg still
cannot open stays `undecodable`.

Example:
    >>> media_kind("clip.FLAC"), media_kind("notes.txt")
    ('audio', None)
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Concatenate, Literal, ParamSpec, TypeVar

import av

StrPath = str | os.PathLike[str]
MediaKind = Literal["audio", "image", "video"]

AUDIO_EXTS = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a"})
IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
VIDEO_EXTS = frozenset({".mp4", ".mkv", ".webm", ".mov", ".avi"})

# --- errors ---------------------------------------------------------------------------------

Reason = Literal[
    "missing", "not_a_file", "unreadable", "empty_file", "unknown_extension", "undecodable",
    "truncated", "empty_audio", "no_audio_stream", "no_video_stream", "silent", "too_long",
    "too_large", "invalid_samples", "too_many_channels", "implausible_transcript",
    "segment_of_recording", "bad_segment", "no_speech",
]

_HINTS: dict[str, str] = {
    "missing": "check the path, or re-sync the media store",
    "not_a_file": "point at a file, not a folder or device",
    "unreadable": "check the file's permissions",
    "empty_file": "re-export or re-download it",
    "unknown_extension": "convert it to a supported format or remove it from the batch",
    "undecodable": "no decoder here accepts these bytes; re-export or re-download it",
    "truncated": "the file is cut short (interrupted copy or download?); fetch it again",
    "empty_audio": "it holds no audio samples; re-export it or drop it",
    "no_audio_stream": "the container has no audio track; extract the audio or drop it",
    "no_video_stream": "the container has no video track; ingest it as audio or drop it",
    "silent": "check the recording's input gain, or drop it",
    "too_long": "cut it into clips: `rlfoundry ingest PATH --batch B --segment vad` cuts "
                "audio at pauses in its speech, or list its segments (offset/duration) in "
                "the manifest",
    "too_large": "downscale it before ingesting",
    "invalid_samples": "the float samples hold NaN/infinity (a broken export); re-export it",
    "too_many_channels": "the header's channel count is corrupt or the file is not a "
                         "recording; re-export it with at most 32 channels",
    "implausible_transcript": "the transcript cannot be spoken in the clip's length "
                              "(wrong file paired with it?); fix the pairing",
    "segment_of_recording": "video segments are not ingested as clips yet: cut each into "
                            "its own file, or list the whole recording",
    "bad_segment": "the segment's times do not fit its recording; fix its offset/duration "
                   "(or start/end) in the source",
    "no_speech": "nothing to cut into clips; if it does hold speech, list its segments "
                 "(offset/duration) in the manifest",
}


class MediaError(Exception):
    """A media file that cannot be ingested.

    `reason` is a short machine-friendly code (see `Reason`); `str(err)` names
    the file, what is wrong and what to do about it. Picklable, so it survives
    a trip between worker processes.
    """

    def __init__(self, reason: Reason, path: StrPath, detail: str) -> None:
        self.reason: str = reason
        self.path = str(path)
        self.detail = detail
        hint = _HINTS.get(reason, "")
        super().__init__(f"{self.path}: {detail}" + (f"; {hint}." if hint else ""))

    def __reduce__(self) -> tuple[type[MediaError], tuple[str, str, str]]:
        return (type(self), (self.reason, self.path, self.detail))


_P = ParamSpec("_P")
_R = TypeVar("_R")
_DETAIL_MAX = 300  # characters of a decoder's message kept in a quarantine detail


def media_probe(probe: Callable[Concatenate[StrPath, _P], _R],
                ) -> Callable[Concatenate[StrPath, _P], _R]:
    """Make `probe(path, ...)` raise only MediaError, whatever its decoders do with hostile bytes.

    The one boundary between decoders and ingestion: every per-kind entry point
    (`load_audio`, `probe_image`, `probe_video`) is wrapped with it. A
    MediaError passes through unchanged; any other `Exception` a decoder lets
    out on a malformed file (soundfile/PyAV/Pillow errors, AttributeError on a
    codec FFmpeg has no decoder for, ValueError, struct.error, OverflowError,
    MemoryError from a bounded decode, ...) becomes MediaError("undecodable")
    whose detail reads ``undecodable: <ExceptionType>: <message>``, so the
    file is quarantined and the rest of the batch lands. KeyboardInterrupt and
    SystemExit are not `Exception`s and still stop the run.

    Example:
        >>> @media_probe
        ... def probe(path):
        ...     return None.sample_rate
        >>> try:
        ...     probe("x.wav")
        ... except MediaError as err:
        ...     print(err.reason, "|", err.detail)
        undecodable | undecodable: AttributeError: 'NoneType' object has no attribute 'sample_rate'
    """

    @functools.wraps(probe)
    def guarded(path: StrPath, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return probe(path, *args, **kwargs)
        except MediaError:
            raise
        except Exception as err:  # noqa: BLE001 - the boundary: any decoder failure is data
            raise undecodable(path, err) from err

    return guarded


def undecodable(path: StrPath, err: BaseException) -> MediaError:
    """MediaError("undecodable") naming the exception a decoder raised on `path`."""
    message = " ".join(str(err).split()) or "(no message)"
    if len(message) > _DETAIL_MAX:
        message = message[: _DETAIL_MAX - 1] + "…"
    return MediaError("undecodable", path, f"undecodable: {type(err).__name__}: {message}")


# --- kinds, files, hashes -------------------------------------------------------------------


def media_kind(path: StrPath) -> MediaKind | None:
    """"audio", "image" or "video" from the file's extension (case-insensitive), else None."""
    ext = Path(path).suffix.lower()
    if ext in AUDIO_EXTS:
        return "audio"
    if ext in IMAGE_EXTS:
        return "image"
    if ext in VIDEO_EXTS:
        return "video"
    return None


def require_media_kind(path: StrPath) -> MediaKind:
    """Like `media_kind`, but an unsupported extension raises MediaError("unknown_extension")."""
    kind = media_kind(path)
    if kind is None:
        ext = Path(path).suffix or "(none)"
        raise MediaError("unknown_extension", path,
                         f"extension {ext!r} is not a known audio, image or video format")
    return kind


def check_file(path: StrPath, *, allow_empty: bool = False) -> int:
    """Size in bytes of a readable regular file; a clear MediaError otherwise.

    Checked before any decoder runs, because decoders report these cases badly
    (libsndfile calls random bytes named .mp3 "not a regular file").
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise MediaError("missing", path, "no such file") from None
    except OSError as err:
        raise MediaError("unreadable", path, f"cannot stat: {err.strerror or err}") from None
    if Path(path).is_dir():
        raise MediaError("not_a_file", path, "is a directory, not a media file")
    if not Path(path).is_file():
        raise MediaError("not_a_file", path, "is not a regular file (a device, pipe or socket)")
    if not os.access(path, os.R_OK):
        raise MediaError("unreadable", path, "permission denied")
    if st.st_size == 0 and not allow_empty:
        raise MediaError("empty_file", path, "file is 0 bytes")
    return st.st_size


def sha256_file(path: StrPath, chunk: int = 1 << 20) -> str:
    """Hex sha256 of the file's bytes, read `chunk` bytes at a time (constant memory).

    The content hash is the media's identity in the warehouse (dedupe, lineage).
    An empty file hashes fine; missing/unreadable ones raise MediaError.
    """
    check_file(path, allow_empty=True)
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(chunk):
                digest.update(block)
    except OSError as err:
        raise MediaError("unreadable", path, f"read failed: {err}") from None
    return digest.hexdigest()


# --- checks the decoders share --------------------------------------------------------------


def check_declared_length(path: StrPath, declared_s: float | None,
                          max_seconds: float | None) -> None:
    """Reject a file whose header already says it is too long, before decoding it."""
    if max_seconds is not None and declared_s is not None and declared_s > max_seconds:
        raise MediaError("too_long", path, f"declares {declared_s:.2f} s, over the "
                         f"{max_seconds:g} s limit")


def check_running_length(path: StrPath, decoded_s: float, max_seconds: float | None) -> None:
    """Stop decoding as soon as the limit is passed (headers can understate length)."""
    if max_seconds is not None and decoded_s > max_seconds:
        raise MediaError("too_long", path, f"longer than the {max_seconds:g} s limit "
                         f"(stopped decoding at {decoded_s:.2f} s)")


_BMFF_FIRST = frozenset({b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"styp"})
_BMFF_MAX_BOXES = 100_000  # top-level boxes walked before giving up (never reached by real files)


def isobmff_truncation(path: StrPath) -> str | None:
    """Why an ISO base media file (MP4, M4A, MOV) looks cut short; None if it does not
    (or is not one: its first box is not a known top-level box).

    Walks the top-level boxes (a few seeks) until both the index (`moov`) and the
    media data (`mdat`) have been passed whole: a box reaching past the end of the
    file before that, or no `moov` box (every MP4 has one), means the file ends
    early. Bytes after both (a trailing box, padding) are not judged.
    """
    size = os.path.getsize(path)
    seen: set[bytes] = set()
    pos = boxes = 0
    with open(path, "rb") as f:
        while pos < size and not {b"moov", b"mdat"} <= seen:  # past them: trailing extras
            f.seek(pos)
            head = f.read(16)
            box_size, box_type = struct.unpack(">I4s", head[:8]) if len(head) >= 8 else (0, b"")
            if not seen and box_type not in _BMFF_FIRST:
                return None
            if len(head) < 8 or (box_size == 1 and len(head) < 16):
                return f"the file ends inside a box header at byte {pos} of {size}"
            if box_size == 1:
                box_size = struct.unpack(">Q", head[8:16])[0]
            elif box_size == 0:  # "to the end of the file"
                box_size = size - pos
            if box_size < 8:
                return None  # corrupt, not cut short
            seen.add(box_type)
            if pos + box_size > size:
                name = repr(box_type.decode("latin-1")) + (
                    " (the container's index)" if box_type == b"moov" else "")
                return (f"its {name} box declares {box_size} bytes from byte {pos}, but only "
                        f"{size - pos} are present (the data ends before the declared length)")
            pos += box_size
            boxes += 1
            if boxes > _BMFF_MAX_BOXES:
                return None
    if b"moov" not in seen:
        return "it has no 'moov' box (the container's index is missing)"
    return None


def open_av(path: StrPath) -> av.container.InputContainer:
    """Open for reading with PyAV; a file FFmpeg cannot parse is "undecodable".

    An MP4/M4A/MOV cut short is "truncated" (see `isobmff_truncation`), checked first.
    """
    try:
        problem = isobmff_truncation(path)
    except OSError as err:
        raise MediaError("unreadable", path, f"read failed: {err}") from None
    if problem:
        raise MediaError("truncated", path, f"appears cut short: {problem}")
    try:
        return av.open(os.fspath(path), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, ValueError, OSError) as err:
        raise MediaError("undecodable", path, f"FFmpeg cannot open it: {err}") from None


def declared_seconds(container: av.container.InputContainer, stream: av.stream.Stream,
                     ) -> float | None:
    """The stream's declared length in seconds, else the container's, else None."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None
