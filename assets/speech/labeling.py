"""Speech labeling assets: N-best hypotheses for every clip of a batch."""


import sys
from typing import Literal

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import assets.label_sets
import labeling.asr_labels
import models.whisper
import sql
from assets.common import CLIPS_SQL, batches, load_clips, progress_logger
from assets.label_sets import clip_set
from assets.speech.spec import SPEECH
from labeling.asr_labels import NBestParams, hypothesis_rows
from labeling.ingest.audio import load_audio_16k
from resources.model_hub import ModelHub
from resources.registry import ModelRegistry
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version




class HypothesesConfig(Config):
    model: str = Field("", description="ASR model: 'promoted', a registry model id "
                       "(`rlfoundry models list`), a hub id, a folder or a CTranslate2 folder; "
                       "empty = the promoted model (the self-improving loop), or the model "
                       "hub's baseline before any promotion.")
    num_beams: int = Field(4, description="Beam width; every beam is kept as a hypothesis.")
    num_samples: int = Field(4, description="Temperature samples per clip, on top of the beams.")
    temperature: float = Field(0.7, description="Sampling temperature (≈0.7 keeps samples "
                               "close to the beam's quality).")
    seed: int = Field(0, description="Seed of the sampling; same seed, same hypotheses.")
    batch_size: int = Field(8, description="Clips per forward pass (batched by duration).")
    include_greedy: bool = Field(True, description="Also keep the greedy transcript (kind "
                                 "'greedy'), the model's own default output.")
    backend: Literal["transformers", "ct2"] = Field("ct2", description="Decoder: 'ct2' "
                                                    "(CTranslate2, the checkpoint converted "
                                                    "once; 2.4x less CPU; avg_logprob from "
                                                    "the search; samples seeded per call) or "
                                                    "'transformers' (re-scored teacher-forced; "
                                                    "samples seeded per clip).")



@asset(partitions_def=batches, group_name="speech", deps=["audio_clips"], pool="gpu",
       code_version=sql.version(CLIPS_SQL, "queries/clip_sets", "schema/asr_hypotheses", THIS,
                                assets.label_sets, labeling.asr_labels, models.whisper))
def asr_hypotheses(
    context: AssetExecutionContext, config: HypothesesConfig, warehouse: Warehouse,
    model_hub: ModelHub, model_registry: ModelRegistry,
) -> MaterializeResult:
    """Beam N-best plus temperature samples per clip, each with its average token log-prob."""
    batch = context.partition_key
    made_from = clip_set(warehouse, SPEECH.media_table, batch)
    clips = load_clips(warehouse, batch)
    promoted = model_registry.champion(SPEECH.family)
    named = config.model and model_registry.checkpoint_of(config.model, SPEECH.family)
    asr = model_hub.load_asr(named or config.model
                             or (promoted["checkpoint"] if promoted else None),
                             backend=config.backend)
    round_ = model_registry.current_round(SPEECH.family)
    context.log.info(f"{len(clips)} clips, model {asr.name}, round {round_}")
    params = NBestParams(config.num_beams, config.num_samples, config.temperature,
                         config.seed, config.batch_size, config.include_greedy)
    rows, failures = hypothesis_rows(asr, clips, params, load_audio_16k,
                                     progress=progress_logger(context, "hypotheses"))
    warehouse.write_partition("asr_hypotheses", batch,
                              [{**r, "round": round_, "clip_set": made_from} for r in rows])
    warehouse.write_quarantine("asr_hypotheses", batch, failures)
    distinct = len({(r["clip_id"], r["text"]) for r in rows})
    return MaterializeResult(metadata={
        "clips": len(clips) - len(failures),
        "hypotheses": len(rows),
        "distinct_per_clip": round(distinct / max(1, len(clips) - len(failures)), 2),
        "failed_clips": len(failures),
        "model": MetadataValue.text(asr.name),
        "backend": config.backend,
        "round": round_,
    })
