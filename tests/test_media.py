"""labeling.ingest.media: every format decodes, every bad file becomes a MediaError with a reason.

Fixtures are written into tmp_path with soundfile, PyAV and Pillow; nothing is
downloaded and no binary fixture is committed.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from labeling.ingest.audio import AudioInfo, check_audio, load_audio
from labeling.ingest.image import ImageInfo, probe_image
from labeling.ingest.media import (
    AUDIO_EXTS,
    IMAGE_EXTS,
    VIDEO_EXTS,
    MediaError,
    media_kind,
    require_media_kind,
    sha256_file,
)
from labeling.ingest.video import VideoInfo, probe_video

SR_OUT = 16000
TOL_S = 0.010  # ±10 ms


# --- fixture writers ------------------------------------------------------------------------


def stereo(seconds: float, sr: int = 44100) -> np.ndarray:
    """Left 0.5·sin 440 Hz, right 0.25·sin 440 Hz: the mono mean peaks at 0.375."""
    t = np.arange(int(round(seconds * sr))) / sr
    s = np.sin(2 * np.pi * 440 * t)
    return np.stack([0.5 * s, 0.25 * s], axis=1).astype(np.float32)


def write_sf(path: Path, seconds: float = 1.0, sr: int = 44100, **kw) -> Path:
    sf.write(path, stereo(seconds, sr), sr, **kw)
    return path


def write_av_audio(path: Path, codec: str, sr: int, seconds: float = 1.0,
                   fmt: str | None = None) -> Path:
    """Encode stereo audio with PyAV (aac into m4a, libopus into ogg, ...)."""
    if codec not in av.codecs_available:
        pytest.skip(f"PyAV here has no {codec} encoder")
    x = np.ascontiguousarray(stereo(seconds, sr).T)
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=sr, layout="stereo")
        step = 1024
        for i in range(0, x.shape[1], step):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(x[:, i:i + step]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = sr, i, Fraction(1, sr)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def video_codec() -> str:
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_video(path: Path, *, codec: str | None = None, w: int = 64, h: int = 48,
                fps: int = 10, frames: int = 30, audio: bool = False,
                options: dict[str, str] | None = None) -> Path:
    """A short synthetic clip written with PyAV; optional silent AAC track."""
    with av.open(str(path), "w", options=options or {}) as out:
        stream = out.add_stream(codec or video_codec(), rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        astream = out.add_stream("aac", rate=16000, layout="mono") if audio else None
        for i in range(frames):
            img = np.full((h, w, 3), (i * 8) % 256, np.uint8)
            img[:, : i % w] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if astream is not None:
            silence = np.zeros((1, 1024), np.float32)
            for i in range(0, int(16000 * frames / fps), 1024):
                frame = av.AudioFrame.from_ndarray(silence, format="fltp", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = 16000, i, Fraction(1, 16000)
                for packet in astream.encode(frame):
                    out.mux(packet)
            for packet in astream.encode(None):
                out.mux(packet)
    return path


def cut(src: Path, dst: Path, keep: float | int) -> Path:
    """Copy the first `keep` bytes (int) or fraction (float) of `src` to `dst`."""
    data = src.read_bytes()
    n = keep if isinstance(keep, int) else int(len(data) * keep)
    dst.write_bytes(data[:n])
    return dst


def garbage(path: Path, n: int = 20000) -> Path:
    path.write_bytes(np.random.default_rng(0).bytes(n))
    return path


def reason(excinfo: pytest.ExceptionInfo[MediaError]) -> str:
    return excinfo.value.reason


# --- kinds and hashes -----------------------------------------------------------------------


def test_media_kind_by_extension_case_insensitive():
    assert {media_kind(f"x{e}") for e in AUDIO_EXTS} == {"audio"}
    assert {media_kind(f"x{e}") for e in IMAGE_EXTS} == {"image"}
    assert {media_kind(f"x{e}") for e in VIDEO_EXTS} == {"video"}
    assert media_kind("A/B/Clip.WAV") == "audio"
    assert media_kind(Path("photo.JPEG")) == "image"
    assert media_kind("notes.txt") is None
    assert media_kind("no_extension") is None


def test_unknown_extension_raises_with_reason():
    with pytest.raises(MediaError) as e:
        require_media_kind("doc.pdf")
    assert reason(e) == "unknown_extension" and "doc.pdf" in str(e.value)
    assert require_media_kind("x.webm") == "video"


def test_sha256_matches_hashlib_over_several_chunks(tmp_path):
    p = garbage(tmp_path / "blob.bin", 3 * 1000 + 17)
    assert sha256_file(p, chunk=1000) == hashlib.sha256(p.read_bytes()).hexdigest()
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert sha256_file(empty) == hashlib.sha256(b"").hexdigest()


def test_sha256_missing_file_is_media_error(tmp_path):
    with pytest.raises(MediaError) as e:
        sha256_file(tmp_path / "nope.wav")
    assert reason(e) == "missing"


def test_media_error_pickles_and_names_the_file(tmp_path):
    err = MediaError("truncated", tmp_path / "a.wav", "data chunk declares 10 bytes")
    back = pickle.loads(pickle.dumps(err))
    assert (back.reason, back.path, str(back)) == (err.reason, err.path, str(err))
    assert str(tmp_path / "a.wav") in str(err) and "fetch it again" in str(err)


# --- audio: happy paths ---------------------------------------------------------------------


def assert_decoded(y: np.ndarray, info: AudioInfo, seconds: float, sr: int, channels: int,
                   tol_s: float = TOL_S, lossy: bool = False) -> None:
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) / SR_OUT - seconds) <= tol_s
    assert abs(info.duration_s - seconds) <= tol_s
    assert (info.sample_rate, info.channels) == (sr, channels)
    assert float(np.max(np.abs(y))) <= 1.0
    # Mean of 0.5·s and 0.25·s peaks at 0.375 (≈ -8.5 dBFS); RMS of a sine is peak/√2.
    # Lossy codecs overshoot at the tone's hard onset, so their peak is not checked.
    if not lossy:
        assert info.peak_dbfs == pytest.approx(20 * math.log10(0.375), abs=0.2)
    assert info.rms_dbfs == pytest.approx(20 * math.log10(0.375 / math.sqrt(2)), abs=1.0)


def test_wav_stereo_44k_becomes_mono_16k(tmp_path):
    y, info = load_audio(write_sf(tmp_path / "a.wav", 1.5, subtype="PCM_16"))
    assert_decoded(y, info, 1.5, 44100, 2)
    assert len(y) == 24000
    assert info.codec == "wav/pcm_16" and info.decoder == "soundfile"
    assert info.path == str(tmp_path / "a.wav")


def test_16k_mono_passes_through_unresampled(tmp_path):
    x = (0.3 * np.sin(2 * np.pi * 200 * np.arange(16000) / 16000)).astype(np.float32)
    sf.write(tmp_path / "m.wav", x, 16000, subtype="FLOAT")
    y, info = load_audio(tmp_path / "m.wav")
    np.testing.assert_array_equal(y, x)
    assert (info.sample_rate, info.channels) == (16000, 1)


def test_flac(tmp_path):
    y, info = load_audio(write_sf(tmp_path / "a.flac", 1.0, 48000))
    assert_decoded(y, info, 1.0, 48000, 2)
    assert info.codec == "flac/pcm_16"


def test_ogg_vorbis(tmp_path):
    y, info = load_audio(write_sf(tmp_path / "a.ogg", 1.0, 44100, format="OGG",
                                  subtype="VORBIS"))
    assert_decoded(y, info, 1.0, 44100, 2, lossy=True)
    assert info.codec == "ogg/vorbis"


@pytest.fixture
def mp3_file(tmp_path) -> Path:
    """An MP3 from libsndfile when it can write MP3, else from ffmpeg, else skip."""
    path = tmp_path / "a.mp3"
    if "MP3" in sf.available_formats():
        return write_sf(path, 1.0, 44100, format="MP3", subtype="MPEG_LAYER_III")
    if shutil.which("ffmpeg") is None:
        pytest.skip("no MP3 encoder: libsndfile lacks MP3 and ffmpeg is absent")
    wav = write_sf(tmp_path / "src.wav", 1.0)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), str(path)], check=True)
    return path


def test_mp3(mp3_file):
    y, info = load_audio(mp3_file)
    assert_decoded(y, info, 1.0, 44100, 2, tol_s=0.03, lossy=True)  # encoder delay


def test_m4a_aac_via_pyav(tmp_path):
    y, info = load_audio(write_av_audio(tmp_path / "a.m4a", "aac", 44100, 1.0))
    # FFmpeg keeps AAC's priming/padding here (~1 frame of 1024 samples ≈ 23 ms).
    assert_decoded(y, info, 1.0, 44100, 2, tol_s=0.03, lossy=True)
    assert (info.codec, info.decoder) == ("mov/aac", "pyav")


def test_opus_via_pyav(tmp_path):
    y, info = load_audio(write_av_audio(tmp_path / "a.opus", "libopus", 48000, 1.0, fmt="ogg"))
    assert_decoded(y, info, 1.0, 48000, 2, tol_s=0.03, lossy=True)
    assert info.codec == "ogg/opus"


def test_audio_track_of_a_video_container(tmp_path):
    y, info = load_audio(write_video(tmp_path / "v.mp4", audio=True))
    assert info.sample_rate == 16000 and info.decoder == "pyav"
    assert abs(info.duration_s - 3.0) < 0.1


# --- audio: bad files -----------------------------------------------------------------------


def test_missing_audio(tmp_path):
    with pytest.raises(MediaError) as e:
        load_audio(tmp_path / "gone.wav")
    assert reason(e) == "missing" and "gone.wav" in str(e.value)


def test_directory_is_not_a_file(tmp_path):
    (tmp_path / "d.wav").mkdir()
    with pytest.raises(MediaError) as e:
        load_audio(tmp_path / "d.wav")
    assert reason(e) == "not_a_file"


def test_zero_byte_audio(tmp_path):
    (tmp_path / "z.wav").write_bytes(b"")
    with pytest.raises(MediaError) as e:
        load_audio(tmp_path / "z.wav")
    assert reason(e) == "empty_file"


@pytest.mark.parametrize("ext", [".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus"])
def test_garbage_bytes_are_undecodable(tmp_path, ext):
    with pytest.raises(MediaError) as e:
        load_audio(garbage(tmp_path / f"g{ext}"))
    assert reason(e) == "undecodable"


@pytest.mark.parametrize("keep", [0.5, 0.5 + 1e-4, 44, 40, 6])
def test_truncated_wav(tmp_path, keep):
    """Half a file, an odd cut, header only, header cut before `data`, a bare 'RIFF..'."""
    src = write_sf(tmp_path / "full.wav", 1.0, subtype="PCM_16")
    with pytest.raises(MediaError) as e:
        load_audio(cut(src, tmp_path / "cut.wav", keep))
    assert reason(e) == "truncated"


def test_soundfile_itself_does_not_flag_truncated_wav(tmp_path):
    """Why the RIFF header is parsed: libsndfile clamps to the bytes present, silently."""
    half = cut(write_sf(tmp_path / "full.wav", 1.0, subtype="PCM_16"), tmp_path / "h.wav", 0.5)
    assert sf.info(half).frames < 44100 // 2 + 1


def test_truncated_flac(tmp_path):
    src = write_sf(tmp_path / "full.flac", 1.0)
    with pytest.raises(MediaError) as e:
        load_audio(cut(src, tmp_path / "cut.flac", 0.5))
    assert reason(e) == "truncated"


def test_truncated_mp3_with_xing_header(mp3_file, tmp_path):
    with pytest.raises(MediaError) as e:
        load_audio(cut(mp3_file, tmp_path / "cut.mp3", 0.5))
    assert reason(e) == "truncated"


@pytest.mark.parametrize("keep", [0.5, 0.6, 0.99])
def test_truncated_m4a(tmp_path, keep):
    """moov at the end (PyAV's default): FFmpeg cannot open a cut file; its boxes show why."""
    src = write_av_audio(tmp_path / "a.m4a", "aac", 44100, 1.0)
    with pytest.raises(MediaError) as e:
        load_audio(cut(src, tmp_path / "cut.m4a", keep))
    assert reason(e) == "truncated"
    assert "appears cut short" in e.value.detail and "declared length" in e.value.detail


def test_m4a_without_its_moov_box_is_truncated(tmp_path):
    data = write_av_audio(tmp_path / "a.m4a", "aac", 44100, 1.0).read_bytes()
    (no_index := tmp_path / "no_moov.m4a").write_bytes(data[: data.rindex(b"moov") - 4])
    with pytest.raises(MediaError) as e:
        load_audio(no_index)
    assert reason(e) == "truncated" and "index is missing" in e.value.detail


def test_silence_is_rejected(tmp_path):
    sf.write(tmp_path / "s.wav", np.zeros((16000, 2), np.float32), 16000)
    y, info = load_audio(tmp_path / "s.wav")
    assert info.rms_dbfs == info.peak_dbfs == -120.0 and not np.any(y)
    with pytest.raises(MediaError) as e:
        check_audio(info, max_seconds=30)
    assert reason(e) == "silent" and str(tmp_path / "s.wav") in str(e.value)


def test_quiet_but_not_silent_passes(tmp_path):
    x = 0.01 * np.sin(2 * np.pi * 300 * np.arange(16000) / 16000)  # ≈ -43 dBFS RMS
    sf.write(tmp_path / "q.wav", x, 16000)
    _, info = load_audio(tmp_path / "q.wav")
    check_audio(info, max_seconds=30)


def test_too_long(tmp_path):
    _, info = load_audio(write_sf(tmp_path / "long.wav", 2.0, 16000))
    check_audio(info, max_seconds=2.5)
    with pytest.raises(MediaError) as e:
        check_audio(info, max_seconds=1.5)
    assert reason(e) == "too_long"


@pytest.mark.parametrize("ext", [".wav", ".m4a"])
def test_load_audio_max_seconds_stops_early(tmp_path, ext):
    path = tmp_path / f"long{ext}"
    if ext == ".wav":
        write_sf(path, 2.0, 16000)
    else:
        write_av_audio(path, "aac", 16000, 2.0)
    with pytest.raises(MediaError) as e:
        load_audio(path, max_seconds=1.0)
    assert reason(e) == "too_long"


def test_video_without_audio_has_no_audio_stream(tmp_path):
    with pytest.raises(MediaError) as e:
        load_audio(write_video(tmp_path / "v.mp4"))
    assert reason(e) == "no_audio_stream"


# --- images ---------------------------------------------------------------------------------


def write_image(path: Path, fmt: str, size=(64, 48), mode="RGB") -> Path:
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path, fmt)
    return path


