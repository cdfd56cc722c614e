"""Reading a batch's source: a NeMo-style JSONL manifest or a folder of media.

A manifest line names one file (`audio_filepath`, `image_filepath` or
`video_filepath`, relative to the manifest's folder or absolute), an optional
`text`, `duration` and `offset` (NeMo's segment start, seconds; a number >= 0
or the line is `bad_manifest_line`); every other key is kept as a tag
(`accent`, `snr_db`, `speaker`, `split`, ...). A folder is walked
recursively; an audio file may have a sidecar transcript `NAME.txt` beside it.

Nothing is dropped silently: every line or file that cannot become an entry
comes back as a `SourceIssue` with a reason, for the quarantine table.

Segments (policy): a line may list only part of a recording (a non-zero
`offset`, or a `duration` clearly shorter than the file). Segments are not
ingested as clips yet; ingestion (`labeling.ingest.rows`) refuses each such
line as `segment_of_recording` after decoding the file, rather than store the
whole recording under one segment's transcript. `offset` is never a tag.

Folder batches (policy): everything in the folder is accounted for. Besides
media files and the sidecars they use, each skipped thing leaves one
`skipped` issue saying why: a `.txt` with no audio file of the same name
beside it, a `.json`/`.jsonl` file (a manifest, told by its first line, is to
be ingested as its own batch; other JSON, e.g. annotations, is not read), a
hidden file, and a hidden folder (one issue for the whole folder, with how
many files it holds; it is not walked further).

Encoding: manifests and sidecars are UTF-8; a leading UTF-8 BOM (as Windows
tools save) is skipped, not fed to the JSON parser.

Transcripts (policy, see `sanitize_text`): a JSON string is used as is; a
JSON integer (`"text": 42`) becomes its decimal string "42"; any other
non-string (float, bool, list, object) is refused as `non_text_transcript`
naming its type, since its spoken form is ambiguous. Text is then cleaned of
characters that are not speech: ANSI escape sequences are removed whole,
other control characters (Unicode Cc, e.g. NUL, ESC, DEL) become spaces,
format characters (Cf: U+202E bidi override, U+200B zero-width space, BOM,
soft hyphen, ...) and lone surrogates (Cs) are removed, except ZWNJ/ZWJ
(U+200C/U+200D), which spell Persian and Indic words and emoji. Tabs and
newlines are plain whitespace. Whitespace is then collapsed. When anything
was stripped the entry carries the tag `text_chars_stripped` (how many
characters were removed or replaced; this key is ingestion's and overrides a
manifest key of that name), so no change is silent. A transcript left empty
by cleaning is `empty_transcript`.

Example:
    >>> import json, pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.wav").write_bytes(b"RIFF")
    >>> _ = (d / "m.jsonl").write_text(json.dumps({"audio_filepath": "a.wav", "text": "hi",
    ...     "accent": "gb"}) + "\\n" + json.dumps({"audio_filepath": "../x.wav", "text": "no"}))
    >>> entries, issues = read_source(d / "m.jsonl")
    >>> [(e.kind, e.text, e.tags) for e in entries]
    [('audio', 'hi', {'accent': 'gb'})]
    >>> [(i.line, i.reason) for i in issues]
    [(2, 'outside_allowed_roots')]
"""

from __future__ import annotations

import codecs
import json
import math
import os
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labeling.ingest.media import media_kind

PATH_KEYS = {"audio_filepath": "audio", "image_filepath": "image", "video_filepath": "video"}
RESERVED_KEYS = {*PATH_KEYS, "text", "duration", "offset"}
MANIFEST_EXTS = {".jsonl", ".json"}
SIDECAR_EXT = ".txt"
STRIPPED_TAG = "text_chars_stripped"

# ANSI/VT escape sequences: CSI (ESC [ ... final), terminated OSC (ESC ] ... BEL or ESC \\),
# other two-character ESC X. An unterminated OSC loses only its ESC ], not the words after it.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]"
                   r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_KEEP_FORMAT = frozenset({"\u200c", "\u200d"})  # ZWNJ, ZWJ: part of the spelling
_PLAIN_WHITESPACE = frozenset("\t\n\r")


@dataclass(frozen=True)
class SourceEntry:
    """One media file a batch names, with its transcript/caption and tags."""

    kind: str  # "audio" | "image" | "video"
    path: Path  # resolved, inside an allowed root
    text: str | None = None
    duration: float | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    line: int | None = None  # 1-based manifest line
    offset: float | None = None  # segment start (s) the manifest declares, if any


@dataclass(frozen=True)
class SourceIssue:
    """A line or file that could not become an entry, and why."""

    kind: str | None  # the media kind it concerns, when known
    source_path: str
    reason: str
    detail: str
    line: int | None = None

    def as_quarantine_row(self) -> dict[str, Any]:
        return {
            "source_path": self.source_path,
            "line": self.line,
            "reason": self.reason,
            "detail": self.detail,
        }


