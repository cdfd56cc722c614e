"""Human QC of the sound regions in Label Studio: push each clip with its regions pre-drawn,
pull what people marked back as the clips' `human` regions.

`audio_qa_qc_tasks` pushes a batch's clips (one task each: the audio, a label per class, the
manifest's or the detector's regions as a prediction; a share routed to a second annotator);
people correct and complete the regions in Label Studio; `audio_qa_qc_verdicts` pulls (as
often as wanted) into `sound_region_reviews`: each clip's status, the agreement between
annotators by class-wise IoU over time, and the accepted regions, which `sound_regions`
uses as the clip's `human` source on its next run (before the manifest's and the model's).

Lineage: the push reads `sound_regions`' table for its pre-drawn regions, but declares only
`audio_clips`: `sound_regions` reads this QC's verdicts (a declared dependency, so the pull
job rebuilds the chain after the verdicts), and Dagster's graph has no cycles. Run the
chain (`audio_qa_labeling`) before the push, or clips are pushed without pre-drawn regions.
"""

import sys
from collections import Counter
from datetime import UTC, datetime

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import labeling.qc.region_verdicts
import labeling.qc.regions
import sql
from assets.audio_qa.questions import VOCABULARY
from assets.common import CLIPS_SQL, batches, load_clips, read, reasons_md, table_md
from assets.qc import exported_tasks, import_tasks
from labeling.qc import region_verdicts, regions, tasks
from resources.label_studio import LabelStudio, LabelStudioError
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

REGIONS_SQL = "queries/sound_regions_for_batch"
PROJECT = "rlfoundry: mark the sounds of each clip"
DESCRIPTION = ("Mark every sound of the clip with its class (start and end); the pre-drawn "
               "regions come from the manifest or a detector: correct them. Tasks with "
               "second_review = true need a second annotator.")
CLASSES = [*VOCABULARY, *(c for c in regions.CLASSES if c not in VOCABULARY)]
"""The chain's vocabulary (a human annotation is complete over it), then silence and other."""


class AudioQaQcConfig(Config):
    project: str = Field(PROJECT, description="Title of the Label Studio project (created with "
                         "the region-QC labeling config if missing); push and pull use the same.")


class AudioQaQcPushConfig(AudioQaQcConfig):
    classes: list[str] = Field(CLASSES, description="The labels annotators pick from (fixed "
                               "when the project is created: its labeling config holds them; "
                               "an existing project keeps its own). Keep the chain's whole "
                               "vocabulary: a human annotation is taken as complete over it.")
    second_review_share: float = Field(0.2, ge=0, le=1, description="Share of clips routed "
                                       "to a second annotator (by a hash of the clip id and "
                                       "`seed`).")
    seed: int = Field(0, description="Seed of the second-review routing.")


class AudioQaQcPullConfig(AudioQaQcConfig):
    min_iou: float = Field(0.5, ge=0, le=1, description="Two annotations of a clip agree when "
                           "every class either marked has at least this IoU over time; a "
                           "clip whose annotations all disagree keeps its other regions.")
    slack_s: float = Field(0.05, ge=0, description="A region ending past the clip by at most "
                           "this is clipped to it; by more, its annotation is refused "
                           "(quarantined as `outside_clip`).")


def project_classes(label_studio: LabelStudio, project: int) -> list[str]:
    """The classes the project's labeling config offers (what annotators could pick)."""
    config = label_studio.request("GET", f"/api/projects/{project}/")["label_config"]
    found = regions.config_classes(config)
    if not found:
        raise LabelStudioError(f"Label Studio project {project} at {label_studio.base_url} has "
                               f"no <Labels name={regions.LABELS!r}> tag: it is not a region-"
                               "QC project; set `project` to another title.")
    return found


@asset(partitions_def=batches, group_name="qc", deps=["audio_clips"],
       code_version=sql.version(CLIPS_SQL, REGIONS_SQL, THIS, labeling.qc.regions))
