import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from resources.warehouse import Warehouse, check_partition_name


def _clip(i: int, text: str = "hello") -> dict:
    return {
        "clip_id": f"{i:064x}", "source_path": f"/x/{i}.wav", "format": "WAV", "sample_rate": 16000,
        "channels": 1, "duration_s": 1.0 + i, "rms_dbfs": -20.0, "peak_dbfs": -3.0,
        "text": text, "tags": "{}", "manifest_line": i, "ingested_at": datetime.now(UTC),
    }


def test_rewriting_a_partition_replaces_exactly_its_rows(warehouse):
    warehouse.write_partition("audio_clips", "a", [_clip(1), _clip(2)])
    warehouse.write_partition("audio_clips", "b", [_clip(3)])
    warehouse.write_partition("audio_clips", "a", [_clip(4)])
    rows = warehouse.fetch("SELECT batch, clip_id FROM audio_clips ORDER BY clip_id")
    assert rows == [("b", f"{3:064x}"), ("a", f"{4:064x}")]


def test_an_empty_rewrite_clears_the_partition(warehouse):
    warehouse.write_partition("audio_clips", "a", [_clip(1)])
    warehouse.write_partition("audio_clips", "a", [])
    assert warehouse.count("audio_clips", "a") == 0


def test_a_failed_write_keeps_the_old_partition_and_leaves_no_temp_file(warehouse):
    warehouse.write_partition("audio_clips", "a", [_clip(1)])
    with pytest.raises(Exception, match="not_a_column"):
        warehouse.write_partition("audio_clips", "a", [{**_clip(2), "not_a_column": 1}])
    assert warehouse.fetch("SELECT clip_id FROM audio_clips") == [(f"{1:064x}",)]
    assert [p.name for p in Path(warehouse.table_dir("audio_clips")).iterdir()] == ["a.parquet"]


def test_a_row_missing_a_required_column_is_refused(warehouse):
    row = _clip(1)
    del row["duration_s"]
    with pytest.raises(Exception, match="duration_s"):
        warehouse.write_partition("audio_clips", "a", [row])


def test_tables_without_data_are_queryable_and_empty(warehouse):
    assert warehouse.fetch("SELECT count(*) FROM asr_hypotheses") == [(0,)]


def test_quarantine_is_replaced_per_asset_and_partition(warehouse):
    warehouse.write_quarantine("audio_clips", "a", [{"source_path": "1", "reason": "missing"}])
    warehouse.write_quarantine("images", "a", [{"source_path": "2", "reason": "truncated"}])
    warehouse.write_quarantine("audio_clips", "a", [{"source_path": "3", "reason": "silent"}])
    rows = warehouse.fetch("SELECT asset, source_path, reason FROM quarantine ORDER BY asset")
    assert rows == [("audio_clips", "3", "silent"), ("images", "2", "truncated")]


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "a b", "x" * 200])
def test_unsafe_batch_names_are_refused(name):
    with pytest.raises(ValueError, match="Invalid batch name"):
        check_partition_name(name)


def test_batch_registry_round_trip_and_missing_batch_message(warehouse, tmp_path):
    warehouse.register_batch("b1", tmp_path)
    assert warehouse.batch_source("b1")["source_kind"] == "folder"
    with pytest.raises(LookupError, match="rlfoundry ingest PATH --batch nope"):
        warehouse.batch_source("nope")


def test_a_crash_while_streaming_a_partition_keeps_the_old_one(warehouse):
    warehouse.write_partition("audio_clips", "a", [_clip(1)])
    with pytest.raises(RuntimeError, match="crash"):
        with warehouse.partition_writer("audio_clips", "a") as writer:
            writer.write([_clip(2), _clip(3)])
            raise RuntimeError("crash")
    assert warehouse.fetch("SELECT clip_id FROM audio_clips") == [(f"{1:064x}",)]
    assert [p.name for p in Path(warehouse.table_dir("audio_clips")).iterdir()] == ["a.parquet"]


