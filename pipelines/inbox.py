"""The inbox: manifests and data folders dropped into a folder become batch partitions.

``$RLFOUNDRY_INBOX`` (default ``$RLFOUNDRY_HOME/inbox``) holds sources in the formats
``rlfoundry ingest`` reads, each a batch: manifest files (NeMo or Lhotse ``.jsonl``,
``.jsonl.gz``; NeMo's ``.json``) and folders in a format that lists its media (a
Hugging Face audiofolder or saved dataset, Lhotse recordings + supervisions, a Kaldi data
dir, LibriSpeech), as `labeling.ingest.formats.standalone_format` tells them; a plain
folder of media is not a batch (it may hold the audio the manifests beside it name). One at
the top level (or under ``train/``) registers a train batch; one under ``eval/`` a held-out
eval batch (so a data dir itself called ``train`` or ``eval`` goes under one of those). A
Lhotse supervisions file beside its recordings is read with them, as one batch. Names
starting with ``.`` are skipped (the usual name of a file still being copied in).

Names. A batch is named after its file or folder (``accents-v2.jsonl`` → ``accents-v2``),
mapped deterministically to a valid partition key: characters a key cannot hold
become ``-`` and leading ``_ . -`` are dropped (``_calls.jsonl`` → ``calls``).
A file whose name is taken (by another manifest of the inbox, or by a batch
registered from another source) gets the name plus ``-`` and a short hash of its
path inside the inbox (``train/a b.jsonl`` → ``a-b-1f0c…``): stable, so the same
file always gets the same batch, and never silently dropped. A file already
registered keeps the batch it was registered as.

Settling. A source is picked up only once it has not changed (mtime; a folder's: the
latest of the files and folders in it, hidden ones aside) for
``$RLFOUNDRY_INBOX_SETTLE_S`` seconds (default 30), so one still being written
is not ingested half-way. A source changed later (a new size or mtime) is
picked up again and its batch re-run.

Example:
    >>> batch_name("/in/2026 11 22 calls.jsonl")
    '2026-11-22-calls'
    >>> batch_name("/in/_calls.jsonl.gz"), batch_name("/in/cv.v11-dev")
    ('calls', 'cv.v11-dev')
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from labeling.ingest.formats import JSON_SUFFIXES, JSONL_SUFFIXES, standalone_format
from resources.home import rlfoundry_home
from resources.warehouse import PARTITION_RE

SETTLE_ENV = "RLFOUNDRY_INBOX_SETTLE_S"
DEFAULT_SETTLE_S = 30.0
ROLE_FOLDERS = ("train", "eval")
MANIFEST_SUFFIXES = sorted(JSONL_SUFFIXES + JSON_SUFFIXES, key=len, reverse=True)


@dataclass(frozen=True)
class InboxManifest:
    path: Path
    batch: str
    role: str
    size: int = 0
    mtime_ns: int = 0

    @property
    def version(self) -> str:
        """What changes when the file does: its size and mtime."""
        return f"{self.size}:{self.mtime_ns}"

    @property
    def run_key(self) -> str:
        """One run per batch and file version (the format the sensor has always used)."""
        return f"{self.batch}:{self.mtime_ns}"


@dataclass
class InboxScan:
    """One look at the inbox.

    `ready`: new or changed sources, settled, each with a batch name: register and run.
    `settling`: changed within the settle window: looked at again next tick.
    `problems`: sources that cannot become a batch this tick, each with the reason.
    `present`: every source (manifest file or data folder) in the inbox, path → version.
    """

    ready: list[InboxManifest] = field(default_factory=list)
    settling: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    present: dict[str, str] = field(default_factory=dict)


def inbox_dir() -> Path:
    return Path(os.environ.get("RLFOUNDRY_INBOX") or rlfoundry_home() / "inbox")


def settle_seconds() -> float:
    """How long a manifest must stay unchanged before it is picked up."""
    raw = os.environ.get(SETTLE_ENV, "").strip()
    if not raw:
        return DEFAULT_SETTLE_S
    try:
        value = float(raw)
    except ValueError as err:
        raise ValueError(f"{SETTLE_ENV}={raw!r}: expected a number of seconds") from err
    return max(value, 0.0)


def batch_name(path: str | Path) -> str:
    """A valid partition key from a source's file name less its manifest suffix, or from a
    folder's name (letters, digits, `_ . -`, starting with a letter or digit, at most 128
    characters)."""
    name = Path(path).name
    suffix = next((s for s in MANIFEST_SUFFIXES if name.lower().endswith(s)), "")
    stem = re.sub(r"[^A-Za-z0-9_.\-]+", "-", name[:len(name) - len(suffix)])
    return stem.lstrip("_.-")[:128].rstrip("-.") or "batch"


def _hashed_name(base: str, rel: str) -> str:
    digest = hashlib.sha1(rel.encode()).hexdigest()[:8]
    return f"{base[:119].rstrip('-.')}-{digest}"


def _manifest_files(inbox: Path) -> list[tuple[str, Path, int, int]]:
    """(role, path, size, mtime_ns) of every source in the inbox, oldest first."""
    found = []
    for role, folder in (("train", inbox), ("train", inbox / "train"), ("eval", inbox / "eval")):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.name.startswith(".") or (folder == inbox and p.name in ROLE_FOLDERS):
                continue
            try:
                if standalone_format(p) is not None:
                    found.append((role, p, *_version(p)))
            except OSError:  # gone (or changing) between the listing and the look
                continue
    found.sort(key=lambda f: (f[3], str(f[1])))
    return found


def _version(path: Path) -> tuple[int, int]:
    """(size, mtime_ns) of a file; of a folder, the total size (and count) of what is visible
    in it and the latest mtime of those (not of the folder itself, which changes when a
    reader writes a hidden folder into it, e.g. a saved dataset's `.rlfoundry-audio`)."""
    st = path.stat()
    if not path.is_dir():
        return st.st_size, st.st_mtime_ns
    size, latest = 0, 0
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in [*dirnames, *filenames]:
            if not name.startswith("."):
                item = os.stat(os.path.join(dirpath, name))
                size += item.st_size + 1
                latest = max(latest, item.st_mtime_ns)
    return size, latest


def scan_inbox(inbox: Path, *, requested: Mapping[str, str] | None = None,
               sources: Mapping[str, str] | None = None,
               settle_s: float | None = None, now: float | None = None) -> InboxScan:
    """What the inbox holds that has no run yet, oldest file first.

    `requested`: path → version of the manifests whose run was already requested (the
    sensor's cursor); `sources`: batch → resolved source path of every registered batch.
    """
    settle_s = settle_seconds() if settle_s is None else settle_s
    now = time.time() if now is None else now
    requested = requested or {}
    sources = sources or {}
    scan = InboxScan()
    taken = dict(sources)
    by_source = {src: batch for batch, src in sources.items()}
    for role, path, size, mtime_ns in _manifest_files(inbox):
        key = str(path)
        version = f"{size}:{mtime_ns}"
        scan.present[key] = version
        if requested.get(key) == version:
            continue
        if now - mtime_ns / 1e9 < settle_s:
            scan.settling.append(path)
            continue
        src = str(path.resolve())
        batch = by_source.get(src)
        if batch is None:
            base = batch_name(path)
            batch = base if base not in taken else _hashed_name(base, path.relative_to(
                inbox).as_posix())
            if batch in taken:
                scan.problems.append(f"{path}: batch names {base!r} and {batch!r} are both "
                                     f"taken ({taken[base]}, {taken[batch]}); rename the file")
                continue
        if not PARTITION_RE.match(batch):  # cannot happen with batch_name; never raise on it
            scan.problems.append(f"{path}: {batch!r} is not a valid batch name; rename the file")
            continue
        taken[batch] = src
        by_source[src] = batch
        scan.ready.append(InboxManifest(path, batch, role, size, mtime_ns))
    return scan
