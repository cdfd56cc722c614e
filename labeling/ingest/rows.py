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

Audio segments (policy): an entry that lists part of a recording (an
`offset` > 0, or a `duration` that stops more than `spans.SPAN_SLACK_S` short
of the file, by its header) is its own clip: its `source_path` is the file
with a media fragment, `rec.wav#t=START,END`, its `duration_s`, levels and
transcript-rate check are the span's, and its `clip_id` is the file's sha256
joined with the span (`labeling.ingest.spans`), so each segment of one
recording is a clip with its own text and the same segment listed twice is a
duplicate. An entry whose span covers the whole file is the file (plain
sha256), so a NeMo line's `duration` of the whole file changes nothing. The
length limit applies to the span: segments of a long recording are fine.

Video segments (policy): still refused as `segment_of_recording`, never
ingested as the whole file under the segment's caption. A line is a segment
when it has an `offset` > 0, or a `duration` shorter than the decoded file by
more than max(`SEGMENT_SLACK_S`, `SEGMENT_SLACK_FRACTION` of the file); a
declared duration that roughly matches is fine. This runs right after
decoding and before dedupe, so every segment line of one recording gets this
reason (not `duplicate`). A recording over the length limit is still
recognised as segmented when its line's offset or duration prove it.

Notes: what a source reader says about an entry without refusing it (e.g.
that the transcript was read from `sentence` because the line has no `text`)
is counted in `IngestResult.notes`, note by note, for the ingest report.

Duplicates (policy): a file whose sha256 an earlier entry of the batch (or
another batch, see `known`) already holds is dropped. When the dropped copy
carries a transcript and the kept one a different one (or none), the
transcript would be lost: it is quarantined as `duplicate_text_differs`,
quoting both and naming the kept file; otherwise it is a plain `duplicate`.
Known hashes without their text (2-tuples) can only give `duplicate`. Only
plain duplicates are counted in `IngestResult.duplicates`; a differing text
is a quarantine item that needs a person.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "empty.wav").write_bytes(b"")
    >>> result = ingest_audio([SourceEntry("audio", d / "empty.wav")], AudioLimits())
    >>> result.rows, [q["reason"] for q in result.quarantined]
    ([], ['empty_file'])
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from labeling.ingest.audio import audio_seconds, check_audio, load_audio
from labeling.ingest.image import probe_image
from labeling.ingest.manifest import SourceEntry, tags_json
from labeling.ingest.media import MediaError, require_media_kind, sha256_file
from labeling.ingest.spans import SPAN_SLACK_S, span_digest, with_span

if TYPE_CHECKING:
    from labeling.ingest.segment import Segmenter
from labeling.ingest.video import probe_video

Progress = Callable[[int], None]
Sink = Callable[[list[dict[str, Any]]], None]
# Hashes other batches hold: id -> (source_path, batch) or (source_path, batch, text).
Known = Mapping[str, tuple[Any, ...]]
CHUNK_ROWS = 1000
SEGMENT_SLACK_S = 0.5  # a declared duration this much (or the fraction) short is a segment
SEGMENT_SLACK_FRACTION = 0.1
_QUOTE_MAX = 60  # characters of a transcript quoted in a quarantine detail


class _Timed(Protocol):
    @property
    def duration_s(self) -> float: ...


_Info = TypeVar("_Info", bound=_Timed)


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


def audio_clip(entry: SourceEntry) -> str:
    """The clip an audio entry names: its file, or the span of it (a path with a media
    fragment) when the entry lists part of the file (module docstring).

    >>> from pathlib import Path
    >>> audio_clip(SourceEntry("audio", Path("/d/r.wav"), offset=3.0, duration=4.0))
    '/d/r.wav#t=3,7'
    >>> audio_clip(SourceEntry("audio", Path("/d/r.wav"), offset=2.5))
    '/d/r.wav#t=2.5'
    >>> audio_clip(SourceEntry("audio", Path("/d/r.wav")))
    '/d/r.wav'
    """
    if not entry.offset and entry.duration is None:
        return str(entry.path)
    start = entry.offset or 0.0
    end = None if entry.duration is None else start + entry.duration
    if start == 0 and end is not None:
        seconds = audio_seconds(entry.path)  # None: unknown, so the span is decoded as listed
        if seconds is not None and end >= seconds - SPAN_SLACK_S:
            return str(entry.path)
    return with_span(entry.path, start, end)


