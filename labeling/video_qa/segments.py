"""A video as standard frames, cut in two: the first part is the model's input, the rest the truth.

Policy:

* **time** is exact: a decoded frame's start is its ``pts × time_base`` (a
  :class:`~fractions.Fraction`), counted from the first frame; the video lasts from the first
  frame's start to the last frame's end (its own duration, else the median gap between
  frames); the cut is at ``cut × duration`` (``cut`` read as the decimal it is written as:
  0.7 is 7/10, not the float just above it), so no rounding moves a frame across it;
* **frame rate**: with ``fps`` set, frames are sampled on the grid ``0, 1/fps, 2/fps, ...``
  below the duration, each grid point showing the source frame on screen at that time (the
  last one starting at or before it; a source slower than ``fps`` repeats frames); with
  ``fps`` None every source frame is kept at its own time;
* **size**: with ``short_side`` set, each frame is scaled (aspect kept, bicubic) so its
  shorter side has that many pixels; None keeps the source size;
* **the cut**: a frame whose time is before the cut is **context** (what the model sees), one
  at or after it is **truth** (what the question is about). Exact to a frame: the first truth
  frame is the first frame whose time is at or after the cut;
* too little on either side (fewer than ``min_context`` / ``min_truth`` frames) is an error
  with the reason ``too_short``, for the quarantine, as are decoding failures (the
  :class:`~labeling.ingest.media.MediaError` reasons).

Frames are decoded one at a time and written as they come (memory stays flat).

Example (a 2.5 s clip at 12 fps, sampled at 2 fps: grid 0, 0.5, 1, 1.5, 2 s; the cut is at
1.75 s):
    >>> import tempfile
    >>> from pathlib import Path
    >>> sample = Path(__file__).parents[2] / "data/sample/videos/bouncing_circle.mp4"
    >>> seg = cut_video(sample, tempfile.mkdtemp(), SegmentSettings(fps=2.0, short_side=64))
    >>> [float(t) for t in seg.context_times], [float(t) for t in seg.truth_times]
    ([0.0, 0.5, 1.0, 1.5], [2.0])
    >>> seg.context_source_frames, seg.truth_source_frames, seg.size, float(seg.cut_s)
    ([0, 6, 12, 18], [24], (85, 64), 1.75)
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image

from labeling.ingest.media import MediaError, StrPath, check_file, open_av, undecodable


@dataclass(frozen=True)
class SegmentSettings:
    """How a video becomes frames and where it is cut.

    Example:
        >>> SegmentSettings().cut, SegmentSettings(cut=1.0)
        Traceback (most recent call last):
        ...
        ValueError: cut must be strictly between 0 and 1, got 1.0
    """

    fps: float | None = 2.0
    """Frames per second kept (a grid from the first frame); None keeps every source frame."""
    short_side: int | None = 224
    """Pixels of each frame's shorter side (aspect kept); None keeps the source size."""
    cut: float = 0.7
    """Where the video is cut, as a share of its duration."""
    min_context: int = 2
    """The fewest frames before the cut (fewer: ``too_short``)."""
    min_truth: int = 1
    """The fewest frames at or after the cut (fewer: ``too_short``)."""
    image_format: str = "jpeg"
    """How frames are written: ``jpeg`` or ``png`` (lossless)."""
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        if not 0 < self.cut < 1:
            raise ValueError(f"cut must be strictly between 0 and 1, got {self.cut}")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be positive (or None: the source's), got {self.fps}")
        if self.short_side is not None and self.short_side < 1:
            raise ValueError(f"short_side must be at least 1 (or None), got {self.short_side}")
        if self.image_format not in ("jpeg", "png"):
            raise ValueError(f"image_format must be 'jpeg' or 'png', got {self.image_format!r}")

    @property
    def cut_fraction(self) -> Fraction:
        """``cut`` as the exact decimal it is written as (0.7 -> 7/10)."""
        return Fraction(repr(float(self.cut)))


@dataclass(frozen=True)
class Segment:
    """A video's frames, split at the cut: file paths, times (s) and source frame indices."""

    source_path: str
    source_fps: float
    source_frames: int
    duration_s: Fraction
    cut_s: Fraction
    source_cut_frame: int
    """The first source frame starting at or after the cut."""
    size: tuple[int, int]
    """(width, height) of the frames written."""
    context_paths: list[str] = field(default_factory=list)
    truth_paths: list[str] = field(default_factory=list)
    context_times: list[Fraction] = field(default_factory=list)
    truth_times: list[Fraction] = field(default_factory=list)
    context_source_frames: list[int] = field(default_factory=list)
    truth_source_frames: list[int] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The ``video_segments`` columns (times as seconds)."""
        return {
            "source_path": self.source_path, "source_fps": self.source_fps,
            "source_frames": self.source_frames, "duration_s": float(self.duration_s),
            "cut_s": float(self.cut_s), "source_cut_frame": self.source_cut_frame,
            "width": self.size[0], "height": self.size[1],
            "context_frames": len(self.context_paths), "truth_frames": len(self.truth_paths),
            "context_paths": self.context_paths, "truth_paths": self.truth_paths,
            "context_times": [float(t) for t in self.context_times],
            "truth_times": [float(t) for t in self.truth_times],
            "context_source_frames": self.context_source_frames,
            "truth_source_frames": self.truth_source_frames,
        }


def scaled_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) with the shorter side ``short_side`` and the aspect kept (rounded).

    >>> scaled_size(160, 120, 224), scaled_size(120, 160, 224), scaled_size(64, 48, None)
    ((299, 224), (224, 299), (64, 48))
    """
    if short_side is None:
        return width, height
    scale = Fraction(short_side, min(width, height))
    return (short_side if width <= height else round(width * scale),
            short_side if height < width else round(height * scale))


def grid_times(duration: Fraction, fps: Fraction) -> list[Fraction]:
    """``k / fps`` for every k with ``k / fps`` before ``duration``.

    >>> [str(t) for t in grid_times(Fraction(5, 2), Fraction(2))]
    ['0', '1/2', '1', '3/2', '2']
    """
    count = math.ceil(duration * fps)  # k / fps < duration  <=>  k < duration × fps
    return [Fraction(k) / fps for k in range(count)]


@dataclass
class _Source:
    """One decoded source frame: its start (from the first frame) and its image."""

    index: int
    start: Fraction
    duration: Fraction | None
    image: Any


def _decode(container: av.container.InputContainer) -> Iterator[_Source]:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    first: Fraction | None = None
    for index, frame in enumerate(container.decode(stream)):
        if frame.pts is not None and frame.time_base is not None:
            start = Fraction(frame.pts) * Fraction(frame.time_base)
        else:
            rate = stream.average_rate or stream.guessed_rate
            if not rate:
                raise MediaError("undecodable", container.name,
                                 f"frame {index} has no timestamp and the stream no frame rate")
            start = Fraction(index) / Fraction(rate)
        first = start if first is None else first
        duration = (Fraction(frame.duration) * Fraction(frame.time_base)
                    if frame.duration and frame.time_base else None)
        yield _Source(index, start - first, duration, frame.to_image())


def cut_video(path: StrPath, out_dir: StrPath, settings: SegmentSettings = SegmentSettings()
              ) -> Segment:
    """Decode ``path``, write its standard frames into ``out_dir`` (replaced whole, atomically:
    a temporary folder renamed over it) and split them at the cut.

    Raises :class:`~labeling.ingest.media.MediaError` (``too_short``, or a decoding reason:
    anything a decoder raises becomes ``undecodable``); an ``OSError`` writing frames is not
    the video's fault and passes as it is.
    """
    check_file(path)
    out_dir = Path(out_dir)
    staging = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        try:
            segment = _cut(path, staging, out_dir, settings)
        except MediaError:
            raise
        except av.FFmpegError as err:  # some of PyAV's errors are OSErrors too: check them first
            raise undecodable(path, err) from err
        except OSError:  # a frame that cannot be written here: not the video's fault
            raise
        except Exception as err:  # noqa: BLE001 - whatever a decoder raises on hostile bytes
            raise undecodable(path, err) from err
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return segment


def _cut(path: StrPath, staging: Path, out_dir: Path, settings: SegmentSettings) -> Segment:
    container = open_av(path)
    with container:
        if not container.streams.video:
            raise MediaError("no_video_stream", path, "no video stream in the container")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = Fraction(repr(float(settings.fps))) if settings.fps is not None else None
        suffix = "jpg" if settings.image_format == "jpeg" else "png"
        written: list[tuple[Fraction, int, str]] = []  # (time, source frame, file name)
        starts: list[Fraction] = []
        last: _Source | None = None
        size: tuple[int, int] | None = None

        def write(source: _Source, time: Fraction) -> None:
            nonlocal size
            if size is None:
                size = scaled_size(source.image.width, source.image.height, settings.short_side)
            name = f"frame_{len(written):05d}.{suffix}"
            image = source.image if source.image.size == size else source.image.resize(
                size, resample=Image.Resampling.BICUBIC)
            options = {"quality": settings.jpeg_quality} if suffix == "jpg" else {}
            image.save(staging / name, format=settings.image_format.upper(), **options)
            written.append((time, source.index, name))

        pending = 0  # index of the next grid time not yet written
        for source in _decode(container):
            starts.append(source.start)
            if fps is None:
                write(source, source.start)
            elif last is not None:
                while Fraction(pending) / fps < source.start:  # grid times before this frame
                    write(last, Fraction(pending) / fps)
                    pending += 1
            last = source
        if last is None:
            raise MediaError("truncated", path, "no video frame decoded")
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False) if b > a]
        period = last.duration or (statistics.median(gaps) if gaps else
                                   (1 / Fraction(rate) if rate else Fraction(0)))
        duration = last.start + period
        if fps is not None:
            for time in grid_times(duration, fps)[pending:]:
                write(last, time)
        cut = settings.cut_fraction * duration
    context = [w for w in written if w[0] < cut]
    truth = [w for w in written if w[0] >= cut]
    if len(context) < settings.min_context or len(truth) < settings.min_truth:
        raise MediaError("too_short", path, (
            f"{len(context)} frame(s) before the cut at {float(cut):.3f} s and {len(truth)} "
            f"after (at least {settings.min_context} and {settings.min_truth} needed): "
            f"{float(duration):.3f} s at {settings.fps or 'source'} fps"))
    return Segment(
        source_path=str(path), source_fps=float(rate) if rate else 0.0,
        source_frames=len(starts), duration_s=duration, cut_s=cut,
        source_cut_frame=next(i for i, s in enumerate(starts) if s >= cut), size=size,
        context_paths=[str(out_dir / n) for _, _, n in context],
        truth_paths=[str(out_dir / n) for _, _, n in truth],
        context_times=[t for t, _, _ in context], truth_times=[t for t, _, _ in truth],
        context_source_frames=[i for _, i, _ in context],
        truth_source_frames=[i for _, i, _ in truth],
    )


