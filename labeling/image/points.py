"""Points inside a mask, by a strategy named in config, reproducible from a seed.

Every point is the centre of a mask pixel, ``(col + 0.5, row + 0.5)`` as
``(x, y)`` floats in original image pixels, so it lies inside its mask
however it is rounded back to a pixel. Strategies:

* ``centroid``: the mask's centre of mass (the pixel it falls in), when that
  pixel is in the mask; otherwise (a ring, a crescent, a "C") the mask's
  deepest point: the pixel farthest from its edge (the first in row-major
  order on a tie). One point, whatever ``n`` asks.
* ``random``: ``n`` distinct pixels drawn with probability proportional to
  their distance from the mask's edge, so points lean toward the middle of
  the object and rim pixels are rare.
* ``edge_aware``: ``n`` distinct pixels drawn uniformly among those at least
  ``margin`` px from the mask's edge; a mask too thin for that gives no
  point and the reason ``mask_too_thin`` (with the depth it has).

Distances to the edge are :func:`labeling.image.masks.edge_distances` (the
image's border counts as an edge). An empty mask gives no point and the
reason ``empty_mask``. Fewer than ``n`` points come back when the mask (or
its part deep enough) has fewer pixels. The same mask, strategy, ``n``,
``margin`` and seed give the same points; :func:`point_seed` makes a seed per
image and phrase, so a point does not depend on the order rows are processed.

Example:
    >>> import numpy as np
    >>> ring = np.zeros((9, 9), dtype=bool); ring[1:8, 1:8] = True; ring[3:6, 3:6] = False
    >>> found = sample_points(ring, "centroid")
    >>> found.points, found.detail
    (((2.5, 2.5),), 'deepest point (the centre of mass (4.5, 4.5) is outside the mask)')
    >>> sample_points(ring, "edge_aware", margin=2).reason
    'mask_too_thin'
    >>> sample_points(ring, "edge_aware", margin=2).detail
    "the mask's deepest point is 0.9 px from its edge, margin 2 px"
    >>> a = sample_points(ring, "random", n=3, seed=7)
    >>> a == sample_points(ring, "random", n=3, seed=7), len(a.points)
    (True, 3)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from labeling.image.masks import as_mask, edge_distances

Strategy = Literal["centroid", "random", "edge_aware"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)

Point = tuple[float, float]
"""(x, y) in original image pixels."""


@dataclass(frozen=True)
class SampledPoints:
    """The points drawn from one mask, or why there are none."""

    points: tuple[Point, ...]
    strategy: str
    reason: str | None = None
    """``empty_mask`` or ``mask_too_thin`` when there is no point; None otherwise."""
    detail: str = ""
    """How the points were found, or the measured number behind `reason`."""

    @property
    def ok(self) -> bool:
        return bool(self.points)


def point_seed(*keys: object, seed: int = 0) -> int:
    """A seed for one item from its keys (e.g. image hash and phrase) and a run's seed.

    Example:
        >>> point_seed("sha-of-image", "red cup") == point_seed("sha-of-image", "red cup")
        True
        >>> point_seed("sha-of-image", "red cup") == point_seed("sha-of-image", "red cup", seed=1)
        False
    """
    text = "\x1f".join([str(seed), *(str(k) for k in keys)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def _centre(row: int, col: int) -> Point:
    return (float(col) + 0.5, float(row) + 0.5)


def _centroid(mask: np.ndarray, depth: np.ndarray) -> SampledPoints:
    rows, cols = np.nonzero(mask)
    x, y = float(cols.mean()) + 0.5, float(rows.mean()) + 0.5
    row, col = int(y), int(x)
    if mask[row, col]:
        return SampledPoints((_centre(row, col),), "centroid", detail="centre of mass")
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return SampledPoints(
        (_centre(int(row), int(col)),), "centroid",
        detail=f"deepest point (the centre of mass ({x:.1f}, {y:.1f}) is outside the mask)")


def _draw(strategy: str, flat: np.ndarray, n: int, rng: np.random.Generator,
          weights: np.ndarray | None, shape: tuple[int, int], detail: str) -> SampledPoints:
    """`n` distinct pixels of `flat` (row-major indices), weighted or uniform."""
    p = None if weights is None else weights / weights.sum()
    picked = rng.choice(flat, size=min(n, flat.size), replace=False, p=p)
    rows, cols = np.unravel_index(picked, shape)
    return SampledPoints(tuple(_centre(int(r), int(c)) for r, c in zip(rows, cols, strict=True)),
                         strategy, detail=detail)


def sample_points(
    mask: np.ndarray, strategy: Strategy = "centroid", *, n: int = 1, seed: int = 0,
    margin: float = 3.0,
) -> SampledPoints:
    """Up to `n` points inside `mask` by `strategy` (`margin` in px is for ``edge_aware``)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown point strategy {strategy!r}; choose one of {STRATEGIES}")
    if n < 1 or margin < 0:
        raise ValueError(f"n must be at least 1 and margin at least 0; got n={n}, margin={margin}")
    mask = as_mask(mask)
    if not mask.any():
        return SampledPoints((), strategy, "empty_mask", "the mask has no pixel")
    depth = edge_distances(mask)
    if strategy == "centroid":
        return _centroid(mask, depth)
    rng = np.random.default_rng(seed)
    flat_depth = depth.ravel()
    if strategy == "random":
        inside = np.flatnonzero(flat_depth > 0)
        return _draw(strategy, inside, n, rng, flat_depth[inside], mask.shape,
                     "drawn in proportion to the distance from the edge")
    deep = np.flatnonzero(flat_depth >= margin)
    if deep.size == 0:
        return SampledPoints(
            (), strategy, "mask_too_thin",
            f"the mask's deepest point is {float(depth.max()):.1f} px from its edge, "
            f"margin {margin:g} px")
    return _draw(strategy, deep, n, rng, None, mask.shape,
                 f"drawn uniformly among {deep.size} pixels at least {margin:g} px from the edge")
