"""The image chain's steps as plain functions: rows in, (rows, quarantine items) out.

Each step takes the model of its role (any object with the role's method, see
:mod:`models.roles`), the upstream rows as dicts, and a loader that opens an
image file (default :func:`labeling.image.pixels.open_rgb`). Bad input never
raises: an image that does not open, a caption with no phrase, an image with
no box, an empty mask, a mask too thin for a point, a point that fails
verification each become a quarantine item ``{"source_path", "reason",
"detail"}``. The Dagster assets in ``assets/image/`` only read and write the
tables around these.

Example (a stub captioner: a manifest caption is used as it is, the rest are captioned):
    >>> from PIL import Image
    >>> class Stub:
    ...     name = "stub"
    ...     def caption(self, images, *, prompt=None, max_new_tokens=30):
    ...         return ["a red square" for _ in images]
    >>> images = [{"image_id": "a", "source_path": "a.png", "text": "a dog"},
    ...           {"image_id": "b", "source_path": "b.png", "text": None}]
    >>> rows, bad = caption_rows(Stub(), images, load=lambda path: Image.new("RGB", (8, 8)))
    >>> [(r["image_id"], r["caption"], r["source"], r["model"]) for r in rows], bad
    ([('a', 'a dog', 'manifest', None), ('b', 'a red square', 'model', 'stub')], [])
    >>> phrase_rows(rows)[0][:2] == [
    ...     {"image_id": "a", "phrase": "dog", "phrase_index": 0, "caption_source": "manifest"},
    ...     {"image_id": "b", "phrase": "red square", "phrase_index": 0,
    ...      "caption_source": "model:stub"}]
    True
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labeling.image.masks import decode_rle, encode_rle
from labeling.image.nms import per_phrase_nms
from labeling.image.phrases import load_english, noun_phrases_many
from labeling.image.pixels import (
    box_to_copy,
    box_to_original,
    fit_within,
    mask_to_original,
    open_rgb,
)
from labeling.image.points import point_seed, sample_points
from labeling.image.verify import VerifyConfig, verify_point
from models.loading import batched

Row = dict[str, Any]
Loader = Callable[[str], Any]
Progress = Callable[[int, int], None]

# What a failing model call raises (a too-long prompt, a tensor shape): the image is then
# retried alone, and quarantined when it fails alone.
MODEL_ERRORS = (ValueError, RuntimeError, IndexError)


def bad(row: Mapping[str, Any], reason: str, detail: str) -> Row:
    """A quarantine item for the image of `row`."""
    return {"source_path": row.get("source_path"), "reason": reason, "detail": detail}


def _open(items: Sequence[Mapping[str, Any]], load: Loader, failures: list[Row]):
    """(item, image) for each item whose file opens; the others become `unreadable_image`."""
    opened = []
    for item in items:
        try:
            opened.append((item, load(item["source_path"])))
        except (OSError, ValueError) as exc:  # PIL raises both for files gone bad
            failures.append(bad(item, "unreadable_image",
                                f"could not open the image again after ingestion: {exc}; "
                                "re-ingest the batch"))
    return opened


def _tick(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def caption_rows(
    captioner, images: Sequence[Mapping[str, Any]], *, batch_size: int = 16,
    max_new_tokens: int = 30, load: Loader = open_rgb, progress: Progress | None = None,
) -> tuple[list[Row], list[Row]]:
    """A caption per image: its manifest text when given, else the captioner's (batched).

    `captioner` may be None when every image has a manifest caption.
    """
    rows = [{"image_id": im["image_id"], "caption": im["text"].strip(), "source": "manifest",
             "model": None} for im in images if (im.get("text") or "").strip()]
    todo = [im for im in images if not (im.get("text") or "").strip()]
    failures: list[Row] = []
    done = 0
    for chunk in batched(todo, batch_size):
        opened = _open(chunk, load, failures)
        captions = captioner.caption([image for _, image in opened],
                                     max_new_tokens=max_new_tokens) if opened else []
        for (item, _), caption in zip(opened, captions, strict=True):
            if caption.strip():
                rows.append({"image_id": item["image_id"], "caption": caption.strip(),
                             "source": "model", "model": captioner.name})
            else:
                failures.append(bad(item, "empty_caption",
                                    f"the captioner {captioner.name} wrote nothing"))
        done += len(chunk)
        _tick(progress, done, len(todo))
    return rows, failures


def caption_source(row: Mapping[str, Any]) -> str:
    """Who wrote a caption: ``manifest`` or ``model:<captioner>``.

    Example:
        >>> caption_source({"source": "model", "model": "Salesforce/blip"})
        'model:Salesforce/blip'
    """
    return row["source"] if row["source"] != "model" else f"model:{row['model']}"


def phrase_rows(captions: Sequence[Mapping[str, Any]], nlp=None) -> tuple[list[Row], list[Row]]:
    """One row per (image, noun phrase) of its caption; a caption with none: `no_phrases`."""
    nlp = nlp or load_english()
    rows, failures = [], []
    found = noun_phrases_many([c["caption"] for c in captions], nlp)
    for caption, phrases in zip(captions, found, strict=True):
        if not phrases:
            failures.append(bad(caption, "no_phrases", "no noun phrase to point at in the "
                                f"caption {caption['caption']!r}"))
        rows += [{"image_id": caption["image_id"], "phrase": phrase, "phrase_index": i,
                  "caption_source": caption_source(caption)} for i, phrase in enumerate(phrases)]
    return rows, failures


def parser_name(nlp) -> str:
    """The spaCy pipeline as recorded: ``spacy:<lang>_<name>-<version>``."""
    meta = getattr(nlp, "meta", {}) or {}
    return f"spacy:{meta.get('lang', '?')}_{meta.get('name', '?')}-{meta.get('version', '?')}"


@dataclass(frozen=True)
class DetectParams:
    """How boxes are found and thinned (see `DetectionsConfig` in the asset)."""

    box_threshold: float = 0.35
    text_threshold: float = 0.25
    nms_iou: float = 0.5
    max_per_phrase: int = 5
    batch_size: int = 4
    max_side: int = 1333


def _detect(detector, smalls: list, phrases: list[list[str]], params: DetectParams):
    """Per image, its detections or the exception its model call raised alone."""
    kwargs = {"box_threshold": params.box_threshold, "text_threshold": params.text_threshold}
    try:
        return detector.detect(smalls, phrases, **kwargs)
    except MODEL_ERRORS:
        if len(smalls) == 1:
            raise
    found: list = []
    for small, image_phrases in zip(smalls, phrases, strict=True):
        try:
            found += detector.detect([small], [image_phrases], **kwargs)
        except MODEL_ERRORS as exc:
            found.append(exc)
    return found


def detection_rows(
    detector, images: Sequence[Mapping[str, Any]], params: DetectParams = DetectParams(), *,
    load: Loader = open_rgb, progress: Progress | None = None,
) -> tuple[list[Row], list[Row]]:
    """Boxes of each image's `phrases` (one model pass per image for all of them), thinned
    by per-phrase NMS, in original pixels; `region` numbers an image's boxes best first."""
    rows: list[Row] = []
    failures: list[Row] = []
    done = 0
    for chunk in batched(list(images), params.batch_size):
        opened = _open(chunk, load, failures)
        fitted = [(item, image.size, *fit_within(image, params.max_side)) for item, image in opened]
        smalls = [small for *_, small, _ in fitted]
        try:
            found = _detect(detector, smalls, [list(item["phrases"]) for item, *_ in fitted],
                            params) if fitted else []
        except MODEL_ERRORS as exc:  # one image, failing alone
            found = [exc]
        for (item, size, _, scale), detections in zip(fitted, found, strict=True):
            if isinstance(detections, Exception):
                failures.append(bad(item, "detector_failed", (
                    f"{detector.name} failed on this image alone: {detections} (many phrases "
                    "can overflow the detector's text length: shorten the caption)")))
                continue
            kept = per_phrase_nms(detections, params.nms_iou, max_per_phrase=params.max_per_phrase)
            if not kept:
                failures.append(bad(item, "no_detections", (
                    f"no box for {list(item['phrases'])} above box_threshold "
                    f"{params.box_threshold:g} and text_threshold {params.text_threshold:g}")))
            for region, d in enumerate(kept):
                x0, y0, x1, y1 = box_to_original(d.box, scale, size)
                rows.append({"image_id": item["image_id"], "region": region, "phrase": d.phrase,
                             "x0": x0, "y0": y0, "x1": x1, "y1": y1, "score": float(d.score),
                             "model": detector.name})
        done += len(chunk)
        _tick(progress, done, len(images))
    return rows, failures


