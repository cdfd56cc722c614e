"""Hugging Face `audiofolder`: audio files listed by `metadata.csv` or `metadata.jsonl`.

Each metadata file lists files relative to its own folder in a `file_name`
column; the transcript is the `text` column, the one `--text-key` names, or
the one common alternative present (`transcription`, `sentence`, ...; see
`formats.common`); every other column is a tag (CSV cells as strings, empty
cells left out). Metadata files may sit in split folders
(`train/metadata.csv`): a folder named like a split gives its rows a `split`
tag unless they have one. Problems are issues: a metadata file without
`file_name` (or without the column `--text-key` names) is one
`missing_column` issue and none of its rows are read; a row whose file is
missing reaches ingestion and is quarantined `missing` there; a file no
metadata row lists is `skipped`.

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "metadata.csv").write_text("file_name,transcription,accent\\na.wav,hello,gb\\n")
    >>> _ = (d / "a.wav").write_bytes(b"RIFF")
    >>> [(e.path.name, e.text, e.tags, e.note is not None) for e in read(d, [d])]
    [('a.wav', 'hello', {'accent': 'gb'}, True)]
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from labeling.ingest.formats.common import (
    Refused,
    clean_transcript,
    jsonl_records,
    media_path,
    text_key_for,
)
from labeling.ingest.formats.folder import skipped, walk
from labeling.ingest.manifest import STRIPPED_TAG, SourceEntry, SourceIssue

METADATA = ("metadata.csv", "metadata.jsonl")
FILE_COLUMN = "file_name"
SPLITS = frozenset({"train", "test", "validation", "valid", "dev", "eval"})


def read(folder: Path, roots: Sequence[Path], text_key: str | None = None,
         ) -> Iterator[SourceEntry | SourceIssue]:
    """Every row of every metadata file under `folder`, then every file none lists."""
    metadata, others = [], []
    for item in walk(folder):
        if isinstance(item, SourceIssue):
            yield item
            continue
        here, names = item
        metadata += [here / n for n in names if n.lower() in METADATA]
        others += [here / n for n in names if n.lower() not in METADATA]
    listed: set[Path] = set()
    for meta in metadata:
        for got in _read_metadata(meta, folder, roots, text_key):
            if isinstance(got, SourceEntry):
                listed.add(got.path)
            yield got
    for path in others:
        if path.resolve() not in listed:
            yield skipped(path, "no metadata file lists it (an audiofolder ingests the files "
                          f"its metadata.csv/metadata.jsonl name in `{FILE_COLUMN}`); add a "
                          "row for it or remove it")


def _read_metadata(meta: Path, folder: Path, roots: Sequence[Path], text_key: str | None,
                   ) -> Iterator[SourceEntry | SourceIssue]:
    split = meta.parent.name.lower() if meta.parent != folder else None
    split = split if split in SPLITS else None
    try:
        columns, rows = _table(meta)
        for column in (FILE_COLUMN, text_key):
            if column and column not in columns:
                raise Refused("missing_column", f"{meta}: has no `{column}` column (its "
                              f"columns: {', '.join(columns) or 'none'})" + (
                                  "; an audiofolder names each file in `file_name`"
                                  if column == FILE_COLUMN else "; check --text-key") + ".")
    except Refused as refused:
        yield SourceIssue("audio", str(meta), refused.reason, refused.detail)
        return
    key, note = text_key_for(columns, text_key)
    for line, row in rows:
        yield _entry(meta, line, row, key, note, split, roots)


def _table(meta: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any] | Refused]]]:
    """A metadata file's columns (a CSV's header; a JSONL's first row's keys) and its rows,
    (line, row or why not) each; Refused when the file cannot be read at all."""
    if meta.suffix.lower() == ".jsonl":
        records = jsonl_records(meta)
        first = next(records, None)
        if first is None:
            return [], iter(())
        columns = list(first[1]) if isinstance(first[1], dict) else []
        return columns, itertools.chain([first], records)
    try:
        text = meta.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Refused("non_utf8", f"{meta} is not UTF-8 ({exc.reason} at byte {exc.start}); "
                      "re-encode it as UTF-8.") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        columns = list(reader.fieldnames or [])
    except csv.Error as exc:
        raise Refused("bad_metadata", f"{meta}: the header is not valid CSV ({exc}).") from None
    return columns, _csv_rows(reader)


def _csv_rows(reader: csv.DictReader) -> Iterator[tuple[int, dict[str, Any] | Refused]]:
    try:
        for row in reader:
            if None in row:
                yield reader.line_num, Refused("bad_manifest_line", "the row has more cells "
                                               "than the header has columns.")
            else:
                yield reader.line_num, {k: v for k, v in row.items() if v not in (None, "")}
    except csv.Error as exc:
        yield reader.line_num, Refused("bad_manifest_line", f"not valid CSV ({exc}).")


def _entry(meta: Path, line: int, row: dict[str, Any] | Refused, key: str | None,
           note: str | None, split: str | None, roots: Sequence[Path],
           ) -> SourceEntry | SourceIssue:
    raw = row.get(FILE_COLUMN) if isinstance(row, dict) else None
    try:
        if isinstance(row, Refused):
            raise row
        if not isinstance(raw, str) or not raw:
            raise Refused("no_media_path", f"`{FILE_COLUMN}` is empty or not a string.")
        path = media_path(raw, meta.parent, roots)
        text, stripped = clean_transcript(row.get(key) if key else None, key or "")
    except Refused as refused:
        return SourceIssue("audio", str(raw or meta), refused.reason,
                           f"{meta}:{line}: {refused.detail}", line)
    tags = {k: v for k, v in row.items() if k not in (FILE_COLUMN, key)}
    if split and "split" not in tags:
        tags["split"] = split
    if stripped:
        tags[STRIPPED_TAG] = stripped
    return SourceEntry("audio", path, text, tags=tags, line=line, note=note)
