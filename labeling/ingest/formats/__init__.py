"""One reader per data format, all yielding `SourceEntry`s and `SourceIssue`s; the format of a
path detected from what it holds.

Detection (`detect_format`), first match wins:

* a file: `wav.scp` → kaldi (its folder); `metadata.csv`/`metadata.jsonl` → audiofolder
  (its folder); `*.trans.txt` → librispeech (that file); a JSONL file (gzipped or not)
  whose first line is a Lhotse cut, recording or supervision → lhotse; any other file → nemo;
* a folder: `dataset_info.json` + `state.json`, or `dataset_dict.json` → hf-dataset;
  `wav.scp` → kaldi; `metadata.csv`/`metadata.jsonl` in it or in a folder just under it
  → audiofolder; Lhotse manifests in it (`*cuts*`, `*recordings*`, `*supervisions*` .jsonl,
  .jsonl.gz) → lhotse; a `*.trans.txt` anywhere under it → librispeech; else → folder.

A source that is no path but a Hugging Face dataset id (`hf://datasets/ID`, or
`ID` with format hf-dataset; `source_of`) is read from the local `datasets`
cache (`formats.hf_name`).

Readers of heavy libraries (`datasets`, `lhotse`) are imported only when used.

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "metadata.csv").write_text("file_name,transcription\\n")
    >>> detect_format(d), detect_format(d / "metadata.csv")
    ('audiofolder', 'audiofolder')
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from labeling.ingest.formats import hf_name
from labeling.ingest.formats.common import first_record, resolve_roots
from labeling.ingest.manifest import SourceEntry, SourceIssue

# format -> reader module (under labeling.ingest.formats)
FORMATS = {"nemo": "nemo", "folder": "folder", "audiofolder": "audiofolder",
           "hf-dataset": "hf_dataset", "lhotse": "lhotse", "kaldi": "kaldi",
           "librispeech": "librispeech"}
KEYED = ("nemo", "audiofolder", "hf-dataset")  # formats whose transcript has a key to choose
METADATA_FILES = ("metadata.csv", "metadata.jsonl")
HF_DISK_FILES = (("dataset_info.json", "state.json"), ("dataset_dict.json",))
LHOTSE_WORDS = ("cuts", "recordings", "supervisions")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
JSON_SUFFIXES = (".json", ".json.gz")  # NeMo's own name for its (JSONL) manifests
PATH_KEYS = ("audio_filepath", "image_filepath", "video_filepath")  # a manifest line's media


def read(source: str | Path, allowed_roots: Sequence[str | Path] | None, format: str | None,
         text_key: str | None) -> Iterator[SourceEntry | SourceIssue]:
    """Entries and issues of `source` in `format` (detected when None); see `iter_source`."""
    if hf_name.is_named(source):  # loaded by the reader: not cached is an issue, as unreadable
        _named_format(source, format)
        from labeling.ingest.formats import hf_dataset

        roots = ([Path(r).expanduser().resolve() for r in allowed_roots] if allowed_roots
                 else hf_name.default_roots())
        return hf_dataset.read_named(source, roots, text_key)
    source = Path(source).expanduser().resolve()
    format = check(source, format, text_key)
    home = source if source.is_dir() else source.parent
    if format in ("kaldi", "audiofolder") and source.is_file():
        source = home  # a data dir's wav.scp, an audiofolder's metadata file: the folder
    roots = resolve_roots(allowed_roots, home)
    reader = importlib.import_module(f"{__name__}.{FORMATS[format]}")
    return reader.read(source, roots, text_key)


def source_of(raw: str | Path, format: str | None = None) -> Path | str:
    """The source `raw` names: an existing path (resolved), or a Hugging Face dataset id as
    `hf://datasets/ID` (`raw` written so, or no such path and `format` hf-dataset).
    FileNotFoundError otherwise, saying how to name a dataset when `raw` could be one.

    >>> source_of("someone/speech", "hf-dataset")
    'hf://datasets/someone/speech'
    """
    text = str(raw)
    if hf_name.is_named(text):
        return text
    path = Path(text).expanduser()
    if path.exists():
        return path.resolve()
    named = hf_name.source_of(text)
    if named and format == "hf-dataset":
        return named
    hint = "; a Hugging Face dataset id? add --format hf-dataset" if named else ""
    raise FileNotFoundError(f"Path {text!r} does not exist{hint}.")


def check(source: str | Path, format: str | None = None, text_key: str | None = None) -> str:
    """The format `source` is read as: `format`, else the detected one. FileNotFoundError
    for a missing source; ValueError for an unknown format, or a `text_key` for a format
    whose transcripts have no key to choose. A dataset id (`hf://datasets/...`) is loaded
    from the cache: ValueError when it is not there.

    >>> check(".", "kaldi", text_key="sentence")
    Traceback (most recent call last):
    ...
    ValueError: --text-key applies to nemo, audiofolder, hf-dataset sources; a kaldi source \
