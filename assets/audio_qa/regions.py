"""Sound regions of each clip, from every source it has, and its durations per class.

Policy (see `labeling.audio_qa.chain`): a clip's questions use its human regions, else its
manifest's (`regions` tag), else the speech detector's; the others are recorded but not used
(the manifest wins over the model for the same clip). Given regions are a complete
annotation; detected ones cover speech only (silero-vad): `models` has no audio-tagger role,
so music, noise and any other class need manifest or human regions. Human regions are the
clips' accepted reviews in Label Studio (`audio_qa_qc_verdicts`, table `sound_region_reviews`).
"""

import statistics
import sys
from collections import Counter
from typing import Literal

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import assets.common
import assets.label_sets
import labeling.audio_qa
import labeling.qc.region_verdicts
import models.regions
import sql
from assets.common import (
    CLIPS_SQL,
    batches,
    load_clips,
    progress_logger,
    read,
    reasons_md,
    table_md,
)
from assets.label_sets import clip_set, made_from, stamp
from labeling.audio_qa.chain import (
    detect_regions,
    duration_rows,
    is_complete,
    region_rows,
    speech_agreement,
)
from labeling.ingest.audio import load_audio_16k
from labeling.qc.region_verdicts import human_regions
from resources.model_hub import ModelHub
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

REGIONS_SQL = "queries/sound_regions_for_batch"
HUMAN_SQL = "queries/human_regions_for_batch"
DETECTED_CLASSES = ("speech",)
"""What the region detector role (silero-vad) labels; every other class must be given."""


class SoundRegionsConfig(Config):
    detect_speech: Literal["all", "missing", "off"] = Field(
        "all", description="Run the speech detector on every clip ('all': where the manifest "
        "gives regions they still win, and the detector's agreement with them is measured), "
        "only on clips without given regions ('missing'), or never ('off').")
    model: str = Field("", description="Speech-region detector (a silero .jit file or "
                       "folder); empty = the model hub's region detector (bundled silero-vad).")
    classes: list[str] = Field([], description="The sound classes a region may have; a "
                               "given region of another is quarantined (`unknown_class`) and "
                               "its clip's annotation refused. Empty = any non-blank label.")
    slack_s: float = Field(0.05, ge=0, description="A region ending past the clip (or "
                           "starting before it) by at most this is clipped to it; by more, "
                           "it is quarantined as `outside_clip`.")
    chunk: int = Field(64, ge=1, description="Clips decoded and run through the detector "
                       "at a time (memory).")
    threads: int = Field(1, ge=1, description="Torch threads the detector runs on (silero-vad "
                         "is tiny; more threads beside other torch steps spin against them).")


@asset(partitions_def=batches, group_name="audio_qa", deps=["audio_clips", "audio_qa_qc_verdicts"],
       code_version=sql.version(CLIPS_SQL, "queries/clip_sets", HUMAN_SQL,
                                "schema/sound_regions", THIS, assets.common, assets.label_sets,
                                labeling.audio_qa, labeling.qc.region_verdicts, models.regions))
def sound_regions(
    context: AssetExecutionContext, config: SoundRegionsConfig, warehouse: Warehouse,
    model_hub: ModelHub,
) -> MaterializeResult:
    """Every clip's sound regions with their source (`manifest`, `human`, `model:<name>`) and
    whether its questions use them; bad given regions are quarantined with their reason."""
    batch = context.partition_key
    clips = load_clips(warehouse, batch)
    human = human_regions(read(warehouse, HUMAN_SQL, batch))
    to_detect = [c for c in clips if config.detect_speech == "all" or (
        config.detect_speech == "missing" and "regions" not in c["tags"]
        and c["clip_id"] not in human)]
    detector = model_hub.load("region_detector", config.model or None) if to_detect else None
    detected, failures = detect_regions(detector, to_detect, load_audio_16k, chunk=config.chunk,
                                        threads=config.threads,
                                        progress=progress_logger(context, "clips detected"))
    rows, problems = region_rows(clips, detected, detector=detector.name if detector else "",
                                 human=human, classes=config.classes or None,
                                 slack_s=config.slack_s)
    failures += problems
    warehouse.write_partition("sound_regions", batch,
                              stamp(rows, clip_set(warehouse, "audio_clips", batch)))
    warehouse.write_quarantine("sound_regions", batch, failures)
    return MaterializeResult(metadata={
        "clips": len(clips), "regions": len(rows),
        **_source_metadata(rows, clips), **_detector_metadata(detector, rows, detected),
        "quarantined": len(failures), "quarantine_reasons": reasons_md(failures),
    })


def _source_metadata(rows: list[dict], clips: list[dict]) -> dict:
    used = {r["clip_id"]: r["source"] for r in rows if r["used"]}
    given_classes = sorted({r["label"] for r in rows if is_complete(r["source"])})
    return {
        "regions_by_source": MetadataValue.json(dict(Counter(r["source"] for r in rows))),
        "clips_by_used_source": MetadataValue.json(
            dict(Counter(used.get(c["clip_id"], "none") for c in clips))),
        "given_classes": MetadataValue.json(given_classes),
    }


def _detector_metadata(detector, rows: list[dict], detected: dict) -> dict:
    undetected = sorted({r["label"] for r in rows} - set(DETECTED_CLASSES))
    note = ("no audio-tagger role in `models`: only speech is detected (silero-vad); "
            f"{', '.join(undetected) or 'other classes'} need manifest or human regions")
    if detector is None:
        return {"detector": MetadataValue.text("none run"), "detected_classes": note}
    iou = speech_agreement(rows, ran_on=detected.keys())
    return {
        "detector": MetadataValue.text(detector.name),
        "weights": MetadataValue.text("pretrained"),  # silero-vad's own (PyPI), never random
        "detected_classes": MetadataValue.text(note),
        "speech_iou_vs_given": round(statistics.fmean(iou.values()), 4) if iou else None,
        "speech_iou_clips": len(iou),
        "speech_iou_per_clip": table_md(["clip", "IoU"], [(c[:12], round(v, 3))
                                                          for c, v in sorted(iou.items())]),
    }


@asset(partitions_def=batches, group_name="audio_qa", deps=["sound_regions"],
       code_version=sql.version(REGIONS_SQL, "schema/sound_durations", THIS, assets.common,
                                assets.label_sets, labeling.audio_qa))
def sound_durations(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Per clip and class of the regions its questions use: seconds heard, first start, last
    end, occurrences, overlaps with each other class, and the clip's most classes at once."""
    batch = context.partition_key
    regions = read(warehouse, REGIONS_SQL, batch)
    rows = duration_rows(regions)
    warehouse.write_partition("sound_durations", batch, stamp(rows, made_from(regions)))
    totals: dict[str, float] = {}
    for r in rows:
        totals[r["label"]] = totals.get(r["label"], 0.0) + r["total_s"]
    per_clip = {r["clip_id"]: r["max_concurrent"] for r in rows}
    return MaterializeResult(metadata={
        "clips": len(per_clip), "rows": len(rows),
        "seconds_per_class": MetadataValue.json({k: round(v, 2)
                                                 for k, v in sorted(totals.items())}),
        "clips_by_max_concurrent": MetadataValue.json(
            {str(k): v for k, v in sorted(Counter(per_clip.values()).items())}),
        "sources": MetadataValue.json(dict(Counter(r["regions_source"] for r in rows))),
    })
