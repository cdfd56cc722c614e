"""The inbox: manifests dropped into a folder become batch partitions.

``$RLFOUNDRY_INBOX`` (default ``$RLFOUNDRY_HOME/inbox``) holds NeMo-style JSONL
manifests. One at the top level (or under ``train/``) registers a train batch;
one under ``eval/`` a held-out eval batch. The batch is named after the file
(``accents-v2.jsonl`` → ``accents-v2``), with characters a partition key cannot
hold replaced by ``-``.

Example:
    >>> batch_name("/in/2026 11 22 calls.jsonl")
    '2026-11-22-calls'
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from resources.home import rlfoundry_home


@dataclass(frozen=True)
class InboxManifest:
    path: Path
    batch: str
    role: str


def inbox_dir() -> Path:
    return Path(os.environ.get("RLFOUNDRY_INBOX") or rlfoundry_home() / "inbox")


def batch_name(path: str | Path) -> str:
    """A partition key from a manifest's file name."""
    stem = re.sub(r"[^A-Za-z0-9_.\-]+", "-", Path(path).stem).strip("-.") or "batch"
    return stem[:128]


def new_manifests(inbox: Path, known: set[str]) -> list[InboxManifest]:
    """Manifests in the inbox whose batch is not registered yet, oldest file first."""
    found = []
    for role, folder in (("train", inbox), ("train", inbox / "train"), ("eval", inbox / "eval")):
        if folder.is_dir():
            found += [InboxManifest(p, batch_name(p), role) for p in folder.glob("*.jsonl")
                      if p.is_file() and not p.name.startswith(".")]
    found.sort(key=lambda m: (m.path.stat().st_mtime, m.batch))
    out, seen = [], set(known)
    for m in found:
        if m.batch not in seen:
            seen.add(m.batch)
            out.append(m)
    return out
