"""Small pieces every asset module shares: partitions, metadata, known hashes."""

from __future__ import annotations

import base64
from collections import Counter
from pathlib import Path
from typing import Any

from dagster import MetadataValue

import sql
from labeling.ingest import IngestResult
from pipelines.partitions import batches  # noqa: F401  (re-exported for asset modules)
from resources.warehouse import Warehouse


def known_ids(warehouse: Warehouse, table: str, id_column: str, batch: str) -> dict:
    """Content hashes other batches already hold: {id: (source_path, batch)}."""
    query = sql.load("queries/known_hashes").format(table=table, id_column=id_column)
    return {row[0]: (row[1], row[2]) for row in warehouse.fetch(query, {"batch": batch})}


def ingest_metadata(result: IngestResult, extra_issues: int = 0) -> dict[str, Any]:
    """Counts a person checks first: ingested, duplicate, quarantined (by reason)."""
    reasons = Counter(q["reason"] for q in result.quarantined if q["reason"] != "duplicate")
    return {
        "ingested": len(result.rows),
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


def progress_logger(context, what: str, every: int = 50):
    """A progress callback that logs every `every` items and at the end."""

    def log(done: int, total: int) -> None:
        if done == total or done % every == 0:
            context.log.info(f"{what}: {done}/{total}")

    return log
