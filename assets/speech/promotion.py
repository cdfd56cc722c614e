"""The loop's evaluation and promotion: candidate vs incumbent on the held-out batches.

Both are partitioned by loop: `asr_eval` judges its own loop's candidate, and
`promoted_model` promotes it only if the family's champion is still the incumbent it
was judged against (a loop that ran beside another, which promoted first, must be
evaluated again).

`asr_eval` transcribes the training set's eval clips with the incumbent (the
promoted model, or the baseline before any promotion), the SFT model, the
candidate's starting model (when it is neither: e.g. the DPO model GRPO started
from) and the candidate; `asr_eval_candidate_not_worse` (blocking) fails when
the candidate's WER is worse than the incumbent's, and `promoted_model` only
advances when it passed.
"""

import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

import assets.promotion
import sql
import training.eval
from assets.common import png_markdown, progress_logger, tags_json
from assets.promotion import promote_candidate
from assets.speech.contenders import STAGES, STEP, contenders, register_checkpoint
from assets.speech.spec import SPEECH
from labeling.ingest.audio import load_audio_16k
from pipelines.partitions import loops
from resources.model_hub import ModelHub
from resources.registry import ModelRegistry
from resources.warehouse import Warehouse
from training.data.training_set import read_jsonl
from training.eval import cache as eval_cache
from training.eval.evaluate import evaluate_clips
from training.eval.promotion import comparison_table, decide, plot_comparison, with_choice
from training.eval.report import grouped_scores
from training.eval.selection import choose, guard_results

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version


class LoopEvalConfig(Config):
    candidate: str = Field("best", description="Which trained model competes for promotion: "
                           "'best' = every model this loop trained, the one with the lowest "
                           "eval WER among those that do not regress on a guard batch; or one "
                           "stage: 'sft', 'preference' (DPO/MPO), 'rl' (GRPO/MWER).")
    group_by: list[str] = Field(default_factory=lambda: ["accent", "snr_db"],
                                description="Tags to report WER/CER per value of.")
    batch_size: int = Field(8, description="Clips per forward pass.")
    max_wer_increase: float = Field(0.0, description="Tolerance: the candidate passes when its "
                                    "WER is at most the incumbent's plus this (a fraction).")
    guard_max_wer_increase: float = Field(0.005, description="Tolerance on each guard batch: "
                                          "a model whose WER there exceeds the incumbent's by "
                                          "more than this (a fraction: 0.005 = half a point) "
                                          "regresses, and is not promoted.")
    guard_tolerances: dict[str, float] = Field(default_factory=dict, description="Tolerances "
                                               "of single guard batches, overriding "
                                               "guard_max_wer_increase: {batch: fraction}.")
    checkpoints: bool = Field(True, description="Also let the intermediate checkpoints of "
                              "each trained run compete (saved every save_every steps): the "
                              "guards refuse the steps that forget, the eval batches choose "
                              "among the rest. One more evaluation per checkpoint; false "
                              "scores final models only.")


@asset(group_name="evaluation", partitions_def=loops, pool="gpu",
       deps=["speech_training_set", "whisper_sft_model", "whisper_preference_model",
             "whisper_rl_model"],
       code_version=sql.version(THIS, training.eval))
