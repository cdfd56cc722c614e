"""What the audio questions chain's assets share: reading a batch's rows, stamping them."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from dagster import MetadataValue

import sql
from resources.warehouse import Warehouse

CLIPS_SQL = "queries/clips_for_batch"


def read(warehouse: Warehouse, query: str, batch: str) -> list[dict]:
    """The rows of `sql/<query>.sql` for one batch."""
    return warehouse.fetch_dicts(sql.load(query), {"batch": batch})


def read_clips(warehouse: Warehouse, batch: str) -> list[dict]:
    """The batch's clips (every split), tags parsed."""
    rows = warehouse.fetch_dicts(sql.load(CLIPS_SQL), {"batch": batch, "splits": []})
    return [{**r, "tags": json.loads(r["tags"])} for r in rows]


def stamp(rows: Sequence[Mapping[str, Any]], made_from: str | None) -> list[dict[str, Any]]:
    """Rows with their clip set and the time added."""
    now = datetime.now(UTC)
    return [{**r, "clip_set": made_from, "created_at": now} for r in rows]


def reasons_md(failures: Sequence[Mapping[str, Any]]) -> MetadataValue:
    """Quarantine counts by reason, as a markdown list."""
    counts = Counter(f["reason"] for f in failures)
    return MetadataValue.md("\n".join(f"- `{r}`: {n}" for r, n in counts.most_common()) or "none")


def table_md(header: Sequence[str], rows: Sequence[Sequence[Any]], empty: str = "none"
             ) -> MetadataValue:
    """A markdown table (`empty` when there are no rows)."""
    if not rows:
        return MetadataValue.md(empty)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return MetadataValue.md("\n".join(lines))
