"""Ingestion assets: audio clips, images and videos of a batch, probed, hashed, deduplicated.

Bad input never stops a partition: it lands in `quarantine` with a reason.
Source-level problems (a bad manifest line, an unknown extension, a path
outside the allowed roots) are quarantined by `audio_clips`, unless the line
names an image or a video, which their own assets record.
"""


import sys
from typing import Literal

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import labeling.ingest
import sql
from assets.common import batches, drop_claimed, ingest_metadata, known_ids, progress_logger
from labeling.ingest.manifest import SourceEntry, SourceIssue, iter_source
from labeling.ingest.rows import AudioLimits, ingest_audio, ingest_images, ingest_videos
from labeling.ingest.segment import Segmenter
from resources.model_hub import ModelHub
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

LABELING = (labeling.ingest,)


class AudioIngestConfig(Config):
    max_seconds: float = Field(30.0, description="Longer clips are quarantined (Whisper's window).")
    silence_dbfs: float = Field(-60.0, description="Clips whose RMS is below this are silent.")
    max_words_per_second: float = Field(10.0, gt=0, description="A transcript faster than this "
                                        "over its clip is implausible_transcript (fast speech "
                                        "is 4-6 words/s).")
    max_chars_per_second: float = Field(60.0, gt=0, description="The same limit in non-space "
                                        "characters (text without spaces, e.g. Chinese).")
    segment: Literal["", "off", "vad"] = Field(
        "", description="'vad': a recording over max_seconds is cut into speech segments "
        "(clips `file#t=START,END` without a transcript) by the region detector; 'off': it "
        "is quarantined as too_long; empty: as registered with the batch (`rlfoundry ingest "
        "--segment`).")
    vad_model: str = Field("", description="The region detector that segments: a silero "
                           ".jit file or folder; empty = the model_hub resource's "
                           "region_detector_model (else $RLFOUNDRY_REGION_DETECTOR_MODEL, "
                           "else bundled silero-vad).")


class VideoIngestConfig(Config):
    max_seconds: float = Field(600.0, description="Longer videos are quarantined.")


def _entries(warehouse: Warehouse, batch: str, kind: str, issues: list[SourceIssue]):
    """The batch's entries of `kind`, streamed; the source issues this asset owns go to `issues`."""
    src = warehouse.batch_source(batch)
    for item in iter_source(src["source"], src["allowed_roots"], format=src.get("format"),
                            text_key=src.get("text_key")):
        if isinstance(item, SourceEntry):
            if item.kind == kind:
                yield item
        elif item.kind == kind or (kind == "audio" and item.kind is None):
            issues.append(item)


def _ingest_batch(warehouse: Warehouse, table: str, id_column: str, batch: str, kind: str,
                  ingest):
    """Stream the batch's `kind` entries through `ingest` into `table`, then write quarantine.

    Cross-batch dedupe holds under concurrent ingests: `ingest` skips the hashes other
    batches held when the asset started (`known_ids`, read without a lock), decoding the
    whole batch lock-free into a temporary file; then, under the warehouse's
    `ingest-<table>` lock, the hashes other batches committed meanwhile are dropped from
    that file (as `duplicate` quarantine rows) and the file is published. The lock covers
    only that re-check and the rename, and serializes publication: the batch that
    committed first keeps a shared clip, the later one records it as a duplicate.
    """
    issues: list[SourceIssue] = []
    claimed: list[dict] = []

    def before_commit(path):
        claimed.extend(drop_claimed(warehouse, table, id_column, batch, path))

    with warehouse.partition_writer(table, batch, lock=f"ingest-{table}",
                                    before_commit=before_commit) as writer:
        result = ingest(_entries(warehouse, batch, kind, issues), writer.write)
    result.ingested -= len(claimed)
    result.duplicates += len(claimed)
    result.quarantined.extend(claimed)
    result.quarantined.extend(i.as_quarantine_row() for i in issues)
    warehouse.write_quarantine(table, batch, result.quarantined)
    notes = {"notes": MetadataValue.json(dict(result.notes))} if result.notes else {}
    return MaterializeResult(metadata=ingest_metadata(result) | notes)


@asset(partitions_def=batches, group_name="ingest", code_version=sql.version(
           "queries/known_hashes", "queries/claimed_hashes", "schema/audio_clips", THIS,
           *LABELING))
def audio_clips(
    context: AssetExecutionContext, config: AudioIngestConfig, warehouse: Warehouse,
    model_hub: ModelHub,
) -> MaterializeResult:
    """Decodable, unique audio clips of a batch: hash, duration, level, transcript, tags."""
    batch = context.partition_key
    known = known_ids(warehouse, "audio_clips", "clip_id", batch)
    limits = AudioLimits(config.max_seconds, config.silence_dbfs,
                         config.max_words_per_second, config.max_chars_per_second)
    progress = progress_logger(context, "audio files")
    segmenter = _segmenter(config, warehouse.batch_source(batch).get("segment"), model_hub)
    return _ingest_batch(warehouse, "audio_clips", "clip_id", batch, "audio",
                         lambda entries, sink: ingest_audio(entries, limits, known, progress, sink,
                                                            segmenter))


def _segmenter(config: AudioIngestConfig, registered: str | None,
               model_hub: ModelHub) -> Segmenter | None:
    """The segmenter of long recordings the config (else the batch's registration) asks for.

    The detector is `config.vad_model`, else the one the `model_hub` resource is configured
    with (its `region_detector_model`, else `$RLFOUNDRY_REGION_DETECTOR_MODEL`, else the
    bundled silero-vad), as for the other assets that load models."""
    if (config.segment or registered or "off") != "vad":
        return None
    detector = model_hub.load("region_detector", config.vad_model or None)
    return Segmenter(detector, max_s=config.max_seconds)


@asset(partitions_def=batches, group_name="ingest", code_version=sql.version(
           "queries/known_hashes", "queries/claimed_hashes", "schema/images", THIS,
           *LABELING))
def images(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Decodable, unique images of a batch: hash, size, format."""
    batch = context.partition_key
    known = known_ids(warehouse, "images", "image_id", batch)
    progress = progress_logger(context, "images")
    return _ingest_batch(warehouse, "images", "image_id", batch, "image",
                         lambda entries, sink: ingest_images(entries, known, progress, sink))


@asset(partitions_def=batches, group_name="ingest", code_version=sql.version(
           "queries/known_hashes", "queries/claimed_hashes", "schema/videos", THIS,
           *LABELING))
def videos(
    context: AssetExecutionContext, config: VideoIngestConfig, warehouse: Warehouse
) -> MaterializeResult:
    """Decodable, unique videos of a batch: hash, size, fps, frame count, duration."""
    batch = context.partition_key
    known = known_ids(warehouse, "videos", "video_id", batch)
    progress = progress_logger(context, "videos")
    return _ingest_batch(
        warehouse, "videos", "video_id", batch, "video",
        lambda entries, sink: ingest_videos(entries, config.max_seconds, known, progress, sink))
