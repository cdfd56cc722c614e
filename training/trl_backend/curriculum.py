"""Easy → hard ordering of a TRL run's rows (SARI: an SFT warm-up and an easy-to-hard
curriculum both matter).

A row's bucket: its own ``bucket`` (the video chain's easy / medium / hard; the audio
chain's separated / touching / overlapping sounds, :mod:`labeling.audio_qa.buckets`), else,
for a pointing row, the target's share of the image (large objects easy, small ones hard),
else ``medium`` (:data:`training.curriculum.DEFAULT_BUCKET`). With ``curriculum: easy_to_hard``
the run's rows are ordered by bucket, shuffled within each by the run's seed, and the
trainers read them in that order (SFT: a sequential sampler; GRPO: no dataset shuffle), so
the first steps see easy rows and the last the hard ones; a run longer than one pass starts
again from the easy ones.

Example:
    >>> rows = [{"id": i, "bucket": b} for i, b in enumerate(["hard", "easy", None, "easy"])]
    >>> [r["id"] for r in easy_to_hard(rows, seed=0)]
    [1, 3, 2, 0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from training.curriculum import DEFAULT_BUCKET, ORDER
from training.rewards.pointing import decode_rle

#: Pointing: the target's share of the image (all its instances' masks together).
SIZE_BUCKETS = ((0.05, "easy"), (0.01, "medium"), (0.0, "hard"))


def size_bucket(row: Mapping[str, Any]) -> str:
    """A pointing row's bucket by the target's area share (>= 5 %: easy, >= 1 %: medium,
    else hard).

    >>> from training.rewards.pointing import encode_rle
    >>> mask = np.zeros((10, 10), bool); mask[:3, :3] = True
    >>> size_bucket({"masks": [encode_rle(mask)]})
    'easy'
    """
    masks = [decode_rle(m).astype(bool) for m in row.get("masks") or []]
    share = float(np.logical_or.reduce(masks).mean()) if masks else 0.0
    return next(name for floor, name in SIZE_BUCKETS if share >= floor)


def bucket_of(row: Mapping[str, Any]) -> str:
    """The row's curriculum bucket (see the module docstring)."""
    if row.get("bucket") in ORDER:
        return row["bucket"]
    if row.get("task") == "pointing" or (row.get("masks") and row.get("image_size")):
        return size_bucket(row)
    return DEFAULT_BUCKET


def easy_to_hard(rows: Sequence[Mapping[str, Any]], seed: int) -> list[Mapping[str, Any]]:
    """The rows by bucket, easy first, each bucket in a seeded random order."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    return sorted((rows[i] for i in order), key=lambda r: ORDER.index(bucket_of(r)))
