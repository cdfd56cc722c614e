"""Ingestion assets: audio clips, images and videos of a batch, probed, hashed, deduplicated.

Bad input never stops a partition: it lands in `quarantine` with a reason.
Source-level problems (a bad manifest line, an unknown extension, a path
outside the allowed roots) are quarantined by `audio_clips`, unless the line
names an image or a video, which their own assets record.
"""


from dagster import AssetExecutionContext, Config, MaterializeResult, asset
from pydantic import Field

import sql
from assets.common import batches, ingest_metadata, known_ids, progress_logger
from labeling.ingest import AudioLimits, IngestResult, ingest_audio, ingest_images, ingest_videos
from labeling.manifest import SourceIssue, read_source
from resources.warehouse import Warehouse

INGEST_SQL = sql.digest("queries/known_hashes")


class AudioIngestConfig(Config):
    max_seconds: float = Field(30.0, description="Longer clips are quarantined (Whisper's window).")
    silence_dbfs: float = Field(-60.0, description="Clips whose RMS is below this are silent.")


class VideoIngestConfig(Config):
    max_seconds: float = Field(600.0, description="Longer videos are quarantined.")


def _source(warehouse: Warehouse, batch: str, kind: str):
    src = warehouse.batch_source(batch)
    entries, issues = read_source(src["source"], src["allowed_roots"])
    mine = [e for e in entries if e.kind == kind]
    own = [i for i in issues if i.kind == kind or (kind == "audio" and i.kind is None)]
    return mine, own


def _finish(
    warehouse: Warehouse, asset_name: str, table: str, batch: str,
    result: IngestResult, issues: list[SourceIssue],
) -> MaterializeResult:
    result.quarantined.extend(i.as_quarantine_row() for i in issues)
    warehouse.write_partition(table, batch, result.rows)
    warehouse.write_quarantine(asset_name, batch, result.quarantined)
    return MaterializeResult(metadata=ingest_metadata(result))


@asset(partitions_def=batches, group_name="ingest", code_version=f"1-{INGEST_SQL}-"
       f"{sql.digest('schema/audio_clips')}")
def audio_clips(
    context: AssetExecutionContext, config: AudioIngestConfig, warehouse: Warehouse
) -> MaterializeResult:
    """Decodable, unique audio clips of a batch: hash, duration, level, transcript, tags."""
    batch = context.partition_key
    entries, issues = _source(warehouse, batch, "audio")
    context.log.info(f"{len(entries)} audio entries, {len(issues)} source issues")
    result = ingest_audio(
        entries, AudioLimits(config.max_seconds, config.silence_dbfs),
        known_ids(warehouse, "audio_clips", "clip_id", batch), progress_logger(context, "audio"),
    )
    return _finish(warehouse, "audio_clips", "audio_clips", batch, result, issues)


@asset(partitions_def=batches, group_name="ingest", code_version=f"1-{INGEST_SQL}-"
       f"{sql.digest('schema/images')}")
def images(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Decodable, unique images of a batch: hash, size, format."""
    batch = context.partition_key
    entries, issues = _source(warehouse, batch, "image")
    result = ingest_images(
        entries, known_ids(warehouse, "images", "image_id", batch),
        progress_logger(context, "images"),
    )
    return _finish(warehouse, "images", "images", batch, result, issues)


@asset(partitions_def=batches, group_name="ingest", code_version=f"1-{INGEST_SQL}-"
       f"{sql.digest('schema/videos')}")
def videos(
    context: AssetExecutionContext, config: VideoIngestConfig, warehouse: Warehouse
) -> MaterializeResult:
    """Decodable, unique videos of a batch: hash, size, fps, frame count, duration."""
    batch = context.partition_key
    entries, issues = _source(warehouse, batch, "video")
    result = ingest_videos(
        entries, config.max_seconds, known_ids(warehouse, "videos", "video_id", batch),
        progress_logger(context, "videos"),
    )
    return _finish(warehouse, "videos", "videos", batch, result, issues)