def asr_eval(
    context: AssetExecutionContext, config: LoopEvalConfig, warehouse: Warehouse,
    model_hub: ModelHub, model_registry: ModelRegistry,
) -> MaterializeResult:
    """WER/CER of the incumbent and of every model the loop trained on the eval batches, per
    group, and on the guard batches; the candidate chosen among them and the decision."""
    loop = context.partition_key
    snap = warehouse.read_output("speech_training_set", loop)
    clips, guard = _clips(snap, "eval"), _clips(snap, "guard")
    models, trained = contenders(config.candidate, loop, warehouse, model_registry, model_hub,
                                 config.checkpoints)
    score = _Scorer(context, config, model_hub, warehouse, loop, model_registry)
    reports = {label: score(label, entry, clips) for label, entry in models.items()}
    guard_wers = {label: score.per_batch(label, entry, guard) for label, entry in models.items()
                  if guard}
    ids = {models[t]["model_id"]: t for t in trained}
    choice = choose({m: reports[t].overall.wer for m, t in ids.items()}, {
        m: guard_results(guard_wers[t], guard_wers["incumbent"], config.guard_max_wer_increase,
                         config.guard_tolerances) for m, t in ids.items()} if guard else None)
    stage = ids[choice.stage]
    if STEP in stage:  # an intermediate checkpoint won: register it so it can be promoted
        register_checkpoint(model_registry, models[stage], loop)
    decision = with_choice(decide(reports[stage], reports["incumbent"], config.max_wer_increase),
                           replace(choice, stage=stage))
    _record_scores(model_registry, models, stage, reports, decision)
    order = [lbl for lbl in models if lbl != stage] + [stage]  # the candidate last: Δ column
    named = {_label(lbl, models[lbl]): reports[lbl] for lbl in order}
    models = {**{lbl: models[lbl] for lbl in order}, "candidate": models[stage]}
    out = warehouse.report_dir("asr_eval", loop)
    png = plot_comparison(named, out / "wer_comparison.png")
    table = comparison_table(named)
    (out / "comparison.txt").write_text(table + "\n")
    payload = {"decision": decision.to_dict(), "models": models, "snapshot": snap["dir"],
               "eval_batches": snap["eval_batches"],
               "guard_batches": snap.get("guard_batches", []),
               "reports": {lbl: r.to_dict() for lbl, r in named.items()},
               "guard_wer": {_label(lbl, models[lbl]): guard_wers[lbl] for lbl in order
                             if lbl in guard_wers}}
    (out / "report.json").write_text(json.dumps(payload, indent=2))
    warehouse.write_output("asr_eval", loop, {**payload, "report": str(out / "report.json"),
                                              "table": table})
    # the CLI prints the table and the decision once, from the output written above
    context.log.debug("\n" + table + "\n" + decision.selection + "\n" + decision.reason)
    return MaterializeResult(metadata={
        "candidate": MetadataValue.text(models["candidate"]["model_id"]),
        "why_this_candidate": MetadataValue.text(decision.selection),
        "candidate_wer": round(decision.candidate_wer, 4),
        "incumbent_wer": round(decision.incumbent_wer, 4),
        "wer_delta": round(decision.wer_delta, 4),
        "deletion_rate_delta": round(decision.deletion_rate_delta, 4),
        "decision": MetadataValue.text(decision.reason),
        "guards": MetadataValue.json(list(decision.guards)),
        "guard_wer": MetadataValue.md(_guard_table(payload["guard_wer"])),
        "table": MetadataValue.md(comparison_table(named, markdown=True)),
        "wer_by_group": png_markdown(png, "WER per group"),
        "report": MetadataValue.path(str(out / "report.json")),
        "transcripts_reused": MetadataValue.json(score.reused),
    })


def _clips(snap: dict, name: str) -> list[dict]:
    """The snapshot's eval or guard clips, tags parsed (none: a snapshot without guards)."""
    path = Path(snap["dir"]) / f"{name}.jsonl"
    if not path.is_file():
        return []
    return [{**c, "tags": json.loads(c["tags"])} for c in read_jsonl(path)]