def test_streamed_chunks_make_one_partition(warehouse):
    with warehouse.partition_writer("audio_clips", "a") as writer:
        for i in range(3):
            writer.write([_clip(2 * i), _clip(2 * i + 1)])
    assert warehouse.count("audio_clips", "a") == 6


def test_a_column_only_later_rows_have_is_kept(warehouse):
    rows = [{**_clip(1), "text": None}, _clip(2, text="later")]
    del rows[0]["text"]
    warehouse.write_partition("audio_clips", "a", rows)
    assert warehouse.fetch("SELECT text FROM audio_clips ORDER BY clip_id") == [(None,), ("later",)]


def test_a_root_with_a_quote_and_a_space_is_queryable(tmp_path, monkeypatch):
    from resources.warehouse import Warehouse

    monkeypatch.delenv("RLFOUNDRY_WAREHOUSE", raising=False)
    monkeypatch.setenv("RLFOUNDRY_HOME", str(tmp_path / "it's my home"))
    for wh in (Warehouse(), Warehouse(root=str(tmp_path / "o'neil's data" / "wh"))):
        wh.write_partition("audio_clips", "a", [_clip(1)])
        wh.write_quarantine("audio_clips", "a", [{"source_path": "x'y", "reason": "missing"}])
        assert wh.count("audio_clips", "a") == 1
        assert wh.fetch("SELECT source_path FROM quarantine") == [("x'y",)]


def test_sql_string_doubles_single_quotes():
    from resources.warehouse import sql_string

    assert sql_string("/a/it's/b c") == "'/a/it''s/b c'"


@pytest.mark.parametrize("step", ["write_table", "close"])
def test_a_full_disk_names_the_partition_and_keeps_the_old_one(warehouse, monkeypatch, step):
    import errno

    import pyarrow.parquet as pq

    warehouse.write_partition("audio_clips", "a", [_clip(1)])
    real = getattr(pq.ParquetWriter, step)

    def full(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, step, full)
    path = Path(warehouse.table_dir("audio_clips")) / "a.parquet"
    message = re.escape(f"writing {path}: No space left on device")
    with pytest.raises(OSError, match=message) as caught:
        warehouse.write_partition("audio_clips", "a", [_clip(2)])
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert warehouse.fetch("SELECT clip_id FROM audio_clips") == [(f"{1:064x}",)]
    assert [p.name for p in path.parent.iterdir()] == ["a.parquet"]


def test_a_read_only_folder_names_the_partition(warehouse, monkeypatch):
    import errno
    import os

    def denied(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", denied)
    path = Path(warehouse.table_dir("audio_clips")) / "a.parquet"
    with pytest.raises(PermissionError, match=re.escape(f"writing {path}: Permission denied")):
        warehouse.write_partition("audio_clips", "a", [_clip(1)])
    monkeypatch.undo()
    assert list(path.parent.iterdir()) == []


def test_an_unwritable_report_folder_names_the_output_file(warehouse, monkeypatch):
    import errno

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    path = warehouse.report_dir("loops", "l1") / "output.json"
    with pytest.raises(OSError, match=re.escape(f"writing {path}: No space left on device")):
        warehouse.write_output("loops", "l1", {"job": "x"})


def test_a_column_added_to_a_schema_reads_as_null_from_older_files(tmp_path):
    """Files written before a column existed stay queryable by today's queries."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    wh = Warehouse(root=str(tmp_path))
    folder = tmp_path / "preference_pairs"
    folder.mkdir()
    old = pa.table({"batch": ["b"], "pair_id": ["p"], "clip_id": ["c"], "audio": ["a.wav"],
                    "prompt": [""], "chosen": ["x"], "rejected": ["y"], "source": ["model"]})
    pq.write_table(old, folder / "b.parquet")  # no clip_set, no created_at: an old file
    assert wh.fetch("SELECT clip_id, clip_set, round FROM preference_pairs") == [
        ("c", None, None)]
