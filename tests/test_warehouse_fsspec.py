"""The warehouse on an fsspec URL root: the same round trips as on a local path, on fsspec's
in-memory filesystem (standing in for an object store) and on a file:// URL."""

import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import fsspec
import pytest

from resources.warehouse import WAREHOUSE_ENV, Warehouse


def _clip(i: int, text: str = "hello") -> dict:
    return {
        "clip_id": f"{i:064x}", "source_path": f"/x/{i}.wav", "format": "WAV", "sample_rate": 16000,
        "channels": 1, "duration_s": 1.0 + i, "rms_dbfs": -20.0, "peak_dbfs": -3.0,
        "text": text, "tags": "{}", "manifest_line": i, "ingested_at": datetime.now(UTC),
    }


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("RLFOUNDRY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(WAREHOUSE_ENV, raising=False)
    # remote writes stage the partition in $TMPDIR: a folder of its own shows what is left
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))


@pytest.fixture(params=["memory", "file"])
def warehouse(request, tmp_path):
    if request.param == "memory":
        root = f"memory://rlfoundry-test-{uuid.uuid4().hex}/warehouse"
        yield Warehouse(root=root)
        _forget(root)
    else:
        yield Warehouse(root=(tmp_path / "wh").as_uri())


def _forget(root: str) -> None:
    """Drop a test's files from fsspec's in-memory filesystem (one store per process)."""
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def _stored(warehouse: Warehouse) -> list[str]:
    """Every file under the root, relative to it, so a test sees exactly what a write left."""
    fs, root = fsspec.core.url_to_fs(warehouse.location)
    if not fs.exists(root):
        return []
    return sorted(p.removeprefix(root.rstrip("/") + "/") for p in fs.find(root))


def test_a_memory_root_is_remote_and_a_file_url_is_a_local_path(warehouse, tmp_path):
    if warehouse.location.startswith("memory://"):
        assert warehouse.is_remote and warehouse.base == warehouse.location
        assert warehouse.partition_path("audio_clips", "a") == \
            f"{warehouse.location}/audio_clips/a.parquet"
    else:
        assert not warehouse.is_remote and warehouse.base == tmp_path / "wh"


def test_rewriting_a_partition_replaces_exactly_its_rows(warehouse):
    warehouse.write_partition("audio_clips", "a", [_clip(1), _clip(2)])
    warehouse.write_partition("audio_clips", "b", [_clip(3)])
    warehouse.write_partition("audio_clips", "a", [_clip(4)])
    rows = warehouse.fetch("SELECT batch, clip_id FROM audio_clips ORDER BY clip_id")
    assert rows == [("b", f"{3:064x}"), ("a", f"{4:064x}")]
    assert warehouse.count("audio_clips", "a") == 1
    assert warehouse.fetch_dicts("SELECT batch FROM audio_clips WHERE batch = 'b'") == \
        [{"batch": "b"}]
    assert _stored(warehouse) == ["audio_clips/a.parquet", "audio_clips/b.parquet"]


def test_an_empty_rewrite_clears_the_partition_and_a_delete_removes_it(warehouse):
    warehouse.write_partition("audio_clips", "a", [_clip(1)])
    warehouse.write_partition("audio_clips", "a", [])
    assert warehouse.count("audio_clips", "a") == 0
    warehouse.delete_partition("audio_clips", "a")
    warehouse.delete_partition("audio_clips", "never-written")
    assert _stored(warehouse) == []
    assert warehouse.fetch("SELECT count(*) FROM audio_clips") == [(0,)]


