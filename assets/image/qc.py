"""Human QC of the verified points in Label Studio: push them as yes/no tasks, pull the verdicts.

`image_qc_tasks` pushes a batch's verified points (one task each: the image, the point in a
contrasting colour, the mask, "Is the point on <phrase>?"); annotators answer in Label Studio;
`image_qc_verdicts` pulls (as often as wanted) into the `point_verdicts` table, which
`pointing_dataset` reads on its next run (see its `human_qc` setting).
"""

import sys
from collections import Counter
from datetime import UTC, datetime

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import labeling.qc.point_verdicts
import labeling.qc.points
import sql
from assets.common import batches, read
from assets.qc import exported_tasks, import_tasks
from labeling.image.pointing import rgb_file
from labeling.qc import point_verdicts, points, tasks
from resources.label_studio import LabelStudio
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

POINTS_SQL = "queries/point_qc_for_batch"
PROJECT = "rlfoundry: is the point on the phrase?"
DESCRIPTION = ("Answer yes if the coloured point lies on the thing the question names, no "
               "otherwise (the shaded area is what the model took for it). Tasks with "
               "second_review = true need a second annotator.")


class ImageQcConfig(Config):
    project: str = Field(PROJECT, description="Title of the Label Studio project (created with "
                         "the point-QC labeling config if missing); push and pull use the same.")


class ImageQcPushConfig(ImageQcConfig):
    second_review_share: float = Field(0.2, ge=0, le=1, description="Share of points routed "
                                       "to a second annotator (by a hash of the point id and "
                                       "`seed`).")
    seed: int = Field(0, description="Seed of the second-review routing.")
    show_mask: bool = Field(True, description="Show the mask as a brush-region prediction "
                            "(fixed when the project is created: the labeling config holds it).")


@asset(partitions_def=batches, group_name="qc", deps=["image_point_checks"],
       code_version=sql.version(POINTS_SQL, THIS, labeling.qc.points))
def image_qc_tasks(context: AssetExecutionContext, config: ImageQcPushConfig,
                   warehouse: Warehouse, label_studio: LabelStudio) -> MaterializeResult:
    """The batch's verified points as yes/no Label Studio tasks, the point and its mask
    pre-drawn; a re-push adds only the points not there yet."""
    batch = context.partition_key
    rows = read(warehouse, POINTS_SQL, batch)
    project = label_studio.ensure_project(config.project,
                                          points.point_config_xml(config.show_mask), DESCRIPTION)
    there = {t["data"].get("point_id")
             for t in tasks.batch_tasks(label_studio.export_tasks(project), batch)}
    new = [r for r in rows if points.point_id(r["image_id"], r["phrase"], r["x"], r["y"])
           not in there]
    copies = warehouse.report_dir("image_qc_tasks", batch) / "images"
    for r in new:  # what a browser cannot show (TIFF, ...) is shown through an RGB PNG copy
        if not points.browser_safe(r["format"]):
            r["display_path"] = rgb_file(r["source_path"], None, r["image_id"], copies)
    shown = [r.get("display_path") or r["source_path"] for r in new]
    for directory in tasks.storage_dirs(shown, label_studio.root):
        label_studio.ensure_local_storage(project, directory)
    pushed = points.point_tasks(new, batch=batch, media_url=label_studio.media_url,
                                share=config.second_review_share, seed=config.seed,
                                show_mask=config.show_mask)
    flagged = import_tasks(label_studio, project, pushed)
    served = sum(t["data"]["image"].startswith("/data/local-files/") for t in pushed)
    context.log.info(f"Pushed {len(pushed)} point task(s) of batch {batch} to "
                     f"{label_studio.project_url(project)} ({len(rows) - len(new)} already there)")
    return MaterializeResult(metadata={
        "project": MetadataValue.url(label_studio.project_url(project)),
        "project_id": project,
        "points": len(rows),
        "already_in_label_studio": len(rows) - len(new),
        "pushed": len(pushed),
        "second_review": len(flagged),
        "media_not_served": len(pushed) - served,
        "point_colours": MetadataValue.json(dict(Counter(
            t["data"]["point_colour"] for t in pushed))),
    })


@asset(partitions_def=batches, group_name="qc", deps=["image_qc_tasks"],
       code_version=sql.version("schema/point_verdicts", THIS, labeling.qc.point_verdicts))
def image_qc_verdicts(context: AssetExecutionContext, config: ImageQcConfig,
                      warehouse: Warehouse, label_studio: LabelStudio) -> MaterializeResult:
    """The batch's answers in Label Studio: a verdict per point (the majority) and the
    agreement between annotators; `pointing_dataset` uses the verdicts on its next run."""
    batch = context.partition_key
    project, mine = exported_tasks(label_studio, config.project, batch, "image_qc_tasks")
    pulled = point_verdicts.pull_point_verdicts(mine, source=label_studio.project_url(project))
    now = datetime.now(UTC)
    warehouse.write_partition("point_verdicts", batch,
                              [{**r, "project_id": project, "pulled_at": now} for r in pulled.rows])
    report = pulled.report
    return MaterializeResult(metadata={
        "project": MetadataValue.url(label_studio.project_url(project)),
        "tasks": pulled.n_tasks,
        "votes": pulled.n_votes,
        "verdicts": len(pulled.rows) - pulled.count(None),
        "yes": pulled.count("yes"),
        "no": pulled.count("no"),
        "tied": pulled.count(None),
        "unanswered": pulled.n_tasks - len(pulled.rows),
        "double_labelled": report.n_double,
        "second_review_flagged": report.n_flagged,
        "second_review_done": report.n_flagged_done,
        "percent_agreement": _rounded(report.percent),
        "cohens_kappa": _rounded(report.kappa),
        "disagreements": MetadataValue.md(point_verdicts.disagreements_markdown(report)),
    })


def _rounded(x: float | None) -> MetadataValue:
    return MetadataValue.null() if x is None else MetadataValue.float(round(x, 4))
