"""Greedy transcripts of an eval set by one checkpoint, kept so that a model is decoded once.

The loop's evaluation compares the incumbent, the SFT model, the candidate's starting model
and the candidate; most of them were decoded, on the same clips, by an earlier run. The key
is everything the transcripts depend on: the checkpoint folder (path, and the name, size and
modification time of each file in it, so a folder trained over in place is decoded again),
each clip (id, audio path, reference, tags), the decoding settings (batch size: padding can
change a greedy decode; device) and `VERSION` (bump it when decoding changes). Scores are
recomputed from the transcripts, so grouping does not enter the key.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "model").mkdir(); _ = (root / "model" / "model.safetensors").write_text("w")
    >>> clips = [{"clip_id": "a", "source_path": "/a.wav", "text": "hi", "tags": {}}]
    >>> key = cache_key(root / "model", clips, batch_size=8)
    >>> load(root / "cache", key) is None
    True
    >>> _ = save(root / "cache", key, [{"clip_id": "a", "hypothesis": "hi"}])
    >>> load(root / "cache", key)
    [{'clip_id': 'a', 'hypothesis': 'hi'}]
    >>> key == cache_key(root / "model", [{**clips[0], "text": "hello"}], batch_size=8)
    False
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from training.data.training_set import read_jsonl, write_jsonl

VERSION = 1


def cache_key(checkpoint: str | Path, clips: Sequence[Mapping[str, Any]], **settings: Any) -> str:
    """A digest of what the greedy transcripts of `clips` by `checkpoint` depend on; `settings`
    are the decoding's own (batch size, device)."""
    folder = Path(checkpoint)
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                   for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    payload = {
        "version": VERSION, "checkpoint": str(folder.resolve()) if folder.exists() else str(folder),
        "files": files, "settings": settings,
        "clips": [[c.get("clip_id"), c.get("source_path"), c.get("text"), c.get("tags") or {}]
                  for c in clips],
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def load(cache_dir: str | Path, key: str) -> list[dict[str, Any]] | None:
    """The cached utterance rows under `key`, or None (also for an unreadable entry)."""
    try:
        return read_jsonl(Path(cache_dir) / f"{key}.jsonl")
    except (OSError, json.JSONDecodeError):
        return None


def save(cache_dir: str | Path, key: str, utterances: Sequence[Mapping[str, Any]]) -> Path:
    """Keep `utterances` under `key` (atomically: a crash leaves no half entry)."""
    return write_jsonl(utterances, Path(cache_dir) / f"{key}.jsonl")
