"""Evaluation assets: WER/CER of a model on a batch, overall and per tag group."""


import sys
from datetime import UTC, datetime

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import sql
import training.eval
from assets.common import (
    CLIPS_SQL,
    batches,
    load_clips,
    png_markdown,
    progress_logger,
    tags_json,
)
from assets.speech.spec import SPEECH
from labeling.ingest.audio import load_audio_16k
from resources.model_hub import ModelHub
from resources.registry import ModelRegistry
from resources.warehouse import Warehouse
from training.eval.evaluate import evaluate_clips, write_report
from training.eval.report import plot_report, to_markdown

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version


class EvalConfig(Config):
    model: str = Field("", description="Model to evaluate: 'promoted', a registry model id "
                       "(`rlfoundry models list`), a hub id or a folder; empty = the model "
                       "hub's baseline.")
    splits: list[str] = Field(default_factory=list, description="Only clips whose `split` tag "
                              "is one of these (e.g. ['dev']); empty = every clip of the batch.")
    group_by: list[str] = Field(default_factory=lambda: ["accent", "snr_db"],
                                description="Tags to report WER/CER per value of.")
    batch_size: int = Field(8, description="Clips per forward pass.")


@asset(partitions_def=batches, group_name="evaluation", deps=["audio_clips"], pool="gpu",
       code_version=sql.version(CLIPS_SQL, "schema/asr_eval", THIS, training.eval))
def asr_baseline_eval(
    context: AssetExecutionContext, config: EvalConfig, warehouse: Warehouse,
    model_hub: ModelHub, model_registry: ModelRegistry,
) -> MaterializeResult:
    """The baseline model's WER and CER on a batch, per tag group, with a table and a plot."""
    batch = context.partition_key
    named = config.model and model_registry.checkpoint_of(config.model, SPEECH.family)
    asr = model_hub.load_asr(named or config.model or None)
    clips = load_clips(warehouse, batch, config.splits)
    result = evaluate_clips(asr, clips, load_audio_16k, config.group_by,
                            batch_size=config.batch_size,
                            progress=progress_logger(context, "evaluated"))
    now = datetime.now(UTC)
    warehouse.write_partition("asr_eval", batch, [
        {**u, "tags": tags_json(u["tags"]), "eval_name": "baseline", "model": asr.name,
         "created_at": now} for u in result.utterances
    ], shard="baseline")
    report_dir = warehouse.report_dir("asr_baseline_eval", batch)
    json_path = write_report(result, asr.name, report_dir / "report.json")
    png = plot_report(result.report, report_dir / "wer_by_group.png")
    overall = result.report.overall
    return MaterializeResult(metadata={
        "wer": round(overall.wer, 4),
        "cer": round(overall.cer, 4),
        "utterances": len(result.utterances),
        "failed_clips": len(result.failures),
        "model": MetadataValue.text(asr.name),
        "table": MetadataValue.md(to_markdown(result.report)),
        "wer_by_group": png_markdown(png, "WER by group"),
        "report": MetadataValue.path(str(json_path)),
    })