def whole_recording(entry: SourceEntry, max_seconds: float | None,
                    decode: Callable[[], _Info]) -> _Info:
    """`decode()`'s info for the entry's file; MediaError("segment_of_recording") when the
    entry lists only part of it (module docstring), even if the file is over `max_seconds`.

    >>> from types import SimpleNamespace as Info
    >>> from pathlib import Path
    >>> whole_recording(SourceEntry("audio", Path("r.wav"), duration=9.8), 30,
    ...                 lambda: Info(duration_s=10.0)).duration_s
    10.0
    >>> try:
    ...     whole_recording(SourceEntry("audio", Path("r.wav"), duration=4.0, line=2,
    ...                                 offset=3.0), 30, lambda: Info(duration_s=12.0))
    ... except MediaError as err:
    ...     print(err.reason, "|", err.detail.replace(" of a", "\\nof a"))
    segment_of_recording | manifest line 2 lists a segment (offset 3.0 s, duration 4.0 s)
    of a 12.0 s recording (cut it out with e.g. `sox r.wav seg.wav trim 3.0 4.0`)
    """
    try:
        info = decode()
    except MediaError as err:
        if err.reason == "too_long" and max_seconds is not None \
                and _segment_of_long(entry, max_seconds):
            raise _segment_error(entry, f"a recording over the {max_seconds:g} s limit") from None
        raise
    seconds = info.duration_s
    if entry.offset or (entry.duration is not None and seconds - entry.duration > max(
            SEGMENT_SLACK_S, SEGMENT_SLACK_FRACTION * seconds)):
        raise _segment_error(entry, f"a {_secs(seconds)} s recording")
    return info


def _segment_of_long(entry: SourceEntry, max_seconds: float) -> bool:
    """Whether the entry lists part of a file known only to be over `max_seconds`: it has
    an offset, or a duration short of the limit by more than the slack (so certainly
    short of the file by more than the slack)."""
    limit = min(max_seconds * (1 - SEGMENT_SLACK_FRACTION), max_seconds - SEGMENT_SLACK_S)
    return bool(entry.offset) or (entry.duration is not None and entry.duration < limit)


def _segment_error(entry: SourceEntry, of: str) -> MediaError:
    """MediaError("segment_of_recording") naming the line, the segment and how to cut it."""
    parts = [f"{name} {_secs(value)} s" for name, value in
             (("offset", entry.offset), ("duration", entry.duration)) if value is not None]
    trim = " ".join(_secs(v) for v in (entry.offset or 0.0, entry.duration) if v is not None)
    name = shlex.quote(entry.path.name)
    cut = (f"sox {name} seg.wav trim {trim}" if entry.kind == "audio" else
           f"ffmpeg -ss {_secs(entry.offset or 0.0)} -i {name}"
           + (f" -t {_secs(entry.duration)}" if entry.duration is not None else "")
           + f" seg{entry.path.suffix}")
    line = f"manifest line {entry.line}" if entry.line else "its manifest line"
    return MediaError("segment_of_recording", entry.path, f"{line} lists a segment "
                      f"({', '.join(parts)}) of {of} (cut it out with e.g. `{cut}`)")


def _secs(value: float) -> str:
    """Seconds with at least one and at most three decimals: 3 -> '3.0', 0.25 -> '0.25'.

    >>> _secs(3), _secs(0.25), _secs(12.3456)
    ('3.0', '0.25', '12.346')
    """
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


