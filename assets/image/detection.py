"""Boxes for each phrase (open-vocabulary detector) and a mask for each box (segmenter)."""

import sys
from collections import Counter

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import assets.label_sets
import labeling.image.chain
import labeling.image.nms
import labeling.image.pixels
import models.vision
import sql
from assets.common import batches, progress_logger, read, reasons_md
from assets.image import common as image_common
from assets.image.common import model_metadata, weights_kind
from assets.label_sets import made_from, stamp
from labeling.image.chain import DetectParams, detection_rows, mask_rows
from resources.model_hub import ModelHub
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

PHRASES_SQL = "queries/image_phrases_for_batch"
DETECTIONS_SQL = "queries/image_detections_for_batch"


class DetectionsConfig(Config):
    model: str = Field("", description="Detector (hub id or folder); empty = the model hub's "
                       "detector (Grounding DINO).")
    box_threshold: float = Field(0.35, ge=0, le=1, description="Least box confidence "
                                 "(Grounding DINO's published default).")
    text_threshold: float = Field(0.25, ge=0, le=1, description="Least match between a box "
                                  "and its phrase's tokens (Grounding DINO's default).")
    nms_iou: float = Field(0.5, ge=0, le=1, description="Boxes of one phrase overlapping a "
                           "better one by more than this IoU are dropped (per-phrase NMS).")
    max_per_phrase: int = Field(5, ge=1, description="At most this many boxes per phrase and "
                                "image, best first.")
    batch_size: int = Field(4, ge=1, description="Images per detector call (each with all "
                            "its phrases in one prompt).")
    max_side: int = Field(1333, ge=0, description="Images longer than this (px) are shrunk "
                          "for the detector (its processor works at 800-1333 px anyway); "
                          "boxes are mapped back to original pixels. 0 = never shrink.")


@asset(partitions_def=batches, group_name="image", deps=["image_phrases", "images"], pool="gpu",
       code_version=sql.version(PHRASES_SQL, "schema/image_detections", THIS,
                                image_common, assets.label_sets, labeling.image.chain,
                                labeling.image.nms, labeling.image.pixels, models.vision))
def image_detections(
    context: AssetExecutionContext, config: DetectionsConfig, warehouse: Warehouse,
    model_hub: ModelHub,
) -> MaterializeResult:
    """Boxes of every phrase of each image, in original pixels, thinned by per-phrase NMS; an
    image with no box is quarantined as `no_detections`."""
    batch = context.partition_key
    images = read(warehouse, PHRASES_SQL, batch)
    detector = model_hub.load("detector", config.model or None) if images else None
    params = DetectParams(config.box_threshold, config.text_threshold, config.nms_iou,
                          config.max_per_phrase, config.batch_size, config.max_side)
    rows, failures = detection_rows(detector, images, params,
                                    progress=progress_logger(context, "images searched"))
    weights = weights_kind(detector) if detector else None
    warehouse.write_partition("image_detections", batch,
                              stamp(rows, made_from(images), weights=weights))
    warehouse.write_quarantine("image_detections", batch, failures)
    metadata = {
        "images": len(images), "boxes": len(rows),
        "images_with_boxes": len({r["image_id"] for r in rows}),
        "boxes_per_phrase": MetadataValue.json(dict(Counter(r["phrase"] for r in rows)
                                                    .most_common(20))),
        "quarantined": len(failures), "quarantine_reasons": reasons_md(failures),
    }
    if detector is not None:
        metadata |= model_metadata(context, "detector", detector)
    return MaterializeResult(metadata=metadata)


class MasksConfig(Config):
    model: str = Field("", description="Segmenter (hub id or folder); empty = the model hub's "
                       "segmenter (SAM).")
    max_side: int = Field(1024, ge=0, description="Images longer than this (px) are shrunk "
                          "for the segmenter (SAM works at 1024 px); masks are scaled back to "
                          "original pixels. 0 = never shrink.")
    min_area: int = Field(1, ge=1, description="A mask with fewer pixels is quarantined as "
                          "`empty_mask`.")


@asset(partitions_def=batches, group_name="image", deps=["image_detections", "images"],
       pool="gpu",
       code_version=sql.version(DETECTIONS_SQL, "schema/image_masks", THIS, image_common,
                                assets.label_sets, labeling.image.chain, labeling.image.pixels,
                                models.vision))
def image_masks(
    context: AssetExecutionContext, config: MasksConfig, warehouse: Warehouse,
    model_hub: ModelHub,
) -> MaterializeResult:
    """A mask per box from box prompts (one image embedding per image, the candidate with the
    best predicted IoU), stored as COCO RLE in original pixels; empty masks are quarantined."""
    batch = context.partition_key
    boxes = read(warehouse, DETECTIONS_SQL, batch)
    segmenter = model_hub.load("segmenter", config.model or None) if boxes else None
    rows, failures = mask_rows(segmenter, boxes, max_side=config.max_side,
                               min_area=config.min_area,
                               progress=progress_logger(context, "images segmented"))
    weights = weights_kind(segmenter) if segmenter else None
    warehouse.write_partition("image_masks", batch, stamp(rows, made_from(boxes), weights=weights))
    warehouse.write_quarantine("image_masks", batch, failures)
    areas = sorted(r["area"] / (r["height"] * r["width"]) for r in rows)
    metadata = {
        "boxes": len(boxes), "masks": len(rows),
        "median_area_share": round(areas[len(areas) // 2], 4) if areas else 0.0,
        "mean_predicted_iou": round(sum(r["predicted_iou"] for r in rows) / len(rows), 4)
        if rows else 0.0,
        "quarantined": len(failures), "quarantine_reasons": reasons_md(failures),
    }
    if segmenter is not None:
        metadata |= model_metadata(context, "segmenter", segmenter)
    return MaterializeResult(metadata=metadata)