def audio_qa_qc_tasks(context: AssetExecutionContext, config: AudioQaQcPushConfig,
                      warehouse: Warehouse, label_studio: LabelStudio) -> MaterializeResult:
    """The batch's clips as region-marking tasks in Label Studio, the manifest's (else the
    detector's) regions pre-drawn; a re-push adds only the clips not there yet."""
    batch = context.partition_key
    clips = load_clips(warehouse, batch)
    given = regions.preannotations(read(warehouse, REGIONS_SQL, batch))
    project = label_studio.ensure_project(config.project,
                                          regions.regions_config_xml(config.classes),
                                          DESCRIPTION)
    classes = project_classes(label_studio, project)
    there = {t["data"].get("clip_id")
             for t in tasks.batch_tasks(label_studio.export_tasks(project), batch)}
    new = [c for c in clips if c["clip_id"] not in there]
    for directory in tasks.storage_dirs([c["source_path"] for c in new], label_studio.root):
        label_studio.ensure_local_storage(project, directory)
    pushed = regions.region_tasks(new, given, batch=batch, classes=classes,
                                  media_url=label_studio.media_url,
                                  share=config.second_review_share, seed=config.seed)
    flagged = import_tasks(label_studio, project, pushed)
    served = sum(t["data"]["audio"].startswith("/data/local-files/") for t in pushed)
    context.log.info(f"Pushed {len(pushed)} clip task(s) of batch {batch} to "
                     f"{label_studio.project_url(project)} ({len(clips) - len(new)} already there)")
    return MaterializeResult(metadata={
        "project": MetadataValue.url(label_studio.project_url(project)),
        "project_id": project,
        "clips": len(clips),
        "already_in_label_studio": len(clips) - len(new),
        "pushed": len(pushed),
        "second_review": len(flagged),
        "media_not_served": len(pushed) - served,
        "classes": MetadataValue.json(classes),
        "preannotated_by_source": MetadataValue.json(dict(Counter(
            t["data"]["preannotation_source"] or "none" for t in pushed))),
        "preannotated_regions_left_out": sum(t["data"]["preannotation_left_out"]
                                             for t in pushed),
    })


@asset(partitions_def=batches, group_name="qc", deps=["audio_qa_qc_tasks"],
       code_version=sql.version("schema/sound_region_reviews", THIS,
                                labeling.qc.region_verdicts))
def audio_qa_qc_verdicts(context: AssetExecutionContext, config: AudioQaQcPullConfig,
                         warehouse: Warehouse, label_studio: LabelStudio) -> MaterializeResult:
    """The batch's regions as people marked them in Label Studio: per clip its status
    (accepted, disputed, unreviewed) and accepted regions, and the agreement between
    annotators (class-wise IoU over time); `sound_regions` uses the accepted regions next."""
    batch = context.partition_key
    project, mine = exported_tasks(label_studio, config.project, batch, "audio_qa_qc_tasks")
    pulled = region_verdicts.pull_region_reviews(
        mine, classes=project_classes(label_studio, project), min_iou=config.min_iou,
        slack_s=config.slack_s, source=label_studio.project_url(project))
    now = datetime.now(UTC)
    warehouse.write_partition("sound_region_reviews", batch,
                              [{**r, "project_id": project, "pulled_at": now} for r in pulled.rows])
    warehouse.write_quarantine("audio_qa_qc_verdicts", batch, pulled.refused)
    report = pulled.report
    context.log.info(f"Pulled {pulled.n_annotations} annotation(s) of {pulled.n_tasks} clip(s) "
                     f"of batch {batch}: {pulled.count('accepted')} accepted")
    return MaterializeResult(metadata={
        "project": MetadataValue.url(label_studio.project_url(project)),
        "tasks": pulled.n_tasks,
        "annotations": pulled.n_annotations,
        "accepted": pulled.count("accepted"),
        "disputed": pulled.count("disputed"),
        "unreviewed": pulled.count("unreviewed"),
        "refused_annotations": pulled.n_refused,
        "quarantine_reasons": reasons_md(pulled.refused),
        "double_annotated": report.n_double,
        "second_review_flagged": report.n_flagged,
        "second_review_done": report.n_flagged_done,
        "min_iou": report.min_iou,
        "clips_agreed": report.n_agreed,
        "mean_class_iou": _rounded(report.mean_iou),
        "class_iou": table_md(["class", "mean IoU"], [(k, round(v, 3)) for k, v
                                                      in report.class_iou.items()]),
        "disagreements": MetadataValue.md(region_verdicts.disagreements_markdown(report)),
        "accepted_regions_by_class": MetadataValue.json(_by_class(pulled.rows)),
    })


def _by_class(rows: list[dict]) -> dict[str, float]:
    """Seconds marked per class over the accepted clips (what the chain will use)."""
    seconds: dict[str, list[float]] = {}
    for spans in region_verdicts.human_regions(rows).values():
        for r in spans:
            seconds.setdefault(r.label, []).append(r.duration_s)
    return {k: round(sum(v), 2) for k, v in sorted(seconds.items())}


def _rounded(x: float | None) -> MetadataValue:
    return MetadataValue.null() if x is None else MetadataValue.float(round(x, 4))

