"""Generate the audio-questions sample scenes under ``data/sample/audio_qa/``.

Exact command (run from the repository root; needs ``espeak-ng`` on PATH and the project
venv, which has numpy, soundfile and soxr)::

    .venv/bin/python scripts/make_audio_scenes.py --seed 20261203 --out data/sample/audio_qa

What it writes (everything is synthetic and generated here):

* ``scene_NN.ogg``: 16 kHz mono Ogg Vorbis scenes of 10-30 s, each a sequence of sound
  events separated by digital silence, some with a quieter bed under them:
  ``speech`` (an English sentence from espeak-ng), ``music`` (a few legato notes of sine or
  band-limited sawtooth tones from a pentatonic scale) and ``noise`` (white, pink or brown);
* ``scenes.jsonl``: a NeMo-style manifest (``audio_filepath``, ``duration``) whose
  ``regions`` key lists each scene's TRUE regions as ``{"label", "start", "end"}`` in
  seconds (ingestion keeps unknown keys as tags: this is the given annotation the
  ``sound_regions`` asset reads), plus ``scene`` and ``seed``;
* ``README.md``: what is there, how to regenerate it, each scene's facts;
* ``truth.jsonl``: per scene, the same regions, what was spoken, and facts computed here
  from the sample-level activity of each class (not from the pipeline's code): per class
  ``total_s``, ``first_start_s``, ``last_end_s``, ``count``, and the most classes at once
  with the longest stretch at that count.

Truth (policy): an event's region is where its samples are, on a 10 ms grid: a speech
event is espeak-ng's output with leading and trailing silence cut (frames quieter than
2 % of its loudest 10 ms frame) and padded with zeros to a whole 10 ms; notes and noise
are whole 10 ms long with 10 ms fades inside the region. A class's regions are the runs
of 10 ms cells where any of its events sounds, so they never overlap or touch (a bed under
an event of its own class is one region with it).

Determinism: every random choice comes from ``numpy.random.default_rng([seed, scene])``;
espeak-ng, soxr and libvorbis are deterministic, and the Ogg stream serial number (random
in libsndfile) is rewritten to one derived from the seed, with the page checksums
recomputed, so the same seed gives the same bytes (with the same libsndfile and libvorbis).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

REPO = Path(__file__).resolve().parent.parent
SAMPLE_RATE = 16_000
ESPEAK_RATE = 22_050
CELL = SAMPLE_RATE // 100  # samples per 10 ms: every region starts and ends on this grid
MAX_SECONDS = 29.5  # ingestion's default limit is 30 s
MIN_SECONDS = 10.0
PEAK = 0.9
VORBIS_QUALITY = 0.2  # soundfile's compression_level: 0 best quality, 1 smallest

SENTENCES = (
    "The next train to the city leaves from platform four.",
    "Please remember to take all of your belongings with you.",
    "We will be landing in about twenty minutes.",
    "The library closes at eight o'clock tonight.",
    "Turn left at the second set of traffic lights.",
    "Thank you for calling, how can I help you today?",
    "The weather will stay dry until the weekend.",
    "Your order is ready for collection at the front desk.",
    "Mind the gap between the train and the platform.",
    "Doors are closing, please stand clear.",
)
VOICES = ("en-us", "en-gb", "en-gb-x-rp", "en-us-nyc")
PENTATONIC = (220.0, 246.94, 277.18, 329.63, 369.99, 440.0, 493.88, 554.37, 659.26)
LEVEL_DBFS = {"speech": (-24.0, -20.0), "music": (-27.0, -22.0), "noise": (-30.0, -25.0)}
BED_DB = -12.0  # a bed is this much quieter than its class's foreground level

# Per scene: the foreground events in order (silence between them) and the beds under them
# (class, where it starts as a share of the scene, length in seconds).
RECIPES: tuple[tuple[tuple[str, ...], tuple[tuple[str, float, float], ...]], ...] = (
    (("speech", "music", "speech", "noise", "music"), ()),
    (("speech", "speech", "music", "speech"), (("noise", 0.05, 7.0),)),
    (("noise", "speech", "music", "speech", "noise"), (("music", 0.3, 5.0),)),
    (("speech", "speech", "speech"), ()),
    (("music", "noise", "speech", "music", "speech"), (("noise", 0.45, 6.0),
                                                        ("music", 0.5, 3.0))),
    (("noise", "speech", "music", "noise", "speech", "music"), (("music", 0.0, 4.0),)),
)


@dataclass(frozen=True)
class Event:
    label: str
    start: int  # samples
    audio: np.ndarray
    text: str | None = None

    @property
    def end(self) -> int:
        return self.start + len(self.audio)


# --------------------------------------------------------------------------- sounds


def espeak(text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
    """``text`` spoken by espeak-ng, float32 mono at ESPEAK_RATE."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "tts.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch),
                        "-w", str(wav), text], check=True, capture_output=True)
        audio, sr = sf.read(wav, dtype="float32")
    if sr != ESPEAK_RATE or audio.ndim != 1:
        raise RuntimeError(f"unexpected espeak-ng output: {sr} Hz, shape {audio.shape}")
    return audio


