"""The audio questions dataset: every question form as a TRL GRPO row, JSONL and `datasets`."""

import sys
from collections import Counter

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

import assets.common
import labeling.audio_qa
import labeling.questions.export
import labeling.questions.reasoning
import sql
from assets.common import batches, read, table_md
from labeling.audio_qa.dataset import dataset_row, export_dataset
from labeling.questions.reasoning import FORMAT_NAME
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

QUESTIONS_SQL = "queries/audio_questions_for_batch"


@asset(partitions_def=batches, group_name="audio_qa", deps=["audio_questions", "audio_clips"],
       code_version=sql.version(QUESTIONS_SQL, THIS, assets.common, labeling.audio_qa,
                                labeling.questions.export, labeling.questions.reasoning))
def audio_qa_dataset(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """One row per question form for TRL's GRPOTrainer: conversational `prompt` (asking for
    `<think>…</think><answer>…</answer>`), `audio` (the clip's file), `answer`,
    `answer_type` / `problem_type`, `options`, `tolerance`, and where every field came from
    (`regions_source`, `field_sources`); written as JSONL and as a `datasets` folder in the
    asset's report folder."""
    batch = context.partition_key
    questions = read(warehouse, QUESTIONS_SQL, batch)
    rows = [dataset_row(q, audio=q["source_path"], duration_s=q["duration_s"])
            for q in questions]
    paths = export_dataset(rows, warehouse.report_dir("audio_qa_dataset", batch))
    return MaterializeResult(metadata={
        "examples": len(rows), "clips": len({r["clip_id"] for r in rows}),
        "by_problem_type": MetadataValue.json(dict(Counter(r["problem_type"] for r in rows))),
        "regions_sources": MetadataValue.json(dict(Counter(r["regions_source"] for r in rows))),
        "answer_format": MetadataValue.text(f"{FORMAT_NAME}: <think>…</think><answer>…"
                                            "</answer> (training.rewards.answers)"),
        "sample": table_md(["audio", "prompt", "answer", "type"],
                           [(r["audio"].rsplit("/", 1)[-1], r["question"], r["answer"],
                             r["answer_type"]) for r in rows[:8]], "no example"),
        "jsonl": MetadataValue.path(str(paths["jsonl"])),
        "dataset": MetadataValue.path(str(paths["dataset"])),
    })
