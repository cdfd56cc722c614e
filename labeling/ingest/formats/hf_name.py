"""A Hugging Face dataset named by its hub id, read from the local `datasets` cache.

`rlfoundry ingest someone/speech --format hf-dataset --batch B` (or the id written
`hf://datasets/someone/speech`, which needs no `--format`) reads the dataset with
`datasets.load_dataset`, which, offline (`HF_HUB_OFFLINE=1`, the CLI's default),
finds a dataset only in the local cache (`HF_DATASETS_CACHE`, default
`$HF_HOME/datasets`), where an earlier `load_dataset` on a machine with the hub
left it. A dataset not there is a one-line error naming the cache.

Which part of it: `ID` reads every split (each row tagged with its `split`),
`ID:SPLIT` one split (`datasets`' slices too: `train[:100]`), `ID:CONFIG:SPLIT`
a configuration when several are cached (`ID:CONFIG:` all its splits). The
batch's source is kept as `hf://datasets/ID[:...]`. Rows are read as for a
dataset saved to disk (`formats.hf_dataset`); embedded audio is written once,
content-addressed, under `$RLFOUNDRY_HOME/hf-datasets/<namespace>___<name>/`
(the cache may be shared and read-only), and a row's audio path must lie in the
cache folders (or `--allowed-root`).

Example:
    >>> source_of("someone/speech:train"), source_of("./train.jsonl")
    ('hf://datasets/someone/speech:train', None)
    >>> parse("hf://datasets/someone/speech:en:test[:10]")
    ('someone/speech', 'en', 'test[:10]')
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

PREFIX = "hf://datasets/"
_PART = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
_SEG = r"((?:[^:/\[\]]|\[[^\]]*\])*)"  # a config or split; brackets may hold colons
SPEC_RE = re.compile(rf"^({_PART}(?:/{_PART})?)(?::{_SEG})?(?::{_SEG})?$")


def is_named(source: Any) -> bool:
    """Whether a source is a dataset id (`hf://datasets/...`), not a path."""
    return isinstance(source, str) and source.startswith(PREFIX)


def source_of(spec: str) -> str | None:
    """`hf://datasets/<spec>` when `spec` (with or without that prefix) reads as a dataset id
    with an optional config and split; None otherwise (e.g. a relative file path)."""
    spec = spec.removeprefix(PREFIX)
    return PREFIX + spec if SPEC_RE.match(spec) else None


def parse(source: str) -> tuple[str, str | None, str | None]:
    """(id, config or None, split or None) of a dataset source; ValueError if it is none."""
    match = SPEC_RE.match(source.removeprefix(PREFIX))
    if not match:
        raise ValueError(f"{source!r} is not a Hugging Face dataset id (NAMESPACE/NAME, "
                         "optionally :SPLIT or :CONFIG:SPLIT).")
    name, first, second = match.groups()
    if second is None:  # ID or ID:SPLIT
        return name, None, first or None
    return name, first or None, second or None


def cache_dir() -> Path:
    """The `datasets` cache `load_dataset` reads (HF_DATASETS_CACHE, else $HF_HOME/datasets)."""
    import datasets

    return Path(datasets.config.HF_DATASETS_CACHE)


def default_roots() -> list[Path]:
    """Where a named dataset's audio files may lie: the datasets cache and the hub cache."""
    from huggingface_hub import constants

    return [cache_dir().resolve(), Path(constants.HF_HUB_CACHE).expanduser().resolve()]


def media_dir(source: str) -> Path:
    """Where the embedded audio of dataset `source` is written (module docstring)."""
    from resources.home import rlfoundry_home

    return rlfoundry_home() / "hf-datasets" / parse(source)[0].replace("/", "___")


def load(source: str) -> Any:
    """The dataset (a `Dataset` for one split, else a `DatasetDict`); ValueError, one line,
    when it cannot be loaded: not cached here (offline), or no such config or split."""
    import datasets

    name, config, split = parse(source)
    verbosity = datasets.logging.get_verbosity()
    datasets.logging.set_verbosity_error()  # not "using the latest cached version": we asked
    try:
        return datasets.load_dataset(name, config, split=split)
    except ConnectionError:  # offline (or no network) and not in the cache
        how = ("`HF_HUB_OFFLINE=0 rlfoundry ingest ...` downloads it"
               if datasets.config.HF_HUB_OFFLINE else "it downloads once the hub is reachable")
        raise ValueError(f"Hugging Face dataset {name!r} is not in the local cache at "
                         f"{cache_dir()} (HF_DATASETS_CACHE); on a machine with the hub {how}, "
                         "or pass a folder written by `save_to_disk`.") from None
    except Exception as err:  # noqa: BLE001 - the library's boundary: say it in one line
        text = " ".join(str(err).split())
        raise ValueError(f"Hugging Face dataset {name!r} cannot be loaded from {cache_dir()} "
                         f"({type(err).__name__}: {text}); name a configuration and split as "
                         "ID:CONFIG:SPLIT.") from None
    finally:
        datasets.logging.set_verbosity(verbosity)
