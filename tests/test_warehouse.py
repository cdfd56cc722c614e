from datetime import UTC, datetime
from pathlib import Path

import pytest

from resources.warehouse import check_partition_name


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
