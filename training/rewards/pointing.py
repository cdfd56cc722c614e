"""Rewards for pointing: does the model's point fall inside the target's mask?

The image pointing task's rows are an image, a prompt ("point at the red cup") and the
target's mask(s) as COCO RLE. A VLM answers with one point or several, in whichever format
it was trained on; :func:`parse_points` reads all of them:

* Molmo: ``<point x="61.5" y="40.6" alt="cup">cup</point>`` or
  ``<points x1="10" y1="20" x2="30" y2="40">cups</points>``, always 0–100 (percent of the image);
* JSON (Qwen2.5-VL and others): ``{"point": [x, y]}`` or ``[{"point_2d": [x, y], "label": ...}]``
  (also ``"points": [[x, y], ...]`` and ``{"x": .., "y": ..}``), in a code fence or not;
* plain pairs: ``(x, y)`` or ``[x, y]``.

JSON and pairs are on the ``scale`` the model uses: ``"pixels"`` of its resized input (mapped
back with the row's ``input_size``; Qwen2.5-VL), ``"norm1000"`` (0–1000; Qwen2-VL, Qwen3-VL) or
``"percent"`` (0–100). :func:`to_original` maps points to the original image's pixels, where
the masks are.

Two rewards, in TRL's signature (see :mod:`training.rewards.components`; completions are strings
or TRL's conversational message lists, columns arrive as keyword lists aligned with them):

* :func:`point_in_mask`: 1 when the point is inside the target's mask, with optional distance
  shaping ``exp(-d/sigma)`` for a near miss; with several points or targets, the F1 of a greedy
  one-to-one matching of points to masks (as Rex-Omni's point-in-mask reward), the shaped
  scores counting as partial matches. Unparseable output scores 0 and never raises;
* :func:`point_format`: 1 when the output parses in the expected format.

Settings (``scale``, ``sigma``, ``expected``) are keyword arguments bound with
``functools.partial``; a dataset column of the same name would reach the function as that
setting: do not have one. Masks are decoded with ``pycocotools`` (imported on first use), once
per call however many generations share them.

Example:
    >>> import numpy as np
    >>> cup = np.zeros((100, 200), dtype=bool)  # 200 px wide, 100 px high
    >>> cup[40:60, 50:150] = True
    >>> answers = ['<point x="50" y="50">cup</point>', "(10, 10)", "I cannot see a cup."]
    >>> point_in_mask(answers, masks=[encode_rle(cup)] * 3)
    [1.0, 0.0, 0.0]
    >>> point_format(answers)
    [1.0, 1.0, 0.0]
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from models.output import json_values
from models.vision.rle import decode_rle, encode_rle
from training.rewards.components import completion_texts, paired

__all__ = [
    "ParsedPoints",
    "decode_rle",
    "encode_rle",
    "parse_points",
    "point_f1",
    "point_format",
    "point_in_mask",
    "to_original",
]

Point = tuple[float, float]
Scale = Literal["pixels", "norm1000", "percent"]
PointFormat = Literal["molmo", "json", "tuple"]

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_TAG = re.compile(r"<(points?)\b([^<>]*)>", re.IGNORECASE)
_ATTR = re.compile(rf"\b([xy])(\d*)\s*=\s*[\"']?\s*({_NUM})", re.IGNORECASE)
_PAIR = re.compile(rf"[(\[]\s*({_NUM})\s*,\s*({_NUM})\s*[)\]]")
_POINT_KEYS = ("point_2d", "point", "points")
_MAX_JSON_DEPTH = 8
_DIVISOR = {"norm1000": 1000.0, "percent": 100.0}


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class ParsedPoints:
    """The points an answer names, as written, and the format they were read in.

    ``format`` is ``None`` (and ``points`` empty) when the answer names no point.

    >>> parse_points('<points x1="10" y1="20" x2="30.5" y2="40">cups</points>')
    ParsedPoints(format='molmo', points=((10.0, 20.0), (30.5, 40.0)))
    """

    format: PointFormat | None
    points: tuple[Point, ...] = ()


def parse_points(text: str) -> ParsedPoints:
    """The points in a model's answer: Molmo tags first, then JSON, then ``(x, y)`` pairs.

    Never raises: anything unreadable (no point, a truncated tag, non-finite numbers) is
    simply not a point. A bare list of pairs (``[[1, 2], [3, 4]]``) is read as pairs; JSON
    counts only with a point key.

    >>> parse_points('[{"point_2d": [120, 48], "label": "cup"}]')
    ParsedPoints(format='json', points=((120.0, 48.0),))
    >>> parse_points("The cup is at (120, 48).")
    ParsedPoints(format='tuple', points=((120.0, 48.0),))
    >>> parse_points("no cup here")
    ParsedPoints(format=None, points=())
    """
    text = text if isinstance(text, str) else ""
    for fmt, read in (("molmo", _molmo), ("json", _json), ("tuple", _pairs)):
        points = tuple((x, y) for x, y in read(text) if math.isfinite(x) and math.isfinite(y))
        if points:
            return ParsedPoints(fmt, points)
    return ParsedPoints(None)


def _molmo(text: str) -> list[Point]:
    points: list[Point] = []
    for tag in _TAG.finditer(text):
        coords: dict[str, dict[str, float]] = {}
        for axis, index, value in _ATTR.findall(tag.group(2)):
            coords.setdefault(index, {})[axis.lower()] = float(value)
        for index in sorted(coords, key=lambda i: (len(i), i)):  # "", "1", "2", …, "10"
            if {"x", "y"} <= coords[index].keys():
                points.append((coords[index]["x"], coords[index]["y"]))
    return points


def _pairs(text: str) -> list[Point]:
    return [(float(x), float(y)) for x, y in _PAIR.findall(text)]


def _json(text: str) -> list[Point]:
    return [p for value in json_values(text) for p in _json_points(value, 0)]


def _json_points(value: Any, depth: int) -> list[Point]:
    if depth > _MAX_JSON_DEPTH:
        return []
    if isinstance(value, list):
        return [p for item in value for p in _json_points(item, depth + 1)]
    if not isinstance(value, dict):
        return []
    points = [p for key in _POINT_KEYS if key in value for p in _as_points(value[key], depth)]
    if not points:
        points = _as_points({"x": value.get("x"), "y": value.get("y")}, depth)
    return points + [p for key, item in value.items() if key not in _POINT_KEYS
                     for p in _json_points(item, depth + 1)]


def _as_points(value: Any, depth: int) -> list[Point]:
    """``[x, y]``, ``{"x": .., "y": ..}`` or a list of either."""
    if isinstance(value, dict):
        value = [value.get("x"), value.get("y")]
    if not isinstance(value, list) or depth > _MAX_JSON_DEPTH:
        return []
    if len(value) == 2 and all(map(_is_number, value)):
        return [(_float(value[0]), _float(value[1]))]
    return [p for item in value if isinstance(item, list | dict)
            for p in _as_points(item, depth + 1)]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _float(value: float) -> float:
    try:
        return float(value)
    except OverflowError:  # a JSON integer of 400 digits
        return math.inf


# --------------------------------------------------------------------------- coordinates


def to_original(
    points: Sequence[Point],
    *,
    scale: Scale,
    image_size: Sequence[float],
    input_size: Sequence[float] | None = None,
) -> list[Point]:
    """Points on the model's ``scale`` mapped to the original image's pixels.

    ``image_size`` and ``input_size`` are ``(width, height)``: of the original image and of
    the resized image the model saw. ``"pixels"`` are the model input's pixels (without an
    ``input_size`` they are taken as the original's already); ``"norm1000"`` and ``"percent"``
    are relative to the image, whatever its size. A plain resize is assumed (no padding, no
    crop), as Qwen-VL's and Molmo's processors do.

    >>> to_original([(50, 25)], scale="pixels", image_size=(200, 100), input_size=(100, 50))
    [(100.0, 50.0)]
    >>> to_original([(500, 250)], scale="norm1000", image_size=(200, 100))
    [(100.0, 25.0)]
    """
    width, height = _size(image_size, "image_size")
    if scale == "pixels":
        if input_size is None:
            return [(float(x), float(y)) for x, y in points]
        in_width, in_height = _size(input_size, "input_size")
        return [(x * width / in_width, y * height / in_height) for x, y in points]
    if scale not in _DIVISOR:
        raise ValueError(f"scale must be one of 'pixels', {', '.join(map(repr, _DIVISOR))}; "
                         f"got {scale!r}")
    div = _DIVISOR[scale]
    return [(x / div * width, y / div * height) for x, y in points]


def _size(value: Any, name: str) -> tuple[float, float]:
    try:
        width, height = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (width, height), got {value!r:.80}") from None
    if not (width > 0 and height > 0):
        raise ValueError(f"{name} must be positive (width, height), got {value!r:.80}")
    return width, height


# --------------------------------------------------------------------------- masks


class _Target:
    """One decoded mask, and (on first need) its edge pixels, for distance shaping."""

    def __init__(self, pixels: np.ndarray) -> None:
        self.pixels = np.asarray(pixels, dtype=bool)
        self.height, self.width = self.pixels.shape
        self._edge: tuple[np.ndarray, np.ndarray] | None = None

    def score(self, point: Point, sigma: float) -> float:
        """1 inside; ``exp(-d/sigma)`` at ``d`` px from the mask; 0 outside the image."""
        x, y = point
        if not (0 <= x <= self.width and 0 <= y <= self.height):
            return 0.0
        col, row = min(int(x), self.width - 1), min(int(y), self.height - 1)
        if self.pixels[row, col]:
            return 1.0
        if sigma <= 0:
            return 0.0
        rows, cols = self.edge
        if rows.size == 0:
            return 0.0
        distance = math.sqrt(float(np.min((rows - row) ** 2 + (cols - col) ** 2)))
        return math.exp(-distance / sigma)

    @property
    def edge(self) -> tuple[np.ndarray, np.ndarray]:
        """Mask pixels with a 4-neighbour outside it: the nearest mask pixel is always one."""
        if self._edge is None:
            p = np.pad(self.pixels, 1)
            inner = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
            rows, cols = np.nonzero(self.pixels & ~inner)
            self._edge = rows.astype(np.int64), cols.astype(np.int64)
        return self._edge


# --------------------------------------------------------------------------- scoring


def point_f1(points: Sequence[Point], masks: Sequence[np.ndarray], *, sigma: float = 0.0) -> float:
    """F1 of points (original pixels) against target masks, matched greedily one to one.

    Each (point, mask) pair scores 1 when the point is inside the mask, ``exp(-d/sigma)``
    at distance ``d`` px (``sigma`` > 0), else 0. Pairs are taken best first, each point and
    each mask at most once; the matched scores sum to the true positives, so
    F1 = 2·TP / (points + masks). One point and one mask: the pair's score.

    >>> a, b = np.zeros((10, 10), bool), np.zeros((10, 10), bool)
    >>> a[:5, :5] = True; b[5:, 5:] = True
    >>> point_f1([(2, 2), (7, 7), (2, 8)], [a, b])  # two hits, one miss
    0.8
    >>> point_f1([(2, 2), (3, 3)], [a, b])  # both in the same mask: one match
    0.5
    """
    return _f1(points, [_Target(m) for m in masks], sigma)


def _f1(points: Sequence[Point], targets: Sequence[_Target], sigma: float) -> float:
    if not points or not targets:
        return 0.0
    pairs = [(score, i, j) for i, point in enumerate(points) for j, target in enumerate(targets)
             if (score := target.score(point, sigma)) > 0]
    pairs.sort(key=lambda pair: (-pair[0], pair[1], pair[2]))
    used_points: set[int] = set()
    used_targets: set[int] = set()
    true_positives = 0.0
    for score, i, j in pairs:
        if i not in used_points and j not in used_targets:
            used_points.add(i)
            used_targets.add(j)
            true_positives += score
    return 2 * true_positives / (len(points) + len(targets))


# --------------------------------------------------------------------------- rewards


def point_in_mask(
    completions: Sequence[Any],
    *,
    masks: Sequence[Mapping[str, Any] | Sequence[Mapping[str, Any]] | None],
    image_size: Sequence[Sequence[float] | None] | None = None,
    input_size: Sequence[Sequence[float] | None] | None = None,
    scale: Scale = "pixels",
    sigma: float = 0.0,
    **_: Any,
) -> list[float | None]:
    """Point-in-mask reward per completion: the :func:`point_f1` of its points and the row's masks.

    ``masks`` holds each row's target(s): one COCO RLE or a list of them (a row with none
    gets ``None``: the reward does not apply). ``image_size`` is each row's original
    ``(width, height)`` (default: the masks' size; it must match them), ``input_size`` the
    size the model saw, used with ``scale="pixels"``. Molmo tags are percent whatever
    ``scale`` says. ``sigma`` (px) > 0 pays ``exp(-d/sigma)`` for a miss by ``d`` px;
    a point outside the image pays 0. Output without a point pays 0.

    >>> ring = np.zeros((100, 100), bool); ring[20:80, 20:80] = True; ring[40:60, 40:60] = False
    >>> rle = encode_rle(ring)
    >>> point_in_mask(["(60, 100)", "(100, 100)", "[300, 100]"], masks=[rle] * 3,
    ...               input_size=[(200, 200)] * 3)  # on the ring, in its hole, off the image
    [1.0, 0.0, 0.0]
    >>> point_in_mask(["(50, 50)"], masks=[rle], sigma=10.0) == [math.exp(-10 / 10)]  # 10 px off
    True
    """
    rows = paired(completions, _rows(masks, "masks"), "masks")
    sizes = _optional(image_size, completions, "image_size")
    inputs = _optional(input_size, completions, "input_size")
    decoded: dict[tuple[Any, ...], _Target] = {}
    return [
        _reward(i, text, row_masks, size, in_size, scale, sigma, decoded)
        for i, ((text, row_masks), size, in_size) in enumerate(zip(rows, sizes, inputs,
                                                                   strict=True))
    ]


def point_format(
    completions: Sequence[Any],
    *,
    expected: Literal["any", "molmo", "json", "tuple"] = "any",
    **_: Any,
) -> list[float]:
    """1.0 when a completion names at least one point in the ``expected`` format, else 0.0.

    >>> point_format(['{"point": [3, 4]}', "(3, 4)", "three, four"], expected="json")
    [1.0, 0.0, 0.0]
    """
    if expected not in ("any", "molmo", "json", "tuple"):
        raise ValueError(f"expected must be 'any', 'molmo', 'json' or 'tuple'; got {expected!r}")
    found = [parse_points(text).format for text in completion_texts(completions)]
    return [1.0 if fmt is not None and expected in ("any", fmt) else 0.0 for fmt in found]


def _reward(
    row: int,
    text: str,
    row_masks: Any,
    image_size: Sequence[float] | None,
    input_size: Sequence[float] | None,
    scale: Scale,
    sigma: float,
    decoded: dict[tuple[Any, ...], _Target],
) -> float | None:
    rles = [row_masks] if isinstance(row_masks, Mapping) else list(row_masks or ())
    if not rles:
        return None
    targets = [_target(row, rle, decoded) for rle in rles]
    width, height = targets[0].width, targets[0].height
    if image_size is not None:
        width, height = _size(image_size, f"image_size of row {row}")
    if any((t.width, t.height) != (width, height) for t in targets):
        raise ValueError(
            f"row {row}: masks of {sorted({(t.width, t.height) for t in targets})} px "
            f"(width, height) for an image_size of {(width, height)}: masks must be in the "
            "original image's pixels and image_size its (width, height)")
    parsed = parse_points(text)
    if not parsed.points:
        return 0.0
    points = to_original(parsed.points, scale="percent" if parsed.format == "molmo" else scale,
                         image_size=(width, height),
                         input_size=input_size if scale == "pixels" else None)
    return _f1(points, targets, sigma)


def _target(row: int, rle: Any, decoded: dict[tuple[Any, ...], _Target]) -> _Target:
    """The decoded mask of one RLE, decoded once per call (generations share their row's)."""
    try:
        counts = rle["counts"]
        key = (tuple(int(v) for v in rle["size"]),
               counts.encode("ascii") if isinstance(counts, str)
               else bytes(counts) if isinstance(counts, bytes | bytearray)
               else tuple(int(c) for c in counts))
        if key not in decoded:
            decoded[key] = _Target(decode_rle(rle))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"masks of row {row}: {error!r:.200}; each mask must be a COCO RLE dict with "
            "'size' [height, width] and 'counts' (str, bytes or a list of run lengths)"
        ) from error
    return decoded[key]


def _rows(values: Any, name: str) -> Any:
    if isinstance(values, Mapping):
        raise TypeError(f"{name} must be a list with one value per completion, got one mapping "
                        f"(wrap it: {name}=[rle])")
    return values


def _optional(values: Any, completions: Sequence[Any], name: str) -> list[Any]:
    if values is None:
        return [None] * len(completions)
    return [value for _, value in paired(completions, _rows(values, name), name)]