says where its transcripts are itself.
    """
    if hf_name.is_named(source):
        _named_format(source, format)
        hf_name.load(source)
        return "hf-dataset"
    source = Path(source).expanduser().resolve()
    if not source.exists():
        raise FileNotFoundError(f"Source {source} is neither a manifest file nor a folder.")
    format = format or detect_format(source)
    if format not in FORMATS:
        raise ValueError(f"Unknown format {format!r}; formats: {', '.join(FORMATS)}.")
    if text_key and format not in KEYED:
        raise ValueError(f"--text-key applies to {', '.join(KEYED)} sources; a {format} "
                         "source says where its transcripts are itself.")
    if problem := _misfit(source, format):
        raise ValueError(f"{source} is not a {format} source: {problem}.")
    return format


def _named_format(source: str, format: str | None) -> None:
    if format not in (None, "hf-dataset"):
        raise ValueError(f"{source} is a Hugging Face dataset id: it is read as hf-dataset, "
                         f"not {format}.")


def _misfit(source: Path, format: str) -> str | None:
    """Why `source` cannot be read as `format` (a format named by hand), or None."""
    folder = source if source.is_dir() else source.parent
    if format == "kaldi" and not (folder / "wav.scp").is_file():
        return f"there is no wav.scp in {folder}"
    if format == "hf-dataset" and not (source.is_dir() and any(
            all((source / f).is_file() for f in group) for group in HF_DISK_FILES)):
        return "it is not a folder written by `save_to_disk` (dataset_info.json + state.json, " \
               "or dataset_dict.json)"
    if format == "folder" and not source.is_dir():
        return "it is a file, not a folder"
    if format == "nemo" and source.is_dir():
        return "it is a folder, not a manifest file"
    if format == "lhotse" and source.is_dir() and not lhotse_manifests(source):
        return "no Lhotse manifest (*cuts*, *recordings*, *supervisions* .jsonl(.gz)) in it"
    if format == "librispeech" and not (source.name.endswith(".trans.txt")
                                        or source.is_dir() and _has_trans_txt(source)):
        return "it holds no *.trans.txt"
    if format == "audiofolder" and source.is_file() and source.name.lower() not in METADATA_FILES:
        return "an audiofolder is a folder with metadata.csv or metadata.jsonl"
    return None


def detect_format(source: Path) -> str:
    """The format of a file or folder (module docstring)."""
    source = Path(source)
    if source.is_file():
        name = source.name.lower()
        if name == "wav.scp":
            return "kaldi"
        if name in METADATA_FILES:
            return "audiofolder"
        if name.endswith(".trans.txt"):
            return "librispeech"
        return "lhotse" if is_lhotse_record(first_record(source)) else "nemo"
    names = {p.name for p in source.iterdir()}
    if any(all(f in names for f in group) for group in HF_DISK_FILES):
        return "hf-dataset"
    if "wav.scp" in names:
        return "kaldi"
    if names & set(METADATA_FILES) or any(
            (source / n / m).is_file() for n in names for m in METADATA_FILES
            if not n.startswith(".")):
        return "audiofolder"
    if lhotse_manifests(source):
        return "lhotse"
    if _has_trans_txt(source):
        return "librispeech"
    return "folder"


def standalone_format(path: Path) -> str | None:
    """The format of `path` if it is a source on its own (a file or folder found by itself,
    e.g. in the inbox), else None: a JSONL file, gzipped or not (nemo or lhotse, but for a
    Lhotse supervisions file beside its recordings, read with them); a `.json` file whose
    first line is a NeMo line or a Lhotse record (NeMo's own name for its manifests); a
    folder in a format that lists its media (any `detect_format` tells from a plain folder
    of media, which may hold the audio that manifests beside it name).

    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.jsonl").write_text(""); _ = (d / "b.json").write_text('{"x": 1}')
    >>> standalone_format(d / "a.jsonl"), standalone_format(d / "b.json"), standalone_format(d)
    ('nemo', None, None)
    """
    path = Path(path)
    if path.is_dir():
        format = detect_format(path)
        return None if format == "folder" else format
    name = path.name.lower()
    if not name.endswith(JSONL_SUFFIXES + JSON_SUFFIXES):
        return None
    record = first_record(path)
    if is_lhotse_record(record):
        from labeling.ingest.formats.lhotse import PAIR, partner_of

        return None if PAIR[1] in path.name and partner_of(path) else "lhotse"
    if name.endswith(JSONL_SUFFIXES) or (record and any(k in record for k in PATH_KEYS)):
        return "nemo"
    return None


def is_lhotse_record(record: dict | None) -> bool:
    """Whether a JSON object is a Lhotse cut, recording or supervision (not a NeMo line)."""
    if not record or "audio_filepath" in record:
        return False
    return (record.get("type") in ("MonoCut", "MultiCut", "MixedCut", "Cut")
            or {"id", "sources", "sampling_rate"} <= record.keys()
            or {"id", "recording_id", "start", "duration"} <= record.keys())


def lhotse_manifests(folder: Path) -> list[Path]:
    """The Lhotse manifests directly in `folder` (by name: cuts, recordings, supervisions)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.name.lower().endswith(JSONL_SUFFIXES)
                  and any(w in p.name.lower() for w in LHOTSE_WORDS))


def _has_trans_txt(folder: Path) -> bool:
    for _, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if any(f.endswith(".trans.txt") for f in filenames):
            return True
    return False
