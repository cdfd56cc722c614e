"""Export of clip rows to NeMo JSONL, Lhotse cuts and a saved HF dataset, each read back by
this project's readers into the same clips (segments stay segments, texts and tags kept).
"""

from __future__ import annotations

import json

import pytest
from datasets import load_from_disk

from labeling.ingest.export import to_hf_dataset, to_lhotse_cuts, to_nemo
from labeling.ingest.manifest import read_source
from labeling.ingest.rows import AudioLimits, ingest_audio
from labeling.testing import write_manifest, write_tone


@pytest.fixture
def clips(tmp_path):
    """Rows as ingestion wrote them: two segments of a stereo 44.1 kHz recording, a whole file."""
    src = tmp_path / "src"
    src.mkdir()
    write_tone(src / "rec.wav", seconds=9.0, sample_rate=44100, channels=2, seed=1)
    write_tone(src / "one.flac", seconds=1.5, seed=2)
    m = write_manifest(src / "m.jsonl", [
        {"audio_filepath": "rec.wav", "offset": 1.0, "duration": 2.5, "text": "first part",
         "speaker": "s1", "snr_db": 12},
        {"audio_filepath": "rec.wav", "offset": 4.0, "duration": 3.0, "text": "second part",
         "speaker": "s2"},
        {"audio_filepath": "one.flac", "text": "a whole file", "accent": "gb"}])
    result = ingest_audio(read_source(m)[0], AudioLimits())
    assert len(result.rows) == 3
    return result.rows


def same(rows, again):
    key = [(r["clip_id"], r["text"], round(r["duration_s"], 3)) for r in rows]
    assert [(r["clip_id"], r["text"], round(r["duration_s"], 3)) for r in again] == key


def test_nemo_export_reads_back_into_the_same_clips(tmp_path, clips):
    out = to_nemo(clips, tmp_path / "out.jsonl.gz")
    entries, issues = read_source(out, [tmp_path])
    assert issues == []
    again = ingest_audio(entries, AudioLimits()).rows
    same(clips, again)
    assert [json.loads(r["tags"]) for r in again] == [json.loads(r["tags"]) for r in clips]


def test_lhotse_export_reads_back_into_the_same_clips(tmp_path, clips):
    out = to_lhotse_cuts(clips, tmp_path / "cuts.jsonl.gz")
    from lhotse import CutSet

    first = {cut.id: cut for cut in CutSet.from_file(out)}[clips[0]["clip_id"]]
    assert (first.start, first.duration, first.supervisions[0].speaker) == (1.0, 2.5, "s1")
    assert first.load_audio().shape == (2, round(2.5 * 44100))  # Lhotse reads the span
    entries, issues = read_source(out, [tmp_path])
    assert issues == []
    same(clips, ingest_audio(entries, AudioLimits()).rows)


def test_hf_export_holds_each_clips_audio_and_reads_back(tmp_path, clips):
    out = to_hf_dataset(clips, tmp_path / "ds")
    dataset = load_from_disk(str(out))
    assert dataset.column_names == ["audio", "text", "clip_id", "duration_s", "tags"]
    assert dataset.features["audio"].decode  # others decode it as audio
    entries, issues = read_source(out)
    assert issues == []
    again = ingest_audio(entries, AudioLimits()).rows
    assert [(r["text"], round(r["duration_s"], 3), r["sample_rate"]) for r in again] == [
        ("first part", 2.5, 44100), ("second part", 3.0, 44100), ("a whole file", 1.5, 16000)]
    assert again[2]["clip_id"] == clips[2]["clip_id"]  # a whole file goes out as its bytes
    assert json.loads(json.loads(again[0]["tags"])["tags"]) == {"snr_db": 12, "speaker": "s1"}


# --- `rlfoundry export`: a batch's transcribed clips out, read back --------------------------


