"""Ingestion as a user runs it: a batch partition materialized through Dagster."""

import shutil

import pytest
from dagster import DagsterInstance, materialize

from assets.ingest import audio_clips, images, videos
from labeling.testing import write_image, write_manifest, write_silence, write_tone, write_video
from pipelines.partitions import BATCHES
from resources.model_hub import ModelHub


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def run_ingest(instance, warehouse, batch, source, assets=(audio_clips,), config=None):
    warehouse.register_batch(batch, source)
    instance.add_dynamic_partitions(BATCHES, [batch])
    result = materialize(list(assets), partition_key=batch, instance=instance,
                         resources={"warehouse": warehouse, "model_hub": ModelHub()},
                         run_config=config or {})
    assert result.success
    mats = [e.event_specific_data.materialization
            for e in result.get_asset_materialization_events()]
    return {m.asset_key.to_user_string(): m.metadata for m in mats}


def meta(result, asset):
    return {k: getattr(v, "value", v) for k, v in result[asset].items()}


def quarantine(warehouse, batch):
    return dict(warehouse.fetch(
        "SELECT regexp_extract(source_path, '[^/]+$'), reason FROM quarantine WHERE batch = $b",
        {"b": batch}))


@pytest.fixture
def bad_batch(tmp_path):
    """A manifest holding one good clip and one of every kind of bad input."""
    d = tmp_path / "batch"
    d.mkdir()
    write_tone(d / "good.wav", sample_rate=44100, channels=2, seconds=1.5)
    (d / "zero.wav").write_bytes(b"")
    (d / "garbage.flac").write_bytes(b"this is not audio at all" * 50)
    full = write_tone(d / "full.wav", seconds=2.0, seed=3).read_bytes()
    (d / "truncated.wav").write_bytes(full[: len(full) // 2])
    (d / "notes.xyz").write_bytes(b"x")
    write_silence(d / "silent.wav")
    write_tone(d / "long.wav", seconds=4.0, seed=4)
    write_tone(d / "empty_text.wav", seed=5)
    (tmp_path / "outside.wav").write_bytes(full)
    write_manifest(d / "m.jsonl", [
        {"audio_filepath": "good.wav", "text": "good clip", "accent": "us"},
        {"audio_filepath": "missing.wav", "text": "gone"},
        {"audio_filepath": "zero.wav", "text": "zero"},
        {"audio_filepath": "garbage.flac", "text": "garbage"},
        {"audio_filepath": "truncated.wav", "text": "cut"},
        {"audio_filepath": "notes.xyz", "text": "unknown"},
        {"audio_filepath": "silent.wav", "text": "quiet"},
        {"audio_filepath": "long.wav", "text": "long"},
        {"audio_filepath": "empty_text.wav", "text": ""},
        b'{"audio_filepath": "good.wav", "text": "na\xefve"}',
        {"audio_filepath": "../outside.wav", "text": "escape"},
        {"audio_filepath": "good.wav", "text": "same file again"},
    ])
    return d / "m.jsonl"


def test_every_bad_input_is_quarantined_with_its_reason_and_the_partition_completes(
        instance, warehouse, bad_batch):
    result = run_ingest(instance, warehouse, "b1", bad_batch,
                        config={"ops": {"audio_clips": {"config": {"max_seconds": 3.0}}}})
    rows = warehouse.fetch_dicts("SELECT * FROM audio_clips")
    assert [(r["text"], r["sample_rate"], r["channels"]) for r in rows] == [("good clip", 44100, 2)]
    assert rows[0]["duration_s"] == pytest.approx(1.5, abs=0.01)
    assert rows[0]["tags"] == '{"accent": "us"}'
    assert quarantine(warehouse, "b1") == {
        "missing.wav": "missing", "zero.wav": "empty_file", "garbage.flac": "undecodable",
        "truncated.wav": "truncated", "notes.xyz": "unknown_extension", "silent.wav": "silent",
        "long.wav": "too_long", "empty_text.wav": "empty_transcript", "m.jsonl": "non_utf8",
        "outside.wav": "outside_allowed_roots",
        "good.wav": "duplicate_text_differs",  # "same file again" vs the kept "good clip"
    }
    m = meta(result, "audio_clips")
    assert (m["ingested"], m["duplicates"], m["quarantined"]) == (1, 0, 11)


def test_rematerializing_a_batch_replaces_it_and_does_not_count_itself_as_duplicate(
        instance, warehouse, bad_batch):
    for _ in range(2):
        result = run_ingest(instance, warehouse, "b1", bad_batch)
    assert meta(result, "audio_clips")["ingested"] == 2  # long.wav fits the 30 s default
    assert warehouse.fetch("SELECT count(*) FROM audio_clips") == [(2,)]
    assert warehouse.fetch("SELECT count(*) FROM quarantine") == [(10,)]


def test_a_clip_ingested_by_another_batch_is_a_duplicate(instance, warehouse, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write_tone(a / "x.wav")
    shutil.copy(a / "x.wav", b / "copy.wav")
    write_tone(b / "new.wav", seed=9)
    run_ingest(instance, warehouse, "a", a)
    result = run_ingest(instance, warehouse, "b", b)
    assert meta(result, "audio_clips")["duplicates"] == 1
    assert warehouse.fetch("SELECT batch, count(*) FROM audio_clips GROUP BY 1 ORDER BY 1") == [
        ("a", 1), ("b", 1)]
    (detail,) = warehouse.fetch("SELECT detail FROM quarantine WHERE batch = 'b'")[0]
    assert "in batch 'a'" in detail


def test_folder_batch_feeds_audio_images_and_videos(instance, warehouse, tmp_path):
    write_tone(tmp_path / "a.ogg")
    (tmp_path / "a.txt").write_text("hello there")
    write_image(tmp_path / "i.png", size=(64, 48))
    (tmp_path / "broken.jpg").write_bytes(write_image(tmp_path / "j.jpg").read_bytes()[:200])
    write_video(tmp_path / "v.mp4", frames=12, fps=6)
    (tmp_path / "broken.mp4").write_bytes((tmp_path / "v.mp4").read_bytes()[:300])
    result = run_ingest(instance, warehouse, "f", tmp_path, assets=(audio_clips, images, videos))
    audio = warehouse.fetch("SELECT text, format FROM audio_clips")
    assert audio == [("hello there", "ogg/vorbis")]
    assert sorted(warehouse.fetch("SELECT width, height FROM images")) == [(64, 48), (64, 48)]
    assert warehouse.fetch("SELECT frame_count, fps, width FROM videos") == [(12, 6.0, 64)]
    q = quarantine(warehouse, "f")
    assert q["broken.jpg"] in {"truncated", "undecodable"}
    assert q["broken.mp4"] in {"truncated", "undecodable"}
    assert meta(result, "images")["quarantined"] == 1


def test_the_transcript_rate_limit_is_set_from_the_run_config(instance, warehouse, tmp_path):
    """A long read on a short clip is implausible by default; a user can raise the limit."""
    write_tone(tmp_path / "fast.wav", seconds=2.0)
    text = " ".join(["word"] * 30)  # 15 words/s
    source = write_manifest(tmp_path / "m.jsonl", [{"audio_filepath": "fast.wav", "text": text}])
    run_ingest(instance, warehouse, "strict", source)
    assert quarantine(warehouse, "strict") == {"fast.wav": "implausible_transcript"}
    loose = {"ops": {"audio_clips": {"config": {"max_words_per_second": 20.0}}}}
    source2 = write_manifest(tmp_path / "m2.jsonl", [{"audio_filepath": "fast.wav",
                                                      "text": text}])
    run_ingest(instance, warehouse, "loose", source2, config=loose)  # strict stored nothing
    assert warehouse.count("audio_clips", "loose") == 1
