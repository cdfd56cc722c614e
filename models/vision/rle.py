"""COCO run-length encoding of masks, the one codec every layer uses.

Masks are boolean ``height x width`` arrays (SAM's output); on disk and in JSON they
are COCO RLE dicts made by pycocotools, ``{"size": [height, width], "counts": str}``,
so the dict is JSON as it is. Decoding also takes ``counts`` as bytes, or as an
uncompressed list of run lengths (COCO's crowd annotations).

Example:
    >>> import numpy as np
    >>> rle = encode_rle(np.eye(3, dtype=bool))
    >>> rle["size"], type(rle["counts"]).__name__, int(decode_rle(rle).sum())
    ([3, 3], 'str', 3)
    >>> decode_rle({"size": [2, 3], "counts": [1, 2, 3]}).astype(int).tolist()
    [[0, 1, 0], [1, 0, 0]]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pycocotools.mask as mask_util

Rle = dict[str, Any]
"""COCO run-length encoding: ``{"size": [height, width], "counts": str}``."""


def encode_rle(mask: np.ndarray) -> Rle:
    """A 2-D mask (nonzero is in) as a compressed COCO RLE, ``counts`` as ``str``."""
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"a mask is height x width; got an array of shape {array.shape}")
    rle = mask_util.encode(np.asfortranarray((array != 0).astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def coco_rle(rle: Mapping[str, Any]) -> dict:
    """The RLE as pycocotools takes it: compressed, ``counts`` as bytes."""
    height, width = (int(s) for s in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        return mask_util.frPyObjects({"size": [height, width], "counts": [int(c) for c in counts]},
                                     height, width)
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": [height, width], "counts": bytes(counts)}


def decode_rle(rle: Mapping[str, Any]) -> np.ndarray:
    """The boolean ``(height, width)`` mask of a COCO RLE."""
    return mask_util.decode(coco_rle(rle)).astype(bool)