@pytest.mark.parametrize(("ext", "fmt", "mode"), [
    (".png", "PNG", "RGB"), (".png", "PNG", "RGBA"), (".jpg", "JPEG", "L"),
    (".webp", "WEBP", "RGB"), (".bmp", "BMP", "RGB"),
])
def test_probe_image(tmp_path, ext, fmt, mode):
    info = probe_image(write_image(tmp_path / f"i{ext}", fmt, (64, 48), mode))
    assert info == ImageInfo(width=64, height=48, format=fmt, mode=mode)


@pytest.mark.parametrize(("ext", "fmt"), [(".png", "PNG"), (".jpg", "JPEG"), (".bmp", "BMP")])
@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_image(tmp_path, ext, fmt, keep):
    src = write_image(tmp_path / f"full{ext}", fmt)
    with pytest.raises(MediaError) as e:
        probe_image(cut(src, tmp_path / f"cut{ext}", keep))
    assert reason(e) == "truncated"


def test_truncated_webp_is_a_media_error(tmp_path):
    src = write_image(tmp_path / "full.webp", "WEBP")
    with pytest.raises(MediaError) as e:
        probe_image(cut(src, tmp_path / "cut.webp", 0.5))
    assert reason(e) in {"truncated", "undecodable"}  # libwebp just says "could not decode"


