"""A folder of media files, walked recursively; an audio file may have a sidecar `NAME.txt`.

Everything in the folder is accounted for. Besides media files and the
sidecars they use, each skipped thing leaves one `skipped` issue saying why:
a `.txt` with no audio file of the same name beside it, a JSON/JSONL file
(gzipped or not; a manifest, told by its first line, is to be ingested as its
own batch; other JSON, e.g. annotations, is not read), a hidden file, and a
hidden folder (one issue for the whole folder, with how many files it holds;
it is not walked further). Sidecars are UTF-8 (a leading BOM is skipped).

`walk` is the same walk for the readers of folder layouts that list their
audio in files of their own (LibriSpeech, audiofolder).

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.wav").write_bytes(b"RIFF"); _ = (d / "a.txt").write_text("hello")
    >>> _ = (d / "notes.md").write_text("x")
    >>> [(type(i).__name__, i.reason if hasattr(i, "reason") else i.text) for i in read(d, [d])]
    [('SourceEntry', 'hello'), ('SourceIssue', 'unknown_extension')]
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from labeling.ingest.formats import JSON_SUFFIXES, JSONL_SUFFIXES, PATH_KEYS
from labeling.ingest.formats.common import first_record, inside
from labeling.ingest.manifest import STRIPPED_TAG, SourceEntry, SourceIssue, sanitize_text
from labeling.ingest.media import media_kind

SIDECAR_EXT = ".txt"
MANIFEST_SUFFIXES = JSONL_SUFFIXES + JSON_SUFFIXES


def read(folder: Path, roots: Sequence[Path], text_key: str | None = None,
         ) -> Iterator[SourceEntry | SourceIssue]:
    """Every file under `folder`, in a stable order: an entry, an issue, or nothing for a
    sidecar an audio file uses."""
    for item in walk(folder):
        if isinstance(item, SourceIssue):
            yield item
            continue
        here, filenames = item
        used = {Path(n).with_suffix(SIDECAR_EXT).name for n in filenames
                if media_kind(n) == "audio" and not n.startswith(".")}
        for name in filenames:
            if name not in used:
                yield _item(here / name, roots)


def walk(folder: Path) -> Iterator[tuple[Path, list[str]] | SourceIssue]:
    """(folder, its file names sorted) for `folder` and each visible folder under it, in a
    stable order; a hidden folder is one `skipped` issue and is not walked."""
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        hidden = sorted(d for d in dirnames if d.startswith("."))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in hidden:
            files = sum(len(f) for _, _, f in os.walk(here / name))
            yield skipped(here / name, f"hidden folder ({files} file{'s' * (files != 1)} in "
                          "it) was not read; rename it without the leading '.' to ingest it")
        yield here, sorted(filenames)


def skipped(path: Path, why: str) -> SourceIssue:
    return SourceIssue(None, str(path), "skipped", f"{path}: {why}.")


def _item(path: Path, roots: Sequence[Path]) -> SourceEntry | SourceIssue:
    """What one file of a folder batch (not a used sidecar) becomes."""
    ext = path.suffix.lower()
    if path.name.startswith("."):
        return skipped(path, "hidden file was not read; rename it without the leading '.' "
                       "to ingest it")
    if ext == SIDECAR_EXT:
        return skipped(path, "transcript with no audio file beside it (a sidecar is read "
                       f"for the audio file of the same name, e.g. {path.stem}.wav); add the "
                       "audio or remove the transcript")
    if path.name.lower().endswith(MANIFEST_SUFFIXES):
        record = first_record(path)
        if record is not None and any(k in record for k in PATH_KEYS):
            return skipped(path, "a manifest inside a folder batch is not read; ingest it as "
                           f"its own batch with `rlfoundry ingest {path} --batch NAME`")
        return skipped(path, "JSON that is not an ingest manifest (its first line names no "
                       "audio_filepath, image_filepath or video_filepath) was not read; "
                       "a folder batch ingests only media files and their .txt transcripts")
    resolved = path.resolve()
    kind = media_kind(path)
    if not inside(resolved, roots):
        return SourceIssue(kind, str(path), "outside_allowed_roots",
                           f"{path} links to {resolved}, outside the allowed roots.")
    if kind is None:
        return SourceIssue(None, str(path), "unknown_extension",
                           f"{path}: extension {ext or '(none)'!r} is not a known audio, "
                           "image or video format; convert it or remove it from the folder.")
    return _entry(kind, resolved)


def _entry(kind: str, path: Path) -> SourceEntry | SourceIssue:
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
