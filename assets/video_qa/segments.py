"""Each video of a batch as standard frames, cut at 70 %: the frames before are the input."""

import sys
from collections import Counter

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import assets.common
import assets.label_sets
import labeling.video_qa.segments
import sql
from assets.common import batches, progress_logger, read, reasons_md, table_md
from assets.label_sets import clip_set, stamp
from labeling.video_qa.segments import SegmentSettings, segment_rows
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

VIDEOS_SQL = "queries/videos_for_batch"


class VideoSegmentsConfig(Config):
    fps: float = Field(2.0, ge=0, description="Frames per second kept, sampled on a grid from "
                       "the first frame (a source slower than this repeats frames); 0 = every "
                       "source frame at its own time.")
    short_side: int = Field(224, ge=0, description="Pixels of each frame's shorter side (aspect "
                            "kept); 0 = the source size.")
    cut: float = Field(0.7, gt=0, lt=1, description="Where each video is cut, as a share of its "
                       "duration: frames before are the model's input, frames at or after it "
                       "the truth the questions are about.")
    min_context: int = Field(2, ge=1, description="Fewer frames before the cut: the video is "
                             "quarantined as `too_short`.")
    min_truth: int = Field(1, ge=1, description="Fewer frames at or after the cut: the video "
                           "is quarantined as `too_short`.")
    image_format: str = Field("jpeg", pattern="^(jpeg|png)$", description="How frames are "
                              "written: jpeg (small) or png (lossless).")
    jpeg_quality: int = Field(90, ge=1, le=100, description="JPEG quality of the frames.")


@asset(partitions_def=batches, group_name="video_qa", deps=["videos"],
       code_version=sql.version(VIDEOS_SQL, "queries/clip_sets", "schema/video_segments", THIS,
                                assets.common, assets.label_sets, labeling.video_qa.segments))
def video_segments(
    context: AssetExecutionContext, config: VideoSegmentsConfig, warehouse: Warehouse,
) -> MaterializeResult:
    """Every video decoded (PyAV) into frames at a standard rate and size, and cut exactly to a
    frame at `cut` of its duration; a video that does not decode, or leaves too few frames on
    a side, is quarantined with its reason."""
    batch = context.partition_key
    videos = read(warehouse, VIDEOS_SQL, batch)
    settings = SegmentSettings(config.fps or None, config.short_side or None, config.cut,
                               config.min_context, config.min_truth, config.image_format,
                               config.jpeg_quality)
    rows, failures = segment_rows(videos, warehouse.report_dir("video_segments", batch),
                                  settings, progress_logger(context, "videos cut"))
    warehouse.write_partition("video_segments", batch,
                              stamp(rows, clip_set(warehouse, "videos", batch)))
    warehouse.write_quarantine("video_segments", batch, failures)
    return MaterializeResult(metadata={
        "videos": len(videos), "segments": len(rows),
        "frames": sum(r["context_frames"] + r["truth_frames"] for r in rows),
        "frame_size": MetadataValue.json(dict(Counter(f"{r['width']}x{r['height']}"
                                                      for r in rows))),
        "quarantined": len(failures), "quarantine_reasons": reasons_md(failures),
        "sample": table_md(["video", "seconds", "cut s", "context", "truth", "source cut frame"],
                           [(r["source_path"].rsplit("/", 1)[-1], round(r["duration_s"], 3),
                             round(r["cut_s"], 3), r["context_frames"], r["truth_frames"],
                             r["source_cut_frame"]) for r in rows[:10]], "no segment"),
    })