def test_png_with_corrupt_crc(tmp_path):
    data = bytearray(write_image(tmp_path / "ok.png", "PNG").read_bytes())
    data[40] ^= 0xFF  # inside the IDAT chunk: CRC no longer matches
    (tmp_path / "bad.png").write_bytes(bytes(data))
    with pytest.raises(MediaError) as e:
        probe_image(tmp_path / "bad.png")
    assert reason(e) in {"undecodable", "truncated"}


@pytest.mark.parametrize("make", ["garbage", "empty", "missing"])
def test_bad_image_files(tmp_path, make):
    p = tmp_path / "x.png"
    if make == "garbage":
        garbage(p, 500)
    elif make == "empty":
        p.write_bytes(b"")
    with pytest.raises(MediaError) as e:
        probe_image(p)
    assert reason(e) == {"garbage": "undecodable", "empty": "empty_file",
                         "missing": "missing"}[make]


def test_decompression_bomb_is_too_large(tmp_path, monkeypatch):
    p = write_image(tmp_path / "big.png", "PNG", (64, 48))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 2x this raises
    with pytest.raises(MediaError) as e:
        probe_image(p)
    assert reason(e) == "too_large"


# --- video ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("ext", "codec"), [
    (".mp4", None), (".mkv", "mpeg4"), (".webm", "libvpx-vp9"), (".avi", "mpeg4"),
    (".mov", None),
])
def test_probe_video(tmp_path, ext, codec):
    if codec and codec not in av.codecs_available:
        pytest.skip(f"no {codec} encoder")
    info = probe_video(write_video(tmp_path / f"v{ext}", codec=codec, w=64, h=48, fps=10,
                                   frames=30))
    expected_codec = {"libx264": "h264", "libvpx-vp9": "vp9"}.get(codec or video_codec(),
                                                                  codec or video_codec())
    assert info == VideoInfo(width=64, height=48, fps=10.0, frame_count=30, duration_s=3.0,
                             codec=expected_codec, has_audio=False)


