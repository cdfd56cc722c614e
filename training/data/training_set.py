"""A training set snapshot: the exact rows one loop run trains and evaluates on.

A run of the speech loop spans several batch partitions (train on some, evaluate
on others), so it first freezes their rows into one folder: ``sft.jsonl``
(verified transcripts), ``pairs.jsonl`` (preference pairs, TRL's shape) and
``eval.jsonl`` (labeled eval clips), ``guard.jsonl`` (labeled clips of the guard
batches, which a candidate must not get worse on), plus ``snapshot.json`` saying which batches
and how many rows of each went in. Every model trained from the snapshot records
it, so a checkpoint can always be traced to its data.

Example:
    >>> import tempfile, json
    >>> out = tempfile.mkdtemp()
    >>> snap = write_snapshot(out, train_batches=["b1"], eval_batches=["dev"],
    ...     sft=[{"batch": "b1", "clip_id": "c1", "audio": "/a.wav", "text": "hi"}],
    ...     pairs=[], eval_clips=[{"batch": "dev", "clip_id": "c2", "text": "yo"}])
    >>> snap["counts"]
    {'sft': 1, 'pairs': 0, 'eval': 1, 'guard': 0}
    >>> json.loads(open(f"{out}/sft.jsonl").readline())["id"]
    'c1'
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REWARD_TAGS = ("keywords", "language")


class TrainingSetError(ValueError):
    """The selected batches cannot make a training set; the message says what to do."""


def write_jsonl(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write rows as JSON lines, atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, path)
    return path


def sft_records(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Trainer SFT rows (`audio`, `text`, `id`) from verified-transcript rows.

    The tags that rewards read (`keywords`, `language`) and the curriculum `bucket` come along
    when present.
    """
    out = []
    for r in rows:
        tags = r.get("tags") or {}
        tags = json.loads(tags) if isinstance(tags, str) else tags
        row = {"audio": r["audio"], "text": r["text"], "id": r["clip_id"], "batch": r["batch"]}
        row.update({k: tags[k] for k in REWARD_TAGS if tags.get(k) not in (None, "")})
        if r.get("bucket"):
            row["bucket"] = r["bucket"]
        out.append(row)
    return out


def check_selection(train_batches: Sequence[str], eval_batches: Sequence[str],
                    registered: Sequence[str], guard_batches: Sequence[str] = ()) -> None:
    """Raise TrainingSetError when a selection is empty, unknown or overlapping."""
    if not train_batches:
        raise TrainingSetError("No train batches: name some (train_batches) or register one "
                               "with `rlfoundry ingest PATH --batch NAME`.")
    if not eval_batches:
        raise TrainingSetError("No eval batches: name some (eval_batches) or register one with "
                               "`rlfoundry ingest PATH --batch NAME --role eval`.")
    unknown = sorted((set(train_batches) | set(eval_batches) | set(guard_batches))
                     - set(registered))
    if unknown:
        raise TrainingSetError(f"Batches not registered: {', '.join(unknown)}. Register them "
                               "with `rlfoundry ingest PATH --batch NAME`.")
    both = sorted(set(train_batches) & set(eval_batches))
    if both:
        raise TrainingSetError(f"Batches both trained and evaluated on: {', '.join(both)}; "
                               "an eval set must be held out.")
    guarded = sorted(set(train_batches) & set(guard_batches))
    if guarded:
        raise TrainingSetError(f"Batches both trained on and used as guards: "
                               f"{', '.join(guarded)}; a guard set must be held out.")


def write_snapshot(
    out_dir: str | Path, *, train_batches: Sequence[str], eval_batches: Sequence[str],
    sft: Sequence[Mapping[str, Any]], pairs: Sequence[Mapping[str, Any]],
    eval_clips: Sequence[Mapping[str, Any]], guard_batches: Sequence[str] = (),
    guard_clips: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Write the snapshot folder and return `snapshot.json`'s content."""
    out = Path(out_dir)
    write_jsonl(sft_records(sft), out / "sft.jsonl")
    write_jsonl(pairs, out / "pairs.jsonl")
    write_jsonl(eval_clips, out / "eval.jsonl")
    write_jsonl(guard_clips, out / "guard.jsonl")
    snapshot = {
        "dir": str(out.resolve()),
        "train_batches": list(train_batches),
        "eval_batches": list(eval_batches),
        "guard_batches": list(guard_batches),
        "counts": {"sft": len(sft), "pairs": len(pairs), "eval": len(eval_clips),
                   "guard": len(guard_clips)},
        "per_batch": {
            "sft": dict(Counter(r["batch"] for r in sft)),
            "pairs": dict(Counter(r["batch"] for r in pairs)),
            "eval": dict(Counter(r["batch"] for r in eval_clips)),
            "guard": dict(Counter(r["batch"] for r in guard_clips)),
        },
        "buckets": dict(Counter(r.get("bucket") or "unscored" for r in sft)),
        "created_at": datetime.now(UTC).isoformat(),
    }
    (out / "snapshot.json").write_text(json.dumps(snapshot, indent=2))
    return snapshot


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
