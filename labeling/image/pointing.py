"""The pointing dataset: verified regions as "point at X" rows, for TRL and as COCO.

Policy:

* one **example** per (image, phrase): the prompt is ``Point at <phrase>.``,
  ``masks`` holds the mask of every instance of the phrase the detector found
  (after NMS), ``points[i]`` the verified points of ``masks[i]``; a model that
  points once at each instance scores full marks with
  :func:`training.rewards.pointing.point_in_mask`;
* an (image, phrase) whose instances are not all verified is **refused**
  (``unverified_instance``): pointing at the unverified one would be scored
  as a miss; one with no verified instance at all is simply absent (its
  points were quarantined by verification);
* columns follow TRL's ``GRPOTrainer``: ``prompt`` is conversational (one user
  turn; the trainer inserts the image), ``images`` a list of one image (an
  8-bit RGB file: TRL hands it to the processor as it is), and every other
  column reaches the reward functions as a keyword list: ``masks`` (COCO RLE,
  original pixels), ``image_size`` (width, height), ``points``, ``phrase``.
  ``image`` is the original file's path; the provenance columns say where
  each field came from.

Example:
    >>> rle = {"size": [4, 6], "counts": "9220003"}  # rows 1-2, columns 2-4
    >>> regions = [VerifiedRegion("im1", "cup", 0, rle, 0.9, ((2.5, 1.5),)),
    ...            VerifiedRegion("im1", "dog", 1, rle, 0.8, ((3.5, 2.5),)),
    ...            VerifiedRegion("im1", "dog", 2, rle, 0.7, ())]
    >>> examples, refused = group_examples(regions)
    >>> [(e["phrase"], e["prompt_text"], e["points"]) for e in examples]
    [('cup', 'Point at cup.', [[[2.5, 1.5]]])]
    >>> refused[0]["reason"], refused[0]["detail"]
    ('unverified_instance', "1 of 2 instances of 'dog' have no verified point")
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeling.image.coco import CocoImage, CocoRegion, coco_dataset
from labeling.image.masks import Rle

Point = tuple[float, float]

PROMPT = "Point at {phrase}."


def pointing_prompt(phrase: str) -> str:
    """The instruction for one phrase.

    Example:
        >>> pointing_prompt("red cup")
        'Point at red cup.'
    """
    return PROMPT.format(phrase=phrase)


@dataclass(frozen=True)
class VerifiedRegion:
    """One instance of a phrase in an image: its mask and the points that passed verification."""

    image_id: str
    phrase: str
    region: int
    mask: Rle
    score: float
    """The detector's confidence in its box."""
    points: tuple[Point, ...]
    """Verified (x, y) points in original pixels; () when none passed."""


def example_id(image_id: str, phrase: str) -> str:
    """A stable id of an (image, phrase) example."""
    return hashlib.sha256(f"{image_id}\x1f{phrase}".encode()).hexdigest()[:16]