def test_a_failed_write_leaves_no_object_at_the_final_key_and_keeps_the_old_one(
        warehouse, tmp_path):
    with pytest.raises(Exception, match="not_a_column"):
        warehouse.write_partition("audio_clips", "new", [{**_clip(2), "not_a_column": 1}])
    assert _stored(warehouse) == []
    warehouse.write_partition("audio_clips", "a", [_clip(1)])
    with pytest.raises(Exception, match="not_a_column"):
        warehouse.write_partition("audio_clips", "a", [{**_clip(2), "not_a_column": 1}])
    assert warehouse.fetch("SELECT clip_id FROM audio_clips") == [(f"{1:064x}",)]
    assert _stored(warehouse) == ["audio_clips/a.parquet"]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_nothing_is_at_the_final_key_until_the_partition_is_complete(warehouse, tmp_path):
    with warehouse.partition_writer("audio_clips", "a") as writer:
        writer.write([_clip(1), _clip(2)])
        writer.write([_clip(3)])
        assert "audio_clips/a.parquet" not in _stored(warehouse)
    assert _stored(warehouse) == ["audio_clips/a.parquet"]
    assert warehouse.count("audio_clips", "a") == 3
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_crash_while_streaming_a_partition_keeps_the_old_one(warehouse):
    warehouse.write_partition("audio_clips", "a", [_clip(1)])
    with pytest.raises(RuntimeError, match="crash"):
        with warehouse.partition_writer("audio_clips", "a") as writer:
            writer.write([_clip(2), _clip(3)])
            raise RuntimeError("crash")
    assert warehouse.fetch("SELECT clip_id FROM audio_clips") == [(f"{1:064x}",)]
    assert _stored(warehouse) == ["audio_clips/a.parquet"]


def test_tables_without_data_are_queryable_and_empty(warehouse):
    assert warehouse.fetch("SELECT count(*) FROM asr_hypotheses") == [(0,)]


def test_quarantine_is_replaced_per_asset_and_partition(warehouse):
    warehouse.write_quarantine("audio_clips", "a", [{"source_path": "1", "reason": "missing"}])
    warehouse.write_quarantine("images", "a", [{"source_path": "2", "reason": "truncated"}])
    warehouse.write_quarantine("audio_clips", "a", [{"source_path": "3", "reason": "silent"}])
    rows = warehouse.fetch("SELECT asset, source_path, reason FROM quarantine ORDER BY asset")
    assert rows == [("audio_clips", "3", "silent"), ("images", "2", "truncated")]
    assert _stored(warehouse) == ["quarantine/audio_clips/a.parquet",
                                  "quarantine/images/a.parquet"]


def test_batch_registry_round_trip_and_missing_batch_message(warehouse, tmp_path):
    warehouse.register_batch("b1", tmp_path, role="eval")
    assert warehouse.batch_source("b1")["source_kind"] == "folder"
    assert warehouse.batches_by_role() == {"train": [], "eval": ["b1"], "guard": []}
    with pytest.raises(LookupError, match="rlfoundry ingest PATH --batch nope"):
        warehouse.batch_source("nope")


def test_outputs_and_reports_stay_on_local_disk(warehouse, tmp_path):
    path = warehouse.write_output("asr_eval", "asr-l1", {"decision": "promote"})
    assert warehouse.read_output("asr_eval", "asr-l1") == {"decision": "promote"}
    reports = warehouse.report_dir("asr_eval", "asr-l1")
    assert path == reports / "output.json" and path.is_file()
    local_root = tmp_path / "home" / "warehouse" if warehouse.is_remote else tmp_path / "wh"
    assert reports == local_root / "_reports" / "asr_eval" / "asr-l1"
    assert [p for p in _stored(warehouse) if "_reports" in p] == \
        ([] if warehouse.is_remote else ["_reports/asr_eval/asr-l1/output.json"])


def test_the_environment_variable_sets_the_root_when_the_field_is_empty(monkeypatch):
    root = f"memory://rlfoundry-test-{uuid.uuid4().hex}/env"
    monkeypatch.setenv(WAREHOUSE_ENV, root)
    try:
        Warehouse().write_quarantine("images", "b", [{"source_path": "p", "reason": "r"}])
        assert Warehouse().fetch("SELECT source_path FROM quarantine") == [("p",)]
        assert Warehouse(root=root).count("quarantine", "b") == 1
    finally:
        _forget(root)


def test_a_chained_url_is_refused_with_what_to_use():
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        Warehouse(root="simplecache::memory://x").fetch("SELECT 1")


def test_a_local_path_root_is_unchanged(tmp_path):
    warehouse = Warehouse(root=str(tmp_path / "plain"))
    assert not warehouse.is_remote and warehouse.base == Path(tmp_path / "plain")
    assert warehouse.partition_path("quarantine", "a", "images") == \
        tmp_path / "plain" / "quarantine" / "images" / "a.parquet"
