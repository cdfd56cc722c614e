"""Human validation of the video questions in Label Studio: push each question as a yes/no
task, pull the statuses back for the dataset.

`video_qc_tasks` pushes a batch's questions (one task per question, both its forms judged at
once: the whole video, the question, its options and the marked answer, a required yes/no
"makes sense and the marked answer is right"; a share to a second annotator), through
`assets/question_qc.py`; `video_qc_verdicts` pulls (as often as wanted) into
`video_question_verdicts`: each question's status (accepted, rejected, disputed,
unreviewed), the agreement between annotators and Cohen's kappa. `video_qa_dataset` reads
the statuses on its next run (see its `human_qc` setting): the pull job rebuilds it.
"""

import sys
from collections import Counter
from datetime import UTC, datetime

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import assets.question_qc
import labeling.qc.question_checks
import labeling.video_qa.validation
import sql
from assets.common import batches, read
from assets.question_qc import project_title, pull_metadata, pull_questions, push_questions
from labeling.video_qa.validation import qc_rows, verdict_rows
from resources.label_studio import LabelStudio
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

QUESTIONS_SQL = "queries/video_questions_for_batch"
PROJECT = project_title("video")


class VideoQcConfig(Config):
    project: str = Field(PROJECT, description="Title of the Label Studio project (created with "
                         "the question-check labeling config for videos if missing); push and "
                         "pull use the same.")


class VideoQcPushConfig(VideoQcConfig):
    second_review_share: float = Field(0.2, ge=0, le=1, description="Share of questions routed "
                                       "to a second annotator (by a hash of the question's "
                                       "group id and `seed`).")
    seed: int = Field(0, description="Seed of the second-review routing.")


@asset(partitions_def=batches, group_name="qc", deps=["video_questions"],
       code_version=sql.version(QUESTIONS_SQL, THIS, assets.question_qc,
                                labeling.qc.question_checks, labeling.video_qa.validation))
def video_qc_tasks(context: AssetExecutionContext, config: VideoQcPushConfig,
                   warehouse: Warehouse, label_studio: LabelStudio) -> MaterializeResult:
    """The batch's video questions as yes/no Label Studio tasks, one per question (its
    multiple-choice form shown, the marked letter spelled out); a re-push adds only the
    questions not there yet."""
    batch = context.partition_key
    questions = read(warehouse, QUESTIONS_SQL, batch)
    rows = qc_rows(questions)
    metadata = push_questions(label_studio, rows, batch=batch, kind="video",
                              project=config.project, share=config.second_review_share,
                              seed=config.seed)
    context.log.info(f"Pushed {metadata['pushed']} question task(s) of batch {batch} to "
                     f"{metadata['project'].value} ({metadata['already_in_label_studio']} "
                     "already there)")
    return MaterializeResult(metadata={
        **metadata, "question_rows": len(questions),
        "forms_shown": MetadataValue.json(dict(Counter(
            "choice" if r["options"] else "open" for r in rows))),
        "qc_before_push": MetadataValue.json(dict(Counter(q["qc"] for q in questions))),
    })


@asset(partitions_def=batches, group_name="qc", deps=["video_qc_tasks"],
       code_version=sql.version("schema/video_question_verdicts", THIS, assets.question_qc,
                                labeling.qc.question_checks, labeling.video_qa.validation))
def video_qc_verdicts(context: AssetExecutionContext, config: VideoQcConfig,
                      warehouse: Warehouse, label_studio: LabelStudio) -> MaterializeResult:
    """The batch's answers in Label Studio: a status per question (accepted, rejected,
    disputed, unreviewed) and the agreement between annotators (percent, Cohen's kappa);
    `video_qa_dataset` keeps only accepted questions on its next run."""
    batch = context.partition_key
    project, pulled = pull_questions(label_studio, batch=batch, kind="video",
                                     project=config.project)
    warehouse.write_partition("video_question_verdicts", batch, verdict_rows(
        pulled.rows, project_id=project, pulled_at=datetime.now(UTC)))
    context.log.info(f"Pulled {pulled.n_votes} vote(s) on {pulled.n_tasks} question(s) of "
                     f"batch {batch}: {pulled.count('accepted')} accepted, "
                     f"{pulled.count('rejected')} rejected")
    return MaterializeResult(metadata={
        "project": MetadataValue.url(label_studio.project_url(project)),
        **pull_metadata(pulled),
    })
