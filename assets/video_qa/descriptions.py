"""What happens before and after each video's cut, in words: given, or written by the VLM.

Human descriptions (Label Studio) are not pulled yet: `labeling.video_qa.descriptions` takes
them (`human=`) and ranks them first; the `source` column is ready for them.
"""

import json
import sys
from collections import Counter

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import assets.common
import assets.label_sets
import labeling.video_qa.descriptions
import models.vlm
import sql
from assets.common import batches, progress_logger, read, reasons_md, table_md
from assets.image.common import model_metadata, weights_kind
from assets.label_sets import made_from, stamp
from labeling.video_qa.descriptions import DescribeSettings, description_rows, missing_parts
from resources.model_hub import ModelHub
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

VIDEOS_SQL = "queries/videos_for_batch"
SEGMENTS_SQL = "queries/video_segments_for_batch"


class VideoDescriptionsConfig(Config):
    model: str = Field("", description="VLM (hub id or folder) for the parts no person or "
                       "manifest describes; empty = the model hub's vlm. Not loaded when "
                       "every part is given.")
    max_frames: int = Field(8, ge=1, description="The most frames of a part the VLM is shown "
                            "(evenly spaced, first and last included).")
    max_new_tokens: int = Field(96, ge=1, description="Longest description, in tokens.")
    batch_size: int = Field(4, ge=1, description="Parts per VLM call.")


@asset(partitions_def=batches, group_name="video_qa", deps=["video_segments", "videos"],
       pool="gpu",
       code_version=sql.version(VIDEOS_SQL, SEGMENTS_SQL, "schema/video_descriptions", THIS,
                                assets.common, assets.label_sets,
                                labeling.video_qa.descriptions, models.vlm))
def video_descriptions(
    context: AssetExecutionContext, config: VideoDescriptionsConfig, warehouse: Warehouse,
    model_hub: ModelHub,
) -> MaterializeResult:
    """Per video, a description of its frames before the cut (context) and after it (truth):
    the manifest's (`description`, `truth_description`) when given, else the VLM's shown the
    part's frames; each row says its source (`manifest`, `human`, `model:<id>`)."""
    batch = context.partition_key
    segments = {s["video_id"]: s for s in read(warehouse, SEGMENTS_SQL, batch)}
    videos = [{**v, "tags": json.loads(v["tags"])} for v in read(warehouse, VIDEOS_SQL, batch)
              if v["video_id"] in segments]
    vlm = model_hub.load("vlm", config.model or None) if missing_parts(videos, segments) else None
    rows, failures = description_rows(
        vlm, videos, segments, settings=DescribeSettings(config.max_frames,
                                                         config.max_new_tokens,
                                                         config.batch_size),
        progress=progress_logger(context, "parts described"))
    weights = weights_kind(vlm) if vlm else None
    rows = [{**r, "weights": weights if r["model"] else None} for r in rows]
    warehouse.write_partition("video_descriptions", batch,
                              stamp(rows, made_from(segments.values())))
    warehouse.write_quarantine("video_descriptions", batch, failures)
    metadata = {
        "videos": len(videos), "descriptions": len(rows),
        "by_source": MetadataValue.json(dict(Counter(f"{r['part']}/{r['source']}"
                                                     for r in rows))),
        "quarantined": len(failures), "quarantine_reasons": reasons_md(failures),
        "sample": table_md(["video", "part", "source", "description"],
                           [(r["video_id"][:12], r["part"], r["source"], r["description"][:120])
                            for r in rows[:8]], "no description"),
        "model": MetadataValue.text("none: every part's description is given"),
    }
    if vlm is not None:
        metadata |= model_metadata(context, "vlm", vlm)
    return MaterializeResult(metadata=metadata)