def test_probe_video_with_audio_and_odd_rate(tmp_path):
    info = probe_video(write_video(tmp_path / "va.mp4", w=96, h=64, fps=25, frames=17,
                                   audio=True))
    assert (info.width, info.height, info.fps, info.frame_count) == (96, 64, 25.0, 17)
    assert info.duration_s == pytest.approx(17 / 25)
    assert info.has_audio


def test_video_too_long(tmp_path):
    path = write_video(tmp_path / "v.mp4", fps=10, frames=30)
    assert probe_video(path, max_seconds=3.0).frame_count == 30
    with pytest.raises(MediaError) as e:
        probe_video(path, max_seconds=2.0)
    assert reason(e) == "too_long"


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_mp4_moov_first(tmp_path, keep):
    src = write_video(tmp_path / "v.mp4", options={"movflags": "faststart"})
    with pytest.raises(MediaError) as e:
        probe_video(cut(src, tmp_path / "cut.mp4", keep))
    assert reason(e) == "truncated"


@pytest.mark.parametrize("keep", [0.5, 0.6, 0.99])
def test_truncated_mp4_moov_last(tmp_path, keep):
    """FFmpeg cannot open it (or, cut inside its index, opens what is left): truncated."""
    src = write_video(tmp_path / "v.mp4", audio=True)
    with pytest.raises(MediaError) as e:
        probe_video(cut(src, tmp_path / "cut.mp4", keep))
    assert reason(e) == "truncated"
    assert "appears cut short" in e.value.detail and "declared length" in e.value.detail


