"""The warehouse: one Parquet file per (table, partition), DuckDB as the query engine.

Each write replaces exactly one partition, atomically (temp file, then
rename), so a crash never leaves half a partition and a re-run overwrites only
its own rows. Reads open an in-memory DuckDB whose views glob the Parquet
files, so any number of Dagster steps can read and write in parallel without
DuckDB's single-writer lock. Schemas are the DDL in `sql/schema/`: every write
goes through them, so a row with a wrong column fails loudly at write time.

The root may also be an fsspec URL (`s3://bucket/prefix`, `gs://...`,
`memory://...`), so steps on many machines share one warehouse. A partition is
then written whole to a local temp file and uploaded in one `put_file`: on an
object store the object appears complete or not at all. DuckDB reads the files
through the same fsspec filesystem (`register_filesystem`). `file://` URLs are
plain local paths. Report folders stay on local disk (see `report_dir`).

Writers that must see each other's committed rows (cross-batch dedupe at ingest) serialize
through `lock`: an exclusive `fcntl.flock` on a file under the root's `_locks` folder, which
holds across processes (and threads) of one machine, or of several on a shared POSIX
filesystem with working flock. With an object-store root the lock file is on local disk
($RLFOUNDRY_HOME/warehouse/_locks), so it serializes one machine's writers only: there, run
a single ingest writer at a time or take an external lock around ingests.

Example:
    >>> import tempfile
    >>> wh = Warehouse(root=tempfile.mkdtemp())
    >>> wh.write_quarantine("audio_clips", "b1", [{"source_path": "x.wav", "reason": "missing"}])
    1
    >>> wh.fetch("SELECT asset, batch, reason FROM quarantine")
    [('audio_clips', 'b1', 'missing')]
    >>> remote = Warehouse(root="memory://rlfoundry-doctest/warehouse")
    >>> remote.write_quarantine("images", "b1", [{"source_path": "y.png", "reason": "truncated"}])
    1
    >>> remote.fetch("SELECT asset, source_path FROM quarantine")
    [('images', 'y.png')]
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack, contextmanager, nullcontext, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import ConfigurableResource
from fsspec.implementations.local import LocalFileSystem
from pydantic import Field

import sql
from resources.home import file_lock, rlfoundry_home
from resources.processes import host_label, is_running, this_process

PARTITION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


# train: the loop trains on it; eval: held out, the gate's target; guard: held out, speech
# the loop must not forget (e.g. real, clean recordings), each with its own tolerance
ROLES = ("train", "eval", "guard")
SEGMENT_MODES = (None, "off", "vad")  # how a batch treats audio over the clip limit

# the warehouse root when `Warehouse.root` is empty: a local path or an fsspec URL
WAREHOUSE_ENV = "RLFOUNDRY_WAREHOUSE"


def check_partition_name(name: str) -> str:
    """Partition keys become file names: allow letters, digits, `_ . -` only."""
    if not PARTITION_RE.match(name):
        raise ValueError(
            f"Invalid batch name {name!r}: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (e.g. 'sample-train' or '2026-11-21')."
        )
    return name


def sql_string(value: str) -> str:
    """`value` as a SQL string literal: in single quotes, each `'` doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def writing_error(path: Path | str, exc: OSError) -> OSError:
    """`exc` (a full disk, a read-only folder) as an OSError naming the file being written;
    its errno (hence its subclass, e.g. PermissionError) is kept."""
    detail = exc.strerror or str(exc)
    if exc.filename is not None and str(exc.filename) not in detail:
        detail = f"{detail} ({exc.filename})"
    message = f"writing {path}: {detail}"
    if exc.errno is None:
        return OSError(message)
    return OSError(exc.errno, message)


TYPED = "typed"  # the DuckDB schema holding each table's empty DDL table


def _typed_tables(con) -> None:
    """Create every table's DDL, empty, in the `typed` schema of `con`."""
    con.execute(f"CREATE SCHEMA {TYPED}")
    con.execute(f"SET schema = '{TYPED}'")
    for table in sql.tables():
        con.execute(sql.load(f"schema/{table}"))
    con.execute("SET schema = 'main'")


