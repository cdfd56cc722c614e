"""Generate the committed sample data under ``data/sample/``.

Exact command (run from the repository root; needs ``espeak-ng`` on PATH and
the project venv, which has numpy, soundfile, soxr, Pillow and PyAV)::

    .venv/bin/python scripts/make_sample_data.py --seed 20261121 --out data/sample

What it writes (everything is synthetic and generated here):

* ``audio/{train,dev}/*.{flac,wav,ogg,mp3}`` and NeMo-style manifests
  ``audio/train.jsonl`` / ``audio/dev.jsonl``: short English utterances
  synthesised with espeak-ng over seven English accents, with rate/pitch and
  voice-variant variation, at five noise levels (clean, 20, 10, 5, 0 dB SNR),
  16 kHz mono. The train and dev splits use disjoint sentences
  (``scripts/sample_sentences.txt``), and every accent x noise-level cell
  appears in both splits.
* ``images/*.{png,jpg}`` + ``images/annotations.jsonl``: coloured shapes on
  plain or gradient backgrounds, with their labels, bounding boxes and masks
  (COCO RLE of the visible pixels); three ``scene_*`` pictures hold several
  objects, some alike, with a caption naming them.
* ``videos/*.{mp4,webm}`` + ``videos/annotations.jsonl``: short clips of
  moving shapes (H.264 in MP4, one VP9 in WebM).
* ``README.md``: what is there, how it was made, counts per
  split x accent x noise level.

Determinism: every random choice comes from ``numpy.random.default_rng``
seeded with ``--seed`` (per-clip generators are seeded with ``[seed, clip]``),
so the same seed gives the same sentences, assignment, voices, rates,
pitches, noise and file names. espeak-ng, soxr, FLAC/WAV and the video
encoders (single-threaded) are deterministic too; the Ogg container carries
a random stream serial number, so .ogg bytes may differ between runs.

SNR definition: the clean utterance (leading/trailing silence trimmed to a
short pad) is scaled to a random RMS level; noise (white or pink, seeded) is scaled
so that ``20*log10(rms(speech) / rms(noise))`` equals the target exactly,
computed over the whole clip. If the mixture would clip, speech and noise
are scaled down together, which leaves the SNR unchanged.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import soxr
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent
SENTENCES_FILE = Path(__file__).resolve().parent / "sample_sentences.txt"

SAMPLE_RATE = 16_000
ESPEAK_RATE = 22_050  # espeak-ng's native output rate

# espeak-ng voice -> accent tag. The mbrola ``mb/...`` voices are not used
# (the mbrola binary and databases are not installed).
VOICES: dict[str, str] = {
    "en-us": "us",
    "en-gb": "gb",
    "en-gb-scotland": "scottish",
    "en-gb-x-rp": "rp",
    "en-029": "caribbean",
    "en-us-nyc": "nyc",
    "en-gb-x-gbcwmd": "west_midlands",
}
VARIANTS = ["m1", "m2", "m3", "m4", "m7", "f2", "f3", "f5"]  # f1, f4: Whisper barely copes
SNRS = ["clean", "20", "10", "5", "0"]

N_DEV_SENTENCES = 40
N_CLIPS = {"train": 140, "dev": 60}
# A few clips per split in each non-FLAC format; the rest are FLAC.
N_OTHER_FORMATS = {"train": {"wav": 2, "ogg": 13, "mp3": 13}, "dev": {"wav": 1, "ogg": 6, "mp3": 6}}

MIN_DUR, MAX_DUR = 2.0, 6.0
RATE_WPM = (150, 180)  # espeak-ng -s, drawn uniformly per clip
PITCH = (30, 70)  # espeak-ng -p
LEVEL_DBFS = (-37.0, -30.0)  # speech RMS before mixing, drawn per clip
PAD_S = (0.05, 0.2)  # silence kept before and after the speech
PEAK_LIMIT = 0.95


# --------------------------------------------------------------------------- audio


@dataclass
class Clip:
    split: str
    index: int
    sentence: str
    voice: str
    variant: str
    rate: int
    pitch: int
    snr: str
    noise: str  # "none", "white" or "pink"
    fmt: str

    @property
    def accent(self) -> str:
        return VOICES[self.voice]

    @property
    def stem(self) -> str:
        return f"{self.split}_{self.index:03d}_{self.accent}_{self.snr}"


def load_sentences(path: Path = SENTENCES_FILE) -> list[str]:
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    sentences = [ln for ln in lines if ln and not ln.startswith("#")]
    if len(set(sentences)) != len(sentences):
        raise ValueError(f"duplicate sentences in {path}")
    return sentences


def plan_split(
    split: str, sentences: list[str], n_clips: int, rng: np.random.Generator
) -> list[Clip]:
    """Assign sentences, voices, noise levels and formats to the clips of one split.

    Every accent x noise cell is used at least once; every sentence at least
    once; a sentence never repeats with the same accent.
    """
    cells = [(v, s) for v in VOICES for s in SNRS]
    reps, rest = divmod(n_clips, len(cells))
    if reps < 1 or len(sentences) > n_clips:
        raise ValueError(f"{split}: {n_clips} clips cannot cover {len(cells)} cells")
    chosen_cells = cells * reps + [cells[i] for i in rng.permutation(len(cells))[:rest]]
    need = n_clips - len(sentences)
    if need <= len(sentences):  # the committed sample's draw
        extra = [int(i) for i in rng.choice(len(sentences), size=need, replace=False)]
    else:  # a larger set: whole passes over the sentences, each shuffled
        extra = [int(i) for _ in range(-(-need // len(sentences)))
                 for i in rng.permutation(len(sentences))][:need]
    sent_idx = list(range(len(sentences))) + extra
    # Pair at random, then swap cells until no sentence repeats with the same accent.
    order = rng.permutation(n_clips)
    pairs = [(sent_idx[i], chosen_cells[j]) for i, j in enumerate(order)]
    for _ in range(100_000):
        seen = Counter((s, c[0]) for s, c in pairs)
        bad = [i for i, (s, c) in enumerate(pairs) if seen[(s, c[0])] > 1]
        if not bad:
            break
        i, j = bad[0], int(rng.integers(n_clips))
        (si, ci), (sj, cj) = pairs[i], pairs[j]
        pairs[i], pairs[j] = (si, cj), (sj, ci)
    else:  # pragma: no cover - practically unreachable with these sizes
        raise RuntimeError("could not pair sentences with accents")

    fmts = ["flac"] * n_clips
    slots = iter(rng.permutation(n_clips))
    for fmt, k in N_OTHER_FORMATS[split].items():
        for _ in range(k):
            fmts[int(next(slots))] = fmt

    clips = []
    for i, (s, (voice, snr)) in enumerate(pairs):
        noise = "none" if snr == "clean" else str(rng.choice(["pink", "pink", "white"]))
        clips.append(
            Clip(
                split=split,
                index=i,
                sentence=sentences[s],
                voice=voice,
                variant=str(rng.choice(VARIANTS)),
                rate=int(rng.integers(RATE_WPM[0], RATE_WPM[1] + 1)),
                pitch=int(rng.integers(PITCH[0], PITCH[1] + 1)),
                snr=snr,
                noise=noise,
                fmt=fmts[i],
            )
        )
    return clips


def espeak(text: str, voice: str, variant: str, rate: int, pitch: int) -> np.ndarray:
    """Synthesise ``text`` and return float32 mono samples at ESPEAK_RATE."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "tts.wav"
        subprocess.run(
            [
                "espeak-ng",
                "-v",
                f"{voice}+{variant}",
                "-s",
                str(rate),
                "-p",
                str(pitch),
                "-w",
                str(wav),
                text,
            ],
            check=True,
            capture_output=True,
        )
        audio, sr = sf.read(wav, dtype="float32")
    if sr != ESPEAK_RATE or audio.ndim != 1:
        raise RuntimeError(f"unexpected espeak-ng output: {sr} Hz, shape {audio.shape}")
    return audio