class _Scorer:
    """Transcribes clips with a model (or reuses its cached transcripts of them), writes the
    per-utterance rows into `asr_eval`, and scores them."""

    def __init__(self, context, config: LoopEvalConfig, model_hub: ModelHub,
                 warehouse: Warehouse, loop: str, registry: ModelRegistry) -> None:
        self.context, self.config, self.hub, self.warehouse = context, config, model_hub, warehouse
        self.loop, self.now = loop, datetime.now(UTC)
        self.round = registry.current_round(SPEECH.family)
        self.cache = warehouse.report_dir("asr_eval", "transcripts")
        self.reused: list[str] = []

    def __call__(self, label: str, entry: dict, clips: list[dict]):
        return grouped_scores(self.transcripts(label, entry, clips), self.config.group_by)

    def per_batch(self, label: str, entry: dict, clips: list[dict]) -> dict[str, float]:
        """Pooled WER per batch of `clips` (the guard batches)."""
        utterances = self.transcripts(label, entry, clips)
        batch_of = {c["clip_id"]: c["batch"] for c in clips}
        return {batch: grouped_scores([u for u in utterances if batch_of[u["clip_id"]] == batch],
                                      []).overall.wer
                for batch in sorted(set(batch_of.values()))}

    def transcripts(self, label: str, entry: dict, clips: list[dict]) -> list[dict]:
        key = eval_cache.cache_key(entry["checkpoint"], clips, batch_size=self.config.batch_size,
                                   device=self.hub.device)
        utterances = eval_cache.load(self.cache, key)
        if utterances is None:
            asr = self.hub.load_asr(entry["checkpoint"])
            result = evaluate_clips(asr, clips, load_audio_16k, self.config.group_by,
                                    batch_size=self.config.batch_size,
                                    progress=progress_logger(self.context, f"{label} evaluated"))
            utterances = result.utterances
            if not result.failures:
                eval_cache.save(self.cache, key, utterances)
        else:
            self.reused.append(entry["model_id"])
            self.context.log.info(f"{label} {entry['model_id']}: transcripts of these clips by "
                                  "this checkpoint reused from an earlier evaluation")
        _write_rows(self.warehouse, utterances, clips, label, entry["model_id"], self.loop,
                    self.now, self.round)
        return utterances


def _record_scores(registry: ModelRegistry, models: dict, stage: str, reports: dict,
                   decision) -> None:
    """Eval WER/CER on the registry row of each trained model evaluated here. A model scored
    in an earlier loop keeps those scores, unless it is this loop's candidate."""
    for label in (s for s in models if s.partition(STEP)[0] in STAGES and (
            STEP not in s or s == stage)):
        if label == stage or _unscored(registry.get(models[label]["model_id"])):
            registry.update(models[label]["model_id"], eval_wer=reports[label].overall.wer,
                            eval_cer=reports[label].overall.cer,
                            incumbent=models["incumbent"]["model_id"],
                            incumbent_wer=decision.incumbent_wer)


def _unscored(row: dict) -> bool:
    wer = row.get("eval_wer")
    return wer is None or wer != wer  # missing, or NaN


def _label(label: str, entry: dict) -> str:
    return {"incumbent": entry["model_id"] if entry["model_id"] == "baseline"
            else f"promoted {entry['model_id']}"}.get(label, entry["model_id"])


def _write_rows(warehouse: Warehouse, utterances: list[dict], clips: list[dict], label: str,
                model_id: str, loop: str, now: datetime, round_: int) -> None:
    """Per-utterance rows into `asr_eval`, one shard per (model, loop) in each eval batch."""
    batch_of = {c["clip_id"]: c["batch"] for c in clips}
    for batch in sorted(set(batch_of.values())):
        rows = [{**u, "tags": tags_json(u["tags"]),
                 "eval_name": label, "model": model_id, "created_at": now, "round": round_}
                for u in utterances if batch_of[u["clip_id"]] == batch]
        warehouse.write_partition("asr_eval", batch, rows, shard=f"{label}-{loop}")


@asset(group_name="evaluation", partitions_def=loops, deps=["asr_eval"],
       code_version=sql.version(THIS, assets.promotion))
def promoted_model(context: AssetExecutionContext, warehouse: Warehouse,
                   model_registry: ModelRegistry) -> MaterializeResult:
    """The model that now labels data and that the next candidate must beat."""
    return promote_candidate(context, warehouse, model_registry, family=SPEECH.family,
                             evaluation="asr_eval", output="promoted_model", metric="wer")


def _guard_table(guard_wer: dict[str, dict[str, float]]) -> str:
    """Markdown: each model's WER (%) on each guard batch (empty: no guard batches)."""
    batches = sorted({b for wers in guard_wer.values() for b in wers})
    if not batches:
        return "no guard batches"
    rows = [f"| model | {' | '.join(batches)} |", "|---|" + "---:|" * len(batches)]
    rows += [f"| {model} | " + " | ".join(f"{100 * wers[b]:.1f}" for b in batches) + " |"
             for model, wers in guard_wer.items()]
    return "\n".join(rows)
