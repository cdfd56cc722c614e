"""A deterministic hostile-input fuzzer for ingestion: mutated copies of good media files.

Test helper, pure Python (no decoder is imported): given seed files (name ->
bytes), `mutations` returns the same list for the same `seed`: byte flips,
truncations, deleted and duplicated spans, header-field mutations that keep
the file parseable up to the field (WAV `fmt `/`data`, FLAC STREAMINFO, PNG
IHDR with its CRC fixed, JPEG SOF, ISO-BMFF boxes, MP3 frame and ID3
headers, Ogg codec headers), container swaps (a PNG named .wav, a WAV named
.mp4), zero-length files and random bytes. Ingesting them next to good files
must quarantine what does not decode, ingest what does and lose nothing.

Example:
    >>> wav = b"RIFF" + (36).to_bytes(4, "little") + b"WAVEfmt " + bytes(24) + b"data" + bytes(4)
    >>> ms = mutations({"a.wav": wav, "b.png": b"\\x89PNG" + bytes(40)}, n=50, seed=1)
    >>> len(ms), ms == mutations({"a.wav": wav, "b.png": b"\\x89PNG" + bytes(40)}, n=50, seed=1)
    (50, True)
    >>> sorted({m.op.split(":")[0].split("@")[0] for m in ms})[:4]
    ['delete', 'dup', 'empty', 'flip']
"""

from __future__ import annotations

import hashlib
import random
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from labeling.ingest.media import AUDIO_EXTS, IMAGE_EXTS, VIDEO_EXTS, media_kind


def _kind(suffix: str) -> str | None:
    return media_kind("f" + suffix)


U32 = (0, 1, 0x7FFFFFFF, 0xFFFFFFFF)
U16 = (0, 1, 255, 0xFFFF)


@dataclass(frozen=True)
class Mutation:
    """One hostile file: which seed it came from, what was done, its bytes and extension."""

    source: str  # seed name
    op: str  # e.g. "flip:3@17", "truncate@100", "wav.format_tag=0xe601", "swap->.wav"
    suffix: str  # extension it is written with, e.g. ".wav"
    data: bytes

    def filename(self, index: int) -> str:
        stem = Path(self.source).stem
        return f"m{index:05d}_{stem}{self.suffix}"


# --- header-field mutations, per format --------------------------------------------------------


def _put(data: bytes, offset: int, fmt: str, value: int) -> bytes | None:
    """`data` with struct `fmt` packed at `offset`; None if it does not fit."""
    size = struct.calcsize(fmt)
    if offset < 0 or offset + size > len(data):
        return None
    return data[:offset] + struct.pack(fmt, value) + data[offset + size:]


