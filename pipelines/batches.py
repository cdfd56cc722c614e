"""Rules for ingesting a batch name that already exists (`rlfoundry ingest`).

A batch is one source (a manifest or a folder) with one role. Ingesting it again
from the same source refreshes it (new files, edited transcripts) and keeps its
role unless another is given. Another source, or another role, would silently
replace its rows (and turn a held-out eval batch into training data), so it is
refused unless `--replace` is passed (then a WARNING line says what is replaced). A batch
that holds no rows yet (its first ingest landed nothing) has nothing to lose: it takes
another source or role without `--replace`. A source already registered under another
batch name is ingested, with a warning: its files are that batch's, so they land here as
duplicates. Labels made before a batch's content changed are refused by the loop and
relabeled by `rlfoundry run` (see `assets.label_sets`).
"""

from __future__ import annotations

from pathlib import Path

import sql
from resources.warehouse import Warehouse

MEDIA_TABLES = ("audio_clips", "images", "videos")


def registration(warehouse: Warehouse, batch: str, source: Path | str, role: str | None,
                 replace: bool) -> tuple[str, str | None]:
    """The role to register `batch` with and a line to tell the user (None: nothing to say).
    `source` is a path, or a dataset URI (`hf://datasets/ID`), kept as it is.

    Raises ValueError, saying what to do, when an existing batch would change source or
    role without `replace`.
    """
    new_source = (str(source) if "://" in str(source)
                  else str(Path(source).expanduser().resolve()))
    try:
        old = warehouse.batch_source(batch)
    except LookupError:
        return role or "train", _shared_source(warehouse, batch, new_source)
    role = role or old["role"] or "train"
    changes = []
    if old["source"] != new_source:
        changes.append(f"source {old['source']} → {new_source}")
    if (old["role"] or "train") != role:
        changes.append(f"role {old['role'] or 'train'} → {role}")
    held = _held(warehouse, batch)
    if changes and held == EMPTY:  # nothing landed before: nothing to replace
        return role, f"batch {batch} holds no rows yet: now {'; '.join(changes)}"
    if changes and not replace:
        raise ValueError(
            f"Batch {batch!r} exists ({held}, source {old['source']}, role {old['role']}); "
            f"ingesting it with {' and '.join(changes)} would replace its rows and make its "
            f"labels stale. Pass --replace to do that, or pick a new batch name.")
    if changes:
        return role, (f"WARNING: replacing batch {batch} ({held}): {'; '.join(changes)}; its "
                      "labels become stale (`rlfoundry run` labels it again)")
    return role, (f"batch {batch} exists ({held}, role {role}): ingesting its source again "
                  "(its labels stay valid if its clips and transcripts are unchanged; "
                  "otherwise `rlfoundry run` labels it again)")


def _shared_source(warehouse: Warehouse, batch: str, source: str) -> str | None:
    """A warning when `source` is already another batch's: its files will be duplicates."""
    others = [b for b, _, src, _ in warehouse.fetch(sql.load("queries/batches_by_role"))
              if src == source and b != batch]
    if not others:
        return None
    return (f"WARNING: {source} is already ingested as batch {', '.join(others)}; its files "
            f"stay there and are duplicates in {batch}")


EMPTY = "no rows"


def _held(warehouse: Warehouse, batch: str) -> str:
    """What the batch holds now, e.g. '120 audio_clips, 4 images' (or 'no rows')."""
    counts = [(table, warehouse.count(table, batch)) for table in MEDIA_TABLES]
    return ", ".join(f"{n} {table}" for table, n in counts if n) or EMPTY