def iter_source(
    source: str | Path, allowed_roots: Sequence[str | Path] | None = None
) -> Iterator[SourceEntry | SourceIssue]:
    """Entries and issues of a manifest file or a folder, one at a time, in source order.

    Allowed roots default to the manifest's (or the folder's) own folder.
    """
    source = Path(source).expanduser().resolve()
    if source.is_dir():
        yield from _read_folder(source, _resolve_roots(allowed_roots, source))
    elif source.is_file():
        yield from _read_manifest(source, _resolve_roots(allowed_roots, source.parent))
    else:
        raise FileNotFoundError(f"Source {source} is neither a manifest file nor a folder.")


def read_source(
    source: str | Path, allowed_roots: Sequence[str | Path] | None = None
) -> tuple[list[SourceEntry], list[SourceIssue]]:
    """All entries and all issues of a source, as two lists."""
    entries: list[SourceEntry] = []
    issues: list[SourceIssue] = []
    for item in iter_source(source, allowed_roots):
        (entries if isinstance(item, SourceEntry) else issues).append(item)
    return entries, issues


def _resolve_roots(roots: Sequence[str | Path] | None, default: Path) -> list[Path]:
    return [Path(r).expanduser().resolve() for r in (roots or [default])]


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _read_manifest(manifest: Path, roots: list[Path]) -> Iterator[SourceEntry | SourceIssue]:
    with manifest.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            if raw.strip():
                yield _parse_line(manifest, number, raw, roots)


def _parse_line(
    manifest: Path, number: int, raw: bytes, roots: list[Path]
) -> SourceEntry | SourceIssue:
    where = f"{manifest}:{number}"

    def issue(reason: str, detail: str, kind: str | None = None, path: str | None = None):
        return SourceIssue(kind, path or str(manifest), reason, f"{where}: {detail}", number)

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return issue("non_utf8", f"line is not UTF-8 ({exc.reason} at byte {exc.start}); "
                     "re-encode the manifest as UTF-8.")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return issue("bad_manifest_line", f"not valid JSON ({exc.msg}).")
    if not isinstance(record, dict):
        return issue("bad_manifest_line", "a manifest line must be a JSON object.")
    keys = [k for k in PATH_KEYS if k in record]
    if len(keys) != 1 or not isinstance(record[keys[0]], str) or not record[keys[0]]:
        return issue("no_media_path", "needs exactly one of audio_filepath, image_filepath, "
                     "video_filepath, as a non-empty string.")
    kind, raw_path = PATH_KEYS[keys[0]], record[keys[0]]
    path = Path(os.path.normpath(manifest.parent / Path(raw_path).expanduser())).resolve()
    if not _inside(path, roots):
        return issue("outside_allowed_roots", f"{raw_path!r} resolves to {path}, outside the "
                     f"allowed roots {[str(r) for r in roots]}.", kind, raw_path)
    transcript = record.get("text")
    if isinstance(transcript, int) and not isinstance(transcript, bool):
        transcript = str(transcript)
    elif transcript is not None and not isinstance(transcript, str):
        return issue("non_text_transcript", f"`text` is a JSON {_json_type(transcript)} "
                     f"({_short(transcript)}), not a string; write the transcript as a string.",
                     kind, str(path))
    tags = {k: v for k, v in record.items() if k not in RESERVED_KEYS}
    stripped = 0
    if transcript is not None:
        transcript, stripped = sanitize_text(transcript)
        if not transcript:
            return issue("empty_transcript", "`text` is empty" + (
                f" after removing {stripped} control/format characters" if stripped else "")
                + "; give the transcript or drop the key for unlabeled media.", kind, str(path))
        if stripped:
            tags[STRIPPED_TAG] = stripped
    offset = record.get("offset")
    if offset is not None and not _seconds(offset):
        return issue("bad_manifest_line", f"`offset` is {_short(offset)}, not a number of "
                     "seconds >= 0; fix it or drop the key.", kind, str(path))
    return SourceEntry(kind, path, transcript, _float(record.get("duration")), tags, number,
                       _float(offset))


def sanitize_text(text: str) -> tuple[str, int]:
    """`text` without control/format characters, whitespace collapsed; and how many were stripped.

    See the module docstring for the policy. Plain whitespace (tabs, newlines,
    runs of spaces) is collapsed without being counted.

    >>> sanitize_text("\\x1b[31mred\\x1b[0m\\x00alert \\u202eevil\\ufeff\\n ok")
    ('red alert evil ok', 12)
    """
    count = 0

    def ansi(match: re.Match[str]) -> str:
        nonlocal count
        count += len(match.group())
        return " "

    text = _ANSI.sub(ansi, text)
    out = []
    for ch in text:
        if ch in _PLAIN_WHITESPACE or ch in _KEEP_FORMAT:
            out.append(ch)
            continue
        category = unicodedata.category(ch)
        if category == "Cc":
            count += 1
            out.append(" ")
        elif category in ("Cf", "Cs"):
            count += 1
        else:
            out.append(ch)
    return " ".join("".join(out).split()), count


