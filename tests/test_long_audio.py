"""Recordings longer than a clip: cut into speech segments on ingest, transcribed in pieces
for evaluation (`labeling.ingest.segment`)."""

import doctest
import importlib
import json
import random
import re
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from labeling.ingest.audio import load_audio
from labeling.ingest.manifest import read_source
from labeling.ingest.rows import AudioLimits, ingest_audio
from labeling.ingest.segment import LongFormSplitter, Segmenter, chunk_spans, speech_spans
from labeling.ingest.spans import split_span
from labeling.testing import speech_like, write_manifest, write_tone
from models.roles import Region
from training.eval.evaluate import evaluate_clips

SR = 16_000


def bursts(count: int, *, on_s: float = 2.0, off_s: float = 1.0) -> np.ndarray:
    """`count` speech-like bursts, each after `off_s` of near silence. silero-vad finds each
    burst when the pauses stay short (after pauses of 4 s or more it stops finding this
    synthetic voice, though it finds real speech)."""
    parts = []
    for i in range(count):
        parts += [np.random.default_rng(100 + i).normal(0, 0.002, int(off_s * SR)),
                  speech_like(on_s, seed=i)]
    return np.concatenate(parts).astype(np.float32)


def fake_detector(regions):
    """A region detector that finds `regions` (seconds) in any audio."""
    found = [Region(a, b, "speech", 0.9) for a, b in regions]
    return SimpleNamespace(name="fake-vad",
                           regions=lambda audios, sample_rate: [found] * len(audios))


# --- spans from regions ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["labeling.ingest.segment", "training.eval.evaluate"])
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def covered(regions, spans, slack=0.002):
    """Whether every point of speech (sampled each 0.1 s) lies in one of `spans`."""
    return all(any(a - slack <= t <= b + slack for a, b in spans)
               for start, end in regions for t in np.arange(start, end, 0.1))


def test_spans_join_close_regions_split_at_long_pauses_and_cut_long_speech():
    regions = [(1.0, 4.0), (4.5, 12.0), (13.0, 20.0),  # pauses under 3 s: one clip
               (30.0, 95.0),  # 65 s without a pause: equal parts
               (100.0, 100.4)]  # a short word: widened to 1 s
    spans = speech_spans(regions, duration_s=110.0)
    assert spans[0] == (0.8, 20.2)  # padded by 0.2 s
    assert [round(b - a, 1) for a, b in spans[1:4]] == [21.9, 21.7, 21.9]
    assert spans[4] == (99.7, 100.7)
    assert covered(regions, spans)


def test_spans_stay_within_the_limits_whatever_the_regions():
    rng = random.Random(7)
    for _ in range(200):
        duration = rng.uniform(31, 400)
        regions, t = [], rng.uniform(0, 3)
        while t < duration:
            length = rng.choice([rng.uniform(0.05, 2), rng.uniform(2, 80)])
            regions.append((t, min(t + length, duration)))
            t += length + rng.choice([rng.uniform(0.05, 0.5), rng.uniform(0.5, 10)])
        spans = speech_spans(regions, duration)
        assert spans, regions
        assert all(1.0 - 1e-9 <= b - a <= 30.0 for a, b in spans), spans
        assert all(0 <= a < b <= duration for a, b in spans)
        assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:], strict=False))
        pieces = chunk_spans(regions, duration)
        assert pieces[0][0] == 0 and pieces[-1][1] == duration
        assert all(b1 == a2 for (_, b1), (a2, _) in zip(pieces, pieces[1:], strict=False))
        assert all(0 < b - a <= 30.0 for a, b in pieces)


def test_pieces_for_transcription_are_cut_in_pauses():
    regions = [(0.5, 12.0), (12.4, 27.0), (28.0, 45.0), (45.2, 58.0)]
    assert chunk_spans(regions, duration_s=60.0) == [(0.0, 27.5), (27.5, 45.1), (45.1, 60.0)]


# --- ingest ---------------------------------------------------------------------------------


def test_a_long_recording_becomes_clips_of_its_speech(tmp_path):
    write_tone(tmp_path / "long.wav", seconds=75.0)
    write_tone(tmp_path / "short.wav", seconds=2.0, seed=1)
    m = write_manifest(tmp_path / "m.jsonl", [
        {"audio_filepath": "long.wav", "text": "the whole talk", "duration": 75.0},
        {"audio_filepath": "short.wav", "text": "a short one"}])
    detector = fake_detector([(2.0, 10.0), (11.0, 25.0), (40.0, 74.0)])
    result = ingest_audio(read_source(m)[0], AudioLimits(), segmenter=Segmenter(detector))
    assert result.quarantined == []
    rows = {r["source_path"].rsplit("/", 1)[1]: r for r in result.rows}
    assert sorted(rows) == ["long.wav#t=1.8,25.2", "long.wav#t=39.8,57", "long.wav#t=57,74.2",
                            "short.wav"]
    assert rows["short.wav"]["text"] == "a short one"
    for row in rows.values():
        audio, info = load_audio(row["source_path"])
        _, start, end = split_span(row["source_path"])
        if start is not None:
            assert row["text"] is None and row["manifest_line"] == 1
            assert len(audio) == pytest.approx((end - start) * SR, abs=2)
            assert info.duration_s == pytest.approx(row["duration_s"])
            assert row["duration_s"] <= 30
    assert len({r["clip_id"] for r in result.rows}) == 4
    (note,) = result.notes
    assert result.notes[note] == 3 and "transcript was not split" in note