@pytest.fixture
def batches(home, tmp_path):
    """Batch `calls`: two segments of a recording with their text and a clip without one;
    batch `bare`: a clip without a transcript."""
    from click.testing import CliRunner

    from pipelines.cli import main

    src = tmp_path / "calls"
    src.mkdir()
    write_tone(src / "rec.wav", seconds=6.0, seed=1)
    write_tone(src / "quiet.wav", seconds=1.0, seed=2, freq=700)
    write_tone(src / "bare.wav", seconds=1.0, seed=3, freq=900)
    calls = write_manifest(src / "calls.jsonl", [
        {"audio_filepath": "rec.wav", "offset": 0.5, "duration": 2.0, "text": "first part",
         "split": "train"},
        {"audio_filepath": "rec.wav", "offset": 3.0, "duration": 2.5, "text": "second part",
         "split": "test"},
        {"audio_filepath": "quiet.wav", "split": "train"}])
    bare = write_manifest(src / "bare.jsonl", [{"audio_filepath": "bare.wav"}])
    for path, name in ((calls, "calls"), (bare, "bare")):
        result = CliRunner().invoke(main, ["ingest", str(path), "--batch", name])
        assert result.exit_code == 0, result.output
    return lambda *args: CliRunner().invoke(main, ["export", *map(str, args)])


@pytest.mark.parametrize("fmt, written", [("nemo", "calls.jsonl"),
                                          ("lhotse", "calls_cuts.jsonl.gz"),
                                          ("hf-dataset", "")])
def test_export_writes_a_batchs_transcribed_clips_that_read_back(batches, tmp_path, fmt,
                                                                  written):
    out = tmp_path / "out" / fmt
    result = batches("calls", "--format", fmt, "--out", out)
    assert result.exit_code == 0, result.output
    path = out / written if written else out
    assert result.output == (f"exported 2 of 3 clips of batch calls (those with a transcript) "
                             f"as {fmt}: {path}\n")
    entries, issues = read_source(path, [tmp_path])  # `rlfoundry ingest PATH` reads it back
    assert issues == []
    rows = ingest_audio(entries, AudioLimits()).rows
    tags = [json.loads(r["tags"]) for r in rows]
    if fmt == "hf-dataset":  # the dataset's `tags` column holds them as JSON
        tags = [json.loads(t["tags"]) for t in tags]
    assert sorted((r["text"], round(r["duration_s"], 2), t["split"]) for r, t in zip(
        rows, tags, strict=True)) == [("first part", 2.0, "train"), ("second part", 2.5, "test")]
    assert [p.name for p in (tmp_path / "out").iterdir()] == [fmt]  # no temp folder left


def test_export_of_one_split_and_every_refusal_is_one_line(batches, tmp_path):
    out = tmp_path / "test-split"
    result = batches("calls", "--format", "nemo", "--out", out, "--split", "test")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["text"] for line in (out / "calls.jsonl").read_text().splitlines()
            ] == ["second part"]

    def refused(*args):
        result = batches(*args)
        assert result.exit_code == 1, result.output
        (line,) = result.output.strip().splitlines()
        return line

    fresh = tmp_path / "fresh"
    assert refused("nosuch", "--format", "nemo", "--out", fresh) == \
        "Error: No batch 'nosuch'; batches: calls, bare (`rlfoundry batches` lists them)."
    assert refused("bare", "--format", "lhotse", "--out", fresh) == (
        "Error: Batch 'bare' has no clips with a transcript (1 audio clips in all): nothing "
        "to export. `rlfoundry batches` shows how many are labeled.")
    assert refused("calls", "--format", "nemo", "--out", fresh, "--split", "dev").startswith(
        "Error: Batch 'calls' has no clips with a transcript in split dev (3 audio clips")
    assert refused("calls", "--format", "hf-dataset", "--out", out) == (
        f"Error: --out {out} exists and is not an empty folder: pick a new one (an export "
        "never overwrites).")
    assert not fresh.exists()
    result = batches("calls", "--format", "csv", "--out", fresh)
    assert result.exit_code == 2 and "'csv' is not one of 'nemo', 'lhotse', 'hf-dataset'" \
        in result.output
