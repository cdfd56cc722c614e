"""Kaldi data directories: `wav.scp`, `text`, and optionally `segments` and `utt2spk`.

Without `segments`, each `wav.scp` line is an utterance (its id keys `text`).
With it, each `segments` line (`utt rec start end`, `end` -1: to the end of
the file) is a segment clip of its recording, and a recording no segment
names is one unlabeled clip. `utt2spk` gives a `speaker` tag; the utterance
id is the `utt_id` tag. A `wav.scp` path is taken from the data dir, else
from the recipe dir two levels up (`egs/x/s5` with `data/train`), whichever
holds it; a command (`... |`) or an archive offset (`x.ark:12`) is
`unsupported_source`. A `text` line for an utterance that does not exist,
an unknown recording, a malformed line: each is an issue with its line.

Written here rather than with `lhotse.kaldi.load_kaldi_data_dir`, which drops
a recording it cannot read with only a log line, fails the whole directory
when over 20 % cannot be read, decodes every file for its duration, and
ignores `text` when there is neither `segments` nor `utt2spk`.

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "wav.scp").write_text("rec1 rec1.wav\\n")
    >>> _ = (d / "segments").write_text("u1 rec1 0.0 2.5\\nu2 rec1 2.5 4.0\\n")
    >>> _ = (d / "text").write_text("u1 HELLO THERE\\nu2 BYE\\n")
    >>> [(e.text, e.offset, e.duration) for e in read(d, [d])]
    [('HELLO THERE', 0.0, 2.5), ('BYE', 2.5, 1.5)]
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from labeling.ingest.formats.common import Refused, clean_transcript, media_path
from labeling.ingest.manifest import STRIPPED_TAG, SourceEntry, SourceIssue

Table = dict[str, tuple[int, str]]  # id -> (line, the rest of the line)
_ARCHIVE = re.compile(r"\.ark:\d+$")


def read(folder: Path, roots: Sequence[Path], text_key: str | None = None,
         ) -> Iterator[SourceEntry | SourceIssue]:
    """Every utterance (or segment) of the data dir `folder`."""
    issues: list[SourceIssue] = []
    wavs = _table(folder / "wav.scp", issues)
    texts = _table(folder / "text", issues) if (folder / "text").is_file() else {}
    speakers = _table(folder / "utt2spk", issues) if (folder / "utt2spk").is_file() else {}
    yield from issues
    segments = folder / "segments"
    utterances: set[str] = set()
    if segments.is_file():
        named: set[str] = set()
        for item in _segments(segments, wavs):
            if isinstance(item, SourceIssue):
                yield item
                continue
            number, utt, rec, start, stop = item
            named.add(rec)
            utterances.add(utt)
            yield _safe(segments, folder, roots, wavs[rec][1], utt, texts, speakers, number,
                        start, None if stop is None else stop - start)
        for rec, (number, value) in wavs.items():
            if rec not in named:
                yield _safe(folder / "wav.scp", folder, roots, value, rec, {}, {}, number)
    else:
        for utt, (number, value) in wavs.items():
            utterances.add(utt)
            yield _safe(folder / "wav.scp", folder, roots, value, utt, texts, speakers, number)
    listing = "segments" if segments.is_file() else "wav.scp"
    for utt, (number, _) in texts.items():
        if utt not in utterances:
            yield _issue(folder / "text", number, Refused("skipped", f"utterance {utt!r} is "
                                                          f"not in {listing}; its transcript "
                                                          "was not used."))


def _segments(path: Path, wavs: Table) -> Iterator[tuple | SourceIssue]:
    """(line, utt, rec, start, end or None) per good `segments` line; an issue per other."""
    issues: list[SourceIssue] = []
    for number, raw in _lines(path, issues):
        parts = raw.split()
        try:
            if len(parts) != 4:
                raise Refused("bad_manifest_line", "a segments line is `utt rec start end`.")
            utt, rec, start, end = parts
            if rec not in wavs:
                raise Refused("unknown_recording", f"recording {rec!r} is not in wav.scp.")
            yield number, utt, rec, _seconds(start), None if end == "-1" else _seconds(end)
        except Refused as refused:
            issues.append(_issue(path, number, refused))
        while issues:
            yield issues.pop(0)
    yield from issues


def _safe(listing: Path, folder: Path, roots: Sequence[Path], value: str, utt: str,
          texts: Table, speakers: Table, number: int, offset: float | None = None,
          duration: float | None = None) -> SourceEntry | SourceIssue:
    """`_entry`, or the issue (at `listing`'s line `number`) that stops it."""
    try:
        return _entry(folder, roots, value, utt, texts, speakers, number, offset, duration)
    except Refused as refused:
        return _issue(listing, number, refused)


def _entry(folder: Path, roots: Sequence[Path], value: str, utt: str, texts: Table,
           speakers: Table, number: int, offset: float | None = None,
           duration: float | None = None) -> SourceEntry:
    if value.endswith("|") or _ARCHIVE.search(value):
        raise Refused("unsupported_source", f"{value!r} is a command or an archive entry, not "
                      "a file; run it to write the audio to a file and list that.")
    base = next((d for d in (folder, folder.parent.parent) if (d / value).exists()), folder)
    path = media_path(value, base, roots)
    text, stripped = clean_transcript(texts[utt][1], "text") if utt in texts else (None, 0)
    tags: dict[str, object] = {"utt_id": utt}
    if utt in speakers:
        tags["speaker"] = speakers[utt][1]
    if stripped:
        tags[STRIPPED_TAG] = stripped
    return SourceEntry("audio", path, text, duration, tags, number, offset)


def _table(path: Path, issues: list[SourceIssue]) -> Table:
    """`id rest` per line of a Kaldi table; bad and repeated ids go to `issues`."""
    table: Table = {}
    for number, raw in _lines(path, issues):
        key, _, rest = raw.partition(" ")
        rest = rest.strip()
        if key in table:
            issues.append(_issue(path, number, Refused("duplicate", f"id {key!r} is also on "
                                                       f"line {table[key][0]}; only that one "
                                                       "is read.")))
        elif not rest and path.name != "text":
            issues.append(_issue(path, number, Refused("bad_manifest_line",
                                                       f"id {key!r} has no value.")))
        else:
            table[key] = (number, rest)
    return table


def _lines(path: Path, issues: list[SourceIssue]) -> Iterator[tuple[int, str]]:
    """(line, text) per non-blank line; a line that is not UTF-8 goes to `issues`."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8").replace("\t", " ").strip()
            except UnicodeDecodeError:
                issues.append(_issue(path, number, Refused("non_utf8", "the line is not UTF-8; "
                                                           "re-encode the file as UTF-8.")))
                continue
            if text:
                yield number, text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise Refused("bad_manifest_line", f"{text!r} is not a number of seconds >= 0.")
    return value


def _issue(path: Path, number: int, refused: Refused) -> SourceIssue:
    return SourceIssue("audio", str(path), refused.reason, f"{path}:{number}: {refused.detail}",
                       number)
