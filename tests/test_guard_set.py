"""scripts/fetch_guard_set.py without network: a tiny sdist-like .tar.gz built here."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from labeling.ingest.manifest import read_source

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def guard():
    spec = importlib.util.spec_from_file_location("fetch_guard_set",
                                                  REPO / "scripts" / "fetch_guard_set.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def _tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    wave = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
    return np.repeat(wave[:, None], channels, axis=1)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def sdist(tmp_path):
    """downloads/fake-1.0.tar.gz holding a 22.05 kHz stereo WAV, raw PCM and transcripts;
    and a spec naming three clips of it (one cut) and one too short."""
    wav = io.BytesIO()
    sf.write(wav, _tone(4.0, 22050, channels=2), 22050, format="WAV", subtype="PCM_16")
    raw = _tone(2.5, 16000)[:, 0].astype("<i2").tobytes()
    short = io.BytesIO()
    sf.write(short, _tone(1.0, 16000), 16000, format="WAV", subtype="PCM_16")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    archive = downloads / "fake-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "fake-1.0/data/long.wav", wav.getvalue())
        _add(tar, "fake-1.0/data/cmd.raw", raw)
        _add(tar, "fake-1.0/data/short.wav", short.getvalue())
        _add(tar, "fake-1.0/data/transcription.txt",
             b"long hello there general kenobi\ncmd go forward ten meters\n")
        _add(tar, "fake-1.0/LICENSE", b"Copyright (c) 2026 Nobody. Do as you like.\n")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    transcript = {"member": "fake-1.0/data/transcription.txt", "format": "id_line"}
    spec = {
        "name": "fake",
        "format": {"sample_rate": 16000, "channels": 1, "subtype": "PCM_16"},
        "min_seconds": 2.0,
        "sources": {"fake-1.0.tar.gz": {"requirement": "fake==1.0", "sha256": sha,
                                        "license": "MIT"}},
        "licenses": {"TEST": {"title": "Test licence", "attribution": "Made for a test.",
                              "notice": "KEEP THIS NOTICE",
                              "notice_members": [{"archive": "fake-1.0.tar.gz",
                                                  "member": "fake-1.0/LICENSE"}]}},
        "utterances": [
            {"id": "long", "archive": "fake-1.0.tar.gz", "member": "fake-1.0/data/long.wav",
             "text": "hello there general kenobi", "transcript": {**transcript, "key": "long"},
             "source": "tones", "license": "TEST"},
            {"id": "long_cut", "archive": "fake-1.0.tar.gz", "member": "fake-1.0/data/long.wav",
             "start": 0.5, "end": 3.0, "text": "a cut of it",
             "transcript": {"format": "standard", "note": "made up"},
             "source": "tones", "license": "TEST"},
            {"id": "cmd", "archive": "fake-1.0.tar.gz", "member": "fake-1.0/data/cmd.raw",
             "raw": {"samplerate": 16000, "channels": 1, "subtype": "PCM_16",
                     "endian": "LITTLE"},
             "text": "go forward ten meters", "transcript": {**transcript, "key": "cmd"},
             "source": "tones", "license": "TEST"},
            {"id": "short", "archive": "fake-1.0.tar.gz", "member": "fake-1.0/data/short.wav",
             "text": "too short", "source": "tones", "license": "TEST"},
        ],
    }
    return spec, downloads


def test_build_writes_16k_mono_clips_manifest_and_attribution(guard, sdist, tmp_path):
    spec, downloads = sdist
    out = tmp_path / "out"
    result = guard.build(spec, downloads, out, log=lambda *_: None)

    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["audio_filepath"] for r in rows] == [
        "audio/long.wav", "audio/long_cut.wav", "audio/cmd.wav"]
    assert rows[0] == {"audio_filepath": "audio/long.wav", "text": "hello there general kenobi",
                       "duration": 4.0, "source": "tones", "license": "TEST"}
    assert result.dropped == ["short (1.000 s < 2 s)"]
    durations = {}
    for row in rows:
        info = sf.info(out / row["audio_filepath"])
        assert (info.samplerate, info.channels, info.subtype, info.format) == (
            16000, 1, "PCM_16", "WAV")
        assert info.duration == pytest.approx(row["duration"], abs=1e-3)
        durations[row["audio_filepath"]] = info.duration
    assert durations["audio/long_cut.wav"] == pytest.approx(2.5, abs=1e-3)
    assert durations["audio/cmd.wav"] == pytest.approx(2.5, abs=1e-3)
    # raw PCM at the target rate keeps its samples exactly
    cmd, _ = sf.read(out / "audio" / "cmd.wav", dtype="int16")
    np.testing.assert_array_equal(cmd, _tone(2.5, 16000)[:, 0])

    text = (out / "ATTRIBUTION.md").read_text()
    assert "KEEP THIS NOTICE" in text and "Copyright (c) 2026 Nobody" in text
    assert "resampled 22050 Hz -> 16000 Hz" in text and "mixed 2 channels to mono" in text
    assert "cut [0.500, 3.000) s" in text
    assert "headerless PCM_16 written as 16-bit PCM WAV (samples unchanged)" in text
    # what `rlfoundry ingest` reads: every line an entry, no issue
    entries, issues = read_source(out / "manifest.jsonl")
    assert issues == [] and [e.tags for e in entries] == [
        {"source": "tones", "license": "TEST"}] * 3


def test_build_is_idempotent_and_drops_stale_clips(guard, sdist, tmp_path):
    spec, downloads = sdist
    out = tmp_path / "out"
    first = guard.build(spec, downloads, out, log=lambda *_: None)
    snapshot = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    mtimes = {p: p.stat().st_mtime_ns for p in snapshot}

    again = guard.build(spec, downloads, out, log=lambda *_: None)
    assert len(first.written) == 5 and again.written == [] and len(again.unchanged) == 5
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == snapshot
    assert {p: p.stat().st_mtime_ns for p in snapshot} == mtimes

    spec["utterances"] = [u for u in spec["utterances"] if u["id"] != "long_cut"]
    third = guard.build(spec, downloads, out, log=lambda *_: None)
    assert third.removed == [out / "audio" / "long_cut.wav"]
    assert not (out / "audio" / "long_cut.wav").exists()


def test_wrong_sha256_is_refused(guard, sdist, tmp_path):
    spec, downloads = sdist
    spec["sources"]["fake-1.0.tar.gz"]["sha256"] = "0" * 64
    with pytest.raises(guard.GuardSetError, match=r"sha256 mismatch for .*fake-1\.0\.tar\.gz: "
                       r"expected 0{64}, got [0-9a-f]{64}; .*delete it and run again"):
        guard.fetch_sources(spec, downloads, download=False, log=lambda *_: None)
    with pytest.raises(guard.GuardSetError, match="sha256 mismatch"):
        guard.build(spec, downloads, tmp_path / "out", log=lambda *_: None)
    assert not (tmp_path / "out" / "manifest.jsonl").exists()


def test_transcript_is_checked_against_the_archive(guard, sdist, tmp_path):
    spec, downloads = sdist
    spec["utterances"][0]["text"] = "hello there general grievous"
    with pytest.raises(guard.GuardSetError, match="long: transcript 'hello there general "
                       "grievous' differs from 'hello there general kenobi'"):
        guard.build(spec, downloads, tmp_path / "out", log=lambda *_: None)


def test_missing_archive_without_download_says_how_to_fetch(guard, sdist, tmp_path):
    spec, _ = sdist
    empty = tmp_path / "empty"
    with pytest.raises(guard.GuardSetError, match=r"fake-1\.0\.tar\.gz is not in .*pip download "
                       r"--no-deps --no-binary fake fake==1\.0 -d"):
        guard.fetch_sources(spec, empty, download=False, log=lambda *_: None)
    assert guard.main(["--spec", str(tmp_path / "nope.json")]) == 1


def test_pip_failure_is_one_clear_error(guard, sdist, tmp_path):
    spec, _ = sdist
    with pytest.raises(guard.GuardSetError, match=r"pip download of fake==1\.0 failed \(.*\); "
                       r"is PyPI reachable\? fetch it by hand"):
        guard.fetch_sources(spec, tmp_path / "dl", python="/bin/false", log=lambda *_: None)


def test_committed_spec_is_consistent(guard):
    spec = guard.load_spec(guard.DEFAULT_SPEC)
    ids = [u["id"] for u in spec["utterances"]]
    assert len(ids) == len(set(ids)) == 22
    for utt in spec["utterances"]:
        assert utt["archive"] in spec["sources"] and utt["license"] in spec["licenses"]
        assert utt["member"].startswith(utt["archive"].removesuffix(".tar.gz") + "/")
        ref = utt.get("transcript") or {}
        assert ref.get("member") or ref.get("note"), utt["id"]
        if "end" in utt:
            assert 2.0 <= utt["end"] - utt.get("start", 0.0) <= 30.0
    for src in spec["sources"].values():
        assert len(src["sha256"]) == 64 and "==" in src["requirement"]
