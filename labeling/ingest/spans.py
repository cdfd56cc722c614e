"""Segments of a recording as clips: the file's path plus a W3C media fragment `#t=START,END`.

A clip that is part of a recording (a NeMo line with `offset`/`duration`, a
Lhotse supervision, a Kaldi segment) keeps its media where it is: its
`source_path` is the file's path with a temporal media fragment in seconds
(W3C Media Fragments, npt), e.g. `/data/rec.wav#t=3.5,7.25`; `#t=3.5` runs to
the end of the file. Why a fragment rather than extra columns:

* every consumer that decodes through `labeling.ingest.audio.load_audio` (or
  `load_audio_16k`) gets just the span, with no change of its own;
* a browser (and so Label Studio's audio player) plays just the span of such a URL;
* one string still names the clip everywhere (quarantine, reports, exports).

A segment's identity (`clip_id`) is `span_digest(sha256 of the file, path)`:
two segments of one file are two clips, the same segment listed twice is a
duplicate, and a whole file keeps the plain sha256 of its bytes. Times are
written with millisecond precision.

A path that exists as a file *with* its `#t=...` suffix is a file of that
name, not a fragment.

Example:
    >>> with_span("/d/rec.wav", 3.5, 7.25)
    '/d/rec.wav#t=3.5,7.25'
    >>> split_span("/d/rec.wav#t=3.5,7.25"), split_span("/d/rec.wav#t=2")
    (('/d/rec.wav', 3.5, 7.25), ('/d/rec.wav', 2.0, None))
    >>> split_span("/d/rec.wav")
    ('/d/rec.wav', None, None)
    >>> span_digest("ab" * 32, "/d/rec.wav#t=3.5,7.25") != span_digest("ab" * 32, "/d/r.wav#t=0,1")
    True
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

import numpy as np

from labeling.ingest.media import MediaError, StrPath

SPAN_SLACK_S = 0.1  # a segment may end this far past the end of its recording (rounded times)
_FRAGMENT = re.compile(r"#t=(?:npt:)?(\d+(?:\.\d*)?)?(?:,(\d+(?:\.\d*)?))?$")


def seconds_text(value: float) -> str:
    """Seconds as a fragment writes them: at most 3 decimals, no trailing zeros.

    >>> seconds_text(3.0), seconds_text(0.25), seconds_text(12.34567), seconds_text(0)
    ('3', '0.25', '12.346', '0')
    """
    text = f"{float(value):.3f}".rstrip("0").rstrip(".")
    return text or "0"


def with_span(path: StrPath, start: float, end: float | None) -> str:
    """`path` with the fragment of [start, end) seconds (`end` None: to the end of the file)."""
    tail = f"{seconds_text(start)},{seconds_text(end)}" if end is not None \
        else seconds_text(start)
    return f"{os.fspath(path)}#t={tail}"


def split_span(path: StrPath) -> tuple[str, float | None, float | None]:
    """(file path, start, end) of a clip's path; (path, None, None) when it names a whole file.

    `#t=,5` starts at 0. A path that exists as written is a file, whatever its name.
    """
    text = os.fspath(path)
    match = _FRAGMENT.search(text)
    if match is None or match.group(1) is None and match.group(2) is None \
            or os.path.exists(text):
        return text, None, None
    start = float(match.group(1)) if match.group(1) else 0.0
    end = float(match.group(2)) if match.group(2) else None
    return text[: match.start()], start, end


def span_digest(file_digest: str, path: StrPath) -> str:
    """The id of the clip `path` names, given the sha256 of its file's bytes: that sha256 for
    a whole file, else sha256 of it joined with the fragment."""
    _, start, end = split_span(path)
    if start is None:
        return file_digest
    fragment = with_span("", start, end)
    return hashlib.sha256(f"{file_digest}{fragment}".encode()).hexdigest()


@dataclass(frozen=True)
class Window:
    """The part of a file a decoder reads: [start, end) seconds; `end` None runs to the end.

    >>> Window(1.5, 2.0).frames(16000)
    (24000, 32000)
    >>> try:
    ...     Window(4.0, 9.0).check("r.wav#t=4,9", declared_s=6.0, max_seconds=30)
    ... except MediaError as err:
    ...     print(err.reason, "|", err.detail)
    bad_segment | the segment ends at 9 s, after the end of the 6.000 s recording
    """

    start: float
    end: float | None

    def frames(self, sr: int) -> tuple[int, int | None]:
        """The first frame and the frame after the last, at `sr` (None: to the end)."""
        return round(self.start * sr), None if self.end is None else round(self.end * sr)

    def check(self, path: StrPath, declared_s: float | None, max_seconds: float | None) -> None:
        """Refuse, before decoding, a span that is empty, too long or outside the recording
        (as long as its header declares, when it does)."""
        start = seconds_text(self.start)
        end = None if self.end is None else seconds_text(self.end)
        if self.end is not None and self.end <= self.start:
            raise MediaError("bad_segment", path, f"the segment ends ({end} s) before it "
                             f"starts ({start} s)")
        if max_seconds is not None and self.end is not None \
                and self.end - self.start > max_seconds:
            raise MediaError("too_long", path, f"the segment is {self.end - self.start:.2f} s, "
                             f"over the {max_seconds:g} s limit")
        if declared_s is None:
            return
        if self.start >= declared_s:
            raise MediaError("bad_segment", path, f"the segment starts at {start} s, at or "
                             f"after the end of the {declared_s:.3f} s recording")
        if self.end is not None and self.end - declared_s > SPAN_SLACK_S:
            raise MediaError("bad_segment", path, f"the segment ends at {end} s, after the "
                             f"end of the {declared_s:.3f} s recording")

    def check_end(self, path: StrPath, reached_s: float, truncated: bool) -> None:
        """After decoding stopped `reached_s` seconds into the file: the span's end must have
        been reached, give or take SPAN_SLACK_S (`truncated`: the file holds less than its
        header declares, which is then the reason)."""
        if self.end is None or self.end - reached_s <= SPAN_SLACK_S:
            return
        if truncated:
            raise MediaError("truncated", path, f"decoding stopped at {reached_s:.3f} s, "
                             "before the length its header declares")
        raise MediaError("bad_segment", path, f"the segment ends at {seconds_text(self.end)} "
                         f"s, after the end of the recording ({reached_s:.3f} s)")


def window_frames(block: np.ndarray, pos: int, first: int, last: int | None) -> np.ndarray:
    """The frames (last axis) of `block`, which starts at frame `pos` of the file, inside
    [first, last).

    >>> window_frames(np.arange(10), 100, 103, 106)
    array([3, 4, 5])
    """
    n = block.shape[-1]
    lo = min(max(first - pos, 0), n)
    hi = n if last is None else min(max(last - pos, lo), n)
    return block[..., lo:hi]