def segment_rows(
    videos: Sequence[Mapping[str, Any]], out_dir: StrPath,
    settings: SegmentSettings = SegmentSettings(),
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One ``video_segments`` row per video that cuts (frames in ``out_dir/<video id>``), and
    a quarantine row per video that does not (its MediaError reason and detail).

    ``videos`` carry ``video_id`` and ``source_path``.
    """
    rows, failures = [], []
    _remove_stale(Path(out_dir), {v["video_id"][:16] for v in videos})
    for done, video in enumerate(videos, 1):
        frame_dir = Path(out_dir) / video["video_id"][:16]
        try:
            segment = cut_video(video["source_path"], frame_dir, settings)
        except MediaError as err:
            failures.append({"source_path": video["source_path"], "reason": err.reason,
                             "detail": err.detail})
        else:
            rows.append({"video_id": video["video_id"], **segment.row(),
                         "fps": settings.fps, "short_side": settings.short_side,
                         "cut": settings.cut, "frame_dir": str(frame_dir)})
        if progress is not None:
            progress(done, len(videos))
    return rows, failures


def _remove_stale(out_dir: Path, keep: set[str]) -> None:
    """Drop the frame folders a previous run left for videos the batch no longer holds."""
    if out_dir.is_dir():
        for child in out_dir.iterdir():
            if child.is_dir() and child.name.lstrip(".").split(".")[0] not in keep:
                shutil.rmtree(child, ignore_errors=True)
