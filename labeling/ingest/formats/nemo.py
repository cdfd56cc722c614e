"""NeMo-style JSONL manifests, plain or gzipped (`.jsonl`, `.jsonl.gz`, any name).

A line names one file (`audio_filepath`, `image_filepath` or `video_filepath`,
relative to the manifest's folder or absolute), an optional transcript
(`text`, or the key `--text-key` names; see `formats.common` for the common
alternatives read when there is no `text`), `duration` and `offset` (NeMo's
segment start, seconds; a number >= 0 or the line is `bad_manifest_line`);
every other key is kept as a tag (`accent`, `snr_db`, `speaker`, `split`, ...).
`offset` and `duration` make the line a segment of its recording (see
`labeling.ingest.rows`): each segment line is its own clip with its own text.

A gzipped manifest is told by its first bytes, not its name; a gzip stream
that breaks off gives one `corrupt_gzip` issue after the lines before it.

Example:
    >>> import json, pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "m.jsonl").write_text("\\n".join(json.dumps(r) for r in [
    ...     {"audio_filepath": "rec.wav", "offset": 0.0, "duration": 2.5, "text": "one"},
    ...     {"audio_filepath": "rec.wav", "offset": 2.5, "duration": 3.0, "sentence": "two"}]))
    >>> [(e.text, e.offset, e.duration) for e in read(d / "m.jsonl", [d])]
    [('one', 0.0, 2.5), ('two', 2.5, 3.0)]
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from labeling.ingest.formats.common import (
    Refused,
    clean_transcript,
    jsonl_records,
    media_path,
    short,
    text_key_for,
)
from labeling.ingest.manifest import STRIPPED_TAG, SourceEntry, SourceIssue

PATH_KEYS = {"audio_filepath": "audio", "image_filepath": "image", "video_filepath": "video"}
SEGMENT_KEYS = {"duration", "offset"}


def read(manifest: Path, roots: Sequence[Path], text_key: str | None = None,
         ) -> Iterator[SourceEntry | SourceIssue]:
    """Entries and issues of a NeMo manifest, line by line."""
    for number, record in jsonl_records(manifest):
        if isinstance(record, Refused):
            yield SourceIssue(None, str(manifest), record.reason,
                              f"{manifest}:{number}: {record.detail}", number)
        else:
            yield parse_record(manifest, number, record, roots, text_key)


def parse_record(manifest: Path, number: int, record: dict[str, Any], roots: Sequence[Path],
                 text_key: str | None = None) -> SourceEntry | SourceIssue:
    """One manifest line (a JSON object) as an entry, or the issue that stops it."""
    keys = [k for k in PATH_KEYS if k in record]
    if len(keys) != 1 or not isinstance(record[keys[0]], str) or not record[keys[0]]:
        return SourceIssue(None, str(manifest), "no_media_path", f"{manifest}:{number}: needs "
                           "exactly one of audio_filepath, image_filepath, video_filepath, as "
                           "a non-empty string.", number)
    kind, raw_path = PATH_KEYS[keys[0]], record[keys[0]]
    path: Path | None = None
    try:
        path = media_path(raw_path, manifest.parent, roots)
        key, note = text_key_for(record.keys(), text_key)
        transcript, stripped = clean_transcript(record.get(key) if key else None, key or "")
        offset = record.get("offset")
        if offset is not None and not is_seconds(offset):
            raise Refused("bad_manifest_line", f"`offset` is {short(offset)}, not a number of "
                          "seconds >= 0; fix it or drop the key.")
    except Refused as refused:
        where = str(path) if path is not None else raw_path
        return SourceIssue(kind, where, refused.reason,
                           f"{manifest}:{number}: {refused.detail}", number)
    tags = {k: v for k, v in record.items() if k not in {*PATH_KEYS, *SEGMENT_KEYS, key}}
    if stripped:
        tags[STRIPPED_TAG] = stripped
    return SourceEntry(kind, path, transcript, as_float(record.get("duration")), tags, number,
                       as_float(offset), note)


def is_seconds(value: Any) -> bool:
    """Whether `value` is a finite JSON number >= 0 (not a boolean)."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)


def as_float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