def _json_type(value: Any) -> str:
    return {bool: "boolean", float: "number", list: "array", dict: "object"}.get(
        type(value), type(value).__name__)


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _seconds(value: Any) -> bool:
    """Whether `value` is a finite JSON number >= 0 (not a boolean)."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _read_folder(folder: Path, roots: list[Path]) -> Iterator[SourceEntry | SourceIssue]:
    """Every file under `folder`, in a stable order: an entry, an issue, or nothing for a
    sidecar an audio file uses. Hidden folders are reported once and not walked."""
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        hidden = sorted(d for d in dirnames if d.startswith("."))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in hidden:
            files = sum(len(f) for _, _, f in os.walk(here / name))
            yield _skipped(here / name, f"hidden folder ({files} file{'s' * (files != 1)} in "
                           "it) was not read; rename it without the leading '.' to ingest it")
        used = {Path(n).with_suffix(SIDECAR_EXT).name for n in filenames
                if media_kind(n) == "audio" and not n.startswith(".")}
        for name in sorted(filenames):
            if name not in used:
                yield _folder_item(here / name, roots)


def _skipped(path: Path, why: str) -> SourceIssue:
    return SourceIssue(None, str(path), "skipped", f"{path}: {why}.")


def _folder_item(path: Path, roots: list[Path]) -> SourceEntry | SourceIssue:
    """What one file of a folder batch (not a used sidecar) becomes."""
    ext = path.suffix.lower()
    if path.name.startswith("."):
        return _skipped(path, "hidden file was not read; rename it without the leading '.' "
                        "to ingest it")
    if ext == SIDECAR_EXT:
        return _skipped(path, "transcript with no audio file beside it (a sidecar is read "
                        f"for the audio file of the same name, e.g. {path.stem}.wav); add the "
                        "audio or remove the transcript")
    if ext in MANIFEST_EXTS and _names_media(path):
        return _skipped(path, "a manifest inside a folder batch is not read; ingest it as its "
                        f"own batch with `rlfoundry ingest {path} --batch NAME`")
    if ext in MANIFEST_EXTS:
        return _skipped(path, "JSON that is not an ingest manifest (its first line names no "
                        "audio_filepath, image_filepath or video_filepath) was not read; "
                        "a folder batch ingests only media files and their .txt transcripts")
    resolved = path.resolve()
    kind = media_kind(path)
    if not _inside(resolved, roots):
        return SourceIssue(kind, str(path), "outside_allowed_roots",
                           f"{path} links to {resolved}, outside the allowed roots.")
    if kind is None:
        return SourceIssue(None, str(path), "unknown_extension",
                           f"{path}: extension {ext or '(none)'!r} is not a known audio, "
                           "image or video format; convert it or remove it from the folder.")
    return _folder_entry(kind, resolved)


def _names_media(path: Path, limit: int = 1 << 16) -> bool:
    """Whether the first line of a JSON(L) file is a manifest record (reads <= `limit` bytes)."""
    try:
        with path.open("rb") as fh:
            first = fh.read(limit).removeprefix(codecs.BOM_UTF8).lstrip().split(b"\n", 1)[0]
        record = json.loads(first)
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and any(k in record for k in PATH_KEYS)


def _folder_entry(kind: str, path: Path) -> SourceEntry | SourceIssue:
    sidecar = path.with_suffix(SIDECAR_EXT)
    if kind != "audio" or not sidecar.is_file():
        return SourceEntry(kind, path)
    try:
        text = sidecar.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        return SourceIssue(kind, str(path), "non_utf8",
                           f"transcript {sidecar} is not UTF-8; re-encode it as UTF-8.")
    text, stripped = sanitize_text(text)
    if not text:
        return SourceIssue(kind, str(path), "empty_transcript",
                           f"transcript {sidecar} is empty" + (
                               f" after removing {stripped} control/format characters"
                               if stripped else "") + "; write the transcript or delete it.")
    return SourceEntry(kind, path, text, tags={STRIPPED_TAG: stripped} if stripped else {})


def tags_json(tags: dict[str, Any]) -> str:
    """Tags as the warehouse stores them: JSON, keys sorted, anything else as its string.

    >>> tags_json({"snr_db": 10, "accent": "gb"})
    '{"accent": "gb", "snr_db": 10}'
    """
    return json.dumps(tags, sort_keys=True, ensure_ascii=False, default=str)
