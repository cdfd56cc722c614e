"""Turning a batch's source entries into warehouse rows and quarantine items.

One function per media kind. Each probes every file, hashes it, drops
duplicates (within the batch and against hashes other batches already hold)
and returns rows plus quarantine items; it never raises on bad media, so a
partition always completes.

An audio transcript must be speakable in its clip: more than
`AudioLimits.max_words_per_second` words (or `max_chars_per_second`
non-space characters, for scripts written without spaces) per second is
quarantined as `implausible_transcript` with the rate. The rate is taken over
the clip's duration, but at least `min_rate_window_s`, so a one-word
transcript of a 0.2 s clip is not flagged.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "empty.wav").write_bytes(b"")
    >>> result = ingest_audio([SourceEntry("audio", d / "empty.wav")], AudioLimits())
    >>> result.rows, [q["reason"] for q in result.quarantined]
    ([], ['empty_file'])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from labeling.ingest.audio import check_audio, load_audio
from labeling.ingest.image import probe_image
from labeling.ingest.manifest import SourceEntry, tags_json
from labeling.ingest.media import MediaError, require_media_kind, sha256_file
from labeling.ingest.video import probe_video

Progress = Callable[[int], None]
Sink = Callable[[list[dict[str, Any]]], None]
CHUNK_ROWS = 1000


@dataclass(frozen=True)
class AudioLimits:
    """What audio is accepted."""

    max_seconds: float = 30.0  # Whisper's window; longer clips need segmenting first
    silence_dbfs: float = -60.0  # RMS below this is treated as silence
    max_words_per_second: float = 10.0  # fast speech is ~4-6 words/s
    max_chars_per_second: float = 60.0  # non-space characters; catches text without spaces
    min_rate_window_s: float = 1.0  # rates are over max(duration, this)


def check_transcript_rate(text: str | None, duration_s: float, limits: AudioLimits,
                          path: str) -> None:
    """Raise MediaError("implausible_transcript") when `text` is too long to be spoken in the clip.

    >>> check_transcript_rate("two words", 0.1, AudioLimits(), "a.wav")
    >>> try:
    ...     check_transcript_rate("word " * 100, 2.0, AudioLimits(), "a.wav")
    ... except MediaError as err:
    ...     print(err.reason, "|", err.detail)
    implausible_transcript | 100 words over 2.00 s is 50.0 words/s, over the 10 words/s limit
    """
    if not text:
        return
    window = max(duration_s, limits.min_rate_window_s)
    words = len(text.split())
    chars = sum(not c.isspace() for c in text)
    if words / window > limits.max_words_per_second:
        raise MediaError("implausible_transcript", path, f"{words} words over {duration_s:.2f} s "
                         f"is {words / window:.1f} words/s, over the "
                         f"{limits.max_words_per_second:g} words/s limit")
    if chars / window > limits.max_chars_per_second:
        raise MediaError("implausible_transcript", path, f"{chars} characters over "
                         f"{duration_s:.2f} s is {chars / window:.1f} characters/s, over the "
                         f"{limits.max_chars_per_second:g} characters/s limit")


@dataclass
class IngestResult:
    """Rows kept (collected here unless streamed to a sink), quarantine items, duplicates."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0
    ingested: int = 0

    def quarantine(self, entry: SourceEntry, reason: str, detail: str) -> None:
        self.quarantined.append(
            {"source_path": str(entry.path), "line": entry.line, "reason": reason, "detail": detail}
        )


def _dedupe(
    result: IngestResult, entry: SourceEntry, digest: str, seen: dict[str, str],
    known: Mapping[str, tuple[str, str]],
) -> bool:
    """True when `digest` was seen before; the duplicate is recorded, not lost."""
    if digest in seen:
        where = f"{seen[digest]} in this batch"
    elif digest in known:
        path, batch = known[digest]
        where = f"{path} in batch {batch!r}"
    else:
        return False
    result.duplicates += 1
    result.quarantine(entry, "duplicate", f"same sha256 {digest[:12]}… as {where}")
    return True


