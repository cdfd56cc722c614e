"""LibriSpeech's layout: `SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt` beside the audio.

Each line of a `*.trans.txt` is `UTTERANCE-ID TRANSCRIPT`; the audio is the
file named by the id in the same folder (`.flac` in LibriSpeech, any audio
extension here, e.g. a copy converted to `.wav`). The id's parts
`SPEAKER-CHAPTER-N` give `speaker` and `chapter` tags. A line whose audio is
not there is `missing`; any other file under the folder that no transcript
file uses (README.TXT, SPEAKERS.TXT, ...) is `skipped`, as in a folder batch.
A single `*.trans.txt` file can be ingested on its own.

Written here rather than with Lhotse's LibriSpeech recipe, which expects the
corpus's split folder names and measures every file before listing it.

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "84" / "121123"; d.mkdir(parents=True)
    >>> _ = (d / "84-121123-0000.flac").write_bytes(b"fLaC")
    >>> _ = (d / "84-121123.trans.txt").write_text("84-121123-0000 GO DO YOU HEAR\\n")
    >>> [(e.path.name, e.text, e.tags["speaker"], e.tags["chapter"])
    ...  for e in read(d.parent.parent, [d.parent.parent])]
    [('84-121123-0000.flac', 'GO DO YOU HEAR', '84', '121123')]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from labeling.ingest.formats.common import Refused, clean_transcript, inside
from labeling.ingest.formats.folder import skipped, walk
from labeling.ingest.manifest import STRIPPED_TAG, SourceEntry, SourceIssue
from labeling.ingest.media import media_kind

SUFFIX = ".trans.txt"


def read(source: Path, roots: Sequence[Path], text_key: str | None = None,
         ) -> Iterator[SourceEntry | SourceIssue]:
    """Every line of every transcript file under `source` (or of the file `source`)."""
    if source.is_file():
        names = sorted(p.name for p in source.parent.iterdir())
        yield from _read_transcripts(source, _audio_by_stem(source.parent, names), roots)
        return
    for item in walk(source):
        if isinstance(item, SourceIssue):
            yield item
            continue
        here, names = item
        audio = _audio_by_stem(here, names)
        used: set[str] = set()
        for name in names:
            if name.endswith(SUFFIX):
                used.add(name)
                for got in _read_transcripts(here / name, audio, roots):
                    if isinstance(got, SourceEntry):
                        used.add(audio[str(got.tags["utt_id"])].name)
                    yield got
        for name in names:
            if name not in used:
                yield skipped(here / name, "no *.trans.txt line beside it names it (a "
                              "LibriSpeech folder ingests the files its transcripts list)")


def _audio_by_stem(folder: Path, names: list[str]) -> dict[str, Path]:
    return {Path(n).stem: folder / n for n in names
            if media_kind(n) == "audio" and not n.startswith(".")}


def _read_transcripts(listing: Path, audio: dict[str, Path], roots: Sequence[Path],
                      ) -> Iterator[SourceEntry | SourceIssue]:
    with listing.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
            except UnicodeDecodeError:
                yield _issue(listing, number, Refused("non_utf8", "the line is not UTF-8; "
                                                      "re-encode the file as UTF-8."))
                continue
            if not line:
                continue
            utt, _, words = line.partition(" ")
            try:
                yield _entry(utt, words, audio, listing, number, roots)
            except Refused as refused:
                yield _issue(listing, number, refused)


def _entry(utt: str, words: str, audio: dict[str, Path], listing: Path, number: int,
           roots: Sequence[Path]) -> SourceEntry:
    if utt not in audio:
        raise Refused("missing", f"no audio file {utt}.flac (or .wav, ...) beside it; restore "
                      "it or remove the line.")
    path = audio[utt].resolve()
    if not inside(path, roots):
        raise Refused("outside_allowed_roots", f"{audio[utt]} links to {path}, outside the "
                      "allowed roots.")
    text, stripped = clean_transcript(words, "transcript")
    parts = utt.split("-")
    tags: dict[str, object] = {"utt_id": utt}
    if len(parts) == 3:
        tags |= {"speaker": parts[0], "chapter": parts[1]}
    if stripped:
        tags[STRIPPED_TAG] = stripped
    return SourceEntry("audio", path, text, tags=tags, line=number)


def _issue(path: Path, number: int, refused: Refused) -> SourceIssue:
    return SourceIssue("audio", str(path), refused.reason, f"{path}:{number}: {refused.detail}",
                       number)
