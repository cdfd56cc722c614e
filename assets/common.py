"""Small pieces every asset module shares: partitions, metadata, known hashes."""

from __future__ import annotations

import base64
import time
from collections import Counter
from pathlib import Path
from typing import Any

from dagster import MetadataValue

import sql
from labeling.ingest.manifest import tags_json  # noqa: F401  (re-exported for asset modules)
from labeling.ingest.rows import IngestResult
from pipelines.partitions import batches  # noqa: F401  (re-exported for asset modules)
from resources.warehouse import Warehouse


def known_ids(warehouse: Warehouse, table: str, id_column: str, batch: str) -> dict:
    """Content hashes other batches already hold: {id: (source_path, batch)}."""
    query = sql.load("queries/known_hashes").format(table=table, id_column=id_column)
    return {row[0]: (row[1], row[2]) for row in warehouse.fetch(query, {"batch": batch})}


def ingest_metadata(result: IngestResult) -> dict[str, Any]:
    """Counts a person checks first: ingested, duplicate, quarantined (by reason)."""
    reasons = Counter(q["reason"] for q in result.quarantined if q["reason"] != "duplicate")
    return {
        "ingested": result.ingested,
        "duplicates": result.duplicates,
        "quarantined": sum(reasons.values()),
        "quarantine_reasons": MetadataValue.md(
            "\n".join(f"- `{r}`: {n}" for r, n in reasons.most_common()) or "none"
        ),
    }


def png_markdown(path: Path, alt: str) -> MetadataValue:
    """A PNG embedded in markdown metadata, so the plot shows in the Dagster UI."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return MetadataValue.md(f"![{alt}](data:image/png;base64,{data})")


def progress_logger(context, what: str, min_interval_s: float = 10.0):
    """A progress callback that logs at most every `min_interval_s` seconds, and at the end.

    Time-based, not count-based: each Dagster log event is a write to the
    instance's storage (~25 ms on SQLite), so logging every N items would slow
    a 10,000-file batch by seconds.
    """
    last = time.monotonic()

    def log(done: int, total: int | None = None) -> None:
        nonlocal last
        now = time.monotonic()
        if done == total or now - last >= min_interval_s:
            last = now
            context.log.info(f"{what}: {done}" + (f"/{total}" if total else ""))

    return log