def test_mp4_without_its_moov_box_is_truncated(tmp_path):
    data = write_video(tmp_path / "v.mp4").read_bytes()
    (no_index := tmp_path / "no_moov.mp4").write_bytes(data[: data.rindex(b"moov") - 4])
    with pytest.raises(MediaError) as e:
        probe_video(no_index)
    assert reason(e) == "truncated" and "index is missing" in e.value.detail


@pytest.mark.parametrize("tail", [b"\x00" * 5, b"\xff" * 40])
def test_bytes_after_a_whole_mp4_are_not_truncation(tmp_path, tail):
    (v := tmp_path / "v.mp4").write_bytes(write_video(tmp_path / "src.mp4").read_bytes() + tail)
    assert probe_video(v).frame_count == 30


@pytest.mark.parametrize("name", ["v.mp4", "a.m4a"])
def test_corrupt_but_whole_mp4_stays_undecodable(tmp_path, name):
    """Every box whole but one declaring an impossible size: corrupt, not cut short."""
    src = (write_video(tmp_path / name) if name.endswith(".mp4")
           else write_av_audio(tmp_path / name, "aac", 44100, 1.0))
    data = bytearray(src.read_bytes())
    mdat = data.index(b"mdat") - 4
    data[mdat:mdat + 4] = (3).to_bytes(4, "big")  # a box size under its own 8-byte header
    (bad := tmp_path / f"bad_{name}").write_bytes(bytes(data))
    with pytest.raises(MediaError) as e:
        (probe_video if name.endswith(".mp4") else load_audio)(bad)
    assert reason(e) == "undecodable"


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_mkv(tmp_path, keep):
    """Matroska declares no frame count; the cut is found from its declared duration."""
    src = write_video(tmp_path / "v.mkv", codec="mpeg4")
    with pytest.raises(MediaError) as e:
        probe_video(cut(src, tmp_path / "cut.mkv", keep))
    assert reason(e) == "truncated"


def test_audio_only_container_has_no_video_stream(tmp_path):
    with pytest.raises(MediaError) as e:
        probe_video(write_av_audio(tmp_path / "a.mp4", "aac", 16000, 0.5))
    assert reason(e) == "no_video_stream"


@pytest.mark.parametrize("make", ["garbage", "empty", "missing"])
def test_bad_video_files(tmp_path, make):
    p = tmp_path / "x.mp4"
    if make == "garbage":
        garbage(p)
    elif make == "empty":
        p.write_bytes(b"")
    with pytest.raises(MediaError) as e:
        probe_video(p)
    assert reason(e) == {"garbage": "undecodable", "empty": "empty_file",
                         "missing": "missing"}[make]



def test_wav_with_no_frames_is_empty_audio(tmp_path):
    sf.write(tmp_path / "e.wav", np.zeros((0, 2), np.float32), 16000)
    with pytest.raises(MediaError) as e:
        load_audio(tmp_path / "e.wav")
    assert reason(e) == "empty_audio"
