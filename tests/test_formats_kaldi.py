"""Kaldi data dirs (wav.scp, text, segments, utt2spk) and LibriSpeech's *.trans.txt layout,
read into the same clip rows. Every sample is written by the test.
"""

from __future__ import annotations

import json

import pytest

from labeling.ingest.audio import load_audio_16k
from labeling.ingest.formats import check, detect_format
from labeling.ingest.manifest import read_source
from labeling.ingest.rows import AudioLimits, ingest_audio
from labeling.testing import write_tone


def ingest(source, *args, **kwargs):
    entries, issues = read_source(source, *args, **kwargs)
    return ingest_audio(entries, AudioLimits()), issues


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- Kaldi -----------------------------------------------------------------------------------


@pytest.fixture
def kaldi_dir(tmp_path):
    """A recipe dir with audio under `wav/` and a data dir `data/train` whose wav.scp paths
    are relative to the recipe dir, as Kaldi recipes write them."""
    (tmp_path / "wav").mkdir()
    write_tone(tmp_path / "wav" / "rec1.wav", seconds=8.0, seed=1)
    write_tone(tmp_path / "wav" / "rec2.wav", seconds=2.0, seed=2)
    data = tmp_path / "data" / "train"
    write(data / "wav.scp", "rec1 wav/rec1.wav\nrec2 wav/rec2.wav\nrec3 sox x.wav -t wav - |\n")
    write(data / "segments", "utt1 rec1 0.00 3.00\nutt2 rec1 3.00 7.50\nutt3 rec2 0.5 -1\n"
                             "utt4 nope 0 1\nutt5 rec1 zero 1\n")
    write(data / "text", "utt1 HELLO WORLD\nutt2 HOW ARE YOU\nutt3 FINE\nutt9 ORPHAN\n")
    write(data / "utt2spk", "utt1 spk1\nutt2 spk1\nutt3 spk2\n")
    return data


def test_a_kaldi_data_dir_with_segments_gives_segment_clips(kaldi_dir):
    assert detect_format(kaldi_dir) == "kaldi" and detect_format(kaldi_dir / "wav.scp") == "kaldi"
    result, issues = ingest(kaldi_dir, [kaldi_dir.parent.parent])
    got = [(r["text"], r["source_path"].rsplit("/", 1)[1], round(r["duration_s"], 3),
            json.loads(r["tags"])) for r in result.rows]
    assert got == [
        ("HELLO WORLD", "rec1.wav#t=0,3", 3.0, {"utt_id": "utt1", "speaker": "spk1"}),
        ("HOW ARE YOU", "rec1.wav#t=3,7.5", 4.5, {"utt_id": "utt2", "speaker": "spk1"}),
        ("FINE", "rec2.wav#t=0.5", 1.5, {"utt_id": "utt3", "speaker": "spk2"})]
    assert len(load_audio_16k(result.rows[1]["source_path"])) == 72000
    assert [(i.source_path.rsplit("/", 1)[1], i.line, i.reason) for i in issues] == [
        ("segments", 4, "unknown_recording"), ("segments", 5, "bad_manifest_line"),
        ("wav.scp", 3, "unsupported_source"), ("text", 4, "skipped")]


def test_a_kaldi_data_dir_without_segments_is_one_clip_per_file(tmp_path):
    write_tone(tmp_path / "a.wav", seed=1)
    write_tone(tmp_path / "b.wav", seed=2)
    write(tmp_path / "wav.scp", "a a.wav\nb b.wav\nc missing.wav\n")
    write(tmp_path / "text", "a SAY A\nb\n")
    result, issues = ingest(tmp_path)
    assert [(r["text"], r["source_path"].rsplit("/", 1)[1]) for r in result.rows] == [
        ("SAY A", "a.wav")]
    assert [i.reason for i in issues] == ["empty_transcript"]
    assert [q["reason"] for q in result.quarantined] == ["missing"]
    with pytest.raises(ValueError, match="--text-key applies to"):
        read_source(tmp_path, text_key="sentence")
    manifest = write(tmp_path / "other" / "m.jsonl", "{}\n")
    with pytest.raises(ValueError, match="is not a kaldi source: there is no wav.scp in"):
        check(manifest, "kaldi")  # what `rlfoundry ingest --format kaldi` says first


# --- LibriSpeech -----------------------------------------------------------------------------


def test_a_librispeech_layout_ingests_its_transcripts(tmp_path):
    root = tmp_path / "LibriSpeech" / "dev-clean"
    chapter = root / "84" / "121123"
    chapter.mkdir(parents=True)
    for i in range(2):
        write_tone(chapter / f"84-121123-000{i}.flac", seconds=1.0 + i, seed=i)
    write(chapter / "84-121123.trans.txt", "84-121123-0000 GO DO YOU HEAR\n"
                                           "84-121123-0001 BUT IN LESS THAN FIVE MINUTES\n"
                                           "84-121123-0002 THE STAIRCASE GROANED\n")
    write(root.parent / "README.TXT", "LibriSpeech")
    assert detect_format(root.parent) == "librispeech"
    result, issues = ingest(root.parent)
    assert [(r["text"], json.loads(r["tags"]), round(r["duration_s"], 2))
            for r in result.rows] == [
        ("GO DO YOU HEAR", {"utt_id": "84-121123-0000", "speaker": "84", "chapter": "121123"},
         1.0),
        ("BUT IN LESS THAN FIVE MINUTES", {"utt_id": "84-121123-0001", "speaker": "84",
                                           "chapter": "121123"}, 2.0)]
    assert [(i.reason, i.line) for i in issues] == [("skipped", None), ("missing", 3)]
    assert "README.TXT" in issues[0].source_path
    entries, _ = read_source(chapter / "84-121123.trans.txt")  # one transcript file alone
    assert len(entries) == 2
