"""Long recordings as clips: speech segments found by a voice-activity detector.

Whisper takes at most 30 s, so a recording longer than the clip limit cannot
be one clip. Two ways in:

* **given segments** (a manifest's `offset`/`duration`, Lhotse supervisions,
  Kaldi `segments`) are clips as listed (:mod:`labeling.ingest.rows`);
* **detected segments** (`rlfoundry ingest PATH --batch B --segment vad`): the
  region detector (silero-vad) finds the speech, and `speech_spans` turns its
  regions into clip spans: regions closer than `max_gap_s` are joined while
  the joined span stays within the limit, a region longer than the limit is
  cut into equal parts, each span is padded by `pad_s` (never past the middle
  of the silence to its neighbour), a span shorter than `min_s` is widened to
  it, and one that cannot be (crowded between its neighbours) is dropped.
  Each span becomes a clip `rec.wav#t=START,END` (:mod:`labeling.ingest.spans`)
  with no transcript: a recording's transcript cannot be split over segments
  without an alignment, so the segments are unlabeled (N-best labeling or a
  person gives them text later).

Where a whole recording must be transcribed (evaluation against the transcript
of the whole file), `chunk_spans` tiles it instead: contiguous pieces within
the window, each cut in a pause between speech regions where there is one
inside the window, else at the window's end.

Times are seconds; spans are rounded inwards to milliseconds, so a span
written as a media fragment is never longer than computed.

Example:
    >>> speech_spans([(2.0, 5.0), (5.5, 9.0), (20.0, 20.3)], duration_s=60.0)
    [(1.8, 9.2), (19.65, 20.65)]
    >>> chunk_spans([(1.0, 20.0), (22.0, 40.0), (41.0, 50.0)], duration_s=52.0)
    [(0.0, 21.0), (21.0, 51.0), (51.0, 52.0)]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from labeling.ingest.audio import audio_seconds, load_audio
from labeling.ingest.manifest import SourceEntry
from labeling.ingest.media import MediaError

Span = tuple[float, float]
SAMPLE_RATE = 16_000


def speech_spans(regions: Iterable[Span], duration_s: float, *, max_s: float = 30.0,
                 min_s: float = 1.0, max_gap_s: float = 3.0, pad_s: float = 0.2) -> list[Span]:
    """Clip spans of a recording from its speech regions (module docstring), in time order,
    each within [min_s, max_s] and inside [0, duration_s].

    >>> speech_spans([(0.0, 70.0)], duration_s=70.0)  # one long region: equal parts
    [(0.0, 23.333), (23.334, 46.666), (46.667, 70.0)]
    >>> speech_spans([(0.2, 0.5), (40.0, 40.4)], duration_s=40.5)  # short ones widened
    [(0.0, 1.0), (39.5, 40.5)]
    """
    limit = max_s - 2 * pad_s
    if limit <= 0 or min_s > max_s:
        raise ValueError(f"need 2 * pad_s < max_s and min_s <= max_s (pad_s={pad_s}, "
                         f"min_s={min_s}, max_s={max_s})")
    joined: list[list[float]] = []
    for start, end in _parts(regions, duration_s, limit):
        if joined and start - joined[-1][1] <= max_gap_s and end - joined[-1][0] <= limit:
            joined[-1][1] = max(joined[-1][1], end)
        else:
            joined.append([start, end])
    spans = []
    for i, (start, end) in enumerate(joined):
        lo = 0.0 if i == 0 else (joined[i - 1][1] + start) / 2
        hi = duration_s if i == len(joined) - 1 else (end + joined[i + 1][0]) / 2
        span = _widen(max(lo, start - pad_s), min(hi, end + pad_s), min_s, lo, hi)
        if span is not None:
            spans.append(span)
    return spans


def _parts(regions: Iterable[Span], duration_s: float, limit: float) -> Iterator[Span]:
    """Regions in time order, clipped to the recording and to each other, those longer than
    `limit` cut into equal parts."""
    last = 0.0
    for start, end in sorted(regions):
        start, end = max(start, last, 0.0), min(end, duration_s)
        if end <= start:
            continue
        last = end
        count = math.ceil((end - start) / limit)
        step = (end - start) / count
        yield from ((start + k * step, end if k == count - 1 else start + (k + 1) * step)
                    for k in range(count))


def _widen(start: float, end: float, min_s: float, lo: float, hi: float) -> Span | None:
    """[start, end) rounded inwards to milliseconds and widened to `min_s` within [lo, hi]
    (centred where room allows); None when it cannot reach `min_s`."""
    start_ms, end_ms = math.ceil(round(start * 1000, 6)), math.floor(round(end * 1000, 6))
    lo_ms, hi_ms = math.ceil(round(lo * 1000, 6)), math.floor(round(hi * 1000, 6))
    need = math.ceil(round(min_s * 1000, 6)) - (end_ms - start_ms)
    if need > 0:
        start_ms = max(lo_ms, start_ms - need // 2)
        end_ms = min(hi_ms, start_ms + math.ceil(round(min_s * 1000, 6)))
        start_ms = max(lo_ms, end_ms - math.ceil(round(min_s * 1000, 6)))
    if (end_ms - start_ms) / 1000 < min_s:
        return None
    return start_ms / 1000, end_ms / 1000


def chunk_spans(regions: Iterable[Span], duration_s: float, *, max_s: float = 30.0,
                min_s: float = 1.0) -> list[Span]:
    """Contiguous pieces tiling [0, duration_s], each at most `max_s`, cut in pauses between
    speech `regions` where one falls inside the window (module docstring).

    >>> chunk_spans([], duration_s=65.0)  # no speech found: fixed windows
    [(0.0, 30.0), (30.0, 60.0), (60.0, 65.0)]
    >>> chunk_spans([(0.0, 10.0)], duration_s=8.0)
    [(0.0, 8.0)]
    """
    gaps, last = [], 0.0
    for start, end in sorted(regions):
        if start > last:
            gaps.append((last, start))
        last = max(last, end)
    if last < duration_s:
        gaps.append((last, duration_s))
    spans, pos = [], 0.0
    while duration_s - pos > max_s:
        limit = pos + max_s
        cuts = [limit if b >= limit else (max(a, pos) + b) / 2 for a, b in gaps if a < limit]
        cut = max([c for c in cuts if c > pos + min_s], default=limit)
        cut = min(math.floor(round(cut * 1000, 6)) / 1000, limit)
        while cut - pos > max_s:  # float rounding of the sum
            cut = math.nextafter(cut, pos)
        spans.append((pos, cut))
        pos = cut
    spans.append((pos, float(duration_s)))
    return spans


@dataclass
class Segmenter:
    """Cuts audio entries whose recording is longer than `max_s` into speech segments.

    `detector` is a region detector (`models.roles.RegionDetector`, e.g.
    `models.regions.SileroVAD`): its regions of the whole recording, decoded at
    16 kHz, become spans (`speech_spans`). Entries that list a segment, entries
    of other kinds and recordings within the limit pass unchanged. A long
    recording that does not decode, or holds no speech, is handed to `refuse`
    with a MediaError (the caller quarantines it).

    Example:
        >>> from types import SimpleNamespace
        >>> seg = Segmenter(SimpleNamespace(name="fake", regions=lambda a, sample_rate: [[]]))
        >>> seg.name
        'fake'
    """

    detector: Any
    max_s: float = 30.0
    min_s: float = 1.0
    max_gap_s: float = 3.0
    pad_s: float = 0.2
    threads: int = 1  # torch threads for the detector (silero is tiny; see labeling.audio_qa)

    @property
    def name(self) -> str:
        return str(getattr(self.detector, "name", type(self.detector).__name__))

    def expand(self, entries: Iterable[SourceEntry],
               refuse: Callable[[SourceEntry, MediaError], None]) -> Iterator[SourceEntry]:
        """The entries, each long whole recording replaced by its speech segments."""
        from labeling.ingest.rows import audio_clip

        for entry in entries:
            if entry.kind != "audio" or audio_clip(entry) != str(entry.path):
                yield entry  # another kind, or a segment the source lists: as it is
                continue
            seconds = audio_seconds(entry.path)
            if seconds is None or seconds <= self.max_s:
                yield entry  # within the limit (or undeclared: the probe decides)
                continue
            try:
                yield from self.segments(entry)
            except MediaError as err:
                refuse(entry, err)

    def segments(self, entry: SourceEntry) -> list[SourceEntry]:
        """The entry's speech segments as entries (offset/duration, no transcript);
        MediaError when it does not decode or holds no speech."""
        audio, info = load_audio(entry.path, SAMPLE_RATE)
        regions = self.speech_regions(audio)
        spans = speech_spans(regions, len(audio) / SAMPLE_RATE, max_s=self.max_s,
                             min_s=self.min_s, max_gap_s=self.max_gap_s, pad_s=self.pad_s)
        if not spans:
            raise MediaError("no_speech", entry.path, f"{self.name} found no speech of at least "
                             f"{self.min_s:g} s in this {info.duration_s:.1f} s recording, "
                             f"which is over the {self.max_s:g} s clip limit")
        note = f"segment of a recording over {self.max_s:g} s, cut at pauses by {self.name}"
        if entry.text:
            note += ("; the recording's transcript was not split over its segments (they "
                     "are unlabeled)")
        return [replace(entry, text=None, offset=start, duration=end - start, note=note)
                for start, end in spans]

    def speech_regions(self, audio) -> list[Span]:
        """The detector's speech regions of 16 kHz `audio`, in seconds."""
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            (found,) = self.detector.regions([audio], sample_rate=SAMPLE_RATE)
        finally:
            torch.set_num_threads(previous)
        return [(r.start_s, r.end_s) for r in found]


