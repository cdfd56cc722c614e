"""NeMo manifests: segments of one recording as clips, gzipped manifests, transcript keys.

Every sample is written by the test (tiny WAVs with soundfile).
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import soundfile as sf
from dagster import DagsterInstance, materialize

from assets.ingest import audio_clips
from labeling.ingest.audio import _decode_pyav, load_audio, load_audio_16k
from labeling.ingest.formats import check, detect_format
from labeling.ingest.manifest import read_source
from labeling.ingest.media import MediaError, sha256_file
from labeling.ingest.rows import AudioLimits, ingest_audio
from labeling.ingest.spans import Window, span_digest, split_span
from labeling.testing import write_manifest, write_tone
from pipelines.partitions import BATCHES
from resources.model_hub import ModelHub

SEGMENTS = [(0.0, 3.5, "the first sentence"), (3.5, 4.0, "a second one"),
            (7.5, 4.5, "and the last words")]


def ingest(source, **kwargs):
    return ingest_audio(read_source(source, **kwargs)[0], AudioLimits())


@pytest.fixture
def recording(tmp_path):
    """A 12 s recording whose samples ramp with time, so a span's samples show where it is."""
    rate = 16000
    ramp = (np.arange(12 * rate) / (12 * rate)).astype("float32") * 0.5 + 0.1
    sf.write(tmp_path / "rec.wav", ramp, rate, subtype="FLOAT")
    return tmp_path / "rec.wav"


def segment_lines(name="rec.wav", key="text"):
    return [{"audio_filepath": name, "offset": o, "duration": d, key: t, "speaker": "s1"}
            for o, d, t in SEGMENTS]


def test_segments_become_clips_with_their_own_text_and_audio_span(tmp_path, recording):
    result = ingest(write_manifest(tmp_path / "m.jsonl", segment_lines()))
    assert result.quarantined == [] and result.duplicates == 0
    assert [r["text"] for r in result.rows] == [t for _, _, t in SEGMENTS]
    for row, (offset, duration, _) in zip(result.rows, SEGMENTS, strict=True):
        path, start, end = split_span(row["source_path"])
        assert path == str(recording) and start == offset and end == offset + duration
        assert row["duration_s"] == pytest.approx(duration)
        samples = load_audio_16k(row["source_path"])  # what every consumer decodes
        assert len(samples) == round(duration * 16000)
        assert samples[0] == pytest.approx(0.1 + 0.5 * offset / 12, abs=1e-4)
        assert row["clip_id"] == span_digest(sha256_file(recording), row["source_path"])
        assert json.loads(row["tags"]) == {"speaker": "s1"}
    assert len({r["clip_id"] for r in result.rows}) == 3


def test_a_segment_listed_twice_is_a_duplicate_and_a_whole_file_line_is_the_file(
        tmp_path, recording):
    lines = segment_lines()[:1] * 2 + [{"audio_filepath": "rec.wav", "duration": 12.0,
                                        "offset": 0, "text": "everything"}]
    result = ingest_audio(read_source(write_manifest(tmp_path / "m.jsonl", lines))[0],
                          AudioLimits(max_seconds=20))
    assert [q["reason"] for q in result.quarantined] == ["duplicate"]
    assert result.quarantined[0]["source_path"] == f"{recording}#t=0,3.5"
    whole = result.rows[1]
    assert whole["source_path"] == str(recording) and whole["clip_id"] == sha256_file(recording)


def test_a_segment_outside_its_recording_is_a_bad_segment(tmp_path, recording):
    result = ingest(write_manifest(tmp_path / "m.jsonl", [
        {"audio_filepath": "rec.wav", "offset": 10.0, "duration": 5.0, "text": "past the end"},
        {"audio_filepath": "rec.wav", "offset": 13.0, "duration": 1.0, "text": "after it"}]))
    assert result.rows == []
    assert [(q["line"], q["reason"]) for q in result.quarantined] == [
        (1, "bad_segment"), (2, "bad_segment")]
    assert result.quarantined[0]["source_path"] == f"{recording}#t=10,15"
    assert "ends at 15 s, after the end of the 12.000 s recording" in \
        result.quarantined[0]["detail"]


