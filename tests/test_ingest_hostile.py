"""Hostile numbers and hostile text: nothing invalid is patched in silently, nothing is lost.

Invalid audio samples (NaN, ±inf), impossible headers (255 channels, 64-bit
integer PCM) and transcripts with control/format characters, a BOM, a numeric
`text` or more words than the clip can hold. Fixtures are written into
tmp_path in milliseconds.
"""

from __future__ import annotations

import codecs
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from labeling.ingest.audio import MAX_CHANNELS, load_audio
from labeling.ingest.manifest import STRIPPED_TAG, SourceEntry, read_source, sanitize_text
from labeling.ingest.media import MediaError
from labeling.ingest.rows import AudioLimits, ingest_audio
from labeling.testing import write_manifest, write_tone

SR = 16000


def write_wav(path: Path, data: bytes, *, fmt: int = 3, channels: int = 1, bits: int = 32,
              sr: int = SR) -> Path:
    """A RIFF/WAVE file with exactly the header fields given (fmt 1 = PCM, 3 = IEEE float)."""
    align = channels * bits // 8
    fmt_chunk = struct.pack("<HHIIHH", fmt, channels, sr, sr * align, align, bits)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + 16 + 8 + len(data)) + b"WAVE"
                     + b"fmt " + struct.pack("<I", 16) + fmt_chunk
                     + b"data" + struct.pack("<I", len(data)) + data)
    return path


def tone(seconds: float = 1.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * 440 * t)
    return np.repeat(x[:, None], channels, axis=1).astype("<f4")


def reason_of(path: Path) -> MediaError:
    with pytest.raises(MediaError) as info:
        load_audio(path)
    return info.value


# --- defect 6: invalid numbers are not audio ----------------------------------------------------


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_all_invalid_samples_are_quarantined_not_clipped_or_silent(tmp_path, value):
    p = write_wav(tmp_path / "bad.wav", np.full(SR, value, "<f4").tobytes())
    err = reason_of(p)
    assert err.reason == "invalid_samples"
    assert f"{SR} of {SR}" in err.detail


def test_one_percent_nan_or_inf_is_counted_not_patched(tmp_path):
    x = tone(1.0)
    x[::200, 0] = np.nan  # 80 samples
    x[1::200, 0] = np.inf  # 80 more
    err = reason_of(write_wav(tmp_path / "patchy.wav", x.tobytes()))
    assert err.reason == "invalid_samples" and f"160 of {SR}" in err.detail


def test_one_bad_channel_counts_and_the_pyav_path_checks_too(tmp_path):
    x = tone(0.5, channels=2)
    x[10, 1] = np.nan
    data = x.tobytes()
    sf_err = reason_of(write_wav(tmp_path / "stereo.wav", data, channels=2))
    assert sf_err.reason == "invalid_samples" and f"1 of {SR}" in sf_err.detail
    # Same bytes under an extension libsndfile is not asked about: FFmpeg decodes them.
    av_err = reason_of(write_wav(tmp_path / "stereo.m4a", data, channels=2))
    assert av_err.reason == "invalid_samples" and f"1 of {SR}" in av_err.detail


def test_finite_float_audio_and_double_wav_still_decode(tmp_path):
    audio, info = load_audio(write_wav(tmp_path / "f32.wav", tone().tobytes()))
    assert np.isfinite(audio).all() and info.duration_s == pytest.approx(1.0)
    audio, info = load_audio(write_wav(tmp_path / "f64.wav", tone().astype("<f8").tobytes(),
                                       bits=64))
    assert info.codec == "wav/double" and np.abs(audio).max() == pytest.approx(0.3, abs=0.01)


def test_finite_but_huge_floats_do_not_overflow_into_invalid_audio(tmp_path):
    x = np.full((SR, 2), 3e38, "<f4")  # the float32 sum of two channels would be inf
    audio, _ = load_audio(write_wav(tmp_path / "huge.wav", x.tobytes(), channels=2))
    assert np.isfinite(audio).all()


def test_a_header_declaring_255_channels_is_refused(tmp_path):
    pcm = (tone(1.0) * 30000).astype("<i2").tobytes()
    err = reason_of(write_wav(tmp_path / "ch255.wav", pcm[: 255 * 2 * 50], fmt=1,
                              channels=255, bits=16))
    assert err.reason == "too_many_channels" and "255" in err.detail
    assert MAX_CHANNELS == 32


def test_a_header_declaring_64_bit_integer_samples_is_refused(tmp_path):
    pcm = (tone(1.0) * 30000).astype("<i2").tobytes()  # 16-bit data, header says 64-bit
    err = reason_of(write_wav(tmp_path / "s64.wav", pcm, fmt=1, bits=64))
    assert err.reason == "undecodable" and "64-bit integer" in err.detail


def test_invalid_samples_are_quarantined_by_ingest_and_the_batch_completes(tmp_path):
    good = write_tone(tmp_path / "good.wav")
    bad = write_wav(tmp_path / "nan.wav", np.full(SR, np.nan, "<f4").tobytes())
    result = ingest_audio([SourceEntry("audio", good), SourceEntry("audio", bad)],
                          AudioLimits())
    assert [r["source_path"] for r in result.rows] == [str(good)]
    assert [(q["source_path"], q["reason"]) for q in result.quarantined] == [
        (str(bad), "invalid_samples")]


