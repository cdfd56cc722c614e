"""Lhotse manifests (cuts; recordings + supervisions; .jsonl and .jsonl.gz), written with
Lhotse itself, read into the same clip rows; supervisions are segment clips with their text.
"""

from __future__ import annotations

import json

import pytest
from lhotse import (
    CutSet,
    MonoCut,
    Recording,
    RecordingSet,
    SupervisionSegment,
    SupervisionSet,
)

from labeling.ingest.audio import load_audio_16k
from labeling.ingest.formats import detect_format
from labeling.ingest.manifest import read_source
from labeling.ingest.rows import AudioLimits, ingest_audio
from labeling.ingest.spans import split_span
from labeling.testing import write_tone


def ingest(source, **kwargs):
    entries, issues = read_source(source, **kwargs)
    return ingest_audio(entries, AudioLimits()), issues


@pytest.fixture
def corpus(tmp_path):
    """Two recordings (10 s and 3 s) and three supervisions, two of them in the first."""
    write_tone(tmp_path / "long.wav", seconds=10.0, seed=1)
    write_tone(tmp_path / "short.wav", seconds=3.0, seed=2)
    recs = RecordingSet.from_recordings([Recording.from_file(tmp_path / "long.wav", "long"),
                                         Recording.from_file(tmp_path / "short.wav", "short")])
    sups = SupervisionSet.from_segments([
        SupervisionSegment("long-1", "long", 1.0, 2.5, text="first words", speaker="spk1",
                           language="English"),
        SupervisionSegment("long-2", "long", 5.0, 4.0, text="second words", speaker="spk2"),
        SupervisionSegment("short-1", "short", 0.0, 3.0, text="all of it")])
    return tmp_path, recs, sups


def test_recordings_and_supervisions_are_segment_clips(corpus):
    d, recs, sups = corpus
    recs.to_file(d / "c_recordings_dev.jsonl.gz")
    sups.to_file(d / "c_supervisions_dev.jsonl.gz")
    assert detect_format(d) == "lhotse" and detect_format(d / "c_recordings_dev.jsonl.gz") \
        == "lhotse"
    result, issues = ingest(d)
    assert issues == [] and result.quarantined == []
    got = [(r["text"], r["source_path"].rsplit("/", 1)[1], round(r["duration_s"], 3),
            json.loads(r["tags"])) for r in result.rows]
    assert got == [
        ("first words", "long.wav#t=1,3.5", 2.5, {"recording_id": "long",
                                                  "supervision_id": "long-1",
                                                  "speaker": "spk1", "language": "English"}),
        ("second words", "long.wav#t=5,9", 4.0, {"recording_id": "long",
                                                 "supervision_id": "long-2", "speaker": "spk2"}),
        ("all of it", "short.wav", 3.0, {"recording_id": "short", "supervision_id": "short-1"})]
    assert len(load_audio_16k(result.rows[1]["source_path"])) == 4 * 16000
    # given the supervisions file alone, its recordings are found beside it
    again, _ = ingest(d / "c_supervisions_dev.jsonl.gz")
    assert [r["clip_id"] for r in again.rows] == [r["clip_id"] for r in result.rows]


def test_cuts_give_each_supervision_its_clip_and_an_unsupervised_cut_its_span(corpus):
    d, recs, sups = corpus
    long, short = recs["long"], recs["short"]
    cuts = CutSet.from_cuts([
        MonoCut("cut-a", start=0.5, duration=9.0, channel=0, recording=long,
                supervisions=[s.with_offset(-0.5) for s in sups if s.recording_id == "long"]),
        MonoCut("cut-b", start=1.0, duration=1.5, channel=0, recording=short)])
    cuts.to_file(d / "cuts.jsonl")  # plain JSONL this time
    result, issues = ingest(d / "cuts.jsonl")
    assert issues == []
    spans = [(r["text"], split_span(r["source_path"])[1:]) for r in result.rows]
    assert spans == [("first words", (1.0, 3.5)), ("second words", (5.0, 9.0)),
                     (None, (1.0, 2.5))]
    assert json.loads(result.rows[2]["tags"]) == {"cut_id": "cut-b", "recording_id": "short"}


def test_bad_lhotse_input_is_reported_line_by_line(corpus):
    d, recs, sups = corpus
    recs.to_file(d / "x_recordings.jsonl")
    lines = [json.dumps(s.to_dict()) for s in sups]
    lines[1] = lines[1].replace('"long"', '"nowhere"')
    lines.insert(2, '{"id": "broken", "recording_id": "short"}')
    (d / "x_supervisions.jsonl").write_text("\n".join(lines) + "\n")
    result, issues = ingest(d)
    assert [r["text"] for r in result.rows] == ["first words", "all of it"]
    assert [(i.line, i.reason) for i in issues] == [(2, "unknown_recording"),
                                                    (3, "bad_manifest_line")]
    assert "names recording 'nowhere'" in issues[0].detail
    # a supervisions manifest with no recordings beside it
    alone = d / "alone"
    alone.mkdir()
    sups.to_file(alone / "y_supervisions.jsonl.gz")
    _, issues = ingest(alone / "y_supervisions.jsonl.gz")
    assert [i.reason for i in issues] == ["missing_recordings"]


def test_a_corrupt_gzipped_cuts_file_and_unsupported_sources_say_so(corpus):
    d, recs, sups = corpus
    cut = MonoCut("c", start=0, duration=3.0, channel=0, recording=recs["short"])
    CutSet.from_cuts([cut]).to_file(d / "cuts.jsonl.gz")
    data = (d / "cuts.jsonl.gz").read_bytes()
    (d / "cuts.jsonl.gz").write_bytes(data[: len(data) - 12])
    _, issues = ingest(d / "cuts.jsonl.gz")
    assert [i.reason for i in issues] == ["corrupt_gzip"]
    url = Recording.from_dict({**recs["short"].to_dict(), "sources": [
        {"type": "url", "channels": [0], "source": "https://example.org/a.wav"}]})
    mixed = cut.mix(cut, offset_other_by=1.0)
    CutSet.from_cuts([MonoCut("u", 0, 1.0, 0, recording=url), mixed]).to_file(d / "odd.jsonl")
    entries, issues = read_source(d / "odd.jsonl")
    assert entries == [] and [i.reason for i in issues] == ["unsupported_source",
                                                            "unsupported_cut"]
    assert "not a file" in issues[0].detail
