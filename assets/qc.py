"""Human QC in Label Studio: push a batch's mined pairs as tasks, pull the verdicts back.

`pairwise_qc_tasks` pushes; annotators work in Label Studio; `pairwise_qc_verdicts`
pulls (as often as wanted) into the `pairwise_verdicts` table, which
`preference_pairs` reads on its next run: each verdict replaces the mined pair
of the same clip and texts.
"""

import sys
from datetime import UTC, datetime

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import labeling.qc
import sql
from labeling.qc import agreement, pairwise, review, tasks, verdicts
from pipelines.partitions import batches
from resources.label_studio import LabelStudio, LabelStudioError
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

PAIRS_SQL = "queries/pairs_for_qc"
PROJECT = "rlfoundry: which transcript is better?"
DESCRIPTION = ("Pick the transcript that matches the audio better. The model's pick is "
               "pre-selected. Tasks with second_review = true need a second annotator.")


class QcConfig(Config):
    project: str = Field(PROJECT, description="Title of the Label Studio project (created with "
                         "the pairwise labeling config if missing); push and pull use the same.")


class QcPushConfig(QcConfig):
    second_review_share: float = Field(0.2, description="Share of tasks routed to a second "
                                       "annotator (by a hash of the pair id and `seed`).")
    seed: int = Field(0, description="Seed of the second-review routing.")
    sources: list[str] = Field(["model"], description="Which preference_pairs rows to push: "
                               "'model' (mined by WER), 'hard_negative' (reference vs the "
                               "model's greedy transcript).")


@asset(partitions_def=batches, group_name="qc", deps=["preference_pairs"],
       code_version=sql.version(PAIRS_SQL, THIS, labeling.qc))
def pairwise_qc_tasks(context: AssetExecutionContext, config: QcPushConfig, warehouse: Warehouse,
                      label_studio: LabelStudio) -> MaterializeResult:
    """The batch's mined pairs as Label Studio tasks, the model's pick pre-selected; a re-push
    adds only the pairs not there yet."""
    batch = context.partition_key
    pairs = warehouse.fetch_dicts(sql.load(PAIRS_SQL), {"batch": batch, "sources": config.sources})
    project = label_studio.ensure_project(config.project, pairwise.PAIRWISE_CONFIG_XML,
                                          DESCRIPTION)
    there = {t["data"].get("pair_id")
             for t in tasks.batch_tasks(label_studio.export_tasks(project), batch)}
    new = [p for p in pairs if p["pair_id"] not in there]
    for directory in tasks.storage_dirs([p["audio"] for p in new], label_studio.root):
        label_studio.ensure_local_storage(project, directory)
    pushed = tasks.qc_tasks(new, batch=batch, media_url=label_studio.media_url,
                            share=config.second_review_share, seed=config.seed)
    flagged = import_tasks(label_studio, project, pushed)
    served = sum(t["data"]["audio"].startswith("/data/local-files/") for t in pushed)
    context.log.info(f"Pushed {len(pushed)} task(s) of batch {batch} to "
                     f"{label_studio.project_url(project)} ({len(pairs) - len(new)} already there)")
    return MaterializeResult(metadata={
        "project": MetadataValue.url(label_studio.project_url(project)),
        "project_id": project,
        "pairs": len(pairs),
        "already_in_label_studio": len(pairs) - len(new),
        "pushed": len(pushed),
        "second_review": len(flagged),
        "media_not_served": len(pushed) - served,
    })


def import_tasks(label_studio: LabelStudio, project: int, pushed: list[dict]) -> list[int]:
    """Import `pushed` into the project; the ids of those flagged for a second review, which
    Label All Tasks then serves until two annotators have answered."""
    ids = label_studio.import_tasks(project, pushed)
    flagged = [i for i, t in zip(ids, pushed, strict=True)
               if t["data"][review.SECOND_REVIEW_FIELD]]
    for task_id in flagged:
        label_studio.update_task(task_id, overlap=review.SECOND_REVIEW_OVERLAP)
    return flagged


def exported_tasks(label_studio: LabelStudio, project_name: str, batch: str,
                   push_asset: str) -> tuple[int, list[dict]]:
    """The project's id and its exported tasks of `batch`, or an error naming the asset that
    pushes them."""
    project = label_studio.find_project(project_name)
    if project is None:
        raise LabelStudioError(f"No project {project_name!r} in Label Studio at "
                               f"{label_studio.base_url}: materialize {push_asset} for batch "
                               f"{batch!r} first.")
    return project, tasks.batch_tasks(label_studio.export_tasks(project), batch)


@asset(partitions_def=batches, group_name="qc", deps=["pairwise_qc_tasks"],
       code_version=sql.version("schema/pairwise_verdicts", THIS, labeling.qc))
def pairwise_qc_verdicts(context: AssetExecutionContext, config: QcConfig, warehouse: Warehouse,
                         label_studio: LabelStudio) -> MaterializeResult:
    """The batch's annotations in Label Studio: a verdict per pair (the majority) and the
    agreement between annotators; `preference_pairs` uses the verdicts on its next run."""
    batch = context.partition_key
    project, mine = exported_tasks(label_studio, config.project, batch, "pairwise_qc_tasks")
    pulled = verdicts.pull_verdicts(mine, source=label_studio.project_url(project))
    now = datetime.now(UTC)
    warehouse.write_partition("pairwise_verdicts", batch,
                              [{**r, "project_id": project, "pulled_at": now} for r in pulled.rows])
    report = pulled.report
    return MaterializeResult(metadata={
        "project": MetadataValue.url(label_studio.project_url(project)),
        "tasks": pulled.n_tasks,
        "votes": pulled.n_votes,
        "verdicts": len(pulled.rows),
        "tied": len(pulled.summary.tied_pair_ids),
        "agree_with_model": pulled.n_agree_with_model,
        "double_labelled": report.n_double,
        "second_review_flagged": report.n_flagged,
        "second_review_done": report.n_flagged_done,
        "percent_agreement": _rounded(report.percent),
        "cohens_kappa": _rounded(report.kappa),
        "disagreements": MetadataValue.md(agreement.disagreements_markdown(report)),
    })


def _rounded(x: float | None) -> MetadataValue:
    return MetadataValue.null() if x is None else MetadataValue.float(round(x, 4))