@dataclass
class IngestResult:
    """Rows kept (collected here unless streamed to a sink), quarantine items, duplicates."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0
    ingested: int = 0
    notes: Counter[str] = field(default_factory=Counter)  # reader's note -> entries it concerns

    def quarantine(self, entry: SourceEntry, reason: str, detail: str,
                   source: str | None = None) -> None:
        """Record why `entry` (or its segment `source`, when given) was not ingested."""
        self.quarantined.append({"source_path": source or str(entry.path), "line": entry.line,
                                 "reason": reason, "detail": detail})


def _dedupe(
    result: IngestResult, entry: SourceEntry, digest: str,
    seen: dict[str, tuple[str, str | None, int | None]], known: Known,
    source: str | None = None,
) -> bool:
    """True when `digest` was seen before; the duplicate (the entry, or its segment `source`)
    is recorded, not lost (see the module docstring for when it is `duplicate_text_differs`)."""
    source = source if source and source != str(entry.path) else None
    if digest in seen:
        path, text, line = seen[digest]
        where = f"{path}{f' (line {line})' if line else ''} in this batch"
        text_known = True
    elif digest in known:
        path, batch, *rest = known[digest]
        where, text, text_known = f"{path} in batch {batch!r}", (rest or [None])[0], bool(rest)
    else:
        return False
    same = f"same sha256 {digest[:12]}… as {where}"
    if text_known and entry.text is not None and entry.text != text:
        word = "transcript" if entry.kind == "audio" else "caption"
        kept = _quote(text) if text is not None else f"no {word}"
        line = f"manifest line {entry.line}: " if entry.line else ""
        result.quarantine(entry, "duplicate_text_differs", (
            f"{source or entry.path}: {line}{same}, which was kept with {kept}, but this copy "
            f"says {_quote(entry.text)}; this copy was not ingested: correct whichever {word} "
            "is wrong, or give each its own file."), source)
        return True
    result.duplicates += 1
    result.quarantine(entry, "duplicate", same, source)
    return True


def _quote(text: str) -> str:
    """`text` in double quotes, shortened to _QUOTE_MAX characters."""
    return '"' + (text if len(text) <= _QUOTE_MAX else text[: _QUOTE_MAX - 1] + "…") + '"'


def _ingest(
    entries: Iterable[SourceEntry], known: Known,
    probe: Callable[[SourceEntry], dict[str, Any]], id_column: str,
    progress: Progress | None, sink: Sink | None,
) -> IngestResult:
    """Probe, hash and dedupe each entry; rows go to `sink` in chunks (or into the result).

    Streaming keeps memory flat in the batch size: only hashes seen so far (with the
    path, text and line of the kept copy) and quarantine items (few) are held for the
    whole batch.
    """
    result, seen, now, chunk = IngestResult(), {}, datetime.now(UTC), []
    file_digests: dict[str, str] = {}  # the last file hashed: segments of it come in a row
    emit = sink or result.rows.extend
    for done, entry in enumerate(entries, start=1):
        if entry.note:
            result.notes[entry.note] += 1
        try:
            _check_kind(entry)
            row = probe(entry)  # before dedupe: a broken file is reported as broken
            source = row.pop("source_path", None) or str(entry.path)
            digest = span_digest(_file_digest(entry, file_digests), source)
            if not _dedupe(result, entry, digest, seen, known, source):
                seen[digest] = (source, entry.text, entry.line)
                chunk.append(_base_row(entry, id_column, digest, now)
                             | {"source_path": source} | row)
        except MediaError as err:
            segment = err.path if err.path.startswith(f"{entry.path}#t=") else None
            result.quarantine(entry, err.reason, str(err), segment)
        if len(chunk) >= CHUNK_ROWS:
            result.ingested += len(chunk)
            emit(chunk)
            chunk = []
        if progress:
            progress(done)
    result.ingested += len(chunk)
    emit(chunk)
    return result


def _file_digest(entry: SourceEntry, cache: dict[str, str]) -> str:
    """sha256 of the entry's file, hashed once for a run of entries naming the same file."""
    key = str(entry.path)
    if key not in cache:
        cache.clear()
        cache[key] = sha256_file(entry.path)
    return cache[key]


def _check_kind(entry: SourceEntry) -> None:
    """A manifest's `audio_filepath` must name an audio file (and so on for each kind)."""
    if entry.path.is_dir():
        raise MediaError("not_a_file", entry.path, "is a directory, not a media file")
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
    known: Known | None = None, progress: Progress | None = None,
    sink: Sink | None = None, segmenter: Segmenter | None = None,
) -> IngestResult:
    """Decode, measure and hash each audio entry; quarantine what fails `limits`.

    Quarantine reasons beyond `load_audio`'s (bad_segment among them): silent, too_long
    (`check_audio`), implausible_transcript (`check_transcript_rate`), duplicate and
    duplicate_text_differs (`_dedupe`). A segment is decoded as its span (`audio_clip`).
    With a `segmenter`, a whole recording over the limit becomes its speech segments
    (`labeling.ingest.segment`; no_speech when it has none) instead of too_long.
    """
    refused: list[tuple[SourceEntry, MediaError]] = []
    if segmenter is not None:
        entries = segmenter.expand(entries, lambda entry, err: refused.append((entry, err)))

    def probe(entry: SourceEntry) -> dict[str, Any]:
        source = audio_clip(entry)
        info = load_audio(source, max_seconds=limits.max_seconds)[1]
        check_audio(info, max_seconds=limits.max_seconds, silence_dbfs=limits.silence_dbfs)
        check_transcript_rate(entry.text, info.duration_s, limits, source)
        return {
            "source_path": source,
            "format": info.codec, "sample_rate": info.sample_rate, "channels": info.channels,
            "duration_s": info.duration_s, "rms_dbfs": info.rms_dbfs, "peak_dbfs": info.peak_dbfs,
        }

    result = _ingest(entries, known or {}, probe, "clip_id", progress, sink)
    for entry, err in refused:
        result.quarantine(entry, err.reason, str(err))
    return result


def ingest_images(
    entries: Iterable[SourceEntry], known: Known | None = None,
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
    known: Known | None = None, progress: Progress | None = None,
    sink: Sink | None = None,
) -> IngestResult:
    """Decode, measure and hash each video entry."""

    def probe(entry: SourceEntry) -> dict[str, Any]:
        info = whole_recording(entry, max_seconds,
                               lambda: probe_video(entry.path, max_seconds=max_seconds))
        return {"codec": info.codec, "width": info.width, "height": info.height,
                "fps": info.fps, "frame_count": info.frame_count, "duration_s": info.duration_s,
                "has_audio": info.has_audio, "bytes": entry.path.stat().st_size}

    return _ingest(entries, known or {}, probe, "video_id", progress, sink)
