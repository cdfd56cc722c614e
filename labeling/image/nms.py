"""Non-maximum suppression of detections, one phrase at a time.

Grounding DINO returns up to one box per query (900 in the real model) and
several queries often land on one object: boxes of a phrase that overlap a
better-scored box of the same phrase by more than ``iou_threshold`` are
dropped (greedy NMS, best score first). Boxes of different phrases never
suppress each other: "cup" and "red cup" may rightly share a box, and
verification decides later whether a point is ambiguous between them.
Plain numpy: torchvision's ``nms`` does not load here.

Example:
    >>> from models.roles import Detection
    >>> found = [Detection((0, 0, 10, 10), 0.9, "cup"), Detection((1, 0, 11, 10), 0.8, "cup"),
    ...          Detection((1, 0, 11, 10), 0.7, "red cup"), Detection((50, 50, 60, 60), 0.6, "cup")]
    >>> [(d.phrase, d.score) for d in per_phrase_nms(found, 0.5)]
    [('cup', 0.9), ('red cup', 0.7), ('cup', 0.6)]
    >>> [d.score for d in per_phrase_nms(found, 0.5, max_per_phrase=1)]
    [0.9, 0.7]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.roles import Box, Detection


def box_ious(box: Box, boxes: np.ndarray) -> np.ndarray:
    """IoU of `box` with each row (x0, y0, x1, y1) of `boxes` (0 where the union is empty).

    Example:
        >>> box_ious((0, 0, 2, 2), np.array([[1, 0, 3, 2], [5, 5, 6, 6]], dtype=float)).round(3)
        array([0.333, 0.   ])
    """
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    x0, y0, x1, y1 = (float(v) for v in box)
    iw = np.clip(np.minimum(x1, boxes[:, 2]) - np.maximum(x0, boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(y1, boxes[:, 3]) - np.maximum(y0, boxes[:, 1]), 0, None)
    inter = iw * ih
    area = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    widths = np.clip(boxes[:, 2] - boxes[:, 0], 0, None)
    areas = widths * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    union = area + areas - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(boxes: Sequence[Box], scores: Sequence[float], iou_threshold: float) -> list[int]:
    """Indices of the boxes kept by greedy NMS, best score first (ties: input order).

    A box is dropped when its IoU with a kept, better box is above `iou_threshold`;
    1.0 keeps every box, 0.0 keeps only boxes that touch no kept box.

    Example:
        >>> nms([(0, 0, 10, 10), (1, 1, 10, 10), (20, 20, 30, 30)], [0.5, 0.9, 0.1], 0.5)
        [1, 2]
    """
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    if len(boxes) != len(scores):
        raise ValueError(f"nms: {len(boxes)} boxes but {len(scores)} scores")
    array = np.asarray(boxes, dtype=float).reshape(-1, 4)
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    kept: list[int] = []
    alive = np.ones(len(order), dtype=bool)
    ranked = array[order] if order else array
    for rank, index in enumerate(order):
        if not alive[rank]:
            continue
        kept.append(index)
        later = slice(rank + 1, None)
        alive[later] &= box_ious(ranked[rank], ranked[later]) <= iou_threshold
    return kept


def per_phrase_nms(
    detections: Sequence[Detection], iou_threshold: float, *, max_per_phrase: int | None = None,
) -> list[Detection]:
    """`nms` within each phrase's boxes; the survivors best score first (at most
    `max_per_phrase` per phrase when given)."""
    by_phrase: dict[str, list[Detection]] = {}
    for detection in detections:
        by_phrase.setdefault(detection.phrase, []).append(detection)
    kept: list[Detection] = []
    for group in by_phrase.values():
        survivors = [group[i] for i in nms([d.box for d in group], [d.score for d in group],
                                           iou_threshold)]
        kept += survivors[:max_per_phrase] if max_per_phrase is not None else survivors
    return sorted(kept, key=lambda d: -d.score)
