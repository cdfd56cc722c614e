"""Geometric verification: can a point, its phrase's mask and box be a "point at X" example?

An example is kept only when every check passes; each check records what it
measured, so a failure says by how much. Checks, with their failure reasons:

* ``point_in_mask`` (``point_outside_mask``): the point's pixel is in its mask;
* ``edge_distance_px`` (``point_near_edge``): the point is at least
  ``margin`` px from the mask's edge (see :mod:`labeling.image.masks`), so a
  correct answer does not hinge on a pixel; measured only inside the mask;
* ``box_iou`` (``mask_box_mismatch``): the mask's own box and the detector's
  box overlap by at least ``min_box_iou``: SAM segmented what the box holds;
* ``area_share`` (``mask_too_small`` / ``mask_too_large``): the mask covers
  between ``min_area_share`` and ``max_area_share`` of the image: a speck is
  a guess, a mask that is nearly the whole image makes any point right;
* ``other_masks_at_point`` (``point_ambiguous``): when the prompt must be
  unambiguous, no other phrase's mask of the image contains the point.

Bad input gives reasons, never exceptions: ``empty_mask`` (and no other
check), ``point_outside_image``, ``degenerate_box`` (not finite, or no width
or height), ``box_outside_image`` (any side beyond the image: boxes are
clipped by the detector, so this means mixed-up coordinates) and
``mask_shape_mismatch`` (another mask not the size of this one). Checks that
cannot be measured on bad input are left out (their columns are None).

Example:
    >>> import numpy as np
    >>> mask = np.zeros((40, 60), dtype=bool); mask[10:30, 20:50] = True
    >>> ok = verify_point((35.5, 20.5), mask, (20, 10, 50, 30))
    >>> ok.passed, ok.reason, ok.measured["edge_distance_px"]
    (True, None, 9.5)
    >>> near = verify_point((21.4, 20.5), mask, (20, 10, 50, 30))
    >>> near.passed, near.reasons, near.detail
    (False, ('point_near_edge',), "1.4 px from the mask's edge, margin 3 px")
    >>> verify_point((35.5, 20.5), mask, (20, 10, 20, 30)).reasons
    ('degenerate_box',)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labeling.image.masks import as_mask, edge_distance_at, mask_box_iou
from models.roles import Box

MEASURES = ("point_in_mask", "edge_distance_px", "box_iou", "area_share", "other_masks_at_point")
"""The measured values, one column each in :meth:`Verification.row`."""


@dataclass(frozen=True)
class VerifyConfig:
    """Thresholds of the geometric checks."""

    margin: float = 3.0
    """Least distance, in px, from the point to its mask's edge."""
    min_box_iou: float = 0.5
    """Least IoU between the mask's own box and the detector's box."""
    min_area_share: float = 0.001
    """Least share of the image the mask covers (0.001 is 0.1 %)."""
    max_area_share: float = 0.9
    """Largest share of the image the mask may cover."""
    unambiguous: bool = True
    """Fail a point that another phrase's mask also contains."""


@dataclass(frozen=True)
class Check:
    """One measured value and whether it passed; `reason` and `detail` say why not."""

    name: str
    value: float
    passed: bool
    reason: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Verification:
    """Every check made on one example."""

    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(c.reason or c.name for c in self.checks if not c.passed)

    @property
    def reason(self) -> str | None:
        """The first failure's reason (the quarantine reason), None when it passed."""
        return self.reasons[0] if self.reasons else None

    @property
    def detail(self) -> str:
        return "; ".join(c.detail for c in self.checks if not c.passed)

    @property
    def measured(self) -> dict[str, float | None]:
        values = {c.name: c.value for c in self.checks}
        return {name: values.get(name) for name in MEASURES}

    def row(self) -> dict[str, Any]:
        """Flat columns for a table: verdict, reasons, detail, every measure (None: unmeasured).

        Example:
            >>> sorted(Verification().row())[:4]
            ['area_share', 'box_iou', 'detail', 'edge_distance_px']
        """
        return {"verified": self.passed, "reason": self.reason, "reasons": list(self.reasons),
                "detail": self.detail, **self.measured}


def _fail(name: str, reason: str, detail: str, value: float = float("nan")) -> Check:
    return Check(name, value, False, reason, detail)


def _fmt_box(box: Box) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in box) + ")"