# --- defect 8: transcripts are text, cleaned visibly, and plausible -----------------------------


def test_a_manifest_saved_with_a_bom_keeps_its_first_line(tmp_path):
    m = tmp_path / "m.jsonl"
    lines = [{"audio_filepath": "a.wav", "text": "first"}, {"audio_filepath": "b.wav",
                                                            "text": "second"}]
    m.write_bytes(codecs.BOM_UTF8 + "\n".join(json.dumps(x) for x in lines).encode())
    entries, issues = read_source(m)
    assert issues == []
    assert [(e.line, e.text, e.tags) for e in entries] == [(1, "first", {}), (2, "second", {})]


def test_a_numeric_text_is_its_string_and_other_non_strings_are_refused_by_type(tmp_path):
    m = write_manifest(tmp_path / "m.jsonl", [
        {"audio_filepath": "a.wav", "text": 42},
        {"audio_filepath": "b.wav", "text": 4.2},
        {"audio_filepath": "c.wav", "text": True},
        {"audio_filepath": "d.wav", "text": ["a", "b"]},
        {"audio_filepath": "e.wav", "text": {"x": 1}},
    ])
    entries, issues = read_source(m)
    assert [(e.line, e.text) for e in entries] == [(1, "42")]
    assert [(i.line, i.reason) for i in issues] == [
        (2, "non_text_transcript"), (3, "non_text_transcript"), (4, "non_text_transcript"),
        (5, "non_text_transcript")]
    assert [i.detail.split("`text` is a JSON ")[1].split(" ")[0] for i in issues] == [
        "number", "boolean", "array", "object"]


def test_control_and_format_characters_are_stripped_and_counted_in_tags(tmp_path):
    m = write_manifest(tmp_path / "m.jsonl", [
        {"audio_filepath": "a.wav", "text": "he\x00llo \x1b[31mred\x1b[0m \u202eevil\u200b"
         "\ufeff done\x7f", "accent": "gb"},
        {"audio_filepath": "b.wav", "text": "tab\tand\nnewline  plain"},
        {"audio_filepath": "c.wav", "text": "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"},
        {"audio_filepath": "d.wav", "text": "\x00\u202e\x1b[0m"},
    ])
    entries, issues = read_source(m)
    assert [(e.text, e.tags) for e in entries] == [
        ("he llo red evil done", {"accent": "gb", STRIPPED_TAG: 14}),
        ("tab and newline plain", {}),  # plain whitespace is only collapsed
        ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", {}),  # ZWNJ spells Persian
    ]
    assert [(i.line, i.reason) for i in issues] == [(4, "empty_transcript")]
    assert "after removing 6 control/format characters" in issues[0].detail


def test_no_control_or_format_character_survives_sanitising():
    import unicodedata

    hostile = "".join(chr(c) for c in [*range(0x20), *range(0x7f, 0xa0), 0xad, 0x61c, 0x200b,
                                       0x200e, 0x202a, 0x202e, 0x2066, 0xfeff, 0xd800]) + "ok"
    text, count = sanitize_text(hostile)
    assert text == "ok" and count == len(hostile) - 2 - 3  # \t \n \r are plain whitespace
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in text)
    assert sanitize_text("\x1b]0;title\x07hi \x1b]unterminated words") == (
        "hi unterminated words", 12)


def test_sidecar_bom_is_encoding_and_sidecar_controls_are_counted(tmp_path):
    write_tone(tmp_path / "a.wav")
    (tmp_path / "a.txt").write_bytes(codecs.BOM_UTF8 + "hello\u202e world\r\n".encode())
    (entry,), issues = read_source(tmp_path)
    assert issues == [] and (entry.text, entry.tags) == ("hello world", {STRIPPED_TAG: 1})


def test_a_transcript_too_long_for_its_clip_is_implausible(tmp_path):
    clip = write_tone(tmp_path / "two_s.wav", seconds=2.0)
    flood = write_tone(tmp_path / "flood.wav", seconds=2.0, seed=1)
    cjk = write_tone(tmp_path / "cjk.wav", seconds=2.0, seed=2)
    short = write_tone(tmp_path / "short.wav", seconds=0.3, seed=3)
    entries = [
        SourceEntry("audio", clip, "a perfectly ordinary sentence of speech"),
        SourceEntry("audio", flood, " ".join(["word"] * 10_000)),
        SourceEntry("audio", cjk, "\u6c49" * 500),  # no spaces: one "word", 250 chars/s
        SourceEntry("audio", short, "yes please"),  # rate over at least 1 s: not flagged
    ]
    result = ingest_audio(entries, AudioLimits())
    assert sorted(Path(r["source_path"]).name for r in result.rows) == [
        "short.wav", "two_s.wav"]
    q = {Path(x["source_path"]).name: x for x in result.quarantined}
    assert {k: v["reason"] for k, v in q.items()} == {
        "flood.wav": "implausible_transcript", "cjk.wav": "implausible_transcript"}
    assert "10000 words over 2.00 s is 5000.0 words/s" in q["flood.wav"]["detail"]
    assert "250.0 characters/s" in q["cjk.wav"]["detail"]
    strict = ingest_audio([SourceEntry("audio", clip, "one two three four five six")],
                          AudioLimits(max_words_per_second=2.0))
    assert [x["reason"] for x in strict.quarantined] == ["implausible_transcript"]