def trim(audio: np.ndarray, sr: int, pad_s: float) -> np.ndarray:
    """Cut leading/trailing silence, leaving exactly ``pad_s`` seconds on each side."""
    frame = int(0.01 * sr)
    n = len(audio) // frame
    energy = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1))
    active = np.flatnonzero(energy > 0.02 * energy.max())
    pad = np.zeros(int(pad_s * sr), dtype=audio.dtype)
    return np.concatenate([pad, audio[active[0] * frame : (active[-1] + 1) * frame], pad])


def synthesize(clip: Clip, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Speech at 16 kHz, 2-6 s long, at a random level. Returns (audio, final rate)."""
    rate = clip.rate
    pad = float(rng.uniform(*PAD_S))
    for _ in range(10):
        raw = espeak(clip.sentence, clip.voice, clip.variant, rate, clip.pitch)
        speech = soxr.resample(trim(raw, ESPEAK_RATE, pad), ESPEAK_RATE, SAMPLE_RATE, "HQ")
        dur = len(speech) / SAMPLE_RATE
        if dur <= MAX_DUR:
            break
        rate += 15  # too long: speak faster
    else:
        raise RuntimeError(f"cannot fit {clip.sentence!r} into {MAX_DUR} s")
    if dur < MIN_DUR:  # too short: pad with silence, split between both ends
        missing = int(math.ceil((MIN_DUR - dur) * SAMPLE_RATE)) + int(0.05 * SAMPLE_RATE)
        lead = missing // 2
        speech = np.pad(speech, (lead, missing - lead))
    speech = speech.astype(np.float64)
    speech *= 10 ** (rng.uniform(*LEVEL_DBFS) / 20) / np.sqrt(np.mean(speech**2))
    return speech, rate


def make_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    if kind == "pink":  # 1/f power spectrum, shaped in the frequency domain
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, d=1 / SAMPLE_RATE)
        spec[0] = 0.0  # no DC; flat below 50 Hz so rumble does not dominate the energy
        return np.fft.irfft(spec / np.sqrt(np.maximum(f, 50.0)), n=n)
    raise ValueError(kind)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    rms_s = np.sqrt(np.mean(speech**2))
    noise = noise * (rms_s / np.sqrt(np.mean(noise**2)) / 10 ** (snr_db / 20))
    return speech + noise


def render_clip(clip: Clip, seed: int, out_dir: Path) -> dict:
    rng = np.random.default_rng([seed, 0 if clip.split == "train" else 1, clip.index])
    speech, rate = synthesize(clip, rng)
    audio = speech
    if clip.snr != "clean":
        audio = mix_at_snr(speech, make_noise(clip.noise, len(speech), rng), float(clip.snr))
        noise = audio - speech
        measured = 20 * math.log10(np.sqrt(np.mean(speech**2)) / np.sqrt(np.mean(noise**2)))
        if abs(measured - float(clip.snr)) > 1e-6:
            raise RuntimeError(f"{clip.stem}: SNR {measured:.6f} dB, wanted {clip.snr}")
    peak = np.max(np.abs(audio))
    if peak > PEAK_LIMIT:
        audio = audio * (PEAK_LIMIT / peak)
    path = out_dir / clip.split / f"{clip.stem}.{clip.fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = {
        "flac": {"format": "FLAC", "subtype": "PCM_16", "compression_level": 1.0},
        "wav": {"format": "WAV", "subtype": "PCM_16"},
        "ogg": {"format": "OGG", "subtype": "VORBIS"},
        "mp3": {"format": "MP3", "subtype": "MPEG_LAYER_III"},
    }[clip.fmt]
    sf.write(path, audio.astype(np.float32), SAMPLE_RATE, **kwargs)
    back, sr = sf.read(path, dtype="float32")  # every file must decode with soundfile
    if sr != SAMPLE_RATE or back.ndim != 1 or len(back) == 0:
        raise RuntimeError(f"{path} did not read back: {sr} Hz, shape {back.shape}")
    return {
        "audio_filepath": path.relative_to(out_dir).as_posix(),
        "text": clip.sentence,
        "duration": round(len(back) / sr, 3),
        "accent": clip.accent,
        "snr_db": clip.snr,
        "speaker": f"{clip.voice}+{clip.variant}",
        "split": clip.split,
        "noise": clip.noise,
        "tts_rate_wpm": rate,
        "tts_pitch": clip.pitch,
    }


def make_audio(seed: int, out: Path, n_clips: dict[str, int] | None = None
               ) -> dict[str, list[dict]]:
    n_clips = n_clips or N_CLIPS
    sentences = load_sentences()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(sentences))
    dev_sents = [sentences[i] for i in sorted(order[:N_DEV_SENTENCES])]
    train_sents = [sentences[i] for i in sorted(order[N_DEV_SENTENCES:])]
    audio_dir = out / "audio"
    rows: dict[str, list[dict]] = {}
    for split, sents in (("train", train_sents), ("dev", dev_sents)):
        clips = plan_split(split, sents, n_clips[split], rng)
        rows[split] = [render_clip(c, seed, audio_dir) for c in clips]
        with open(audio_dir / f"{split}.jsonl", "w", encoding="utf-8") as fh:
            for row in rows[split]:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"audio/{split}: {len(clips)} clips, {len(sents)} sentences")
    overlap = {r["text"] for r in rows["train"]} & {r["text"] for r in rows["dev"]}
    if overlap:
        raise RuntimeError(f"train/dev share sentences: {sorted(overlap)[:3]}")
    return rows


# --------------------------------------------------------------------------- images

PALETTE = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 210, 40),
    "orange": (245, 140, 30),
    "purple": (140, 60, 180),
    "white": (250, 250, 250),
    "black": (20, 20, 20),
}
SHAPES = ["circle", "square", "triangle"]


def _background(w: int, h: int, rng: np.random.Generator) -> tuple[Image.Image, str]:
    light = [(235, 235, 230), (200, 225, 245), (225, 240, 215), (245, 230, 210)]
    c0 = np.array(light[rng.integers(len(light))], dtype=np.float64)
    if rng.random() < 0.5:
        return Image.new("RGB", (w, h), tuple(int(v) for v in c0)), "plain"
    c1 = np.array(light[rng.integers(len(light))], dtype=np.float64) * 0.75
    t = (
        np.linspace(0, 1, h)[:, None, None]
        if rng.random() < 0.5
        else np.linspace(0, 1, w)[None, :, None]
    )
    grad = c0 * (1 - t) + c1 * t
    arr = np.broadcast_to(grad, (h, w, 3)).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(arr), "RGB"), "gradient"


def _draw_shape(
    draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill
) -> list[int]:
    box = [round(cx - r), round(cy - r), round(cx + r), round(cy + r)]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=fill)
    return box


def _shape_mask(size: tuple[int, int], shape: str, cx: float, cy: float, r: float) -> np.ndarray:
    """The pixels `_draw_shape` paints for this shape, as a boolean height x width array."""
    canvas = Image.new("L", size, 0)
    _draw_shape(ImageDraw.Draw(canvas), shape, cx, cy, r, 255)
    return np.asarray(canvas) > 0


def _visible_masks(masks: list[np.ndarray]) -> list[dict]:
    """COCO RLE of what shows of each shape, drawn in order (a later shape hides an earlier
    one where they overlap), with its area in pixels."""
    from labeling.image.masks import encode_rle  # the project's own RLE (pycocotools)

    out = []
    for i, mask in enumerate(masks):
        visible = mask.copy()
        for later in masks[i + 1:]:
            visible &= ~later
        out.append({**encode_rle(visible), "area": int(visible.sum())})
    return out


def make_images(seed: int, out: Path) -> list[dict]:
    rng = np.random.default_rng([seed, 2])
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    specs = [
        (320, 240, "png"),
        (160, 120, "jpg"),
        (240, 180, "png"),
        (320, 240, "jpg"),
        (200, 150, "png"),
        (256, 192, "jpg"),
    ]
    colours = [c for c in PALETTE if c not in ("white",)]
    rows = []
    for i, (w, h, ext) in enumerate(specs):
        img, bg = _background(w, h, rng)
        draw = ImageDraw.Draw(img)
        objects: list[dict] = []
        masks: list[np.ndarray] = []
        for k in range(int(rng.integers(2, 5))):
            shape = SHAPES[(i + k) % 3] if k < 3 else SHAPES[int(rng.integers(3))]
            colour = colours[int(rng.integers(len(colours)))]
            for _ in range(100):  # place without overlapping earlier shapes
                r = float(rng.uniform(0.08, 0.18) * min(w, h))
                cx, cy = rng.uniform(r + 2, w - r - 2), rng.uniform(r + 2, h - r - 2)
                box = [cx - r, cy - r, cx + r, cy + r]
                if all(
                    box[2] < o["bbox"][0] - 3
                    or box[0] > o["bbox"][2] + 3
                    or box[3] < o["bbox"][1] - 3
                    or box[1] > o["bbox"][3] + 3
                    for o in objects
                ):
                    break
            bbox = _draw_shape(draw, shape, cx, cy, r, PALETTE[colour])
            objects.append({"label": shape, "colour": colour, "bbox": bbox})
            masks.append(_shape_mask((w, h), shape, cx, cy, r))
        for obj, mask in zip(objects, _visible_masks(masks), strict=True):
            obj["mask"] = mask
        name = f"shapes_{i:02d}.{ext}"
        if ext == "png":
            img.save(img_dir / name, format="PNG", optimize=True)
        else:
            img.save(img_dir / name, format="JPEG", quality=85)
        rows.append({"image": name, "width": w, "height": h, "background": bg, "objects": objects})
    rows += make_scenes(seed, img_dir)
    with open(img_dir / "annotations.jsonl", "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    print(f"images: {len(rows)}")
    return rows


# Scenes: several objects per picture, two of them alike (two instances of one phrase), one
# partly hiding another, with a caption that names them. Their own generator ([seed, 4]) leaves
# the shapes_* draws above unchanged.
SCENES = [  # (name, size, [(shape, colour, cx, cy, r) as shares of width/height/min side])
    ("scene_00.png", (240, 180), [
        ("circle", "red", 0.22, 0.3, 0.13), ("circle", "red", 0.75, 0.7, 0.13),
        ("square", "blue", 0.7, 0.28, 0.15), ("triangle", "green", 0.3, 0.72, 0.16)]),
    ("scene_01.png", (240, 180), [
        ("square", "yellow", 0.35, 0.45, 0.22), ("circle", "purple", 0.52, 0.6, 0.16),
        ("triangle", "orange", 0.8, 0.3, 0.13), ("triangle", "orange", 0.82, 0.78, 0.12)]),
    ("scene_02.png", (256, 192), [
        ("square", "green", 0.15, 0.25, 0.12), ("square", "green", 0.45, 0.25, 0.12),
        ("square", "green", 0.75, 0.25, 0.12), ("circle", "blue", 0.3, 0.72, 0.17),
        ("triangle", "red", 0.72, 0.72, 0.17)]),
]
_NUMBERS = {1: "a", 2: "two", 3: "three", 4: "four"}


def _scene_caption(objects: list[dict]) -> str:
    """'Two red circles, a blue square and a green triangle.'"""
    counts = Counter((o["colour"], o["label"]) for o in objects)
    parts = [f"{_NUMBERS[n]} {colour} {label}{'s' * (n > 1)}"
             for (colour, label), n in counts.items()]
    text = ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else parts[0]
    return text[0].upper() + text[1:] + "."


def make_scenes(seed: int, img_dir: Path) -> list[dict]:
    """`SCENES` drawn with a little seeded jitter; annotation rows with visible masks."""
    rng = np.random.default_rng([seed, 4])
    rows = []
    for name, (w, h), spec in SCENES:
        img, bg = _background(w, h, rng)
        draw = ImageDraw.Draw(img)
        objects, masks = [], []
        for shape, colour, fx, fy, fr in spec:
            cx, cy = fx * w + rng.uniform(-2, 2), fy * h + rng.uniform(-2, 2)
            r = fr * min(w, h)
            bbox = _draw_shape(draw, shape, cx, cy, r, PALETTE[colour])
            objects.append({"label": shape, "colour": colour, "bbox": bbox})
            masks.append(_shape_mask((w, h), shape, cx, cy, r))
        for obj, mask in zip(objects, _visible_masks(masks), strict=True):
            obj["mask"] = mask
        img.save(img_dir / name, format="PNG", optimize=True)
        rows.append({"image": name, "width": w, "height": h, "background": bg,
                     "caption": _scene_caption(objects), "objects": objects})
    return rows


# --------------------------------------------------------------------------- videos


def _video_frames(
    w: int, h: int, n: int, spec: list[tuple[str, str, float]], rng
) -> list[np.ndarray]:
    """Frames of shapes bouncing across a plain background."""
    objs = []
    for shape, colour, r in spec:
        objs.append(
            {
                "shape": shape,
                "fill": PALETTE[colour],
                "r": r,
                "x": rng.uniform(r, w - r),
                "y": rng.uniform(r, h - r),
                "vx": rng.choice([-1, 1]) * rng.uniform(3, 7),
                "vy": rng.choice([-1, 1]) * rng.uniform(2, 5),
            }
        )
    frames = []
    for _ in range(n):
        img = Image.new("RGB", (w, h), (235, 235, 230))
        draw = ImageDraw.Draw(img)
        for o in objs:
            _draw_shape(draw, o["shape"], o["x"], o["y"], o["r"], o["fill"])
            for ax, v, lim in (("x", "vx", w), ("y", "vy", h)):
                o[ax] += o[v]
                if o[ax] < o["r"] or o[ax] > lim - o["r"]:
                    o[v] = -o[v]
                    o[ax] = min(max(o[ax], o["r"]), lim - o["r"])
        frames.append(np.asarray(img))
    return frames


def _encode(path: Path, frames: list[np.ndarray], fps: int, codec: str) -> None:
    h, w = frames[0].shape[:2]
    # bitexact: no random segment UID or library version strings, so re-runs give the same bytes
    with av.open(str(path), mode="w", options={"fflags": "+bitexact"}) as container:
        if codec == "libx264":
            options = {"crf": "28", "preset": "medium", "threads": "1"}
        else:
            options = {"crf": "40", "b": "0", "threads": "1", "deadline": "good", "cpu-used": "4"}
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for arr in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_videos(seed: int, out: Path) -> list[dict]:
    rng = np.random.default_rng([seed, 3])
    vid_dir = out / "videos"
    vid_dir.mkdir(parents=True, exist_ok=True)
    specs = [
        ("bouncing_circle.mp4", "libx264", 160, 120, 12, 30, [("circle", "red", 14.0)]),
        (
            "two_shapes.mp4",
            "libx264",
            160,
            120,
            15,
            36,
            [("square", "blue", 12.0), ("triangle", "green", 15.0)],
        ),
        (
            "three_shapes.webm",
            "libvpx-vp9",
            160,
            120,
            10,
            25,
            [("circle", "orange", 11.0), ("square", "purple", 10.0), ("triangle", "blue", 13.0)],
        ),
    ]
    rows = []
    for name, codec, w, h, fps, n, objs in specs:
        path = vid_dir / name
        _encode(path, _video_frames(w, h, n, objs, rng), fps, codec)
        with av.open(str(path)) as container:  # must decode with PyAV
            decoded = sum(1 for _ in container.decode(video=0))
        if decoded != n:
            raise RuntimeError(f"{name}: decoded {decoded} of {n} frames")
        rows.append(
            {
                "video": name,
                "codec": {"libx264": "h264", "libvpx-vp9": "vp9"}[codec],
                "width": w,
                "height": h,
                "fps": fps,
                "frames": n,
                "duration": round(n / fps, 3),
                "objects": [{"label": s, "colour": c} for s, c, _ in objs],
            }
        )
    with open(vid_dir / "annotations.jsonl", "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    print(f"videos: {len(rows)}")
    return rows


# --------------------------------------------------------------------------- README


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_readme(seed: int, out: Path, audio: dict[str, list[dict]], images, videos) -> None:
    buf = io.StringIO()
    accents = list(VOICES.values())
    buf.write(
        "# Sample data\n\n"
        "Small, synthetic media for tests, demos and smoke runs of the pipeline.\n"
        "Everything here was generated on this machine by `scripts/make_sample_data.py`;\n"
        "nothing was downloaded or recorded. It is synthetic and carries no third-party\n"
        "rights: use it under the same licence as this repository.\n\n"
        "Regenerate (deterministic given the seed; needs `espeak-ng` on PATH):\n\n"
        "```\n"
        f".venv/bin/python scripts/make_sample_data.py --seed {seed} --out data/sample\n"
        "```\n\n"
    )
    n_train, n_dev = len(audio["train"]), len(audio["dev"])
    durs = [r["duration"] for rs in audio.values() for r in rs]
    seconds = sum(durs)
    buf.write(
        "## Audio (`audio/`)\n\n"
        f"{n_train + n_dev} English utterances ({seconds / 60:.1f} min), 16 kHz mono, "
        f"{min(durs):.2f}-{max(durs):.2f} s each (limits {MIN_DUR:g}-{MAX_DUR:g} s), "
        "synthesised with espeak-ng "
        f"({', '.join(f'`{v}`' for v in VOICES)}; voice variants "
        f"{', '.join(VARIANTS)}; rate {RATE_WPM[0]}-{RATE_WPM[1]} wpm, "
        f"pitch {PITCH[0]}-{PITCH[1]}).\n"
        "Sentences come from `scripts/sample_sentences.txt`; train and dev use\n"
        "**disjoint sentences** (a sentence may recur within its split in another\n"
        "accent / noise level). Every accent x noise cell occurs in both splits.\n\n"
        "Noise: seeded pink or white noise mixed in numpy at exactly 20, 10, 5 or 0 dB\n"
        "SNR, measured as the ratio of speech RMS to noise RMS over the whole clip\n"
        f"(speech first set to {LEVEL_DBFS[0]:g} to {LEVEL_DBFS[1]:g} dBFS RMS; a mixture that\n"
        f"would exceed {PEAK_LIMIT} peak is scaled down as a whole, which keeps the SNR).\n\n"
        "Formats: mostly FLAC (16-bit); a few WAV (16-bit PCM), Ogg Vorbis and MP3\n"
        "clips, all readable with `soundfile`.\n\n"
        "Manifests `audio/train.jsonl` and `audio/dev.jsonl` are NeMo-style JSON lines:\n"
        "`audio_filepath` (relative to the manifest's folder), `text` (exactly what\n"
        "was spoken), `duration` (s), `accent`, `snr_db` (`clean`, `20`, `10`, `5`,\n"
        "`0`), `speaker` (espeak-ng voice + variant), `split`; plus `noise`\n"
        "(`none`/`pink`/`white`), `tts_rate_wpm` and `tts_pitch`.\n\n"
    )
    for split, rows in audio.items():
        counts = Counter((r["accent"], r["snr_db"]) for r in rows)
        fmts = Counter(Path(r["audio_filepath"]).suffix[1:] for r in rows)
        n_sent = len({r["text"] for r in rows})
        buf.write(
            f"### {split}: {len(rows)} clips, {n_sent} distinct sentences, "
            + ", ".join(f"{n} {f}" for f, n in sorted(fmts.items()))
            + "\n\n"
        )
        buf.write("| accent | " + " | ".join(SNRS) + " | total |\n")
        buf.write("|---|" + "---:|" * (len(SNRS) + 1) + "\n")
        for a in accents:
            cells = [counts[(a, s)] for s in SNRS]
            buf.write(f"| {a} | " + " | ".join(map(str, cells)) + f" | {sum(cells)} |\n")
        totals = [sum(counts[(a, s)] for a in accents) for s in SNRS]
        buf.write("| **total** | " + " | ".join(map(str, totals)) + f" | {sum(totals)} |\n\n")
    buf.write(
        "## Images (`images/`)\n\n"
        f"{len(images)} small pictures of coloured circles, squares and triangles on plain\n"
        "or gradient backgrounds (PNG and JPEG, made with Pillow); the `scene_*` ones hold\n"
        "several objects, two or three alike, one partly hiding another, and a `caption`.\n"
        "`images/annotations.jsonl` lists each shape's `label`, `colour`, pixel\n"
        "`bbox` `[x0, y0, x1, y1]` and `mask`: the COCO RLE of its visible pixels (the\n"
        "truth a point or a predicted mask can be checked against), with its `area`.\n\n"
        "| file | size | background | objects |\n|---|---|---|---|\n"
    )
    for r in images:
        objs = ", ".join(f"{o['colour']} {o['label']}" for o in r["objects"])
        buf.write(f"| {r['image']} | {r['width']}x{r['height']} | {r['background']} | {objs} |\n")
    buf.write(
        "\n## Videos (`videos/`)\n\n"
        f"{len(videos)} short clips of shapes moving and bouncing off the edges, encoded\n"
        "with PyAV (`videos/annotations.jsonl` has the same facts as the table).\n\n"
        "| file | codec | size | fps | frames | seconds | objects |\n"
        "|---|---|---|---:|---:|---:|---|\n"
    )
    for r in videos:
        objs = ", ".join(f"{o['colour']} {o['label']}" for o in r["objects"])
        buf.write(
            f"| {r['video']} | {r['codec']} | {r['width']}x{r['height']} | {r['fps']} "
            f"| {r['frames']} | {r['duration']:g} | {objs} |\n"
        )
    sizes = {d: _dir_size(out / d) for d in ("audio", "images", "videos")}
    buf.write("\n## Sizes\n\n" + "".join(f"- `{d}/`: {s / 1e6:.2f} MB\n" for d, s in sizes.items()))
    (out / "README.md").write_text(buf.getvalue(), encoding="utf-8")


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--out", type=Path, default=REPO / "data" / "sample")
    parser.add_argument(
        "--only",
        choices=["audio", "images", "videos"],
        action="append",
        help="regenerate only these parts (README is rewritten only on a full run)",
    )
    parser.add_argument("--train-clips", type=int, default=N_CLIPS["train"],
                        help="audio clips in the train split (a larger, harder set for "
                        "measuring recipes: generate it outside the repository)")
    parser.add_argument("--dev-clips", type=int, default=N_CLIPS["dev"])
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not on PATH")
    out: Path = args.out
    parts = args.only or ["audio", "images", "videos"]
    for part in parts:  # clear only what this script owns, so re-runs leave no stale files
        shutil.rmtree(out / part, ignore_errors=True)
    sizes = {"train": args.train_clips, "dev": args.dev_clips}
    audio = make_audio(args.seed, out, sizes) if "audio" in parts else None
    images = make_images(args.seed, out) if "images" in parts else None
    videos = make_videos(args.seed, out) if "videos" in parts else None
    if audio is not None and images is not None and videos is not None:
        write_readme(args.seed, out, audio, images, videos)
    print(f"total: {_dir_size(out) / 1e6:.2f} MB under {out}")


if __name__ == "__main__":
    main()
