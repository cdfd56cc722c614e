"""Hostile input never stops ingestion: mutated media is ingested or quarantined, nothing is lost.

Seed files of every kind ingestion reads are made here (WAV/FLAC/OGG with
soundfile, MP3/M4A/MP4/MKV with PyAV, PNG/JPEG/WebP/BMP with Pillow), mutated
by :mod:`labeling.ingest.fuzz` and ingested in one batch with the good files.
"""

from __future__ import annotations

import io
import re
import time
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from labeling.ingest.audio import load_audio
from labeling.ingest.fuzz import Mutation, header_mutations, mutations, write_mutations
from labeling.ingest.image import probe_image
from labeling.ingest.manifest import SourceEntry
from labeling.ingest.media import MediaError, media_kind, media_probe
from labeling.ingest.rows import AudioLimits, ingest_audio, ingest_images, ingest_videos

# --- seeds --------------------------------------------------------------------------------------


def _tone(seconds: float = 2.0, sr: int = 16000, channels: int = 1, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + np.random.default_rng(seed).normal(0, 0.01, t.shape)
    return (np.stack([x] * channels, 1) if channels > 1 else x).astype(np.float32)


def _soundfile(fmt: str, subtype: str, *, sr: int = 16000, **kw) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, _tone(sr=sr, **kw), sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def _pyav(fmt: str, audio_codec: str | None, *, video: bool = False, seconds: float = 1.0,
          ) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        vs = out.add_stream("libx264", rate=10) if video else None
        if vs is not None:
            vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        aus = out.add_stream(audio_codec, rate=22050) if audio_codec else None
        if vs is not None:
            for i in range(int(10 * seconds)):
                img = np.zeros((48, 64, 3), np.uint8)
                img[10:18, i * 4:i * 4 + 8] = 255
                out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
            out.mux(vs.encode())
        if aus is not None:
            sr = aus.codec_context.sample_rate
            x, n = _tone(seconds, sr), aus.codec_context.frame_size or 1024
            for i in range(0, len(x), n):
                frame = av.AudioFrame.from_ndarray(x[None, i:i + n], format="flt", layout="mono")
                frame.sample_rate, frame.pts = sr, i
                out.mux(aus.encode(frame))
            out.mux(aus.encode())
    return buf.getvalue()


def _pillow(fmt: str, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (64, 48), (200, 30, 30, 128)[:len(mode)]).save(buf, format=fmt)
    return buf.getvalue()


def make_seeds() -> dict[str, bytes]:
    """One good file per container/codec ingestion reads (name -> bytes), ~0.5 MB in all."""
    return {
        "tone16.wav": _soundfile("WAV", "PCM_16"),  # 2 s 16 kHz 16-bit, as in the bug report
        "stereo44.wav": _soundfile("WAV", "FLOAT", sr=44100, channels=2, seconds=1.0),
        "tone.flac": _soundfile("FLAC", "PCM_16", seed=1),
        "tone.ogg": _soundfile("OGG", "VORBIS", seed=2),
        "tone.mp3": _pyav("mp3", "libmp3lame"),
        "tone.m4a": _pyav("ipod", "aac"),
        "clip.mp4": _pyav("mp4", "aac", video=True),
        "clip.mkv": _pyav("matroska", None, video=True),
        "pic.png": _pillow("PNG"),
        "rgba.png": _pillow("PNG", "RGBA"),
        "pic.jpg": _pillow("JPEG"),
        "pic.webp": _pillow("WEBP"),
        "pic.bmp": _pillow("BMP"),
    }


@pytest.fixture(scope="module")
def seeds() -> dict[str, bytes]:
    return make_seeds()


# --- harness ------------------------------------------------------------------------------------

GUARDED = re.compile(r"undecodable: (\w+): ")  # a decoder exception turned into MediaError


def ingest_folder(files: list[Path]) -> dict[str, dict]:
    """Ingest `files` (in order) as one batch of each kind; source path -> its row or quarantine."""
    by_kind: dict[str, list[SourceEntry]] = {"audio": [], "image": [], "video": []}
    for path in files:
        by_kind[media_kind(path)].append(SourceEntry(media_kind(path), path))
    results = [ingest_audio(by_kind["audio"], AudioLimits()), ingest_images(by_kind["image"]),
               ingest_videos(by_kind["video"], max_seconds=600.0)]
    outcome: dict[str, list[dict]] = {}
    for result in results:
        for row in result.rows:
            outcome.setdefault(row["source_path"], []).append({"row": row})
        for item in result.quarantined:
            outcome.setdefault(item["source_path"], []).append({"quarantine": item})
    assert all(len(v) == 1 for v in outcome.values()), "a file was reported twice"
    return {path: v[0] for path, v in outcome.items()}


def fuzz_batch(tmp_path: Path, seeds: dict[str, bytes], n: int, seed: int) -> dict:
    """Good files first, then `n` mutations, in one batch; checks nothing is lost; figures."""
    good = []
    for name, data in seeds.items():
        (path := tmp_path / f"a_good_{name}").write_bytes(data)
        good.append(path)
    written = write_mutations(mutations(seeds, n, seed), tmp_path / "fuzz")
    start = time.perf_counter()
    outcome = ingest_folder(good + list(written))  # raises = a crash: the run would fail
    seconds = time.perf_counter() - start

    lost = [p for p in [*good, *written] if str(p) not in outcome]
    assert not lost, f"{len(lost)} files neither ingested nor quarantined: {lost[:5]}"
    not_landed = [p.name for p in good if "row" not in outcome[str(p)]]
    assert not not_landed, {p: outcome[str(tmp_path / p)] for p in not_landed}
    reasons, guarded = Counter(), Counter()
    for path in written:
        if "quarantine" in (o := outcome[str(path)]):
            q = o["quarantine"]
            assert q["reason"] and q["detail"], q
            # A media reason names the file (a duplicate's names the file it repeats).
            assert q["reason"] == "duplicate" or q["detail"].startswith(f"{path}: "), q
            reasons[q["reason"]] += 1
            if m := GUARDED.search(q["detail"]):
                guarded[m.group(1)] += 1
    return {"mutations": len(written), "ingested": sum("row" in outcome[str(p)] for p in written),
            "quarantined": sum(reasons.values()), "reasons": reasons, "guarded": guarded,
            "lost": len(lost), "seconds": seconds}


# --- the defect ---------------------------------------------------------------------------------


def _wav_with(seeds: dict[str, bytes], offset: int, value: bytes) -> bytes:
    data = bytearray(seeds["tone16.wav"])
    data[offset:offset + len(value)] = value
    return bytes(data)


@pytest.mark.parametrize(("name", "offset", "value"), [
    ("unknown_codec.wav", 20, b"\x01\xe6"),  # fmt format tag 0xE601
    ("zero_bits.wav", 34, b"\x00\x00"),  # fmt bits per sample 0
])
def test_a_wav_no_decoder_accepts_is_quarantined_and_the_rest_of_the_batch_lands(
        tmp_path, seeds, name, offset, value):
    (bad := tmp_path / name).write_bytes(_wav_with(seeds, offset, value))
    (good := tmp_path / "good.wav").write_bytes(seeds["tone16.wav"])
    result = ingest_audio([SourceEntry("audio", bad), SourceEntry("audio", good)], AudioLimits())
    assert [r["source_path"] for r in result.rows] == [str(good)]
    (q,) = result.quarantined
    assert q["reason"] == "undecodable"
    assert q["detail"].startswith(f"{bad}: ")
    assert "undecodable" in q["detail"]


def test_any_decoder_exception_becomes_a_media_error_naming_the_file(tmp_path):
    for exc in (AttributeError("x"), ValueError("bad"), OverflowError("big"), MemoryError(),
                RuntimeError("boom"), __import__("struct").error("unpack")):
        @media_probe
        def probe(path, exc=exc):
            raise exc

        with pytest.raises(MediaError) as info:
            probe(tmp_path / "f.wav")
        assert info.value.reason == "undecodable"
        assert info.value.detail.startswith(f"undecodable: {type(exc).__name__}: ")
        assert str(tmp_path / "f.wav") in str(info.value)
    assert info.value.detail == "undecodable: error: unpack"  # struct.error


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_interrupts_are_not_swallowed(exc):
    @media_probe
    def probe(path):
        raise exc

    with pytest.raises(exc):
        probe("f.wav")


def test_a_media_error_passes_through_unchanged():
    err = MediaError("truncated", "f.wav", "cut")

    @media_probe
    def probe(path):
        raise err

    with pytest.raises(MediaError) as info:
        probe("f.wav")
    assert info.value is err


def test_a_png_declaring_huge_dimensions_is_too_large_without_decoding(tmp_path, seeds):
    huge = dict(header_mutations(seeds["pic.png"]))
    for op in ("png.9000x9000", "png.20000x20000", "png.100000x100000", "png.width=0x7fffffff"):
        (path := tmp_path / "big.png").write_bytes(huge[op])
        start = time.perf_counter()
        with pytest.raises(MediaError) as info:
            probe_image(path)
        assert info.value.reason == "too_large", (op, info.value)
        assert time.perf_counter() - start < 0.5


def test_the_fuzzer_is_deterministic_and_keeps_seeds_distinct(seeds):
    a, b = mutations(seeds, 200, seed=7), mutations(seeds, 200, seed=7)
    assert a == b and len(a) == 200
    assert a != mutations(seeds, 200, seed=8)
    assert all(isinstance(m, Mutation) for m in a)
    ops = {m.op.split(":")[0].split("@")[0].split("=")[0] for m in mutations(seeds, 3000)}
    for expected in ("flip", "truncate", "empty", "random", "swap->.wav", "swap->.mp4",
                     "wav.format_tag", "wav.channels", "wav.bits", "wav.sample_rate",
                     "png.width", "png.height"):
        assert expected in ops, expected


@pytest.mark.parametrize("module", ["labeling.ingest.fuzz", "labeling.ingest.media"])
def test_doctests(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0


# --- the fuzz suite -----------------------------------------------------------------------------


def test_seeds_ingest_cleanly(tmp_path, seeds):
    for name, data in seeds.items():
        (tmp_path / name).write_bytes(data)
    outcome = ingest_folder(sorted(tmp_path.iterdir()))
    assert {Path(p).name for p, o in outcome.items() if "row" in o} == set(seeds)
    _, info = load_audio(tmp_path / "tone16.wav")
    assert (info.sample_rate, info.duration_s) == (16000, 2.0)


def test_hostile_batch_loses_nothing(tmp_path, seeds):
    figures = fuzz_batch(tmp_path, seeds, n=800, seed=0)
    print("fuzz figures:", figures)
    assert figures["mutations"] == 800 and figures["lost"] == 0
    assert figures["quarantined"] > 100 and figures["ingested"] > 10
    assert figures["reasons"]["too_large"] + figures["reasons"]["undecodable"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hostile_batch_loses_nothing_thousands(tmp_path, seeds, seed):
    figures = fuzz_batch(tmp_path, seeds, n=4000, seed=seed)
    print("fuzz figures:", figures)
    assert figures["mutations"] == 4000 and figures["lost"] == 0


def test_hostile_batch_through_the_dagster_assets(tmp_path, seeds, warehouse):
    from dagster import DagsterInstance, materialize

    from assets.ingest import audio_clips, images, videos
    from pipelines.partitions import BATCHES
    from resources.model_hub import ModelHub

    folder = tmp_path / "batch"
    folder.mkdir()
    for name, data in seeds.items():
        (folder / f"a_good_{name}").write_bytes(data)
    (folder / "b_unknown_codec.wav").write_bytes(_wav_with(seeds, 20, b"\x01\xe6"))
    written = write_mutations(mutations(seeds, 120, seed=5), folder)
    warehouse.register_batch("fz", folder)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, ["fz"])
        result = materialize([audio_clips, images, videos], partition_key="fz",
                             instance=instance,
                             resources={"warehouse": warehouse, "model_hub": ModelHub()})
    assert result.success
    landed = [p for t in ("audio_clips", "images", "videos")
              for (p,) in warehouse.fetch(f"SELECT source_path FROM {t}")]
    quarantined = dict(warehouse.fetch("SELECT source_path, reason FROM quarantine"))
    assert len(landed) + len(quarantined) == len(seeds) + 1 + len(written)
    assert {str(folder / f"a_good_{n}") for n in seeds} <= set(landed)
    assert quarantined[str(folder / "b_unknown_codec.wav")] == "undecodable"
    assert all(quarantined.values())