class Warehouse(ConfigurableResource):
    """DuckDB over per-partition Parquet files under `root`."""

    root: str = Field(
        default="",
        description="Folder holding one sub-folder of Parquet files per table: a local path "
        "or an fsspec URL (s3://bucket/prefix, gs://bucket/prefix, memory://name; file:// "
        "is a local path; the backend's package, e.g. s3fs, must be installed and its "
        "credentials set the usual way, e.g. AWS_* or FSSPEC_S3_ENDPOINT_URL). Empty = "
        "$RLFOUNDRY_WAREHOUSE if set, else $RLFOUNDRY_HOME/warehouse, read when used (so "
        "the CLI and the UI agree). With a URL root only the tables go there: report "
        "folders (plots, JSON, outputs, checkpoints) stay on local disk under "
        "$RLFOUNDRY_HOME/warehouse/_reports, so steps on several machines need that "
        "folder on a shared volume.",
    )

    @property
    def location(self) -> str:
        """The root as configured: `root`, else $RLFOUNDRY_WAREHOUSE, else the home default."""
        return (self.root or os.environ.get(WAREHOUSE_ENV)
                or str(rlfoundry_home() / "warehouse"))

    @property
    def is_remote(self) -> bool:
        """Whether the tables live on an fsspec filesystem other than the local disk."""
        return _remote_fs(self.location) is not None

    @property
    def base(self) -> Path | str:
        """The root: a local `Path`, or the URL (no trailing slash) when it is remote."""
        if self.is_remote:
            scheme, sep, path = self.location.partition("://")
            return scheme + sep + path.rstrip("/")
        return _local_path(self.location)

    def table_dir(self, table: str) -> Path | str:
        if self.is_remote:
            return f"{self.base}/{table}"
        return self.base / table

    def partition_path(self, table: str, partition: str, shard: str | None = None) -> Path | str:
        check_partition_name(partition)
        if self.is_remote:
            folder = f"{self.table_dir(table)}/{shard}" if shard else self.table_dir(table)
            return f"{folder}/{partition}.parquet"
        base = self.table_dir(table) / shard if shard else self.table_dir(table)
        return base / f"{partition}.parquet"

    def report_dir(self, asset: str, partition: str) -> Path:
        """Where an asset keeps a partition's reports and plots (JSON, PNG).

        Always a local folder, since plotting and training code write it with plain file
        APIs: under the root when that is local, else $RLFOUNDRY_HOME/warehouse/_reports.
        """
        check_partition_name(partition)
        base = rlfoundry_home() / "warehouse" if self.is_remote else self.base
        return base / "_reports" / asset / partition

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
    def partition_writer(self, table: str, partition: str, *, shard: str | None = None,
                         lock: str | None = None, before_commit=None):
        """Stream rows into one partition in chunks; it replaces the old one only on success.

        Memory stays flat however many rows a partition has: each chunk is
        typed through the table's DDL and appended to a temporary Parquet file,
        renamed over the partition's file when the block exits without error.
        With a remote root the temporary file is local (in $TMPDIR) and is
        uploaded in one `put_file` on success: nothing is written at the
        partition's key before the file is complete.

        With `lock`, the warehouse lock of that name (see `lock`) is taken once the rows
        are written, and held while `before_commit(tmp_path)` (if given) may rewrite the
        finished local file, and while the file replaces the partition: concurrent writers
        then see each other's partitions whole, in commit order.
        """
        path = self.partition_path(table, partition, shard)
        fs = _remote_fs(self.location)
        tmp = None
        try:
            if fs is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                folder, name = path.parent, path.name
            else:
                folder, name = Path(tempfile.gettempdir()), f"{table}.{partition}.parquet"
            sweep_temp_files(folder)  # what killed writers left here
            tmp = folder / temp_name(name)
            writer = _PartitionWriter(table, partition, tmp, target=path)
        except OSError as exc:  # a read-only or full disk: say which partition
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise writing_error(path, exc) from exc
        try:
            yield writer
            try:
                writer.close()
            except OSError as exc:
                raise writing_error(path, exc) from exc
            with self.lock(lock) if lock else nullcontext():
                if before_commit is not None:
                    before_commit(tmp)
                try:
                    if fs is None:
                        os.replace(tmp, path)
                    else:
                        fs.put_file(str(tmp), path)
                        fs.invalidate_cache()
                except OSError as exc:
                    raise writing_error(path, exc) from exc
        finally:  # on failure: drop the temp file without masking the error in flight
            with suppress(OSError):
                writer.close()
            with suppress(OSError):
                tmp.unlink(missing_ok=True)

    def write_quarantine(
        self, asset: str, partition: str, items: Iterable[Mapping[str, Any]]
    ) -> int:
        """Replace the quarantine rows that `asset` recorded for `partition`."""
        now = datetime.now(UTC)
        rows = [{"quarantined_at": now, **item, "asset": asset} for item in items]
        return self.write_partition("quarantine", partition, rows, shard=asset)

    @contextmanager
    def lock(self, name: str):
        """Hold the warehouse-wide exclusive lock `name` (blocking until it is free).

        An `fcntl.flock` on `_locks/<name>.lock` under a local root (under
        $RLFOUNDRY_HOME/warehouse for a remote root: one machine only, see the module
        docstring). Released when the block exits, or when the process dies.
        """
        check_partition_name(name)
        base = rlfoundry_home() / "warehouse" if self.is_remote else self.base
        path = base / "_locks" / f"{name}.lock"
        with ExitStack() as held:
            try:
                held.enter_context(file_lock(path))
            except OSError as exc:  # the lock file itself (not the caller's block) failed
                raise writing_error(path, exc) from exc
            yield path

    def delete_partition(self, table: str, partition: str, shard: str | None = None) -> None:
        path = self.partition_path(table, partition, shard)
        fs = _remote_fs(self.location)
        if fs is None:
            path.unlink(missing_ok=True)
            return
        try:
            fs.rm_file(path)
        except FileNotFoundError:
            pass
        fs.invalidate_cache()

    @contextmanager
    def connect(self):
        """An in-memory DuckDB with one view per warehouse table.

        Each view is the table's empty typed DDL table, unioned by column name with its
        Parquet files: every column of today's schema is there, as NULL in files written
        before the column existed, so adding a column to `sql/schema/` never breaks
        queries over an older warehouse. With a remote root the fsspec filesystem is
        registered with DuckDB, which then reads (and globs) the Parquet files through it.
        """
        con = duckdb.connect()
        try:
            fs = _remote_fs(self.location)
            if fs is not None:
                fs.invalidate_cache()  # other processes write too: never list from a cache
                con.register_filesystem(fs)
                stored = self._remote_tables(fs)
            _typed_tables(con)
            for table in sql.tables():
                files = self.table_dir(table)
                if fs is None and files.is_dir() and any(files.rglob("*.parquet")):
                    glob = str(files / "**" / "*.parquet")
                elif fs is not None and table in stored:
                    glob = f"{files}/**/*.parquet"
                else:
                    glob = None
                if glob:  # DuckDB cannot bind parameters in a view: quote the path
                    con.execute(
                        f"CREATE VIEW {table} AS SELECT * FROM {TYPED}.{table} "
                        f"UNION ALL BY NAME SELECT * FROM "
                        f"read_parquet({sql_string(glob)}, union_by_name = true)"
                    )
                else:
                    con.execute(f"CREATE VIEW {table} AS SELECT * FROM {TYPED}.{table}")
            yield con
        finally:
            con.close()

    def _remote_tables(self, fs) -> set[str]:
        """Tables with at least one Parquet file under a remote root (one listing)."""
        _, root = fsspec.core.url_to_fs(self.location)
        root = root.rstrip("/")
        try:
            found = fs.find(root)
        except FileNotFoundError:
            return set()
        tables = set()
        for path in found:
            rel = path.removeprefix(root + "/") if path.startswith(root + "/") else ""
            if rel.endswith(".parquet") and "/" in rel:
                tables.add(rel.split("/", 1)[0])
        return tables

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
        role: str = "train", format: str | None = None, text_key: str | None = None,
        segment: str | None = None,
    ) -> dict:
        """Record where a batch's media comes from (and whether it trains or evaluates).

        Any run of the batch (CLI, UI, schedule) finds its source here, with how to read
        it: `format` (None: detected from the path), `text_key` (the transcript's key;
        see `labeling.ingest.manifest.iter_source`) and `segment` ("vad": audio longer
        than a clip may be is cut into speech segments, `labeling.ingest.segment`; None
        or "off": it is quarantined as too_long).
        """
        if role not in ROLES:
            raise ValueError(f"Batch {batch!r}: role must be one of {list(ROLES)}, got {role!r}.")
        if segment not in SEGMENT_MODES:
            raise ValueError(f"Batch {batch!r}: segment must be one of "
                             f"{[m for m in SEGMENT_MODES if m]}, got {segment!r}.")
        roots = [str(Path(r).expanduser().resolve()) for r in allowed_roots]
        if "://" in str(source):  # a dataset named by URI (hf://datasets/ID): its reader's roots
            src, kind = str(source), "dataset"
        else:
            path = Path(source).expanduser().resolve()
            if not path.exists():
                raise FileNotFoundError(f"Batch {batch!r}: source {path} does not exist.")
            src, kind = str(path), "folder" if path.is_dir() else "manifest"
            roots = roots or [str(path if kind == "folder" else path.parent)]
        row = {
            "source": src,
            "source_kind": kind,
            "allowed_roots": roots,
            "role": role,
            "format": format,
            "text_key": text_key,
            "segment": None if segment == "off" else segment,
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

    def batches_holding(self, table: str, role: str) -> list[str]:
        """Batches of `role` that hold rows in `table` (a task's media table, e.g.
        `audio_clips`), in registration order."""
        if table not in sql.tables():
            raise ValueError(f"No table {table!r}; tables: {', '.join(sql.tables())}.")
        holding = {b for (b,) in self.fetch(sql.load("queries/batches_holding").format(
            table=table))}
        return [b for b in self.batches_by_role().get(role, []) if b in holding]

    def write_output(self, asset: str, partition: str, payload: Mapping[str, Any]) -> Path:
        """Atomically record what one partition of an asset produced (`output.json` in its
        report folder): a loop's training set, model, evaluation or promotion."""
        path = self.report_dir(asset, partition) / "output.json"
        tmp = path.with_name(temp_name("output"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            sweep_temp_files(path.parent)
            tmp.write_text(json.dumps(dict(payload), indent=2, default=str))
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise writing_error(path, exc) from exc
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

    def sweep_temp_files(self) -> list[Path]:
        """Delete the temp files that killed writers left in the warehouse; returns them.

        Looks (without recursing further) in each table folder and its shard folders and
        each report folder of a local root; with a remote root, in $TMPDIR (where its
        partitions are staged) and the local report folders. Writes sweep the folder
        they write into anyway (see `sweep_temp_files` below); this catches folders
        nothing writes into again. The CLI calls it once when it starts.
        """
        if self.is_remote:
            tables, reports = [], rlfoundry_home() / "warehouse" / "_reports"
            folders = [Path(tempfile.gettempdir())]
        else:
            tables, reports = _subfolders(self.base), self.base / "_reports"
            folders = []
        for table in tables:
            if table.name not in ("_reports", "_locks"):
                folders += [table, *_subfolders(table)]
        for asset in _subfolders(reports):
            folders += _subfolders(asset)
        return [path for folder in folders for path in sweep_temp_files(folder)]


# Temp files: `.<name>.<16 hex>.<pid>-<start>.<host>-<machine>.tmp` beside the file they
# become. They never match `*.parquet` (DuckDB's glob), and whoever writes into the folder
# next deletes those whose writer is gone: same machine (resources.processes) and the pid
# gone or reused; another machine's, or a name from before the writer's pid was in it
# (`.<name>.<32 hex>.tmp`), once untouched for STALE_TEMP_SECONDS. A `.tmp.<suffix>`
# file derived from a temp file (drop_claimed's `.claimed`) goes with it.
STALE_TEMP_SECONDS = 24 * 3600
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{16}\.(?P<pid>\d+)-(?P<started>\d+|x)\."
                      r"(?P<host>[A-Za-z0-9-]*)-(?P<machine>[0-9a-f]{10})\.tmp(?:\.[a-z]+)?$")
_OLD_TEMP_RE = re.compile(r"^\.(?:.+\.parquet|output)\.[0-9a-f]{32}\.tmp(?:\.claimed)?$")


def temp_name(name: str) -> str:
    """A temp file name for `name` that says which process writes it (see above)."""
    me = this_process()
    return (f".{name}.{uuid.uuid4().hex[:16]}.{me.pid}-{me.started or 'x'}."
            f"{host_label(me.host)}-{me.machine}.tmp")


def sweep_temp_files(folder: Path, max_age: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete the temp files in `folder` (not below it) whose writer is gone; returns them.

    A live writer's file is never deleted: its process still runs (same machine), or it
    was touched within `max_age` seconds (another machine). Failures to list or delete
    are ignored: the write that follows reports a bad folder itself.
    """
    removed = []
    now = datetime.now().timestamp()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith(".") and ".tmp" in entry.name and _abandoned(entry, max_age,
                                                                              now):
            with suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _abandoned(entry: os.DirEntry, max_age: float, now: float) -> bool:
    """Whether the temp file `entry` is a gone writer's (see `sweep_temp_files`)."""
    match = _TEMP_RE.match(entry.name)
    if match is None and not _OLD_TEMP_RE.match(entry.name):
        return False  # not a name this module writes
    try:
        if not entry.is_file(follow_symlinks=False):
            return False
        if match is not None:
            started = "" if match["started"] == "x" else match["started"]
            running = is_running(int(match["pid"]), match["machine"], started)
            if running is not None:
                return not running
        return now - entry.stat(follow_symlinks=False).st_mtime > max_age
    except OSError:
        return False


def _subfolders(folder: Path) -> list[Path]:
    """The folders directly in `folder` (none if it is missing)."""
    try:
        return [Path(e.path) for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _remote_fs(location: str):
    """The fsspec filesystem of a URL root, or None for a local path (or a file:// URL)."""
    if "://" not in location:
        return None
    if "::" in location:
        raise ValueError(f"Warehouse root {location!r}: chained fsspec URLs are not supported "
                         "(DuckDB reads through one filesystem); use e.g. s3://bucket/prefix.")
    fs, _ = fsspec.core.url_to_fs(location)
    return None if isinstance(fs, LocalFileSystem) else fs


def _local_path(location: str) -> Path:
    """A local root as a Path: a plain path as given (relative stays relative), a file://
    URL as its absolute path."""
    if "://" not in location:
        return Path(location)
    return Path(fsspec.core.url_to_fs(location)[1])


class _PartitionWriter:
    """Types row chunks through a table's DDL (in DuckDB) and appends them to a Parquet file."""

    def __init__(self, table: str, partition: str, path: Path,
                 target: Path | str | None = None) -> None:
        self.table, self.partition, self.rows = table, partition, 0
        self.target = target if target is not None else path  # named in write errors
        self._parquet = None
        self._con = duckdb.connect()
        try:
            self._con.execute(sql.load(f"schema/{table}"))
            schema = self._con.sql(f"SELECT * FROM {table}").to_arrow_table().schema
            self._parquet = pq.ParquetWriter(path, schema)
        except BaseException:
            self._con.close()
            raise

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
        chunk = self._con.sql(f"SELECT * FROM {self.table}").to_arrow_table()
        try:
            self._parquet.write_table(chunk)
        except OSError as exc:
            raise writing_error(self.target, exc) from exc
        self._con.execute(f"DELETE FROM {self.table}")
        self.rows += len(rows)

    def close(self) -> None:
        """Finish the file (once: a failed close is not retried on the way out)."""
        parquet, self._parquet = self._parquet, None
        if parquet is not None:
            try:
                parquet.close()
            finally:
                self._con.close()