def test_a_span_decodes_through_pyav_too(tmp_path):
    write_tone(tmp_path / "t.wav", seconds=3.0)
    whole, _ = load_audio(tmp_path / "t.wav")
    part, info = _decode_pyav(tmp_path / "t.wav", 16000, None, False, Window(1.0, 2.5))
    assert info.decoder == "pyav" and len(part) == 24000
    np.testing.assert_allclose(part, whole[16000:40000], atol=1e-4)
    with pytest.raises(MediaError, match="before it starts"):
        load_audio(f"{tmp_path / 't.wav'}#t=2,1")


def test_a_gzipped_manifest_reads_like_a_plain_one(tmp_path, recording):
    plain = write_manifest(tmp_path / "m.jsonl", segment_lines())
    gz = tmp_path / "m.jsonl.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert detect_format(gz) == "nemo"
    rows = ingest(gz).rows
    assert [(r["source_path"], r["text"]) for r in rows] == [
        (r["source_path"], r["text"]) for r in ingest(plain).rows]


def test_a_corrupt_gzip_keeps_the_lines_before_and_says_where_it_broke(tmp_path, recording):
    lines = b"".join(json.dumps(r).encode() + b"\n" for r in segment_lines() * 400)
    data = gzip.compress(lines)
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    entries, issues = read_source(tmp_path / "cut.jsonl.gz")
    assert entries and [i.reason for i in issues] == ["corrupt_gzip"]
    assert issues[0].line == len(entries) + 1
    assert "compress the manifest again" in issues[0].detail
    (tmp_path / "junk.jsonl.gz").write_bytes(b"\x1f\x8b" + b"not gzip at all" * 10)
    entries, issues = read_source(tmp_path / "junk.jsonl.gz")
    assert entries == [] and [i.reason for i in issues] == ["corrupt_gzip"]


def test_a_common_transcript_key_is_read_and_said(tmp_path, recording):
    result = ingest(write_manifest(tmp_path / "m.jsonl", segment_lines(key="sentence")))
    assert [r["text"] for r in result.rows] == [t for _, _, t in SEGMENTS]
    assert all("sentence" not in json.loads(r["tags"]) for r in result.rows)
    (note, count), = result.notes.items()
    assert count == 3 and "transcript read from `sentence`" in note


def test_text_key_names_the_transcript_and_several_candidates_are_not_guessed(
        tmp_path, recording):
    lines = [{"audio_filepath": "rec.wav", "offset": 0, "duration": 2.0, "text": "raw words",
              "normalized_text": "clean words", "transcript": "other words"}]
    m = write_manifest(tmp_path / "m.jsonl", lines)
    (row,) = ingest(m, text_key="normalized_text").rows
    assert row["text"] == "clean words"
    assert json.loads(row["tags"]) == {"text": "raw words", "transcript": "other words"}
    del lines[0]["text"]
    result = ingest(write_manifest(tmp_path / "n.jsonl", lines))
    assert result.rows[0]["text"] is None
    assert "several transcript keys (transcript, normalized_text)" in next(iter(result.notes))
    with pytest.raises(ValueError, match="--text-key applies to"):
        check(tmp_path, "folder", "sentence")


def test_the_ingest_asset_reads_a_batch_with_its_text_key(tmp_path, recording, warehouse):
    m = write_manifest(tmp_path / "m.jsonl", segment_lines(key="transcription"))
    warehouse.register_batch("b1", m, format="nemo", text_key="transcription")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, ["b1"])
        result = materialize([audio_clips], partition_key="b1", instance=instance,
                             resources={"warehouse": warehouse, "model_hub": ModelHub()})
    assert result.success
    rows = warehouse.fetch_dicts("SELECT source_path, text, duration_s FROM audio_clips "
                                 "ORDER BY duration_s")
    assert [(r["source_path"].rsplit("#", 1)[1], r["text"]) for r in rows] == [
        ("t=0,3.5", "the first sentence"), ("t=3.5,7.5", "a second one"),
        ("t=7.5,12", "and the last words")]