def _box_check(mask: np.ndarray, box: Box, config: VerifyConfig) -> Check:
    height, width = mask.shape
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x1 <= x0 or y1 <= y0:
        return _fail("box", "degenerate_box",
                     f"box {_fmt_box(box)} is {x1 - x0:g} px wide and {y1 - y0:g} px high")
    eps = 1e-6
    if x0 < -eps or y0 < -eps or x1 > width + eps or y1 > height + eps:
        return _fail("box", "box_outside_image",
                     f"box {_fmt_box(box)} reaches outside the {width} x {height} image")
    iou = mask_box_iou(mask, box)
    return Check("box_iou", iou, iou >= config.min_box_iou, "mask_box_mismatch",
                 f"the mask's box has IoU {iou:.2f} with the detector's box, "
                 f"minimum {config.min_box_iou:g}")


def _area_check(mask: np.ndarray, config: VerifyConfig) -> Check:
    share = float(mask.sum()) / mask.size
    if share < config.min_area_share:
        return _fail("area_share", "mask_too_small", f"the mask covers {100 * share:.3g} % of "
                     f"the image, minimum {100 * config.min_area_share:g} %", share)
    if share > config.max_area_share:
        return _fail("area_share", "mask_too_large", f"the mask covers {100 * share:.3g} % of "
                     f"the image, maximum {100 * config.max_area_share:g} %", share)
    return Check("area_share", share, True)


def _point_checks(
    point: tuple[float, float], mask: np.ndarray, others: list[tuple[str, np.ndarray]],
    config: VerifyConfig,
) -> list[Check]:
    height, width = mask.shape
    x, y = (float(v) for v in point)
    if not (math.isfinite(x) and math.isfinite(y) and 0 <= x < width and 0 <= y < height):
        return [_fail("point", "point_outside_image",
                      f"the point ({x:g}, {y:g}) is outside the {width} x {height} image")]
    row, col = int(y), int(x)
    if not mask[row, col]:
        return [_fail("point_in_mask", "point_outside_mask",
                      f"the point ({x:g}, {y:g}) is not in its mask", 0.0)]
    depth = edge_distance_at(mask, x, y)
    checks = [Check("point_in_mask", 1.0, True),
              Check("edge_distance_px", depth, depth >= config.margin, "point_near_edge",
                    f"{depth:.1f} px from the mask's edge, margin {config.margin:g} px")]
    if config.unambiguous:
        wrong = [phrase for phrase, other in others if other.shape != mask.shape]
        if wrong:
            checks.append(_fail("others", "mask_shape_mismatch",
                                f"the mask of {wrong[0]!r} is not {height} x {width}"))
            return checks
        hits = [phrase for phrase, other in others if other[row, col]]
        shown = ", ".join(repr(p) for p in hits[:3]) + (" and more" if len(hits) > 3 else "")
        checks.append(Check("other_masks_at_point", float(len(hits)), not hits,
                            "point_ambiguous", f"the point is also in the mask of {shown}"))
    return checks


def verify_point(
    point: tuple[float, float], mask: np.ndarray, box: Box, *,
    others: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]] = (),
    config: VerifyConfig | None = None,
) -> Verification:
    """Every check on one (point, mask, box); `others` are the other phrases' masks of the image.

    Example:
        >>> mask = np.zeros((40, 60), dtype=bool); mask[10:30, 20:50] = True
        >>> cat = np.zeros_like(mask); cat[15:25, 30:45] = True
        >>> result = verify_point((35.5, 20.5), mask, (20, 10, 50, 30), others={"cat": cat})
        >>> result.reasons, result.detail
        (('point_ambiguous',), "the point is also in the mask of 'cat'")
        >>> verify_point((35.5, 20.5), np.zeros_like(mask), (20, 10, 50, 30)).reasons
        ('empty_mask',)
    """
    config = config or VerifyConfig()
    mask = as_mask(mask)
    if not mask.any():
        return Verification((_fail("mask", "empty_mask", "the mask has no pixel", 0.0),))
    pairs = others.items() if isinstance(others, Mapping) else others
    other_masks = [(str(phrase), as_mask(m)) for phrase, m in pairs]
    checks = _point_checks(point, mask, other_masks, config)
    checks += [_box_check(mask, box, config), _area_check(mask, config)]
    return Verification(tuple(checks))