def test_segments_the_manifest_lists_are_used_as_they_are(tmp_path):
    write_tone(tmp_path / "long.wav", seconds=40.0)
    m = write_manifest(tmp_path / "m.jsonl", [
        {"audio_filepath": "long.wav", "text": "first", "offset": 0.0, "duration": 5.0},
        {"audio_filepath": "long.wav", "text": "second", "offset": 35.0, "duration": 5.0}])
    result = ingest_audio(read_source(m)[0], AudioLimits(),
                          segmenter=Segmenter(fake_detector([(1.0, 39.0)])))
    assert [(r["source_path"].rsplit("#", 1)[1], r["text"]) for r in result.rows] == [
        ("t=0,5", "first"), ("t=35,40", "second")]


def test_without_segmenting_a_long_recording_is_quarantined_naming_the_option(tmp_path):
    write_tone(tmp_path / "long.wav", seconds=35.0)
    (q,) = ingest_audio(read_source(tmp_path)[0], AudioLimits()).quarantined
    assert q["reason"] == "too_long" and "--segment vad" in q["detail"]


def test_a_long_recording_without_speech_is_quarantined(tmp_path):
    write_tone(tmp_path / "long.wav", seconds=35.0)
    (tmp_path / "broken.wav").write_bytes(b"RIFF" + bytes(200))
    result = ingest_audio(read_source(tmp_path)[0], AudioLimits(),
                          segmenter=Segmenter(fake_detector([])))
    assert result.rows == []
    reasons = {q["source_path"].rsplit("/", 1)[1]: q["reason"] for q in result.quarantined}
    assert reasons["long.wav"] == "no_speech"
    assert reasons["broken.wav"] != "no_speech"


def test_silero_vad_cuts_a_long_recording_at_its_pauses(tmp_path):
    from models.regions import SileroVAD

    audio = bursts(23)  # 69 s: a burst every 3 s from 1 s on
    sf.write(tmp_path / "talk.wav", audio, SR)
    result = ingest_audio(read_source(tmp_path)[0], AudioLimits(),
                          segmenter=Segmenter(SileroVAD.from_pretrained()))
    assert result.quarantined == [] and len(result.rows) >= 3
    spans = [split_span(r["source_path"])[1:] for r in result.rows]
    assert all(1.0 <= b - a <= 30.0 for a, b in spans)
    for burst in range(23):  # every burst is inside one clip, whole
        start = 1.0 + 3 * burst
        assert any(a <= start + 0.1 and start + 1.9 <= b for a, b in spans), (burst, spans)
    for row, (start, end) in zip(result.rows, spans, strict=True):
        assert row["duration_s"] == pytest.approx(end - start, abs=1e-3)


def test_ingest_with_segment_vad_records_it_with_the_batch(tmp_path, monkeypatch):
    from pipelines.cli import main
    from resources.warehouse import Warehouse

    monkeypatch.setenv("RLFOUNDRY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    media = tmp_path / "media"
    media.mkdir()
    sf.write(media / "talk.wav", bursts(12), SR)  # 36 s
    out = CliRunner().invoke(main, ["ingest", str(media), "--batch", "talks",
                                    "--segment", "vad"])
    assert out.exit_code == 0, out.output
    warehouse = Warehouse()
    assert warehouse.batch_source("talks")["segment"] == "vad"
    rows = warehouse.fetch_dicts("SELECT source_path, duration_s, text FROM audio_clips")
    assert len(rows) >= 2 and all("#t=" in r["source_path"] and r["text"] is None
                                  and r["duration_s"] <= 30 for r in rows)
    # segments carry no transcript by design: the report says what they are, and no hint
    # about a transcript under another key (--text-key)
    assert f"batch talks (train): {len(rows)} audio clips ({len(rows)} speech segments " \
           "cut by --segment vad); 0 duplicates, 0 quarantined" in out.output
    assert "transcript" not in out.output


def test_segments_are_found_by_the_detector_the_model_hub_resource_is_configured_with(
        tmp_path, warehouse, monkeypatch):
    """A user's weights folder set on the `model_hub` resource (as for every model an asset
    loads) is the one that segments, not a default hub's bundled silero-vad."""
    import shutil

    from dagster import DagsterInstance, materialize

    from assets.ingest import audio_clips
    from models.regions import bundled_vad_path
    from pipelines.partitions import BATCHES
    from resources.model_hub import ModelHub

    monkeypatch.delenv("RLFOUNDRY_REGION_DETECTOR_MODEL", raising=False)
    weights = tmp_path / "my-vad"
    weights.mkdir()
    shutil.copy(bundled_vad_path(), weights / "silero_vad.jit")
    media = tmp_path / "media"
    media.mkdir()
    sf.write(media / "talk.wav", bursts(12), SR)  # 36 s
    warehouse.register_batch("b1", media, segment="vad")
    hub = ModelHub(region_detector_model=str(weights), cache_dir=str(tmp_path / "models"))
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, ["b1"])
        result = materialize([audio_clips], partition_key="b1", instance=instance,
                             resources={"warehouse": warehouse, "model_hub": hub})
    assert result.success
    (mat,) = result.asset_materializations_for_node("audio_clips")
    (note,) = mat.metadata["notes"].value
    assert note.endswith(f"cut at pauses by {weights}")
    assert warehouse.count("audio_clips", "b1") >= 2