class LongFormSplitter:
    """`split(audio)` for `training.eval.evaluate.evaluate_clips`: the pieces (`chunk_spans`)
    of 16 kHz audio longer than the window, cut at pauses the region detector finds.

    The detector is loaded on first use (`load_detector()`), so evaluating short clips
    costs nothing; one that cannot be loaded leaves fixed windows (`detector_name` says
    which). `recordings` and `pieces` count what was split, for the report.

    Example:
        >>> import numpy as np
        >>> split = LongFormSplitter(None)
        >>> split(np.zeros(16_000 * 45, dtype=np.float32)), split.detector_name
        ([(0.0, 30.0), (30.0, 45.0)], 'fixed 30 s windows')
    """

    def __init__(self, load_detector: Callable[[], Any] | None, max_s: float = 30.0):
        self._load = load_detector
        self._segmenter: Segmenter | None = None
        self.max_s = max_s
        self.detector_name = f"fixed {max_s:g} s windows"
        self.recordings = self.pieces = 0

    def __call__(self, audio) -> list[Span]:
        if self._load is not None:
            load, self._load = self._load, None
            try:
                self._segmenter = Segmenter(load(), max_s=self.max_s)
                self.detector_name = self._segmenter.name
            except (ImportError, OSError, RuntimeError, ValueError) as exc:
                self.detector_name += f" ({str(exc).splitlines()[0] if str(exc) else exc!r})"
        regions = self._segmenter.speech_regions(audio) if self._segmenter is not None else []
        spans = chunk_spans(regions, len(audio) / SAMPLE_RATE, max_s=self.max_s)
        self.recordings += 1
        self.pieces += len(spans)
        return spans
