"""Nothing a batch names is dropped or mislabeled without a record.

A manifest path naming a folder, files a folder batch skips, duplicates whose
transcript differs from the kept copy's, and NeMo segments (`offset` /
`duration`) of one recording. Fixtures are written into tmp_path.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from labeling.ingest.manifest import SourceEntry, read_source
from labeling.ingest.media import sha256_file
from labeling.ingest.rows import AudioLimits, ingest_audio, ingest_images, ingest_videos
from labeling.testing import write_image, write_manifest, write_tone, write_video

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "audio"


def by_name(result) -> dict[str, list[str]]:
    """File name -> the reasons its quarantine items give, in order."""
    out: dict[str, list[str]] = {}
    for q in result.quarantined:
        out.setdefault(Path(q["source_path"]).name, []).append(q["reason"])
    return out


# --- a manifest path naming a folder ------------------------------------------------------------


def test_a_manifest_path_naming_a_folder_is_not_a_file(tmp_path):
    (tmp_path / "clips.wav").mkdir()
    (tmp_path / "clips").mkdir()
    (tmp_path / "pics").mkdir()
    m = write_manifest(tmp_path / "m.jsonl", [
        {"audio_filepath": "clips.wav", "text": "a folder named like audio"},
        {"audio_filepath": "clips", "text": "a folder without extension"},
        {"audio_filepath": "gone.wav", "text": "missing"},
        {"image_filepath": "pics"},
    ])
    entries, issues = read_source(m)
    assert issues == []
    audio = ingest_audio([e for e in entries if e.kind == "audio"], AudioLimits())
    images = ingest_images([e for e in entries if e.kind == "image"])
    assert by_name(audio) == {"clips.wav": ["not_a_file"], "clips": ["not_a_file"],
                              "gone.wav": ["missing"]}
    assert by_name(images) == {"pics": ["not_a_file"]}
    for q in [*audio.quarantined[:2], *images.quarantined]:
        assert "is a directory, not a media file" in q["detail"]
        assert q["detail"].startswith(q["source_path"]) and q["line"] in (1, 2, 4)


# --- a folder batch accounts for everything in it ------------------------------------------------


def test_every_file_a_folder_batch_skips_leaves_a_record(tmp_path):
    write_tone(tmp_path / "a.wav")
    (tmp_path / "a.txt").write_text("used sidecar")
    (tmp_path / "orphan.txt").write_text("no audio here")
    write_image(tmp_path / "pic.png")
    (tmp_path / "pic.txt").write_text("captions are not read from sidecars")
    write_manifest(tmp_path / "more.jsonl", [{"audio_filepath": "a.wav"}])
    write_manifest(tmp_path / "notes.json", [{"image": "pic.png", "objects": []}])
    write_tone(tmp_path / ".hidden.wav", seed=1)
    (tmp_path / ".cache" / "deep").mkdir(parents=True)
    for name in ("x", "y", "deep/z"):
        (tmp_path / ".cache" / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    write_tone(tmp_path / "sub" / "b.flac", seed=2)
    (tmp_path / "sub" / "b.txt").write_text("another used sidecar")
    entries, issues = read_source(tmp_path)
    assert [(e.path.name, e.text) for e in entries] == [
        ("a.wav", "used sidecar"), ("pic.png", None), ("b.flac", "another used sidecar")]
    assert {Path(i.source_path).name: i.reason for i in issues} == {
        ".cache": "skipped", ".hidden.wav": "skipped", "more.jsonl": "skipped",
        "notes.json": "skipped", "orphan.txt": "skipped", "pic.txt": "skipped"}
    detail = {Path(i.source_path).name: i.detail for i in issues}
    assert "hidden folder (3 files in it)" in detail[".cache"]
    assert "hidden file" in detail[".hidden.wav"]
    assert f"`rlfoundry ingest {tmp_path / 'more.jsonl'} --batch NAME`" in detail["more.jsonl"]
    assert "JSON that is not an ingest manifest" in detail["notes.json"]
    assert "transcript with no audio file beside it" in detail["orphan.txt"]
    assert "transcript with no audio file beside it" in detail["pic.txt"]
    assert all(i.detail.startswith(f"{i.source_path}: ") and i.kind is None for i in issues)


def test_a_folder_of_media_and_used_sidecars_has_no_records(tmp_path):
    write_tone(tmp_path / "a.wav")
    (tmp_path / "a.txt").write_text("hello")
    write_tone(tmp_path / "b.flac", seed=1)
    (tmp_path / "b.txt").write_text("there")
    write_video(tmp_path / "v.mp4")
    entries, issues = read_source(tmp_path)
    assert issues == [] and len(entries) == 3


# --- duplicates with another transcript ---------------------------------------------------------


def test_a_duplicate_with_another_transcript_is_not_dropped_silently(tmp_path):
    write_tone(tmp_path / "a.wav", seconds=5.0)  # room for 28 words
    shutil.copy(tmp_path / "a.wav", tmp_path / "copy.wav")
    long = "a much longer transcript that goes on " * 4
    m = write_manifest(tmp_path / "m.jsonl", [
        {"audio_filepath": "a.wav", "text": "hello there"},
        {"audio_filepath": "copy.wav", "text": "hello there"},
        {"audio_filepath": "copy.wav", "text": "goodbye now"},
        {"audio_filepath": "copy.wav"},
        {"audio_filepath": "a.wav", "text": long},
    ])
    result = ingest_audio(read_source(m)[0], AudioLimits())
    assert [r["text"] for r in result.rows] == ["hello there"]
    assert [(q["line"], q["reason"]) for q in result.quarantined] == [
        (2, "duplicate"), (3, "duplicate_text_differs"), (4, "duplicate"),
        (5, "duplicate_text_differs")]
    assert result.duplicates == 2
    differs = result.quarantined[1]["detail"]
    assert differs.startswith(f"{tmp_path / 'copy.wav'}: manifest line 3: same sha256 ")
    assert f"as {tmp_path / 'a.wav'} (line 1) in this batch" in differs
    assert '"hello there"' in differs and '"goodbye now"' in differs
    shortened = result.quarantined[3]["detail"]
    assert '"a much longer transcript' in shortened and "…\"" in shortened
    assert long.strip() not in shortened


def test_a_duplicate_of_another_batch_compares_transcripts_when_known(tmp_path):
    clip = write_tone(tmp_path / "a.wav")
    digest = sha256_file(clip)
    entry = SourceEntry("audio", clip, "new words", line=7)
    cases = {
        (("/old/a.wav", "old"),): "duplicate",  # no text known: cannot tell
        (("/old/a.wav", "old", "new words"),): "duplicate",
        (("/old/a.wav", "old", "old words"),): "duplicate_text_differs",
        (("/old/a.wav", "old", None),): "duplicate_text_differs",  # the transcript would be lost
    }
    for (known,), expected in cases.items():
        result = ingest_audio([entry], AudioLimits(), known={digest: known})
        (q,) = result.quarantined
        assert q["reason"] == expected and "/old/a.wav in batch 'old'" in q["detail"]
    assert '"old words"' in ingest_audio([entry], AudioLimits(), known={
        digest: ("/old/a.wav", "old", "old words")}).quarantined[0]["detail"]
    unlabeled = SourceEntry("audio", clip)  # a copy without transcript loses nothing
    result = ingest_audio([unlabeled], AudioLimits(), known={digest: ("/o.wav", "o", "words")})
    assert [q["reason"] for q in result.quarantined] == ["duplicate"]


def test_cross_batch_duplicate_with_another_transcript_through_the_asset(warehouse, tmp_path):
    from assets.ingest import audio_clips
    from pipelines.partitions import BATCHES
    from resources.model_hub import ModelHub

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write_tone(a / "x.wav")
    shutil.copy(a / "x.wav", b / "x.wav")
    shutil.copy(a / "x.wav", b / "y.wav")
    write_manifest(a / "m.jsonl", [{"audio_filepath": "x.wav", "text": "first words"}])
    write_manifest(b / "m.jsonl", [{"audio_filepath": "x.wav", "text": "first words"},
                                   {"audio_filepath": "y.wav", "text": "other words"}])
    with DagsterInstance.ephemeral() as instance:
        for batch in ("a", "b"):
            warehouse.register_batch(batch, tmp_path / batch / "m.jsonl")
            instance.add_dynamic_partitions(BATCHES, [batch])
            assert materialize([audio_clips], partition_key=batch, instance=instance,
                               resources={"warehouse": warehouse,
                                          "model_hub": ModelHub()}).success
    rows = warehouse.fetch("SELECT reason, detail FROM quarantine WHERE batch = 'b' "
                           "ORDER BY line")
    assert [r for r, _ in rows] == ["duplicate", "duplicate_text_differs"]
    assert "in batch 'a'" in rows[1][1] and '"first words"' in rows[1][1]
    assert '"other words"' in rows[1][1]


# --- segments of one recording -------------------------------------------------------------------


def test_segments_of_one_recording_are_clips_with_their_own_text(tmp_path):
    write_tone(tmp_path / "rec.wav", seconds=12.0)
    write_tone(tmp_path / "whole.wav", seconds=2.0, seed=1)
    write_tone(tmp_path / "close.wav", seconds=5.0, seed=2)
    m = write_manifest(tmp_path / "m.jsonl", [
        {"audio_filepath": "rec.wav", "text": "one", "offset": 0.0, "duration": 4.0},
        {"audio_filepath": "rec.wav", "text": "two", "offset": 4.0, "duration": 4.0},
        {"audio_filepath": "rec.wav", "text": "three", "offset": 8, "duration": 4.0},
        {"audio_filepath": "rec.wav", "text": "tail", "offset": 3.0},
        {"audio_filepath": "whole.wav", "text": "whole", "offset": 0, "duration": 2.0,
         "speaker": "s1"},
        {"audio_filepath": "close.wav", "text": "close", "duration": 4.6},  # a span too
    ])
    entries, issues = read_source(m)
    assert issues == [] and [e.offset for e in entries] == [0.0, 4.0, 8.0, 3.0, 0.0, None]
    result = ingest_audio(entries, AudioLimits())
    assert result.quarantined == [] and result.duplicates == 0
    rows = {r["text"]: r for r in result.rows}
    rec = tmp_path / "rec.wav"
    assert {t: (r["source_path"], round(r["duration_s"], 3), r["tags"]) for t, r in
            rows.items()} == {
        "one": (f"{rec}#t=0,4", 4.0, "{}"), "two": (f"{rec}#t=4,8", 4.0, "{}"),
        "three": (f"{rec}#t=8,12", 4.0, "{}"), "tail": (f"{rec}#t=3", 9.0, "{}"),
        "whole": (str(tmp_path / "whole.wav"), 2.0, '{"speaker": "s1"}'),  # offset no tag
        "close": (f"{tmp_path / 'close.wav'}#t=0,4.6", 4.6, "{}")}
    assert len({r["clip_id"] for r in result.rows}) == 6
    assert rows["whole"]["clip_id"] == sha256_file(tmp_path / "whole.wav")


def test_segments_of_a_long_recording_are_clips_the_whole_is_too_long(tmp_path):
    write_tone(tmp_path / "long.wav", seconds=12.0)
    m = write_manifest(tmp_path / "m.jsonl", [
        {"audio_filepath": "long.wav", "text": "first part", "duration": 4.0},
        {"audio_filepath": "long.wav", "text": "later part", "offset": 8.0},
        {"audio_filepath": "long.wav", "text": "the whole thing, too long"},
    ])
    result = ingest_audio(read_source(m)[0], AudioLimits(max_seconds=5.0))
    assert sorted(r["text"] for r in result.rows) == ["first part", "later part"]
    assert [(q["line"], q["reason"]) for q in result.quarantined] == [(3, "too_long")]


def test_a_video_segment_is_refused_too(tmp_path):
    write_video(tmp_path / "v.mp4", frames=30, fps=10)
    m = write_manifest(tmp_path / "m.jsonl", [
        {"video_filepath": "v.mp4", "text": "a square moves", "duration": 1.0}])
    (q,) = ingest_videos(read_source(m)[0]).quarantined
    assert q["reason"] == "segment_of_recording" and "ffmpeg -ss 0.0 -i v.mp4 -t 1.0" in q["detail"]


@pytest.mark.parametrize("offset", ["3.0", -1.0, True, [1]])
def test_an_offset_that_is_not_seconds_is_a_bad_line(tmp_path, offset):
    m = write_manifest(tmp_path / "m.jsonl", [
        {"audio_filepath": "a.wav", "text": "x", "offset": offset}])
    entries, (issue,) = read_source(m)
    assert entries == [] and issue.reason == "bad_manifest_line" and "`offset`" in issue.detail


def test_the_bundled_sample_manifests_still_ingest_fully():
    for manifest in ("train.jsonl", "dev.jsonl"):
        entries, issues = read_source(SAMPLE / manifest)
        result = ingest_audio(entries, AudioLimits())
        assert issues == [] and result.quarantined == []
        assert len(result.rows) == len(entries) == {"train.jsonl": 140, "dev.jsonl": 60}[manifest]
