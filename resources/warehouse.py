"""The warehouse: one Parquet file per (table, partition), DuckDB as the query engine.

Each write replaces exactly one partition, atomically (temp file, then
rename), so a crash never leaves half a partition and a re-run overwrites only
its own rows. Reads open an in-memory DuckDB whose views glob the Parquet
files, so any number of Dagster steps can read and write in parallel without
DuckDB's single-writer lock. Schemas are the DDL in `sql/schema/`: every write
goes through them, so a row with a wrong column fails loudly at write time.

Example:
    >>> import tempfile
    >>> wh = Warehouse(root=tempfile.mkdtemp())
    >>> wh.write_quarantine("audio_clips", "b1", [{"source_path": "x.wav", "reason": "missing"}])
    1
    >>> wh.fetch("SELECT asset, batch, reason FROM quarantine")
    [('audio_clips', 'b1', 'missing')]
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import ConfigurableResource
from pydantic import Field

import sql
from resources.home import rlfoundry_home

PARTITION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


ROLES = ("train", "eval")


def check_partition_name(name: str) -> str:
    """Partition keys become file names: allow letters, digits, `_ . -` only."""
    if not PARTITION_RE.match(name):
        raise ValueError(
            f"Invalid batch name {name!r}: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (e.g. 'sample-train' or '2026-11-21')."
        )
    return name


class Warehouse(ConfigurableResource):
    """DuckDB over per-partition Parquet files under `root`."""

    root: str = Field(
        default="",
        description="Folder holding one sub-folder of Parquet files per table; empty = "
        "$RLFOUNDRY_HOME/warehouse, read when used (so the CLI and the UI agree).",
    )

    @property
    def base(self) -> Path:
        return Path(self.root) if self.root else rlfoundry_home() / "warehouse"

    def table_dir(self, table: str) -> Path:
        return self.base / table

    def partition_path(self, table: str, partition: str, shard: str | None = None) -> Path:
        check_partition_name(partition)
        base = self.table_dir(table) / shard if shard else self.table_dir(table)
        return base / f"{partition}.parquet"

    def report_dir(self, asset: str, partition: str) -> Path:
        """Where an asset keeps a partition's reports and plots (JSON, PNG)."""
        check_partition_name(partition)
        return self.base / "_reports" / asset / partition

    def write_partition(
        self,
        table: str,
        partition: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        shard: str | None = None,
    ) -> int:
        """Replace the rows of one partition of `table` (its `batch` column is set here)."""
        with self.partition_writer(table, partition, shard=shard) as writer:
            writer.write(rows)
        return len(rows)

    @contextmanager
    def partition_writer(self, table: str, partition: str, *, shard: str | None = None):
        """Stream rows into one partition in chunks; it replaces the old one only on success.

        Memory stays flat however many rows a partition has: each chunk is
        typed through the table's DDL and appended to a temporary Parquet file,
        renamed over the partition's file when the block exits without error.
        """
        path = self.partition_path(table, partition, shard)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        writer = _PartitionWriter(table, partition, tmp)
        try:
            yield writer
            writer.close()
            os.replace(tmp, path)
        finally:
            writer.close()
            tmp.unlink(missing_ok=True)

    def write_quarantine(
        self, asset: str, partition: str, items: Iterable[Mapping[str, Any]]
    ) -> int:
        """Replace the quarantine rows that `asset` recorded for `partition`."""
        now = datetime.now(UTC)
        rows = [{"quarantined_at": now, **item, "asset": asset} for item in items]
        return self.write_partition("quarantine", partition, rows, shard=asset)

    def delete_partition(self, table: str, partition: str, shard: str | None = None) -> None:
        self.partition_path(table, partition, shard).unlink(missing_ok=True)

    @contextmanager
    def connect(self):
        """An in-memory DuckDB with one view (or empty typed table) per warehouse table."""
        con = duckdb.connect()
        try:
            for table in sql.tables():
                files = self.table_dir(table)
                if files.is_dir() and any(files.rglob("*.parquet")):
                    glob = str(files / "**" / "*.parquet")
                    con.execute(
                        f"CREATE VIEW {table} AS SELECT * FROM "
                        f"read_parquet('{glob}', union_by_name = true)"
                    )
                else:
                    con.execute(sql.load(f"schema/{table}"))
            yield con
        finally:
            con.close()

    def fetch(self, query: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        """Run a query and return every row (fully fetched, as DuckDB 2 requires)."""
        with self.connect() as con:
            return con.execute(query, dict(params or {})).fetchall()

    def fetch_dicts(self, query: str, params: Mapping[str, Any] | None = None) -> list[dict]:
        """Like `fetch`, with each row as a dict keyed by column name."""
        with self.connect() as con:
            cur = con.execute(query, dict(params or {}))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def count(self, table: str, partition: str) -> int:
        return self.fetch(f"SELECT count(*) FROM {table} WHERE batch = $b", {"b": partition})[0][0]

    def register_batch(
        self, batch: str, source: str | Path, allowed_roots: Sequence[str | Path] = (),
        role: str = "train",
    ) -> dict:
        """Record where a batch's media comes from (and whether it trains or evaluates).

        Any run of the batch (CLI, UI, schedule) finds its source here.
        """
        if role not in ROLES:
            raise ValueError(f"Batch {batch!r}: role must be one of {list(ROLES)}, got {role!r}.")
        src = Path(source).expanduser().resolve()
        if not src.exists():
            raise FileNotFoundError(f"Batch {batch!r}: source {src} does not exist.")
        kind = "folder" if src.is_dir() else "manifest"
        roots = [str(Path(r).expanduser().resolve()) for r in allowed_roots] or [
            str(src if kind == "folder" else src.parent)
        ]
        row = {
            "source": str(src),
            "source_kind": kind,
            "allowed_roots": roots,
            "role": role,
            "registered_at": datetime.now(UTC),
        }
        self.write_partition("batches", batch, [row])
        return {**row, "batch": batch}

    def batch_source(self, batch: str) -> dict:
        """The registered source of `batch`, or an error saying how to register it."""
        rows = self.fetch_dicts("SELECT * FROM batches WHERE batch = $b", {"b": batch})
        if not rows:
            raise LookupError(
                f"Batch {batch!r} has no registered source in {self.base}. Register it with "
                f"`rlfoundry ingest PATH --batch {batch}`."
            )
        return rows[0]


    def batches_by_role(self) -> dict[str, list[str]]:
        """Registered batches per role, in registration order: {"train": [...], "eval": [...]}."""
        out: dict[str, list[str]] = {role: [] for role in ROLES}
        for batch, role, *_ in self.fetch(sql.load("queries/batches_by_role")):
            out.setdefault(role, []).append(batch)
        return out

    def speech_batches(self, role: str) -> list[str]:
        """Batches of `role` that hold audio clips, in registration order."""
        audio = {b for (b,) in self.fetch(sql.load("queries/audio_batches"))}
        return [b for b in self.batches_by_role().get(role, []) if b in audio]

    def write_output(self, asset: str, partition: str, payload: Mapping[str, Any]) -> Path:
        """Atomically record what one partition of an asset produced (`output.json` in its
        report folder): a loop's training set, model, evaluation or promotion."""
        path = self.report_dir(asset, partition) / "output.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".output.{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps(dict(payload), indent=2, default=str))
        os.replace(tmp, path)
        return path

    def read_output(self, asset: str, partition: str) -> dict:
        """What `write_output` recorded for this partition, or an error saying to materialize
        the asset for it first."""
        path = self.report_dir(asset, partition) / "output.json"
        if not path.is_file():
            raise FileNotFoundError(f"{asset} has no output for partition {partition!r} "
                                    f"({path} is missing): materialize it for that partition "
                                    "first.")
        return json.loads(path.read_text())


class _PartitionWriter:
    """Types row chunks through a table's DDL (in DuckDB) and appends them to a Parquet file."""

    def __init__(self, table: str, partition: str, path: Path) -> None:
        self.table, self.partition, self.rows = table, partition, 0
        self._con = duckdb.connect()
        self._con.execute(sql.load(f"schema/{table}"))
        schema = self._con.sql(f"SELECT * FROM {table}").to_arrow_table().schema
        self._parquet = pq.ParquetWriter(path, schema)

    def write(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        # every row gets every key: from_pylist takes its columns from the first row alone
        keys = dict.fromkeys(k for r in rows for k in r)
        incoming = pa.Table.from_pylist(
            [{**{k: r.get(k) for k in keys}, "batch": self.partition} for r in rows])
        self._con.register("incoming", incoming)
        self._con.execute(f"INSERT INTO {self.table} BY NAME SELECT * FROM incoming")
        self._con.unregister("incoming")
        self._parquet.write_table(self._con.sql(f"SELECT * FROM {self.table}")
                                  .to_arrow_table())
        self._con.execute(f"DELETE FROM {self.table}")
        self.rows += len(rows)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._con.close()
            self._parquet = None
