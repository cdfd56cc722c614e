"""A Hugging Face `datasets` dataset saved with `save_to_disk`, or named by its hub id and read
from the local cache (`formats.hf_name`), with an `Audio` column.

Read with `datasets.load_from_disk` (`load_dataset` for a name); a
`DatasetDict` gives each row its split as a `split` tag (so does the one split
a name may ask for). The audio column (`audio` if there are several) is cast to
`Audio(decode=False)`, so nothing here needs torchcodec: each row's audio is
the `{bytes, path}` the dataset stores. Embedded bytes (what `save_to_disk`
writes, even for audio first given by path) have no file to stay in, so they
are written once, content-addressed, to `.rlfoundry-audio/<sha256>.<ext>` in
the dataset's folder (a named dataset's: `hf_name.media_dir`) and the clip
refers to that file; a row with only a path refers to it where it is (relative
to the dataset's folder).

The transcript is the `text` column, the one `--text-key` names, or the one
common alternative present (`sentence`, `transcription`, ...;
`formats.common`); other scalar columns are tags (class labels by name);
columns that are not scalars are not kept, and each entry's note says which.

Example:
    >>> import io, pathlib, tempfile, numpy as np, soundfile as sf
    >>> from datasets import Audio, Dataset
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> wav = io.BytesIO(); sf.write(wav, np.zeros(160), 16000, format="WAV")
    >>> Dataset.from_dict({"audio": [{"bytes": wav.getvalue(), "path": "a.wav"}],
    ...     "sentence": ["hi"]}).cast_column("audio", Audio(decode=False)).save_to_disk(d / "ds")
    >>> [(e.path.parent.name, e.path.suffix, e.text) for e in read(d / "ds", [d / "ds"])]
    [('.rlfoundry-audio', '.wav', 'hi')]
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeling.ingest.formats.common import Refused, clean_transcript, media_path, text_key_for
from labeling.ingest.manifest import STRIPPED_TAG, SourceEntry, SourceIssue
from labeling.ingest.media import AUDIO_EXTS

MEDIA_DIR = ".rlfoundry-audio"
_MAGIC = ((b"RIFF", ".wav"), (b"fLaC", ".flac"), (b"OggS", ".ogg"), (b"ID3", ".mp3"),
          (b"\xff\xfb", ".mp3"), (b"\xff\xf3", ".mp3"), (b"\xff\xf2", ".mp3"))


def read(folder: Path, roots: Sequence[Path], text_key: str | None = None,
         ) -> Iterator[SourceEntry | SourceIssue]:
    """Every row of every split of the saved dataset in `folder`."""
    import datasets

    try:
        loaded = datasets.load_from_disk(str(folder))
    except Exception as err:  # noqa: BLE001 - the library's boundary: any failure is data
        yield SourceIssue("audio", str(folder), "unreadable_dataset", f"{folder}: "
                          f"datasets.load_from_disk cannot read it ({type(err).__name__}: "
                          f"{err}); save it again with `save_to_disk`.")
        return
    yield from _read_loaded(loaded, None, Source(str(folder), folder, folder / MEDIA_DIR, roots),
                            text_key)


def read_named(source: str, roots: Sequence[Path], text_key: str | None = None,
               ) -> Iterator[SourceEntry | SourceIssue]:
    """Every row of the dataset named `source` (`hf://datasets/ID[:...]`), from the cache."""
    from labeling.ingest.formats import hf_name

    try:
        loaded = hf_name.load(source)
    except ValueError as err:
        yield SourceIssue("audio", source, "unreadable_dataset", str(err))
        return
    media = hf_name.media_dir(source)
    split = (hf_name.parse(source)[2] or "").split("[")[0].strip() or None
    yield from _read_loaded(loaded, split, Source(source, media, media, [*roots, media]),
                            text_key)


@dataclass(frozen=True)
class Source:
    """Where rows come from: `where` (for messages), `base` (of relative audio paths),
    `media` (the folder embedded audio is written to) and the allowed `roots`."""

    where: str
    base: Path
    media: Path
    roots: Sequence[Path]


def _read_loaded(loaded: Any, split: str | None, source: Source, text_key: str | None,
                 ) -> Iterator[SourceEntry | SourceIssue]:
    import datasets

    if isinstance(loaded, datasets.DatasetDict):
        for name, dataset in loaded.items():
            yield from _read_split(source, dataset, name, text_key)
    else:
        yield from _read_split(source, loaded, split, text_key)


def _read_split(source: Source, dataset: Any, split: str | None,
                text_key: str | None) -> Iterator[SourceEntry | SourceIssue]:
    import datasets

    where = f"{source.where}" + (f" (split {split})" if split else "")
    features = dataset.features
    audio = [n for n, f in features.items() if isinstance(f, datasets.Audio)]
    columns = list(features)
    key, note = text_key_for(columns, text_key)
    missing = "Audio column" if not audio else (
        f"`{text_key}` column (--text-key)" if text_key and text_key not in columns else None)
    if missing:
        listed = ", ".join(f"{n} ({type(f).__name__})" for n, f in features.items())
        yield SourceIssue("audio", source.where, "missing_column", f"{where}: has no {missing} "
                          f"(its columns: {listed}); none of its rows were read.")
        return
    column = "audio" if "audio" in audio else audio[0]
    scalar = {n: f for n, f in features.items() if n not in (column, key)
              and isinstance(f, datasets.Value | datasets.ClassLabel)}
    dropped = [n for n in columns if n not in scalar and n not in (column, key)]
    if dropped:
        note = "; ".join(filter(None, [note, "columns not kept as tags (not scalars): "
                                       + ", ".join(dropped)]))
    dataset = dataset.cast_column(column, datasets.Audio(decode=False))
    for number, row in enumerate(dataset, start=1):
        try:
            path = _audio_file(row[column], source.base, source.roots, source.media)
            text, stripped = clean_transcript(row.get(key) if key else None, key or "")
        except Refused as refused:
            yield SourceIssue("audio", source.where, refused.reason,
                              f"{where} row {number}: {refused.detail}", number)
            continue
        tags = {n: f.int2str(row[n]) if isinstance(f, datasets.ClassLabel) and row[n] is not None
                and row[n] >= 0 else row[n] for n, f in scalar.items() if row[n] is not None}
        if split and "split" not in tags:
            tags["split"] = split
        if stripped:
            tags[STRIPPED_TAG] = stripped
        yield SourceEntry("audio", path, text, tags=tags, line=number, note=note)


def _audio_file(value: dict[str, Any] | None, folder: Path, roots: Sequence[Path],
                media: Path | None = None) -> Path:
    """The file a row's audio is in: its path (relative to `folder`), or its bytes written
    out to `media` (default: `folder/.rlfoundry-audio`; module docstring)."""
    if not value or not (value.get("bytes") or value.get("path")):
        raise Refused("no_media_path", "the row has no audio (neither bytes nor a path).")
    if not value.get("bytes"):
        return media_path(value["path"], folder, roots)
    data: bytes = value["bytes"]
    digest = hashlib.sha256(data).hexdigest()
    target = (media or folder / MEDIA_DIR) / f"{digest}{_extension(value.get('path'), data)}"
    if not target.is_file() or target.stat().st_size != len(data):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        except OSError as err:
            raise Refused("unwritable", f"its embedded audio cannot be written to {target} "
                          f"({err.strerror or err}); make that folder writable.") from None
    return target


def _extension(path: str | None, data: bytes) -> str:
    """The audio extension of the row's path, else one sniffed from the bytes."""
    suffix = Path(path or "").suffix.lower()
    if suffix in AUDIO_EXTS:
        return suffix
    if data[4:8] == b"ftyp":
        return ".m4a"
    return next((ext for magic, ext in _MAGIC if data.startswith(magic)), suffix or ".bin")
