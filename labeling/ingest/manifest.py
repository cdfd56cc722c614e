"""Reading a batch's source: the entries (media + transcript + tags) and the issues.

A source is a file or a folder in one of the formats speech and vision labs
keep their data in; each has a small reader in :mod:`labeling.ingest.formats`,
chosen from the path (`formats.detect_format`) or named (`format=`, the CLI's
`--format`):

* `nemo`: a NeMo-style JSONL manifest, plain or gzipped (`formats.nemo`);
* `folder`: a folder of media files with optional `NAME.txt` transcripts (`formats.folder`);
* `audiofolder`: Hugging Face's audiofolder, `metadata.csv`/`.jsonl` with `file_name`
  (`formats.audiofolder`);
* `hf-dataset`: a `datasets` dataset saved with `save_to_disk`, with an `Audio` column
  (`formats.hf_dataset`), or one named by its hub id, from the local cache (`formats.hf_name`);
* `lhotse`: Lhotse cuts, or recordings + supervisions, `.jsonl` or `.jsonl.gz` (`formats.lhotse`);
* `kaldi`: a Kaldi data dir, `wav.scp` + `text` (+ `segments`, `utt2spk`) (`formats.kaldi`);
* `librispeech`: LibriSpeech's layout, `*.trans.txt` beside the audio (`formats.librispeech`).

Every reader yields the same `SourceEntry`s. A segment of a recording (a NeMo
line's `offset`/`duration`, a Lhotse supervision, a Kaldi segment) is an entry
with `offset` and `duration`; ingestion makes it its own clip
(`labeling.ingest.rows`, `labeling.ingest.spans`). Transcripts come from
`text` unless `text_key` names another key or column (formats that have keys:
nemo, audiofolder, hf-dataset; see `formats.common` for the common
alternatives read when there is no `text`). What a reader wants the user to
know about an entry without refusing it is its `note`.

Nothing is dropped silently: every line, row or file that cannot become an
entry comes back as a `SourceIssue` with a reason, for the quarantine table.

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

import json
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STRIPPED_TAG = "text_chars_stripped"

# ANSI/VT escape sequences: CSI (ESC [ ... final), terminated OSC (ESC ] ... BEL or ESC \\),
# other two-character ESC X. An unterminated OSC loses only its ESC ], not the words after it.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]"
                   r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_KEEP_FORMAT = frozenset({"\u200c", "\u200d"})  # ZWNJ, ZWJ: part of the spelling
_PLAIN_WHITESPACE = frozenset("\t\n\r")


@dataclass(frozen=True)
class SourceEntry:
    """One media file (or a segment of one) a batch names, with its transcript/caption and tags."""

    kind: str  # "audio" | "image" | "video"
    path: Path  # resolved, inside an allowed root
    text: str | None = None
    duration: float | None = None  # seconds the source declares (a segment's length)
    tags: dict[str, Any] = field(default_factory=dict)
    line: int | None = None  # 1-based line (or row) of the source's listing
    offset: float | None = None  # segment start (s) the source declares, if any
    note: str | None = None  # what the reader wants the ingest report to tell about it


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
    source: str | Path, allowed_roots: Sequence[str | Path] | None = None, *,
    format: str | None = None, text_key: str | None = None,
) -> Iterator[SourceEntry | SourceIssue]:
    """Entries and issues of a source (a path, or a Hugging Face dataset id written
    `hf://datasets/ID`: `formats.hf_name`), one at a time, in source order.

    `format` (one of `formats.FORMATS`) overrides the one detected from the path;
    `text_key` names the transcript's key or column. Allowed roots default to the
    manifest's (or the folder's) own folder. Raises FileNotFoundError for a missing
    source and ValueError for an unknown format or a `text_key` the format has no use for.
    """
    from labeling.ingest import formats

    return formats.read(source, allowed_roots, format, text_key)


def read_source(
    source: str | Path, allowed_roots: Sequence[str | Path] | None = None, *,
    format: str | None = None, text_key: str | None = None,
) -> tuple[list[SourceEntry], list[SourceIssue]]:
    """All entries and all issues of a source, as two lists."""
    entries: list[SourceEntry] = []
    issues: list[SourceIssue] = []
    for item in iter_source(source, allowed_roots, format=format, text_key=text_key):
        (entries if isinstance(item, SourceEntry) else issues).append(item)
    return entries, issues


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


def tags_json(tags: dict[str, Any]) -> str:
    """Tags as the warehouse stores them: JSON, keys sorted, anything else as its string.

    >>> tags_json({"snr_db": 10, "accent": "gb"})
    '{"accent": "gb", "snr_db": 10}'
    """
    return json.dumps(tags, sort_keys=True, ensure_ascii=False, default=str)