def _riff_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(id, header offset, size) of each top-level RIFF chunk."""
    pos = 12
    while pos + 8 <= len(data):
        cid, size = struct.unpack_from("<4sI", data, pos)
        yield cid, pos, size
        pos += 8 + size + (size & 1)


def _wav(data: bytes) -> Iterator[tuple[str, bytes | None]]:
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return
    yield from ((f"riff.size={v:#x}", _put(data, 4, "<I", v)) for v in U32)
    for cid, pos, _ in _riff_chunks(data):
        o = pos + 8
        if cid == b"fmt ":
            fields = [("format_tag", 0, "<H", (0, 0xE601, 3, 0x11, 0x55, 0xFFFE, 0xFFFF)),
                      ("channels", 2, "<H", (0, 3, 255, 0xFFFF)),
                      ("sample_rate", 4, "<I", (0, 1, 7, 384_000_000, 0x7FFFFFFF, 0xFFFFFFFF)),
                      ("byte_rate", 8, "<I", (0, 0xFFFFFFFF)),
                      ("block_align", 12, "<H", (0, 1, 0xFFFF)),
                      ("bits", 14, "<H", (0, 1, 7, 64, 0xFFFF))]
            for name, off, fmt, values in fields:
                yield from ((f"wav.{name}={v:#x}", _put(data, o + off, fmt, v)) for v in values)
            yield from ((f"wav.fmt_size={v:#x}", _put(data, pos + 4, "<I", v))
                        for v in (0, 2, 0xFFFFFFFF))
        elif cid == b"data":
            yield from ((f"wav.data_size={v:#x}", _put(data, pos + 4, "<I", v))
                        for v in (1, 3, 0x7FFFFFFF, 0xFFFFFFF0))


def _flac(data: bytes) -> Iterator[tuple[str, bytes | None]]:
    if data[:4] != b"fLaC" or len(data) < 42:
        return
    o = 8  # STREAMINFO body, after the metadata block header
    yield from ((f"flac.block_size={v:#x}", _put(data, o, ">H", v)) for v in (0, 1, 0xFFFF))
    yield from ((f"flac.max_block={v:#x}", _put(data, o + 2, ">H", v)) for v in (0, 0xFFFF))
    packed = int.from_bytes(data[o + 10:o + 18], "big")  # rate 20, channels 3, bps 5, total 36
    rate, rest = packed >> 44, packed & ((1 << 44) - 1)
    variants = {"sample_rate=0": rest, "sample_rate=max": (0xFFFFF << 44) | rest,
                "channels=8": (rate << 44) | (rest | (7 << 41)),
                "bps=32": (rate << 44) | (rest | (31 << 36)),
                "bps=1": (rate << 44) | (rest & ~(31 << 36)),
                "total=max": (packed | ((1 << 36) - 1)), "total=0": packed & ~((1 << 36) - 1)}
    for name, value in variants.items():
        yield f"flac.{name}", data[:o + 10] + value.to_bytes(8, "big") + data[o + 18:]
    yield "flac.block_len=max", data[:5] + b"\xff\xff\xff" + data[8:]


def _png(data: bytes) -> Iterator[tuple[str, bytes | None]]:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or len(data) < 33:
        return
    ihdr = data[16:29]
    changes = [("width", 0, ">I", v) for v in (0, 1, 9_000, 100_000, 0x7FFFFFFF, 0xFFFFFFFF)]
    changes += [("height", 4, ">I", v) for v in (0, 9_000, 100_000, 0x7FFFFFFF)]
    changes += [("bit_depth", 8, ">B", v) for v in (0, 3, 16, 255)]
    changes += [("color_type", 9, ">B", v) for v in (1, 3, 7, 255)]
    changes += [("interlace", 12, ">B", v) for v in (1, 2)]
    for name, off, fmt, value in changes:
        body = _put(ihdr, off, fmt, value)
        assert body is not None
        crc = struct.pack(">I", zlib.crc32(b"IHDR" + body))
        yield f"png.{name}={value:#x}", data[:16] + body + crc + data[33:]
    for side in (9_000, 20_000, 100_000):  # 81 Mpx, 400 Mpx, 10 Gpx in a few hundred bytes
        body = struct.pack(">II", side, side) + ihdr[8:]
        crc = struct.pack(">I", zlib.crc32(b"IHDR" + body))
        yield f"png.{side}x{side}", data[:16] + body + crc + data[33:]
    yield "png.bad_crc", data[:29] + bytes(4) + data[33:]


def _jpeg(data: bytes) -> Iterator[tuple[str, bytes | None]]:
    if data[:2] != b"\xff\xd8":
        return
    for marker in (b"\xff\xc0", b"\xff\xc1", b"\xff\xc2"):
        pos = data.find(marker)
        if pos < 0:
            continue
        o = pos + 4  # after the marker and the segment length
        yield from ((f"jpeg.precision={v}", _put(data, o, ">B", v)) for v in (0, 12, 255))
        yield from ((f"jpeg.height={v}", _put(data, o + 1, ">H", v)) for v in U16)
        yield from ((f"jpeg.width={v}", _put(data, o + 3, ">H", v)) for v in U16)
        yield from ((f"jpeg.components={v}", _put(data, o + 5, ">B", v)) for v in (0, 2, 255))
        yield from ((f"jpeg.sof_len={v}", _put(data, pos + 2, ">H", v)) for v in (0, 2, 0xFFFF))
    for marker in (b"\xff\xc4", b"\xff\xdb", b"\xff\xda"):  # DHT, DQT, SOS lengths
        pos = data.find(marker)
        if pos >= 0:
            yield from ((f"jpeg.{marker[1]:x}_len={v}", _put(data, pos + 2, ">H", v))
                        for v in (0, 3, 0xFFFF))


_BOXES = (b"ftyp", b"moov", b"mvhd", b"trak", b"tkhd", b"mdhd", b"hdlr", b"stsd", b"stts",
          b"stsc", b"stsz", b"stco", b"co64", b"ctts", b"stss", b"elst", b"esds", b"avcC",
          b"mp4a", b"avc1", b"mdat", b"EBML", b"\x1aE\xdf\xa3")


def _bmff(data: bytes) -> Iterator[tuple[str, bytes | None]]:
    """ISO-BMFF (mp4/m4a/mov) boxes: sizes, counts and the fields after each box name."""
    if data[4:8] != b"ftyp":
        return
    for box in _BOXES:
        pos = data.find(box)
        if pos < 4:
            continue
        name = box.decode("latin-1")
        yield from ((f"{name}.size={v:#x}", _put(data, pos - 4, ">I", v))
                    for v in (0, 1, 7, 0x7FFFFFFF, 0xFFFFFFFF))
        for off in (4, 8, 12, 16, 20, 24, 28):  # version/flags, counts, timescales, dims
            yield from ((f"{name}+{off}={v:#x}", _put(data, pos + 4 + off, ">I", v))
                        for v in (0, 0xFFFFFFFF))
    pos = data.find(b"avc1")
    if pos >= 0:  # visual sample entry: width, height
        for off in (28, 30):
            yield from ((f"avc1.dim{off}={v}", _put(data, pos + 4 + off, ">H", v)) for v in U16)
    pos = data.find(b"mp4a")
    if pos >= 0:  # audio sample entry: channels, sample size, sample rate (16.16)
        yield from ((f"mp4a.channels={v}", _put(data, pos + 20, ">H", v)) for v in (0, 255))
        yield from ((f"mp4a.bits={v}", _put(data, pos + 22, ">H", v)) for v in (0, 64))
        yield from ((f"mp4a.rate={v:#x}", _put(data, pos + 28, ">I", v)) for v in (0, 0xFFFFFFFF))


def _mp3(data: bytes) -> Iterator[tuple[str, bytes | None]]:
    if data[:3] == b"ID3":
        yield "id3.size=max", data[:6] + b"\x7f\x7f\x7f\x7f" + data[10:]
        yield "id3.size=0", data[:6] + bytes(4) + data[10:]
        yield "id3.version=255", data[:3] + b"\xff" + data[4:]
    for i in range(min(len(data) - 4, 1 << 16)):
        if data[i] == 0xFF and data[i + 1] & 0xE0 == 0xE0:
            head = data[i + 2]
            yield "mp3.bitrate=bad", data[:i + 2] + bytes([head | 0xF0]) + data[i + 3:]
            yield "mp3.rate=reserved", data[:i + 2] + bytes([head | 0x0C]) + data[i + 3:]
            yield "mp3.layer=reserved", data[:i + 1] + bytes([data[i + 1] & 0xF9]) + data[i + 2:]
            break
    for tag in (b"Xing", b"Info", b"LAME"):
        pos = data.find(tag)
        if pos >= 0:
            yield from ((f"{tag.decode()}+{off}={v:#x}", _put(data, pos + off, ">I", v))
                        for off in (4, 8, 12) for v in (0, 0xFFFFFFFF))


def _ogg(data: bytes) -> Iterator[tuple[str, bytes | None]]:
    """Ogg codec id headers (page CRCs are left wrong: demuxers differ in checking them)."""
    if data[:4] != b"OggS":
        return
    for tag, chan, rate in ((b"\x01vorbis", 11, 12), (b"OpusHead", 9, 12), (b"\x7fFLAC", 0, 0)):
        pos = data.find(tag)
        if pos < 0 or not chan:
            continue
        yield from ((f"ogg.channels={v}", _put(data, pos + chan, "<B", v)) for v in (0, 255))
        yield from ((f"ogg.rate={v:#x}", _put(data, pos + rate, "<I", v)) for v in (0, 0xFFFFFFFF))
    yield "ogg.granule=max", _put(data, 6, "<Q", 0xFFFFFFFFFFFFFFFF)


_HEADERS = (_wav, _flac, _png, _jpeg, _bmff, _mp3, _ogg)


def header_mutations(data: bytes) -> list[tuple[str, bytes]]:
    """Every header-field mutation that applies to `data` (by its magic bytes)."""
    out: list[tuple[str, bytes]] = []
    for mutate in _HEADERS:
        out.extend((op, d) for op, d in mutate(data) if d is not None and d != data)
    return out


# --- random mutations ------------------------------------------------------------------------


def _position(rng: random.Random, size: int) -> int:
    """A byte offset, half the time inside the first 512 bytes (where headers are)."""
    return rng.randrange(min(size, 512) if rng.random() < 0.5 else size)


def _random_mutation(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    size = len(data)
    kind = rng.choice(("flip", "flip", "flip", "truncate", "truncate", "delete", "dup", "zero"))
    if kind == "flip":
        buf = bytearray(data)
        count = rng.choice((1, 1, 2, 4, 16, 64))
        for _ in range(count):
            buf[_position(rng, size)] ^= rng.randrange(1, 256)
        return f"flip:{count}", bytes(buf)
    if kind == "truncate":
        cut = rng.choice((rng.randrange(1, size), _position(rng, size) or 1, size - 1))
        return f"truncate@{cut}", data[:cut]
    start = _position(rng, size)
    length = rng.randrange(1, max(2, min(size - start, 4096)))
    if kind == "delete":
        return f"delete@{start}+{length}", data[:start] + data[start + length:]
    if kind == "dup":
        return f"dup@{start}+{length}", data[:start + length] + data[start:]
    return f"zero@{start}+{length}", data[:start] + bytes(length) + data[start + length:]


def mutations(seeds: Mapping[str, bytes], n: int, seed: int = 0) -> list[Mutation]:
    """`n` distinct hostile files made from `seeds` (file name -> bytes), the same for one `seed`.

    Deterministic cases come first (a zero-length file per extension, every
    header-field mutation of every seed, every cross-kind container swap, a
    random-bytes file per extension), then random byte flips, truncations,
    deletions, duplications and zeroed spans of random seeds fill up to `n`;
    a large `n` keeps all deterministic cases, a small one samples them. No
    two mutations have the same bytes and extension, and no mutation has a
    seed's bytes under the seed's media kind (so dedupe never makes a good
    file a "duplicate"; two mutations may still duplicate each other).
    """
    rng = random.Random(seed)
    names = sorted(seeds)
    suffixes = sorted({Path(name).suffix.lower() for name in names}
                      | AUDIO_EXTS | IMAGE_EXTS | VIDEO_EXTS)
    fixed: list[Mutation] = [Mutation("empty", "empty", s, b"") for s in suffixes]
    fixed += [Mutation("random", f"random:{s}", s, rng.randbytes(rng.randrange(1, 8192)))
              for s in suffixes]
    for name in names:
        suffix = Path(name).suffix.lower()
        fixed += [Mutation(name, op, suffix, d) for op, d in header_mutations(seeds[name])]
        fixed += [Mutation(name, f"swap->{s}", s, seeds[name]) for s in suffixes
                  if _kind(s) != _kind(suffix)]
    good = {(hashlib.sha256(seeds[name]).digest(), media_kind(name)) for name in names}
    seen: set[tuple[bytes, str]] = set()
    out: list[Mutation] = []

    def add(m: Mutation) -> None:
        digest = hashlib.sha256(m.data).digest()
        if ((digest, _kind(m.suffix)) not in good and (digest, m.suffix) not in seen
                and len(out) < n):
            seen.add((digest, m.suffix))
            out.append(m)

    if len(fixed) > n // 2:  # leave room for random cases
        fixed = rng.sample(fixed, n // 2)
    for m in fixed:
        add(m)
    attempts = 0
    while len(out) < n and attempts < 20 * n:
        attempts += 1
        name = rng.choice(names)
        if not seeds[name]:
            continue
        op, data = _random_mutation(rng, seeds[name])
        add(Mutation(name, op, Path(name).suffix.lower(), data))
    return out


def write_mutations(items: list[Mutation], folder: Path) -> dict[Path, Mutation]:
    """Write each mutation under `folder` (named after its index and seed); path -> mutation."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for i, m in enumerate(items):
        path = folder / m.filename(i)
        path.write_bytes(m.data)
        written[path] = m
    return written
