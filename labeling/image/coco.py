"""A COCO JSON dataset, and COCO results, from images and their phrases' masks.

Policy:

* one *category* per distinct phrase, numbered from 1 in order of first
  appearance (COCO reserves 0); ``supercategory`` is ``"phrase"``;
* one *annotation* per region: ``segmentation`` is the mask's compressed RLE
  (``counts`` a str), ``bbox`` is the mask's own box as ``[x, y, w, h]``,
  ``area`` its pixel count, ``iscrowd`` 0, ``score`` the detector's (or 1.0
  for a human's), and, when the region has them, ``points``: the verified
  ``[x, y]`` points (pycocotools ignores keys it does not know);
* a region whose image is unknown, whose mask is not the image's size, or is
  empty, is a bug upstream (verification quarantines empty masks): ValueError
  naming the image and the phrase.

:func:`coco_results` gives the same regions in COCO's *results* format (no
``bbox``: ``COCO.loadRes`` then derives area and box from the mask), to
evaluate a model's masks against a human-verified dataset with ``COCOeval``.

Example:
    >>> import numpy as np
    >>> mask = np.zeros((4, 6), dtype=bool); mask[1:3, 2:5] = True
    >>> data = coco_dataset([CocoImage(7, "a.jpg", width=6, height=4)],
    ...                     [CocoRegion(7, "red cup", mask, score=0.8, points=((3.5, 1.5),))])
    >>> data["categories"]
    [{'id': 1, 'name': 'red cup', 'supercategory': 'phrase'}]
    >>> {k: data["annotations"][0][k] for k in ("bbox", "area", "score", "points")}
    {'bbox': [2.0, 1.0, 3.0, 2.0], 'area': 6, 'score': 0.8, 'points': [[3.5, 1.5]]}
    >>> [result] = coco_results([CocoRegion(7, "red cup", mask, score=0.5)], data["categories"])
    >>> sorted(result)
    ['category_id', 'image_id', 'score', 'segmentation']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labeling.image.masks import Rle, as_mask, encode_rle, mask_area, mask_bbox, xywh

Point = tuple[float, float]


@dataclass(frozen=True)
class CocoImage:
    """An image of the dataset, as COCO lists it."""

    id: int
    file_name: str
    """Path or URL of the image, as the dataset's user will open it."""
    width: int
    height: int


@dataclass(frozen=True)
class CocoRegion:
    """One phrase's mask in one image."""

    image_id: int
    phrase: str
    mask: np.ndarray | Rle = field(repr=False)
    """Boolean height x width array, or its COCO RLE."""
    score: float = 1.0
    """The detector's confidence; 1.0 for a region a human drew or accepted."""
    points: tuple[Point, ...] = ()
    """Verified (x, y) points in the mask, original pixels."""


def coco_categories(phrases: Iterable[str]) -> list[dict[str, Any]]:
    """One category per distinct phrase, ids from 1 in order of first appearance.

    Example:
        >>> [c["id"] for c in coco_categories(["dog", "cat", "dog"])]
        [1, 2]
    """
    names = list(dict.fromkeys(phrases))
    return [{"id": i, "name": name, "supercategory": "phrase"} for i, name in enumerate(names, 1)]


def _category_ids(categories: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    return {str(c["name"]): int(c["id"]) for c in categories}


def _json_rle(mask: np.ndarray | Mapping[str, Any]) -> Rle:
    """The mask's compressed RLE with str counts (an RLE given compressed is kept as it is)."""
    if isinstance(mask, Mapping) and not isinstance(mask["counts"], list):
        counts = mask["counts"]
        return {"size": [int(s) for s in mask["size"]],
                "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}
    return encode_rle(as_mask(mask))


def _checked(region: CocoRegion, image: CocoImage | None, where: str) -> tuple[np.ndarray, Rle]:
    """The region's mask and RLE, after checking them against the image."""
    if image is None:
        raise ValueError(f"{where}: no image with id {region.image_id} in the dataset's images")
    mask = as_mask(region.mask)
    if mask.shape != (image.height, image.width):
        raise ValueError(
            f"{where} of {image.file_name!r}: the mask is {mask.shape[0]} x {mask.shape[1]} "
            f"(height x width), the image {image.height} x {image.width}")
    if not mask.any():
        raise ValueError(f"{where} of {image.file_name!r}: the mask is empty")
    return mask, _json_rle(region.mask)


def coco_dataset(
    images: Sequence[CocoImage], regions: Sequence[CocoRegion], *,
    description: str = "rlfoundry pointing dataset",
) -> dict[str, Any]:
    """The COCO dataset dict (``images``, ``categories``, ``annotations``), ready for JSON."""
    by_id: dict[int, CocoImage] = {}
    for image in images:
        if image.id in by_id:
            raise ValueError(f"image id {image.id} is used by {by_id[image.id].file_name!r} "
                             f"and {image.file_name!r}")
        by_id[image.id] = image
    categories = coco_categories(r.phrase for r in regions)
    category_ids = _category_ids(categories)
    annotations = []
    for i, region in enumerate(regions, 1):
        where = f"region {i} ({region.phrase!r}, image {region.image_id})"
        mask, rle = _checked(region, by_id.get(region.image_id), where)
        annotation = {
            "id": i, "image_id": region.image_id, "category_id": category_ids[region.phrase],
            "segmentation": rle, "area": mask_area(mask), "bbox": xywh(mask_bbox(mask)),
            "iscrowd": 0, "score": float(region.score),
        }
        if region.points:
            annotation["points"] = [[float(x), float(y)] for x, y in region.points]
        annotations.append(annotation)
    return {
        "info": {"description": description},
        "images": [{"id": im.id, "file_name": im.file_name, "width": im.width,
                    "height": im.height} for im in images],
        "categories": categories,
        "annotations": annotations,
    }


def coco_results(
    regions: Iterable[CocoRegion], categories: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """The regions as COCO segmentation results, categories matched by phrase.

    A phrase the dataset has no category for is a ValueError naming it.
    """
    category_ids = _category_ids(categories)
    results = []
    for region in regions:
        if region.phrase not in category_ids:
            raise ValueError(f"phrase {region.phrase!r} (image {region.image_id}) is not a "
                             f"category of the dataset; it has {sorted(category_ids)}")
        results.append({"image_id": region.image_id,
                        "category_id": category_ids[region.phrase],
                        "segmentation": _json_rle(region.mask), "score": float(region.score)})
    return results
