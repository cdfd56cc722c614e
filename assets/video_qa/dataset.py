"""The video questions dataset: every question form as a TRL GRPO row, JSONL and `datasets`."""

import sys
from collections import Counter

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import assets.common
import labeling.questions.export
import labeling.questions.reasoning
import labeling.video_qa.dataset
import labeling.video_qa.validation
import sql
from assets.common import batches, read, reasons_md, table_md
from labeling.questions.reasoning import FORMAT_NAME
from labeling.video_qa.dataset import dataset_row, export_dataset, keep_row
from labeling.video_qa.validation import HumanQc, qc_note
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

QUESTIONS_SQL = "queries/video_questions_for_batch"
VERDICTS_SQL = "queries/video_question_verdicts_for_batch"


class VideoQADatasetConfig(Config):
    include_answerable_blind: bool = Field(False, description="Keep questions the text LLM "
                                           "answered right without the video (left out by "
                                           "default: they teach reading options, not frames).")
    human_qc: HumanQc = Field(
        "require_accepted", description="Human validation (video_qc_verdicts): "
        "require_accepted keeps, once the batch has any verdict, only the questions people "
        "accepted (before any, every question: all are unreviewed); drop_rejected leaves out "
        "the rejected ones alone; ignore keeps every status. Rows carry their `qc` either way.")


@asset(partitions_def=batches, group_name="video_qa",
       deps=["video_questions", "video_segments", "video_qc_verdicts"],
       code_version=sql.version(QUESTIONS_SQL, VERDICTS_SQL, THIS, assets.common,
                                labeling.video_qa.dataset, labeling.video_qa.validation,
                                labeling.questions.export, labeling.questions.reasoning))
def video_qa_dataset(
    context: AssetExecutionContext, config: VideoQADatasetConfig, warehouse: Warehouse,
) -> MaterializeResult:
    """One row per question form for TRL's GRPOTrainer: conversational `prompt` (asking for
    `<think>…</think><answer>…</answer>`), `images` (the frames before the cut), `answer`,
    `options`, `problem_type`, curriculum buckets, and the source and QC of every field;
    written as JSONL and as a `datasets` folder in the asset's report folder. Questions left
    out (answerable blind, human QC) are recorded in the quarantine."""
    batch = context.partition_key
    questions = read(warehouse, QUESTIONS_SQL, batch)
    keep_qc, qc_policy = qc_note(config.human_qc, read(warehouse, VERDICTS_SQL, batch),
                                 questions)
    rows, left_out = [], []
    for q in questions:
        why = keep_row(q, keep_qc=keep_qc, include_blind=config.include_answerable_blind)
        if why is None:
            rows.append(dataset_row(q, video=q["source_path"], frames=q["context_paths"],
                                    weights=q["weights"]))
        else:
            left_out.append({"source_path": q["source_path"], "reason": why,
                             "detail": f"{q['form']} question {q['question_id']}: "
                                       f"{q['question'][:100]!r} left out of the dataset"})
    paths = export_dataset(rows, warehouse.report_dir("video_qa_dataset", batch))
    warehouse.write_quarantine("video_qa_dataset", batch, left_out)
    weights = Counter(r["weights"] for r in rows)
    if weights.get("random-tiny"):
        context.log.warning("RANDOM TINY WEIGHTS: some rows of this dataset rest on tiny random "
                            "models (see its `weights` column); they are for tests and demos.")
    return MaterializeResult(metadata={
        "examples": len(rows), "videos": len({r["video_id"] for r in rows}),
        "by_problem_type": MetadataValue.json(dict(Counter(r["problem_type"] for r in rows))),
        "question_sources": MetadataValue.json(dict(Counter(r["question_source"]
                                                            for r in rows))),
        "weights": MetadataValue.json(dict(weights)),
        "human_qc": MetadataValue.text(qc_policy),
        "qc_kept": MetadataValue.json(list(keep_qc)),
        "qc_of_questions": MetadataValue.json(dict(Counter(q["qc"] for q in questions))),
        "answer_format": MetadataValue.text(f"{FORMAT_NAME}: <think>…</think><answer>…"
                                            "</answer> (training.rewards.answers)"),
        "left_out": len(left_out), "left_out_reasons": reasons_md(left_out),
        "sample": table_md(["video", "prompt", "answer", "bucket"],
                           [(r["video"].rsplit("/", 1)[-1], r["question"][:80], r["answer"][:60],
                             r["curriculum_bucket"]) for r in rows[:8]], "no example"),
        "jsonl": MetadataValue.path(str(paths["jsonl"])),
        "dataset": MetadataValue.path(str(paths["dataset"])),
    })
