"""The audio questions dataset: every question form as a TRL GRPO row, JSONL and `datasets`,
with its curriculum bucket (separated, touching or overlapping sounds) from the clip's regions."""

import sys
from collections import Counter

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

import assets.common
import labeling.audio_qa
import labeling.questions.export
import labeling.questions.reasoning
import sql
from assets.common import batches, read, table_md
from labeling.audio_qa.buckets import question_buckets
from labeling.audio_qa.chain import used_regions
from labeling.audio_qa.dataset import dataset_row, export_dataset
from labeling.questions.reasoning import FORMAT_NAME
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

QUESTIONS_SQL = "queries/audio_questions_for_batch"
REGIONS_SQL = "queries/sound_regions_for_batch"


@asset(partitions_def=batches, group_name="audio_qa",
       deps=["audio_questions", "audio_clips", "sound_regions"],
       code_version=sql.version(QUESTIONS_SQL, REGIONS_SQL, THIS, assets.common,
                                labeling.audio_qa, labeling.questions.export,
                                labeling.questions.reasoning))
def audio_qa_dataset(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """One row per question form for TRL's GRPOTrainer: conversational `prompt` (asking for
    `<think>…</think><answer>…</answer>`), `audio` (the clip's file), `answer`,
    `answer_type` / `problem_type`, `options`, `tolerance`, where every field came from
    (`regions_source`, `field_sources`) and the curriculum `bucket` (easy: the sounds asked
    about are apart, medium: they touch, hard: they overlap; labeling.audio_qa.buckets);
    written as JSONL and as a `datasets` folder in the asset's report folder."""
    batch = context.partition_key
    questions = read(warehouse, QUESTIONS_SQL, batch)
    buckets = question_buckets(questions, used_regions(read(warehouse, REGIONS_SQL, batch)))
    rows = [dataset_row(q, audio=q["source_path"], duration_s=q["duration_s"], bucket=bucket)
            for q, bucket in zip(questions, buckets, strict=True)]
    paths = export_dataset(rows, warehouse.report_dir("audio_qa_dataset", batch))
    return MaterializeResult(metadata={
        "examples": len(rows), "clips": len({r["clip_id"] for r in rows}),
        "by_problem_type": MetadataValue.json(dict(Counter(r["problem_type"] for r in rows))),
        "regions_sources": MetadataValue.json(dict(Counter(r["regions_source"] for r in rows))),
        "curriculum_buckets": MetadataValue.json(dict(Counter(r["bucket"] for r in rows))),
        "answer_format": MetadataValue.text(f"{FORMAT_NAME}: <think>…</think><answer>…"
                                            "</answer> (training.rewards.answers)"),
        "sample": table_md(["audio", "prompt", "answer", "type", "bucket"],
                           [(r["audio"].rsplit("/", 1)[-1], r["question"], r["answer"],
                             r["answer_type"], r["bucket"]) for r in rows[:8]], "no example"),
        "jsonl": MetadataValue.path(str(paths["jsonl"])),
        "dataset": MetadataValue.path(str(paths["dataset"])),
    })
