import os

from labeling.ingest.manifest import read_source
from labeling.testing import write_manifest, write_tone


def test_nemo_manifest_keeps_text_duration_and_every_other_key_as_tags(tmp_path):
    write_tone(tmp_path / "a.wav")
    m = write_manifest(tmp_path / "m.jsonl", [
        {"audio_filepath": "a.wav", "text": "  Hello   world ", "duration": 1.0,
         "accent": "scottish", "snr_db": 5, "speaker": "s1", "split": "dev"},
    ])
    (entry,), issues = read_source(m)
    assert issues == []
    assert entry.path == (tmp_path / "a.wav").resolve()
    assert (entry.kind, entry.text, entry.duration, entry.line) == ("audio", "Hello world", 1.0, 1)
    assert entry.tags == {"accent": "scottish", "snr_db": 5, "speaker": "s1", "split": "dev"}


def test_absolute_paths_and_image_and_video_keys(tmp_path):
    m = write_manifest(tmp_path / "m.jsonl", [
        {"audio_filepath": str(tmp_path / "a.flac")},
        {"image_filepath": "i.png", "text": "a red square"},
        {"video_filepath": "v.mp4"},
    ])
    entries, issues = read_source(m)
    assert [(e.kind, e.text) for e in entries] == [
        ("audio", None), ("image", "a red square"), ("video", None)]
    assert issues == []


def test_bad_lines_are_reported_with_line_and_reason_and_the_rest_is_read(tmp_path):
    m = write_manifest(tmp_path / "m.jsonl", [
        {"audio_filepath": "ok.wav", "text": "fine"},
        b"{not json",
        b'{"audio_filepath": "x.wav", "text": "caf\xe9"}',  # latin-1, not UTF-8
        {"audio_filepath": "e.wav", "text": "   "},
        {"audio_filepath": "../../etc/passwd", "text": "escape"},
        {"text": "no path"},
        ["not", "an", "object"],
    ])
    entries, issues = read_source(m)
    assert [e.line for e in entries] == [1]
    assert [(i.line, i.reason) for i in issues] == [
        (2, "bad_manifest_line"), (3, "non_utf8"), (4, "empty_transcript"),
        (5, "outside_allowed_roots"), (6, "no_media_path"), (7, "bad_manifest_line")]
    assert all(f"m.jsonl:{i.line}" in i.detail for i in issues)


def test_extra_allowed_roots_admit_paths_outside_the_manifest_folder(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    m = write_manifest(manifests / "m.jsonl", [{"audio_filepath": "../media/a.wav"}])
    assert read_source(m)[1][0].reason == "outside_allowed_roots"
    entries, issues = read_source(m, allowed_roots=[media])
    assert issues == [] and entries[0].path == (media / "a.wav").resolve()


def test_folder_with_sidecars_unknown_files_and_hidden_files(tmp_path):
    write_tone(tmp_path / "a.wav")
    (tmp_path / "a.txt").write_text("the transcript\n")
    (tmp_path / "sub").mkdir()
    write_tone(tmp_path / "sub" / "b.flac")
    (tmp_path / "sub" / "b.txt").write_bytes(b"\xff\xfe bad")
    write_tone(tmp_path / "c.wav")
    (tmp_path / "c.txt").write_text("  ")
    (tmp_path / "notes.docx").write_bytes(b"x")
    (tmp_path / ".DS_Store").write_bytes(b"x")
    entries, issues = read_source(tmp_path)
    assert [(e.path.name, e.text) for e in entries] == [("a.wav", "the transcript")]
    assert sorted((os.path.basename(i.source_path), i.reason) for i in issues) == [
        (".DS_Store", "skipped"),  # a hidden file leaves a record too
        ("b.flac", "non_utf8"), ("c.wav", "empty_transcript"), ("notes.docx", "unknown_extension")]


def test_folder_symlink_escaping_the_root_is_refused(tmp_path):
    outside = write_tone(tmp_path / "outside.wav")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.wav").symlink_to(outside)
    entries, issues = read_source(root)
    assert entries == [] and issues[0].reason == "outside_allowed_roots"
