"""Mask geometry: COCO RLE, area, bounding box, IoU and distance to a mask's edge.

Masks are boolean ``height x width`` arrays (SAM's output); on disk and in
JSON they are COCO run-length encodings (RLE) made by pycocotools, with
``counts`` as a ``str`` so that the dict is JSON as it is.

Boxes are ``(x0, y0, x1, y1)`` in pixel edges (:data:`models.roles.Box`): a
mask covering columns 2..5 has ``x0 = 2`` and ``x1 = 6``, as COCO's
``[x, y, w, h]`` has ``w = 4``.

The *mask/box IoU* compares the mask's own bounding box with the detector's
box, not the mask's pixels with the box's: a thin diagonal object (a pole, a
leash) fills little of its box, yet SAM segmented what the box holds. It
catches masks that spilled out of their box or shrank to a part of it.

*Distance to the mask's edge* is measured from a point to the centre of the
nearest pixel outside the mask, less half a pixel (the outside pixel's near
side); the image's own border counts as an edge. So a pixel on the mask's
rim has its centre 0.5 px from the edge, a one-pixel line is 0.5 px "deep".

Example:
    >>> import numpy as np
    >>> mask = np.zeros((6, 8), dtype=bool)
    >>> mask[1:4, 2:6] = True
    >>> rle = encode_rle(mask)
    >>> rle["size"], type(rle["counts"]).__name__
    ([6, 8], 'str')
    >>> bool((decode_rle(rle) == mask).all()), mask_area(rle)
    (True, 12)
    >>> mask_bbox(mask), xywh(mask_bbox(mask))
    ((2.0, 1.0, 6.0, 4.0), [2.0, 1.0, 4.0, 3.0])
    >>> mask_box_iou(mask, (2, 1, 6, 5)), float(edge_distances(mask)[2, 3])
    (0.75, 1.5)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pycocotools.mask as mask_util
from scipy.ndimage import distance_transform_edt

from models.roles import Box
from models.vision.rle import Rle, coco_rle, decode_rle, encode_rle

__all__ = ["Rle", "as_mask", "box_iou", "decode_rle", "edge_distance_at", "edge_distances",
           "encode_rle", "mask_area", "mask_bbox", "mask_box_iou", "mask_iou", "xywh"]


def as_mask(mask: np.ndarray | Mapping[str, Any]) -> np.ndarray:
    """A boolean 2-D array from a mask array (any dtype, nonzero is in) or a COCO RLE dict.

    Example:
        >>> as_mask(np.array([[0, 2], [1, 0]], dtype=np.uint8)).tolist()
        [[False, True], [True, False]]
    """
    if isinstance(mask, Mapping):
        return decode_rle(mask)
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"a mask is height x width; got an array of shape {array.shape}")
    return array if array.dtype == bool else array != 0


def mask_area(mask: np.ndarray | Mapping[str, Any]) -> int:
    """Pixels in the mask (an array or an RLE, the latter counted without decoding)."""
    if isinstance(mask, Mapping):
        return int(mask_util.area(coco_rle(mask)))
    return int(as_mask(mask).sum())


def mask_bbox(mask: np.ndarray) -> Box | None:
    """The tightest box around the mask, in pixel edges; None for an empty mask."""
    array = as_mask(mask)
    rows, cols = np.flatnonzero(array.any(axis=1)), np.flatnonzero(array.any(axis=0))
    if rows.size == 0:
        return None
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


def xywh(box: Box) -> list[float]:
    """COCO's ``[x, y, width, height]`` of an ``(x0, y0, x1, y1)`` box."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0.0 when both are empty).

    Example:
        >>> box_iou((0, 0, 2, 2), (1, 0, 3, 2))
        0.3333333333333333
    """
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return float(inter / union) if union > 0 else 0.0


def mask_box_iou(mask: np.ndarray, box: Box) -> float:
    """IoU of the mask's bounding box with `box` (0.0 for an empty mask)."""
    own = mask_bbox(mask)
    return 0.0 if own is None else box_iou(own, box)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Pixel intersection over union of two masks of one image (0.0 when both are empty)."""
    a, b = as_mask(a), as_mask(b)
    union = int(np.logical_or(a, b).sum())
    return int(np.logical_and(a, b).sum()) / union if union else 0.0


def _centre_distances(mask: np.ndarray) -> np.ndarray:
    """Per pixel, the distance between its centre and the nearest outside pixel's centre.

    The mask is padded with one outside pixel on every side, so the image's
    border is an edge; pixels outside the mask get 0. Only the mask's bounding box
    (plus that ring of outside pixels) is transformed: a pixel inside the box is always
    nearer to the ring than to any outside pixel beyond it, so the distances are the
    whole image's, at the cost of the box.
    """
    array = as_mask(mask)
    out = np.zeros(array.shape, dtype=float)
    rows, cols = np.nonzero(array.any(axis=1))[0], np.nonzero(array.any(axis=0))[0]
    if not len(rows):
        return out
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    padded = np.pad(array[r0:r1, c0:c1], 1, constant_values=False)
    out[r0:r1, c0:c1] = distance_transform_edt(padded)[1:-1, 1:-1]
    return out


def edge_distances(mask: np.ndarray) -> np.ndarray:
    """Per pixel, how far its centre is from the mask's edge, in pixels (0 outside the mask)."""
    distances = _centre_distances(mask)
    return np.where(distances > 0, distances - 0.5, 0.0)


def edge_distance_at(mask: np.ndarray, x: float, y: float) -> float:
    """How far the point ``(x, y)`` is from the mask's edge (0.0 when it is not in the mask).

    Exact for any point, not only pixel centres: it looks for the nearest
    outside pixel in a window around the point's pixel.

    Example:
        >>> mask = np.ones((5, 5), dtype=bool)
        >>> [edge_distance_at(mask, x, y) for x, y in [(2.5, 2.5), (2.0, 2.5), (9, 9)]]
        [2.5, 2.0, 0.0]
    """
    array = as_mask(mask)
    height, width = array.shape
    if not (math.isfinite(x) and math.isfinite(y) and 0 <= x < width and 0 <= y < height):
        return 0.0
    row, col = int(y), int(x)
    if not array[row, col]:
        return 0.0
    padded = np.pad(array, 1, constant_values=False)
    reach = math.ceil(_centre_distances(array)[row, col] + 1.5)
    r0, c0 = max(0, row + 1 - reach), max(0, col + 1 - reach)
    window = ~padded[r0:row + 2 + reach, c0:col + 2 + reach]
    rows, cols = np.nonzero(window)
    # padded pixel (i, j) is image pixel (i - 1, j - 1), whose centre is (j - 0.5, i - 0.5)
    dx = cols + c0 - 0.5 - x
    dy = rows + r0 - 0.5 - y
    return float(np.sqrt(dx * dx + dy * dy).min() - 0.5)