def group_examples(
    regions: Sequence[VerifiedRegion], *, require_all: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(examples, refused) per (image, phrase), in order of first appearance (see above).

    With `require_all` False, an example keeps its verified instances only.
    """
    groups: dict[tuple[str, str], list[VerifiedRegion]] = {}
    for region in regions:
        groups.setdefault((region.image_id, region.phrase), []).append(region)
    examples, refused = [], []
    for (image_id, phrase), instances in groups.items():
        verified = [r for r in instances if r.points]
        if not verified:
            continue
        missing = len(instances) - len(verified)
        if missing and require_all:
            refused.append({
                "image_id": image_id, "phrase": phrase, "reason": "unverified_instance",
                "detail": f"{missing} of {len(instances)} instances of {phrase!r} have no "
                          "verified point"})
            continue
        examples.append({
            "example_id": example_id(image_id, phrase), "image_id": image_id,
            "phrase": phrase, "prompt_text": pointing_prompt(phrase),
            "masks": [dict(r.mask) for r in verified],
            "points": [[[float(x), float(y)] for x, y in r.points] for r in verified],
            "regions": verified,
        })
    return examples, refused


def trl_row(example: Mapping[str, Any], *, image: str, image_file: str,
            width: int, height: int, provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The dataset row of one example (see the columns above); `provenance` adds columns.

    Example:
        >>> rle = {"size": [4, 6], "counts": "9220003"}  # rows 1-2, columns 2-4
        >>> [ex], _ = group_examples([VerifiedRegion("im1", "cup", 0, rle, 0.9, ((2.5, 1.5),))])
        >>> row = trl_row(ex, image="/d/a.jpg", image_file="/d/a.jpg", width=6, height=4,
        ...               provenance={"caption_source": "manifest"})
        >>> row["prompt"], row["images"], row["image_size"], row["caption_source"]
        ([{'role': 'user', 'content': 'Point at cup.'}], ['/d/a.jpg'], [6, 4], 'manifest')
    """
    return {
        "example_id": example["example_id"], "image_id": example["image_id"],
        "image": image, "images": [image_file],
        "prompt": [{"role": "user", "content": example["prompt_text"]}],
        "prompt_text": example["prompt_text"], "phrase": example["phrase"],
        "masks": [{"size": [int(s) for s in m["size"]], "counts": str(m["counts"])}
                  for m in example["masks"]],
        "image_size": [int(width), int(height)], "points": example["points"],
        **dict(provenance),
    }


def provenance_of(region: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance columns of an example from one of its regions' rows (as
    ``sql/queries/image_regions_verified.sql`` gives them).

    Example:
        >>> provenance_of({"caption": "a cup", "caption_source": "model", "captioner": "blip",
        ...                "caption_weights": "pretrained", "detector": "gd",
        ...                "detector_weights": "random-tiny", "segmenter": "sam",
        ...                "segmenter_weights": "pretrained", "point_strategy": "centroid"})
        ... # doctest: +NORMALIZE_WHITESPACE
        {'caption': 'a cup', 'caption_source': 'model:blip', 'detector': 'gd', 'segmenter': 'sam',
         'point_strategy': 'centroid', 'weights': 'random-tiny'}
    """
    source = region.get("caption_source")
    kinds = {region.get(k) for k in ("caption_weights", "detector_weights", "segmenter_weights")}
    return {
        "caption": region.get("caption"),
        "caption_source": f"model:{region.get('captioner')}" if source == "model" else source,
        "detector": region.get("detector"), "segmenter": region.get("segmenter"),
        "point_strategy": region.get("point_strategy"),
        "weights": "random-tiny" if "random-tiny" in kinds else "pretrained",
    }


def rgb_file(source_path: str, mode: str | None, name: str, folder: str | Path) -> str:
    """A file of the image that any processor reads right: the original when it is 8-bit
    RGB, else an 8-bit RGB PNG copy `folder/<name>.png` of the same size (16-bit, CMYK,
    grey, alpha: see :func:`labeling.image.pixels.to_rgb`)."""
    if mode == "RGB":
        return str(source_path)
    from labeling.image.pixels import open_rgb

    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    open_rgb(source_path).save(tmp, format="PNG")
    os.replace(tmp, path)
    return str(path)


def example_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A dataset row (see :func:`trl_row`) as a ``pointing_examples`` table row."""
    return {
        "example_id": row["example_id"], "image_id": row["image_id"], "image": row["image"],
        "image_file": row["images"][0], "width": row["image_size"][0],
        "height": row["image_size"][1], "phrase": row["phrase"], "prompt": row["prompt_text"],
        "masks": json.dumps(row["masks"]), "points": json.dumps(row["points"]),
        **{name: row.get(name) for name in PROVENANCE_COLUMNS},
    }


PROVENANCE_COLUMNS = ("caption", "caption_source", "detector", "segmenter", "point_strategy",
                      "weights")
"""Where each field of a row came from: the caption and who wrote it (``manifest`` or
``model:<id>``), the detector and segmenter, the point strategy, and ``weights``
(``random-tiny`` when any model of the chain was a tiny random build, else ``pretrained``)."""


def _features():
    from datasets import Features, Image, List, Value

    text = Value("string")
    return Features({
        "example_id": text, "image_id": text, "image": text, "images": List(Image()),
        "prompt": List({"role": text, "content": text}), "prompt_text": text, "phrase": text,
        "masks": List({"size": List(Value("int64")), "counts": text}),
        "image_size": List(Value("int64")),
        "points": List(List(List(Value("float64")))),
        **{name: text for name in PROVENANCE_COLUMNS},
    })


def export_pointing(
    rows: Sequence[Mapping[str, Any]], coco: Mapping[str, Any], out_dir: str | Path,
) -> dict[str, Path]:
    """Write `pointing.jsonl`, the `datasets` folder `pointing_dataset/` and `coco.json`
    into `out_dir`, each atomically (a temp name, then a rename)."""
    from datasets import Dataset

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    features = _features()
    records = [{name: row.get(name) for name in features} for row in rows]
    jsonl = _write_text(out_dir / "pointing.jsonl",
                        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    coco_path = _write_text(out_dir / "coco.json", json.dumps(coco))
    dataset_dir, staging = out_dir / "pointing_dataset", out_dir / ".pointing_dataset.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    columns = {name: [r[name] for r in records] for name in features}
    Dataset.from_dict(columns, features=features).save_to_disk(str(staging))
    shutil.rmtree(dataset_dir, ignore_errors=True)
    os.replace(staging, dataset_dir)
    return {"jsonl": jsonl, "dataset": dataset_dir, "coco": coco_path}


def _write_text(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def pointing_coco(examples: Sequence[Mapping[str, Any]],
                  images: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The examples' regions as a COCO dataset; `images` maps image_id to its row
    (source_path, width, height). COCO image ids number the images from 1 in order."""
    ids = {image_id: i for i, image_id in enumerate(
        dict.fromkeys(e["image_id"] for e in examples), 1)}
    coco_images = [CocoImage(i, str(images[image_id]["source_path"]),
                             int(images[image_id]["width"]), int(images[image_id]["height"]))
                   for image_id, i in ids.items()]
    regions = [CocoRegion(ids[e["image_id"]], r.phrase, r.mask, r.score, tuple(r.points))
               for e in examples for r in e["regions"]]
    return coco_dataset(coco_images, regions)


def load_coco(path: str | Path) -> dict[str, int]:
    """Open a COCO file with pycocotools (its prints silenced) and count what it holds."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    return {"images": len(coco.getImgIds()), "annotations": len(coco.getAnnIds()),
            "categories": len(coco.getCatIds())}