def test_the_ingest_asset_config_can_ask_for_segments_a_batch_was_registered_without(
        tmp_path, warehouse):
    from dagster import DagsterInstance, materialize

    from assets.ingest import audio_clips
    from pipelines.partitions import BATCHES
    from resources.model_hub import ModelHub

    media = tmp_path / "media"
    media.mkdir()
    sf.write(media / "talk.wav", bursts(12), SR)  # 36 s
    warehouse.register_batch("b1", media)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, ["b1"])
        for segment in ("", "vad"):
            config = {"ops": {"audio_clips": {"config": {"segment": segment}}}}
            assert materialize([audio_clips], partition_key="b1", instance=instance,
                               resources={"warehouse": warehouse, "model_hub": ModelHub()},
                               run_config=config).success
            clips = warehouse.fetch("SELECT source_path FROM audio_clips")
            quarantined = warehouse.fetch("SELECT reason FROM quarantine")
            if not segment:
                assert clips == [] and quarantined == [("too_long",)]
    assert len(clips) >= 2 and quarantined == []


# --- long-form evaluation ---------------------------------------------------------------------


class LengthASR:
    """Transcribes each piece as the number of whole seconds it holds."""

    def transcribe(self, audios, batch_size=8, progress=None):
        assert all(len(a) <= 30 * SR for a in audios)
        return [f"s{round(len(a) / SR)}" for a in audios]


def test_a_long_clip_is_scored_on_its_joined_pieces():
    clips = [{"source_path": "long", "text": "s30 s30 s5"},
             {"source_path": "short", "text": "s3"}]
    audio = {"long": np.zeros(65 * SR, np.float32), "short": np.zeros(3 * SR, np.float32)}
    split = LongFormSplitter(None)
    result = evaluate_clips(LengthASR(), clips, audio.__getitem__, split=split)
    assert result.failures == [] and result.report.overall.wer == 0
    assert [u.get("chunks") for u in result.utterances] == [3, None]
    assert (split.recordings, split.pieces) == (1, 3)
    without = evaluate_clips(LengthASR(), clips, audio.__getitem__)
    assert [c["source_path"] for c, _ in without.failures] == ["long"]


def test_evaluate_transcribes_a_long_recording_and_reports_a_broken_one(tmp_path, monkeypatch,
                                                                       tiny_whisper_dir):
    from pipelines.cli import main

    monkeypatch.setenv("RLFOUNDRY_HOME", str(tmp_path / "home"))
    media = tmp_path / "media"
    media.mkdir()
    sf.write(media / "talk.wav", bursts(22), SR)  # 66 s
    write_tone(media / "short.wav", seconds=2.0)
    (media / "broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40))
    m = write_manifest(media / "m.jsonl", [
        {"audio_filepath": "talk.wav", "text": "a long talk about many things"},
        {"audio_filepath": "short.wav", "text": "short"},
        {"audio_filepath": "broken.wav", "text": "never heard"}])
    out_json = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["evaluate", "--model", str(tiny_whisper_dir),
                                       "--manifest", str(m), "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert re.search(r"long-form: 1 recording\(s\) over 30 s transcribed in [3-9] pieces",
                     result.output)
    (failed,) = [line for line in result.output.splitlines() if line.startswith("failed:")]
    assert f"failed: {media / 'broken.wav'}: " in failed and "decoder" in failed
    report = json.loads(out_json.read_text())
    assert report["overall"]["n"] == 2
    (talk,) = [u for u in report["utterances"] if u["clip_id"].endswith("talk.wav")]
    assert talk["chunks"] >= 3 and talk["ref_words"] == 6