def box_of(row: Mapping[str, Any]) -> tuple[float, float, float, float]:
    return (float(row["x0"]), float(row["y0"]), float(row["x1"]), float(row["y1"]))


def by_image(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Rows grouped by `image_id`, in order."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["image_id"]].append(row)
    return dict(groups)


def mask_rows(
    segmenter, detections: Sequence[Mapping[str, Any]], *, max_side: int = 1024,
    min_area: int = 1, load: Loader = open_rgb, progress: Progress | None = None,
) -> tuple[list[Row], list[Row]]:
    """A mask per box, one segmenter call per image (it embeds the image once for all its
    boxes), stored as RLE in original pixels; degenerate boxes and empty masks are refused."""
    rows: list[Row] = []
    failures: list[Row] = []
    groups = by_image(detections)
    for done, boxes in enumerate(groups.values(), 1):
        opened = _open(boxes[:1], load, failures)
        if not opened:
            continue
        image = opened[0][1]
        small, scale = fit_within(image, max_side)
        usable = []
        for row in boxes:
            x0, y0, x1, y1 = box_of(row)
            if x1 - x0 <= 0 or y1 - y0 <= 0:
                failures.append(bad(row, "degenerate_box", f"{_where(row)}: box ({x0:g}, "
                                    f"{y0:g}, {x1:g}, {y1:g}) has no area"))
            else:
                usable.append(row)
        masks = segmenter.segment(small, [box_to_copy(box_of(r), scale) for r in usable])
        for row, mask in zip(usable, masks, strict=True):
            full = mask_to_original(mask.mask, image.size)
            area = int(full.sum())
            if area < min_area:
                failures.append(bad(row, "empty_mask", f"{_where(row)}: the mask has {area} "
                                    f"pixels, minimum {min_area}"))
                continue
            rle = encode_rle(full)
            rows.append({**{k: row[k] for k in ("image_id", "region", "phrase", "x0", "y0", "x1",
                                                "y1", "score")},
                         "mask_counts": rle["counts"], "height": rle["size"][0],
                         "width": rle["size"][1], "area": area,
                         "predicted_iou": float(mask.iou), "model": segmenter.name})
        _tick(progress, done, len(groups))
    return rows, failures


def _where(row: Mapping[str, Any]) -> str:
    return f"{row['phrase']!r} (region {row['region']})"


def rle_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The COCO RLE of a stored mask row."""
    return {"size": [int(row["height"]), int(row["width"])], "counts": row["mask_counts"]}


def point_rows(
    masks: Sequence[Mapping[str, Any]], *, strategy: str = "centroid", n: int = 1,
    margin: float = 3.0, seed: int = 0,
) -> tuple[list[Row], list[Row]]:
    """Points inside each mask by `strategy`, seeded per (image, phrase)."""
    rows: list[Row] = []
    failures: list[Row] = []
    for mask in masks:
        found = sample_points(decode_rle(rle_of(mask)), strategy, n=n, margin=margin,
                              seed=point_seed(mask["image_id"], mask["phrase"], seed=seed))
        if not found.ok:
            failures.append(bad(mask, found.reason or "no_point",
                                f"{_where(mask)}: {found.detail}"))
        rows += [{"image_id": mask["image_id"], "region": mask["region"], "phrase": mask["phrase"],
                  "point": i, "x": x, "y": y, "strategy": strategy, "seed": seed,
                  "detail": found.detail} for i, (x, y) in enumerate(found.points)]
    return rows, failures


def _measured(row: Mapping[str, Any]) -> str:
    names = ("edge_distance_px", "box_iou", "area_share", "other_masks_at_point")
    return ", ".join(f"{n}={row[n]:.3g}" for n in names if row.get(n) is not None)


def check_rows(
    masks: Sequence[Mapping[str, Any]], points: Sequence[Mapping[str, Any]],
    config: VerifyConfig | None = None,
) -> tuple[list[Row], list[Row]]:
    """`verify_point` for every point against its mask, its box and the masks of the other
    phrases of its image; failures also become quarantine items with what was measured."""
    config = config or VerifyConfig()
    rows: list[Row] = []
    failures: list[Row] = []
    masks_of = by_image(masks)
    points_of = by_image(points)
    for image_id, image_points in points_of.items():
        regions = {m["region"]: m for m in masks_of.get(image_id, [])}
        decoded = {r: decode_rle(rle_of(m)) for r, m in regions.items()}
        for point in image_points:
            mask = regions[point["region"]]
            others = [(m["phrase"], decoded[r]) for r, m in regions.items()
                      if m["phrase"] != point["phrase"]]
            verdict = verify_point((point["x"], point["y"]), decoded[point["region"]],
                                   box_of(mask), others=others, config=config).row()
            verdict = {k: (None if isinstance(v, float) and np.isnan(v) else v)
                       for k, v in verdict.items()}
            rows.append({**{k: point[k] for k in ("image_id", "region", "phrase", "point", "x",
                                                  "y")}, **verdict})
            if not verdict["verified"]:
                failures.append(bad(mask, verdict["reason"], (
                    f"{_where(mask)} point {point['point']} ({point['x']:.1f}, "
                    f"{point['y']:.1f}): {verdict['detail']} [{_measured(verdict)}]")))
    return rows, failures


CHECK_REASONS = ("point_outside_mask", "point_near_edge", "mask_box_mismatch", "mask_too_small",
                 "mask_too_large", "point_ambiguous")
"""The reasons of verification's checks, reported with a pass rate each even when none fails."""


def pass_rates(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Per failure reason, the share of points that did not fail for it; ``all`` is the share
    verified.

    Example:
        >>> pass_rates([{"verified": True, "reasons": []},
        ...             {"verified": False, "reasons": ["point_near_edge"]}])["point_near_edge"]
        0.5
    """
    total = len(rows)
    failing = Counter(reason for row in rows for reason in set(row.get("reasons") or ()))
    rates = {"all": sum(bool(r["verified"]) for r in rows) / total if total else 0.0}
    for reason in dict.fromkeys([*CHECK_REASONS, *sorted(failing)]):
        rates[reason] = 1.0 - failing[reason] / total if total else 0.0
    return rates
