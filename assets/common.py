"""Small pieces every asset module shares: partitions, metadata, known hashes."""

from __future__ import annotations

import base64
import json
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dagster import MetadataValue

import sql
from labeling.ingest.manifest import tags_json  # noqa: F401  (re-exported for asset modules)
from labeling.ingest.rows import IngestResult
from pipelines.partitions import batches  # noqa: F401  (re-exported for asset modules)
from resources.warehouse import Warehouse


def known_ids(warehouse: Warehouse, table: str, id_column: str, batch: str) -> dict:
    """Content hashes other batches already hold: {id: (source_path, batch, text)}.

    `text` (None when the stored row has none) lets ingestion tell a duplicate that
    carries another transcript (`duplicate_text_differs`) from a plain `duplicate`.
    """
    query = sql.load("queries/known_hashes").format(table=table, id_column=id_column)
    return {row[0]: (row[1], row[2], row[3])
            for row in warehouse.fetch(query, {"batch": batch})}


def drop_claimed(warehouse: Warehouse, table: str, id_column: str, batch: str,
                 path: Path) -> list[dict[str, Any]]:
    """Drop from the finished partition file `path` the rows whose content hash another
    batch holds now (one it committed while this batch was decoding); returns them as
    `duplicate` quarantine items.

    Call it with the ingest lock held, just before `path` is published (see
    `Warehouse.partition_writer`'s `before_commit`): the batch that committed first keeps
    the clip. Reads only the id column unless a row must go; then rewrites the file in
    record batches (memory stays flat).
    """
    ids = pq.read_table(path, columns=[id_column])[id_column].combine_chunks()
    if not len(ids):
        return []
    query = sql.load("queries/claimed_hashes").format(table=table, id_column=id_column)
    with warehouse.connect() as con:
        con.register("incoming", pa.table({"id": ids}))
        held = {row[0]: (row[1], row[2])
                for row in con.execute(query, {"batch": batch}).fetchall()}
    if not held:
        return []
    claimed = pa.array(list(held), type=pa.string())
    source = pq.ParquetFile(path)
    out = path.with_name(path.name + ".claimed")
    dropped: list[dict[str, Any]] = []
    try:
        with pq.ParquetWriter(out, source.schema_arrow) as writer:
            for chunk in source.iter_batches():
                rows = pa.Table.from_batches([chunk], source.schema_arrow)
                dup = pc.is_in(rows[id_column], value_set=claimed)
                for row in rows.filter(dup).select(
                        [id_column, "source_path", "manifest_line"]).to_pylist():
                    other_path, other_batch = held[row[id_column]]
                    dropped.append({
                        "source_path": row["source_path"], "line": row["manifest_line"],
                        "reason": "duplicate",
                        "detail": f"same sha256 {row[id_column][:12]}… as {other_path} in "
                                  f"batch {other_batch!r} (committed while this batch was "
                                  "ingesting)"})
                writer.write_table(rows.filter(pc.invert(dup)))
        source.close()
        os.replace(out, path)
    finally:
        out.unlink(missing_ok=True)
    return dropped


NOT_BAD = ("duplicate", "skipped")  # recorded in quarantine, but not bad media


CLIPS_SQL = "queries/clips_for_batch"


def read(warehouse: Warehouse, query: str, batch: str) -> list[dict]:
    """The rows of `sql/<query>.sql` for one batch."""
    return warehouse.fetch_dicts(sql.load(query), {"batch": batch})


def load_clips(warehouse: Warehouse, batch: str, splits: list[str] | None = None) -> list[dict]:
    """The batch's audio clips (optionally only some `split` tags), tags parsed."""
    rows = warehouse.fetch_dicts(sql.load(CLIPS_SQL), {"batch": batch, "splits": splits or []})
    return [{**r, "tags": json.loads(r["tags"])} for r in rows]


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


def ingest_metadata(result: IngestResult) -> dict[str, Any]:
    """Counts a person checks first: ingested, duplicate, skipped (files a folder batch
    did not read, e.g. a notes file), quarantined (by reason)."""
    bad = [q for q in result.quarantined if q["reason"] not in NOT_BAD]
    return {
        "ingested": result.ingested,
        "duplicates": result.duplicates,
        "skipped": sum(q["reason"] == "skipped" for q in result.quarantined),
        "quarantined": len(bad),
        "quarantine_reasons": reasons_md(bad),
    }


def png_markdown(path: Path, alt: str) -> MetadataValue:
    """A PNG embedded in markdown metadata, so the plot shows in the Dagster UI."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return MetadataValue.md(f"![{alt}](data:image/png;base64,{data})")


def progress_logger(context, what: str, min_interval_s: float = 60.0, clock=time.monotonic):
    """A progress callback `log(done, total)` that logs at most every `min_interval_s` seconds,
    and once at the end: `hypotheses: 16/140 (0.95/s, ETA 02:10)`.

    Time-based, not count-based: each Dagster log event is a write to the
    instance's storage (~25 ms on SQLite), so logging every N items would slow
    a 10,000-file batch by seconds. The rate counts from the first call (the
    work before it, e.g. loading a model, is not the pace of the loop), so the
    first line comes `min_interval_s` after it.
    """
    started: tuple[float, int] | None = None
    last, last_done = 0.0, None

    def log(done: int, total: int | None = None) -> None:
        nonlocal started, last, last_done
        now = clock()
        if started is None:  # the pace's origin; a lone final call counts from 0
            started, last = (now, 0 if done == total else done), now
        if done == last_done or (done != total and now - last < min_interval_s):
            return
        last, last_done = now, done
        context.log.info(f"{what}: {done}" + (f"/{total}" if total else "")
                         + pace(done, total, now - started[0], done - started[1]))

    return log


def pace(done: int, total: int | None, elapsed: float, counted: int) -> str:
    """` (rate/s, ETA mm:ss)` once there is a rate to tell; ` (1.2/s)` at the end.

    >>> pace(16, 140, 20.0, 16), pace(140, 140, 150.0, 140), pace(3, 10, 0.0, 0)
    (' (0.8/s, ETA 02:35)', ' (0.93/s)', '')
    >>> pace(500, 1000, 4.0, 500)
    ' (125/s, ETA 00:04)'
    """
    if elapsed <= 0 or counted <= 0:
        return ""
    rate = counted / elapsed
    shown = f"{rate:.0f}" if rate >= 10 else f"{rate:.2g}"
    if total is None or done >= total:
        return f" ({shown}/s)"
    left = int(round((total - done) / rate))
    return f" ({shown}/s, ETA {left // 60:02d}:{left % 60:02d})"
