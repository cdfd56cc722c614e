"""Labels tied to the content of the batch they label.

A batch can be ingested again: from the same source (new files, edited transcripts) or,
with `rlfoundry ingest --replace`, from another. Labels made before (hypotheses, pairs,
rewards, curriculum buckets) then describe clips the batch may no longer hold. So every
label row records the fingerprint of its batch's clip set when it was made (`clip_set`:
md5 over the clip ids and transcripts, `sql/queries/clip_sets.sql`), and the loop compares
it with the batch's fingerprint now: a label table whose rows were made from another set
(or from none recorded: rows written before labels carried one) is stale. The training
set refuses stale labels; `rlfoundry run` labels such batches again first.

Example:
    >>> made_from([{"clip_set": "ab"}, {"clip_set": "ab"}]), made_from([])
    ('ab', None)
    >>> made_from([{"clip_set": "ab"}, {"clip_set": "cd"}]) is None
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sql
from resources.warehouse import Warehouse

MEDIA_IDS = {"audio_clips": "clip_id", "images": "image_id", "videos": "video_id"}


def clip_sets(warehouse: Warehouse, media_table: str, batches: Sequence[str]) -> dict[str, str]:
    """{batch: fingerprint of its rows in `media_table` now}; batches with none are absent."""
    query = sql.load("queries/clip_sets").format(table=media_table,
                                                  id_column=MEDIA_IDS[media_table])
    return dict(warehouse.fetch(query, {"batches": list(batches)}))


def clip_set(warehouse: Warehouse, media_table: str, batch: str) -> str | None:
    """The fingerprint of one batch's clip set now (None: the batch holds no rows)."""
    return clip_sets(warehouse, media_table, [batch]).get(batch)


def made_from(rows: Iterable[Mapping]) -> str | None:
    """The clip set all `rows` (labels read from another label table) were made from; None
    when they disagree, when one recorded none, or when there are no rows."""
    found = {r.get("clip_set") for r in rows}
    return found.pop() if len(found) == 1 else None


def stamp(rows: Iterable[Mapping[str, Any]], made_from: str | None,
          **columns: Any) -> list[dict[str, Any]]:
    """Label rows with the clip set they were made from, the time, and `columns` added."""
    now = datetime.now(UTC)
    return [{**r, **columns, "clip_set": made_from, "created_at": now} for r in rows]


def stale_labels(warehouse: Warehouse, media_table: str, label_tables: Sequence[str],
                 batches: Sequence[str]) -> dict[str, list[str]]:
    """{batch: [label tables holding rows of it made from another clip set than it holds
    now]}, for the batches of `batches` that have any; a table without rows of a batch is
    not stale (it has nothing to mislead with)."""
    now = clip_sets(warehouse, media_table, batches)
    stale: dict[str, list[str]] = {}
    for table in label_tables:
        query = sql.load("queries/label_sets").format(table=table)
        for batch, made in warehouse.fetch(query, {"batches": list(batches)}):
            if set(made) != {now.get(batch)}:
                stale.setdefault(batch, []).append(table)
    return stale


def stale_message(stale: Mapping[str, Sequence[str]], label_job: str) -> str:
    """One sentence per stale batch, and what to run."""
    listed = "; ".join(f"{batch} ({', '.join(tables)})" for batch, tables in stale.items())
    first = next(iter(stale))
    return (f"Labels of train batches made from clips those batches no longer hold (re-"
            f"ingested since): {listed}. Label them again: `rlfoundry job {label_job} "
            f"--batch {first}` per batch, or `rlfoundry run`, which relabels stale batches "
            "first.")
