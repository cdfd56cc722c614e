"""Questions about what happens next in each video, with their blind control and curriculum
bucket: written by the text LLM and checked in code, or built from a given truth by a template.
"""

import sys
from collections import Counter
from typing import Literal

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import assets.common
import assets.label_sets
import labeling.questions
import labeling.video_qa
import models.choice_scores
import models.text_llm
import sql
from assets.common import batches, progress_logger, read, reasons_md, table_md
from assets.image.common import model_metadata, weights_kind
from assets.label_sets import made_from, stamp
from labeling.video_qa.blind import blind_control
from labeling.video_qa.chain import (
    described_videos,
    question_rows,
    shuffle_choices,
    template_drafts,
    video_inputs,
    weights_of,
)
from labeling.video_qa.questions import QuestionSettings, llm_questions
from resources.model_hub import ModelHub
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

DESCRIPTIONS_SQL = "queries/video_descriptions_for_batch"
FORMS = {"both": ("choice", "open"), "choice": ("choice",), "open": ("open",)}


class VideoQuestionsConfig(Config):
    model: str = Field("", description="Text LLM (hub id or folder) that writes the questions "
                       "and answers them blind; empty = the model hub's text_llm.")
    llm_questions: bool = Field(True, description="Ask the text LLM for questions (off: "
                                "template questions only).")
    per_video: int = Field(1, ge=1, description="Questions asked of the LLM per video, in "
                           "rounds (use a temperature above 0 for more than one).")
    max_new_tokens: int = Field(256, ge=1, description="Longest LLM answer, in tokens.")
    temperature: float = Field(0.0, ge=0, description="LLM sampling temperature (0: greedy).")
    min_support: float = Field(0.5, ge=0, le=1, description="The least share of the answer's "
                               "content words the truth description must hold.")
    margin: float = Field(0.1, ge=0, le=1, description="How far below the answer's support "
                          "every distractor's must be (else two options could be right).")
    template: Literal["fallback", "always", "off"] = Field(
        "fallback", description="Template questions from a given truth description: for videos "
        "whose LLM questions were all refused (fallback), for every video (always), or never.")
    template_sources: list[str] = Field(["human", "manifest"], description="Truth description "
                                        "sources a template question may be built from.")
    blind_control: bool = Field(True, description="Put each multiple-choice question to the "
                                "text LLM without the video; one it answers right is flagged "
                                "`answerable_blind`.")
    obvious_margin: float = Field(-0.15, ge=-1, le=1, description="A question whose blind "
                                  "margin (P(right) - max P(other)) is at least this is "
                                  "'obvious' (earlier in the curriculum), else 'subtle'.")
    forms: Literal["both", "choice", "open"] = Field("both", description="Forms of each "
                                                     "question: multiple choice, open, or both.")
    seed: int = Field(0, description="Seed of the shuffled options and answer letters.")


@asset(partitions_def=batches, group_name="video_qa", deps=["video_descriptions", "video_segments"],
       pool="gpu",
       code_version=sql.version(DESCRIPTIONS_SQL, "schema/video_questions", THIS, assets.common,
                                assets.label_sets, labeling.video_qa, labeling.questions,
                                models.choice_scores, models.text_llm))
def video_questions(
    context: AssetExecutionContext, config: VideoQuestionsConfig, warehouse: Warehouse,
    model_hub: ModelHub,
) -> MaterializeResult:
    """Multiple-choice (four options, one right, letters balanced over the batch) and open
    questions about what happens after each video's cut; refused model output is quarantined
    with its reason and the model's text; each question is also answered blind."""
    batch = context.partition_key
    descriptions = read(warehouse, DESCRIPTIONS_SQL, batch)
    inputs, failures = video_inputs(described_videos(
        descriptions, {d["video_id"]: d["source_path"] for d in descriptions}))
    llm = (model_hub.load("text_llm", config.model or None)
           if inputs and (config.llm_questions or config.blind_control) else None)
    settings = QuestionSettings(config.per_video, config.max_new_tokens, config.temperature,
                                config.min_support, config.margin)
    drafts, refused = (llm_questions(llm, inputs, settings=settings,
                                     progress=progress_logger(context, "question rounds"))
                       if config.llm_questions and llm else ([], []))
    drafts += template_drafts(inputs, drafts, mode=config.template, seed=config.seed,
                              template_sources=config.template_sources, margin=config.margin)
    choices, short = shuffle_choices(drafts, seed=config.seed)
    blind = dict(zip(choices, blind_control(llm, list(choices.values())), strict=True)
                 ) if config.blind_control and llm else {}
    rows = question_rows(drafts, choices, blind, inputs, seed=config.seed,
                         forms=FORMS[config.forms], obvious_margin=config.obvious_margin)
    paths = {v["video_id"]: v["source_path"] for v in inputs}
    failures += refused + [{"source_path": paths[drafts[i].video_id], "reason": "too_few_options",
                            "detail": detail} for i, detail in short]
    llm_weights = weights_kind(llm) if llm else None
    used = {(d["video_id"], d["part"]): d["weights"] for d in descriptions}
    rows = [{**r, "weights": weights_of(r, used, llm_weights)} for r in rows]
    warehouse.write_partition("video_questions", batch, stamp(rows, made_from(descriptions)))
    warehouse.write_quarantine("video_questions", batch, failures)
    return MaterializeResult(metadata=_metadata(context, llm, inputs, rows, failures))


def _metadata(context, llm, inputs: list[dict], rows: list[dict], failures: list[dict]) -> dict:
    choices = [r for r in rows if r["form"] == "choice"]
    metadata = {
        "videos": len(inputs), "questions": len({r["group_id"] for r in rows}),
        "rows": len(rows),
        "by_source_and_form": MetadataValue.json(dict(Counter(
            f"{r['question_source']}/{r['form']}" for r in rows))),
        "choice_letters": MetadataValue.json(dict(sorted(Counter(r["answer"]
                                                                 for r in choices).items()))),
        "answerable_blind": sum(bool(r["answerable_blind"]) for r in choices),
        "curriculum_buckets": MetadataValue.json(dict(sorted(Counter(
            r["curriculum_bucket"] for r in rows).items()))),
        "quarantined": len(failures), "quarantine_reasons": reasons_md(failures),
        "sample": table_md(["video", "source", "form", "question", "answer", "blind"],
                           [(r["video_id"][:12], r["question_source"], r["form"],
                             r["question"][:80], r["answer_text"][:60], r["blind_pick"])
                            for r in rows[:8]], "no question"),
        "model": MetadataValue.text("none: template questions only, no blind control"),
    }
    if llm is not None:
        metadata |= model_metadata(context, "text_llm", llm)
    return metadata
