"""What every source reader shares: transcript keys, transcripts, media paths, JSONL lines.

Transcript keys: `text` unless the caller names another (`--text-key`). A
record with no `text` but exactly one of `ALT_TEXT_KEYS` has its transcript
read from that one, and the entry carries a note saying so; a record with
several of them and no `text` is left unlabeled (its keys stay tags) with a
note asking for `--text-key`.

Example:
    >>> text_key_for({"audio_filepath", "sentence"}, None)
    ('sentence', 'transcript read from `sentence` (no `text` key; choose another with --text-key)')
    >>> text_key_for({"audio_filepath", "text", "sentence"}, None)
    ('text', None)
    >>> clean_transcript(42, "text")
    ('42', 0)
"""

from __future__ import annotations

import codecs
import json
import os
import zlib
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from labeling.ingest.manifest import sanitize_text

TEXT_KEY = "text"
ALT_TEXT_KEYS = ("transcript", "transcription", "sentence", "normalized_text")
GZIP_MAGIC = b"\x1f\x8b"


class Refused(Exception):
    """A record (or file) a reader cannot turn into an entry: a quarantine reason and why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def text_key_for(keys: Collection[str], text_key: str | None) -> tuple[str | None, str | None]:
    """The key to read a record's transcript from (None: none), and a note when it was guessed
    or could not be (see the module docstring)."""
    if text_key:
        return text_key, None
    if TEXT_KEY in keys:
        return TEXT_KEY, None
    present = [k for k in ALT_TEXT_KEYS if k in keys]
    if len(present) == 1:
        return present[0], (f"transcript read from `{present[0]}` (no `text` key; choose "
                            "another with --text-key)")
    if present:
        return None, (f"no transcript: several transcript keys ({', '.join(present)}) and no "
                      "`text`; choose one with --text-key")
    return None, None


def clean_transcript(value: Any, key: str) -> tuple[str | None, int]:
    """A transcript as ingestion keeps it, and how many characters cleaning stripped.

    A string is cleaned (`sanitize_text`); an integer becomes its decimal string; None is no
    transcript. Refused: any other type (`non_text_transcript`), and a transcript left
    empty (`empty_transcript`).
    """
    if value is None:
        return None, 0
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    elif not isinstance(value, str):
        raise Refused("non_text_transcript", f"`{key}` is a JSON {json_type(value)} "
                      f"({short(value)}), not a string; write the transcript as a string.")
    text, stripped = sanitize_text(value)
    if not text:
        raise Refused("empty_transcript", f"`{key}` is empty" + (
            f" after removing {stripped} control/format characters" if stripped else "")
            + "; give the transcript or drop the key for unlabeled media.")
    return text, stripped


def resolve_roots(roots: Sequence[str | Path] | None, default: Path) -> list[Path]:
    return [Path(r).expanduser().resolve() for r in (roots or [default])]


def inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def media_path(raw: str, base: Path, roots: Sequence[Path]) -> Path:
    """`raw` (absolute, or relative to `base`) resolved; Refused("outside_allowed_roots")."""
    path = Path(os.path.normpath(base / Path(raw).expanduser())).resolve()
    if not inside(path, roots):
        raise Refused("outside_allowed_roots", f"{raw!r} resolves to {path}, outside the "
                      f"allowed roots {[str(r) for r in roots]}.")
    return path


def raw_lines(path: Path) -> Iterator[bytes]:
    """The lines (bytes, with their newline) of a file, gunzipped when it starts with gzip's
    magic. A gzip stream that is cut short or corrupt raises EOFError or zlib.error after
    the whole lines before the break (a partial last line is not yielded)."""
    with path.open("rb") as fh:
        gzipped = fh.read(2) == GZIP_MAGIC
        fh.seek(0)
        if not gzipped:
            yield from fh
            return
        tail = b""
        for data in _gunzip(fh):
            lines = (tail + data).split(b"\n")
            tail = lines.pop()
            yield from (line + b"\n" for line in lines)
        if tail:
            yield tail


def _gunzip(fh) -> Iterator[bytes]:
    """Decompressed chunks of a gzip file (several members in a row, as `cat a.gz b.gz`)."""
    inflate = zlib.decompressobj(31)
    while chunk := fh.read(1 << 16):
        while chunk:
            yield inflate.decompress(chunk)
            chunk = b""
            if inflate.eof:
                chunk = inflate.unused_data.lstrip(b"\0")
                if chunk:
                    inflate = zlib.decompressobj(31)
    if not inflate.eof:
        raise EOFError("the compressed data ends before the end of the gzip stream")


def jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | Refused]]:
    """(1-based line, JSON object or why not) per non-blank line of a JSONL file, gzipped or
    not. A leading UTF-8 BOM is skipped. A gzip stream that breaks off ends the lines with
    one `corrupt_gzip` refusal, after the whole lines before it."""
    number = 0
    try:
        for number, raw in enumerate(raw_lines(path), start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            if raw.strip():
                yield number, _record(raw)
    except (EOFError, zlib.error) as err:
        where = f"after line {number}" if number else "before its first line"
        yield number + 1, Refused("corrupt_gzip", f"the gzip stream is corrupt or cut short "
                                  f"{where} ({err}); compress the manifest again or fetch it "
                                  "again.")


def _record(raw: bytes) -> dict[str, Any] | Refused:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Refused("non_utf8", f"line is not UTF-8 ({exc.reason} at byte {exc.start}); "
                       "re-encode the manifest as UTF-8.")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return Refused("bad_manifest_line", f"not valid JSON ({exc.msg}).")
    if not isinstance(record, dict):
        return Refused("bad_manifest_line", "a manifest line must be a JSON object.")
    return record


def first_record(path: Path, limit: int = 1 << 16) -> dict[str, Any] | None:
    """The first non-blank line of a JSONL file (gzipped or not) as a JSON object, if it is
    one within `limit` bytes; None otherwise. A broken gzip stream still tells its first
    line when that line is whole."""
    try:
        with path.open("rb") as fh:
            gzipped = fh.read(2) == GZIP_MAGIC
            fh.seek(0)
            lines = raw_lines(path) if gzipped else iter(lambda: fh.readline(limit + 1), b"")
            for raw in lines:
                if raw.strip():
                    record = json.loads(raw[:limit].removeprefix(codecs.BOM_UTF8))
                    return record if isinstance(record, dict) else None
    except (OSError, EOFError, zlib.error, ValueError):
        return None
    return None


def json_type(value: Any) -> str:
    return {bool: "boolean", float: "number", list: "array", dict: "object"}.get(
        type(value), type(value).__name__)


def short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