def _ingest(
    entries: Iterable[SourceEntry], known: Mapping[str, tuple[str, str]],
    probe: Callable[[SourceEntry], dict[str, Any]], id_column: str,
    progress: Progress | None, sink: Sink | None,
) -> IngestResult:
    """Probe, hash and dedupe each entry; rows go to `sink` in chunks (or into the result).

    Streaming keeps memory flat in the batch size: only hashes seen so far and
    quarantine items (few) are held for the whole batch.
    """
    result, seen, now, chunk = IngestResult(), {}, datetime.now(UTC), []
    emit = sink or result.rows.extend
    for done, entry in enumerate(entries, start=1):
        try:
            _check_kind(entry)
            row = probe(entry)  # before dedupe: a broken file is reported as broken
            digest = sha256_file(entry.path)
            if not _dedupe(result, entry, digest, seen, known):
                seen[digest] = str(entry.path)
                chunk.append(_base_row(entry, id_column, digest, now) | row)
        except MediaError as err:
            result.quarantine(entry, err.reason, str(err))
        if len(chunk) >= CHUNK_ROWS:
            result.ingested += len(chunk)
            emit(chunk)
            chunk = []
        if progress:
            progress(done)
    result.ingested += len(chunk)
    emit(chunk)
    return result


def _check_kind(entry: SourceEntry) -> None:
    """A manifest's `audio_filepath` must name an audio file (and so on for each kind)."""
    kind = require_media_kind(entry.path)
    if kind != entry.kind:
        raise MediaError("wrong_kind", entry.path, f"is a {kind} file but the manifest lists it "
                         f"as {entry.kind}; use the {kind}_filepath key")


def _base_row(entry: SourceEntry, id_column: str, digest: str, now: datetime) -> dict[str, Any]:
    return {
        id_column: digest,
        "source_path": str(entry.path),
        "text": entry.text,
        "tags": tags_json(entry.tags),
        "manifest_line": entry.line,
        "ingested_at": now,
    }


def ingest_audio(
    entries: Iterable[SourceEntry], limits: AudioLimits,
    known: Mapping[str, tuple[str, str]] | None = None, progress: Progress | None = None,
    sink: Sink | None = None,
) -> IngestResult:
    """Decode, measure and hash each audio entry; quarantine what fails `limits`.

    Quarantine reasons beyond `load_audio`'s: silent, too_long (`check_audio`)
    and implausible_transcript (`check_transcript_rate`).
    """

    def probe(entry: SourceEntry) -> dict[str, Any]:
        _, info = load_audio(entry.path, max_seconds=limits.max_seconds)
        check_audio(info, max_seconds=limits.max_seconds, silence_dbfs=limits.silence_dbfs)
        check_transcript_rate(entry.text, info.duration_s, limits, str(entry.path))
        return {
            "format": info.codec, "sample_rate": info.sample_rate, "channels": info.channels,
            "duration_s": info.duration_s, "rms_dbfs": info.rms_dbfs, "peak_dbfs": info.peak_dbfs,
        }

    return _ingest(entries, known or {}, probe, "clip_id", progress, sink)


def ingest_images(
    entries: Iterable[SourceEntry], known: Mapping[str, tuple[str, str]] | None = None,
    progress: Progress | None = None, sink: Sink | None = None,
) -> IngestResult:
    """Verify, measure and hash each image entry."""

    def probe(entry: SourceEntry) -> dict[str, Any]:
        info = probe_image(entry.path)
        return {"format": info.format, "mode": info.mode, "width": info.width,
                "height": info.height, "bytes": entry.path.stat().st_size}

    return _ingest(entries, known or {}, probe, "image_id", progress, sink)


def ingest_videos(
    entries: Iterable[SourceEntry], max_seconds: float | None = None,
    known: Mapping[str, tuple[str, str]] | None = None, progress: Progress | None = None,
    sink: Sink | None = None,
) -> IngestResult:
    """Decode, measure and hash each video entry."""

    def probe(entry: SourceEntry) -> dict[str, Any]:
        info = probe_video(entry.path, max_seconds=max_seconds)
        return {"codec": info.codec, "width": info.width, "height": info.height,
                "fps": info.fps, "frame_count": info.frame_count, "duration_s": info.duration_s,
                "has_audio": info.has_audio, "bytes": entry.path.stat().st_size}

    return _ingest(entries, known or {}, probe, "video_id", progress, sink)
