"""Temporal questions about each clip's sounds, with answers computed from its durations."""

import json
import sys
from collections import Counter
from typing import Literal

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import assets.common
import assets.label_sets
import labeling.audio_qa
import labeling.questions
import sql
from assets.common import CLIPS_SQL, batches, load_clips, read, reasons_md, table_md
from assets.label_sets import made_from, stamp
from labeling.audio_qa.chain import question_rows, timelines_of
from labeling.audio_qa.questions import KINDS, QuestionSettings
from labeling.questions.guards import Margin
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

DURATIONS_SQL = "queries/sound_durations_for_batch"
FORMS = {"both": ("open", "choice"), "open": ("open",), "choice": ("choice",)}
VOCABULARY = ["speech", "music", "noise", "dog", "siren", "bird", "car horn", "applause"]


class AudioQuestionsConfig(Config):
    kinds: list[str] = Field(list(KINDS), description="Question kinds to ask, of: "
                             f"{', '.join(KINDS)} (see labeling.audio_qa.questions).")
    forms: Literal["both", "open", "choice"] = Field(
        "both", description="Forms of each question: open-ended, multiple choice (four "
        "options, the right letter balanced over the batch), or both.")
    vocabulary: list[str] = Field(VOCABULARY, description="The sound classes annotators mark: "
                                  "a given annotation is complete over it, so its classes a "
                                  "clip lacks are distractors for 'longest' and "
                                  "'starts_first'.")
    margin_s: float = Field(0.5, ge=0, description="A comparison is asked only when its top "
                            "two are at least this far apart (seconds) ...")
    margin_rel: float = Field(0.10, ge=0, description="... and this share of the larger.")
    tolerance_s: float = Field(0.5, ge=0, description="A duration answer is right within "
                               "this many seconds ...")
    tolerance_rel: float = Field(0.10, ge=0, description="... or this share of the truth, "
                                 "whichever is larger.")
    min_peak_s: float = Field(0.5, ge=0, description="'How many sounds at once' is asked only "
                              "when that many sound together for at least this long.")
    seed: int = Field(0, description="Seed of the distractors and answer letters; same seed, "
                      "same questions.")


@asset(partitions_def=batches, group_name="audio_qa", deps=["sound_durations", "audio_clips"],
       code_version=sql.version(DURATIONS_SQL, CLIPS_SQL, "schema/audio_questions",
                                THIS, assets.common, assets.label_sets, labeling.audio_qa,
                                labeling.questions))
def audio_questions(
    context: AssetExecutionContext, config: AudioQuestionsConfig, warehouse: Warehouse,
) -> MaterializeResult:
    """Open and multiple-choice questions per clip (which sound is longest, starts first, how
    many at once, how long each lasts); a question whose answer is ambiguous is quarantined
    with its reason and the values measured."""
    batch = context.partition_key
    durations = read(warehouse, DURATIONS_SQL, batch)
    clips = load_clips(warehouse, batch)
    settings = QuestionSettings(tuple(config.kinds), Margin(config.margin_s, config.margin_rel),
                                Margin(config.tolerance_s, config.tolerance_rel),
                                config.min_peak_s)
    rows, failures = question_rows(clips, timelines_of(durations), settings=settings,
                                   vocabulary=config.vocabulary, seed=config.seed,
                                   forms=FORMS[config.forms])
    warehouse.write_partition("audio_questions", batch, stamp(rows, made_from(durations)))
    warehouse.write_quarantine("audio_questions", batch, failures)
    choices = [r for r in rows if r["form"] == "choice"]
    return MaterializeResult(metadata={
        "clips": len(clips), "questions": len(rows),
        "clips_with_questions": len({r["clip_id"] for r in rows}),
        "by_kind_and_form": MetadataValue.json(dict(Counter(f"{r['kind']}/{r['form']}"
                                                            for r in rows))),
        "choice_letters": MetadataValue.json(dict(sorted(Counter(r["answer"]
                                                                 for r in choices).items()))),
        "regions_sources": MetadataValue.json(dict(Counter(r["regions_source"] for r in rows))),
        "quarantined": len(failures), "quarantine_reasons": reasons_md(failures),
        "sample": table_md(["kind", "form", "prompt", "answer"],
                           [(r["kind"], r["form"], json.dumps(r["prompt"])[1:-1], r["answer"])
                            for r in rows[:8]], "no question"),
    })