def whole_cells(audio: np.ndarray) -> np.ndarray:
    """``audio`` padded with zeros to a whole number of 10 ms cells."""
    return np.pad(audio, (0, -len(audio) % CELL))


def speech(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One sentence at 16 kHz, silence cut (see the module's truth policy)."""
    text = str(rng.choice(SENTENCES))
    raw = espeak(text, str(rng.choice(VOICES)), int(rng.integers(150, 181)),
                 int(rng.integers(30, 71)))
    audio = soxr.resample(raw, ESPEAK_RATE, SAMPLE_RATE, "HQ").astype(np.float64)
    n = len(audio) // CELL
    energy = np.sqrt(np.mean(audio[: n * CELL].reshape(n, CELL) ** 2, axis=1))
    active = np.flatnonzero(energy > 0.02 * energy.max())
    return whole_cells(audio[active[0] * CELL: (active[-1] + 1) * CELL]), text


def fade(audio: np.ndarray, samples: int = CELL) -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, samples)
    audio = audio.copy()
    audio[:samples] *= ramp
    audio[-samples:] *= ramp[::-1]
    return audio


def music(rng: np.random.Generator, seconds: float | None = None) -> np.ndarray:
    """Legato notes (0.2-0.5 s each) of one timbre, sine or band-limited sawtooth."""
    saw = bool(rng.integers(2))
    wanted = seconds if seconds is not None else float(rng.uniform(1.5, 3.5))
    notes, total = [], 0
    while total < wanted * SAMPLE_RATE:
        length = int(rng.integers(20, 51)) * CELL
        freq = float(rng.choice(PENTATONIC))
        t = np.arange(length) / SAMPLE_RATE
        harmonics = range(1, int(SAMPLE_RATE / 2 / freq)) if saw else [1]
        tone = sum(np.sin(2 * np.pi * k * freq * t) / k for k in harmonics)
        decay = np.exp(-t * float(rng.uniform(1.0, 3.0)))
        notes.append(fade(tone * (0.4 + 0.6 * decay), 32))
        total += length
    return fade(np.concatenate(notes))


def noise(rng: np.random.Generator, seconds: float | None = None) -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2) noise, 10 ms fades."""
    length = round((seconds if seconds is not None else float(rng.uniform(1.5, 4.0))) * 100)
    n = length * CELL
    white = rng.standard_normal(n)
    colour = str(rng.choice(["white", "pink", "brown"]))
    if colour != "white":
        spec = np.fft.rfft(white)
        f = np.maximum(np.fft.rfftfreq(n, d=1 / SAMPLE_RATE), 50.0)
        spec[0] = 0.0
        white = np.fft.irfft(spec / (np.sqrt(f) if colour == "pink" else f), n=n)
    return fade(white)


def at_level(audio: np.ndarray, dbfs: float) -> np.ndarray:
    return audio * (10 ** (dbfs / 20) / np.sqrt(np.mean(audio**2)))


def make_sound(label: str, rng: np.random.Generator, seconds: float | None = None,
               offset_db: float = 0.0) -> tuple[np.ndarray, str | None]:
    text = None
    if label == "speech":
        audio, text = speech(rng)
    elif label == "music":
        audio = music(rng, seconds)
    else:
        audio = noise(rng, seconds)
    return at_level(audio, float(rng.uniform(*LEVEL_DBFS[label])) + offset_db), text


# --------------------------------------------------------------------------- scenes


def cells(rng: np.random.Generator, low_s: float, high_s: float) -> int:
    """A random whole number of 10 ms cells between the bounds, in samples."""
    return int(rng.integers(round(low_s * 100), round(high_s * 100) + 1)) * CELL


def layout(recipe, rng: np.random.Generator) -> tuple[list[Event], int]:
    """The scene's events (foreground in order with silence between, then the beds) and its
    length in samples (at least MIN_SECONDS)."""
    foreground, beds = recipe
    events, cursor = [], cells(rng, 0.2, 1.0)
    for label in foreground:
        audio, text = make_sound(label, rng)
        events.append(Event(label, cursor, audio, text))
        cursor = events[-1].end + cells(rng, 0.4, 1.5)
    length = max(cursor, int(MIN_SECONDS * SAMPLE_RATE) + cells(rng, 0.0, 2.0))
    for label, share, seconds in beds:
        audio, _ = make_sound(label, rng, seconds, BED_DB)
        start = min(round(share * length / CELL) * CELL, length - len(audio))
        events.append(Event(label, start, audio))
    return events, length


def activity(events: list[Event], length: int) -> dict[str, np.ndarray]:
    """Per class, which 10 ms cells sound."""
    active: dict[str, np.ndarray] = {}
    for e in events:
        mask = active.setdefault(e.label, np.zeros(length // CELL, dtype=bool))
        mask[e.start // CELL: e.end // CELL] = True
    return active


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first cell, end cell) of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(),
                    strict=True))


def facts(active: dict[str, np.ndarray]) -> dict:
    """What the questions ask, counted on the cell grid (integers, then seconds)."""
    per_class = {}
    for label in sorted(active):
        spans = runs(active[label])
        per_class[label] = {"total_s": int(active[label].sum()) / 100,
                            "first_start_s": spans[0][0] / 100, "last_end_s": spans[-1][1] / 100,
                            "count": len(spans)}
    at_once = sum(m.astype(int) for m in active.values())
    top = int(at_once.max())
    stretch = max(end - start for start, end in runs(at_once == top))
    return {"classes": per_class, "max_concurrent": top, "max_concurrent_s": stretch / 100}


def ogg_fixed_serial(data: bytes, serial: int) -> bytes:
    """An Ogg file with every page's stream serial number set to ``serial`` and its CRC redone."""
    out, pos = bytearray(), 0
    while pos < len(data):
        if data[pos: pos + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {pos}")
        segments = data[pos + 26]
        size = 27 + segments + sum(data[pos + 27: pos + 27 + segments])
        page = bytearray(data[pos: pos + size])
        page[14:18] = struct.pack("<I", serial)
        page[22:26] = b"\0\0\0\0"
        page[22:26] = struct.pack("<I", _ogg_crc(page))
        out += page
        pos += size
    return bytes(out)


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC = _crc_table()


def _ogg_crc(page: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04C11DB7, not reflected, no final xor)."""
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[(crc >> 24) ^ byte]
    return crc


def render(index: int, seed: int, out: Path) -> tuple[dict, dict]:
    """Write one scene; its manifest line and its truth line."""
    rng = np.random.default_rng([seed, index])
    events, length = layout(RECIPES[index], rng)
    if length > MAX_SECONDS * SAMPLE_RATE:
        raise RuntimeError(f"scene {index} is {length / SAMPLE_RATE:.2f} s, over {MAX_SECONDS}")
    mix = np.zeros(length)
    for e in events:
        mix[e.start: e.end] += e.audio
    peak = np.abs(mix).max()
    if peak > PEAK:
        mix *= PEAK / peak
    name = f"scene_{index:02d}"
    buffer = io.BytesIO()
    sf.write(buffer, mix.astype(np.float32), SAMPLE_RATE, format="OGG", subtype="VORBIS",
             compression_level=VORBIS_QUALITY)
    path = out / f"{name}.ogg"
    path.write_bytes(ogg_fixed_serial(buffer.getvalue(), (seed * 100 + index) % 2**32))
    back, sr = sf.read(path, dtype="float32")
    if sr != SAMPLE_RATE or len(back) != length:
        raise RuntimeError(f"{path} read back as {len(back)} samples at {sr} Hz, wrote {length}")
    active = activity(events, length)
    regions = sorted(({"label": label, "start": start / 100, "end": end / 100}
                      for label, mask in active.items() for start, end in runs(mask)),
                     key=lambda r: (r["start"], r["label"]))
    duration = round(length / SAMPLE_RATE, 3)
    line = {"audio_filepath": path.name, "duration": duration, "regions": regions,
            "scene": name, "seed": seed}
    truth = {"scene": name, "audio_filepath": path.name, "duration": duration,
             "regions": regions, "spoken": [e.text for e in events if e.text], **facts(active)}
    return line, truth


def write_readme(seed: int, out: Path, truths: Sequence[dict]) -> None:
    """What is in the folder, how it was made, and each scene's facts."""
    lines = [
        "# Audio questions sample scenes", "",
        "Synthetic scenes for the audio questions chain (`assets/audio_qa`), generated here by",
        "`scripts/make_audio_scenes.py`; nothing was downloaded or recorded. Regenerate",
        "(byte-identical for the same seed; needs `espeak-ng` on PATH):", "",
        "```", f".venv/bin/python scripts/make_audio_scenes.py --seed {seed} "
        "--out data/sample/audio_qa", "```", "",
        "16 kHz mono Ogg Vorbis. `scenes.jsonl` is the manifest to ingest: its `regions` key",
        "(a tag after ingestion) holds each scene's true regions `{label, start, end}` in",
        "seconds. `truth.jsonl` holds the same regions, the spoken sentences, and per class",
        "`total_s`, `first_start_s`, `last_end_s`, `count`, plus `max_concurrent` (the most",
        "classes at once) and `max_concurrent_s` (its longest stretch), counted on a 10 ms",
        "grid by the generator, independently of the pipeline's code.", "",
        "| scene | seconds | speech s | music s | noise s | most at once |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for t in truths:
        totals = [t["classes"].get(c, {}).get("total_s", 0.0) for c in ("speech", "music", "noise")]
        lines.append(f"| {t['scene']} | {t['duration']:.2f} | "
                     + " | ".join(f"{v:.2f}" for v in totals)
                     + f" | {t['max_concurrent']} ({t['max_concurrent_s']:.2f} s) |")
    (out / "README.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--out", type=Path, default=REPO / "data" / "sample" / "audio_qa")
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not on PATH")
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    lines, truths = zip(*(render(i, args.seed, args.out) for i in range(len(RECIPES))),
                        strict=True)
    for name, rows in (("scenes.jsonl", lines), ("truth.jsonl", truths)):
        (args.out / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_readme(args.seed, args.out, truths)
    size = sum(p.stat().st_size for p in args.out.iterdir())
    seconds = sum(line["duration"] for line in lines)
    print(f"{len(lines)} scenes, {seconds:.1f} s, {size / 1e6:.2f} MB under {args.out}")


if __name__ == "__main__":
    main()
