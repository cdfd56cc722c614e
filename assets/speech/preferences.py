"""Preference and reward datasets: mined pairs (+ human judgements) and per-hypothesis rewards."""

import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import assets.label_sets
import labeling.qc
import sql
import training.data.pairs
import training.data.preference_data
import training.rewards
from assets.common import batches, table_md
from assets.label_sets import made_from
from assets.speech.spec import SPEECH
from labeling.label_studio import aggregate, read_pairwise_export
from labeling.qc.verdicts import apply_verdicts, preferences_from_rows
from resources.registry import ModelRegistry
from resources.warehouse import Warehouse
from training.data.pairs import PairConfig
from training.data.preference_data import (
    export_pairs,
    hard_negative_pairs,
    human_pairs,
    model_pairs,
    shaped_rewards,
)

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

HYPS_SQL = "queries/hypotheses_for_batch"
VERDICTS_SQL = "queries/verdicts_for_batch"


class PairsConfig(Config):
    strategy: str = Field("best_vs_worst", description="best_vs_worst | best_vs_each | adjacent.")
    min_wer_margin: float = Field(0.05, description="Chosen must beat rejected by this much WER.")
    max_pairs_per_clip: int = Field(2, description="At most this many pairs per clip.")
    label_studio_export: str = Field("", description="A Label Studio JSON export of the "
                                     "'which transcript is better' task to add human pairs from "
                                     "(on top of the verdicts pairwise_qc_verdicts pulled).")
    hard_negative_share: float = Field(0.2, description="From round 2 on (labels by a promoted "
                                       "model): for this share of clips, those whose greedy "
                                       "transcript errs most, add a pair: reference (chosen) vs "
                                       "that transcript (rejected). 0 = none.")


def _hypotheses(warehouse: Warehouse, batch: str) -> list[dict]:
    return warehouse.fetch_dicts(sql.load(HYPS_SQL), {"batch": batch})


def _stamp(rows: list[dict]) -> list[dict]:
    now = datetime.now(UTC)
    return [{**r, "created_at": now} for r in rows]


@asset(partitions_def=batches, group_name="preferences", deps=["asr_hypotheses", "audio_clips"],
       code_version=sql.version(HYPS_SQL, VERDICTS_SQL, "schema/preference_pairs", THIS,
                                assets.label_sets, training.data.pairs,
                                training.data.preference_data, labeling.qc))
def preference_pairs(
    context: AssetExecutionContext, config: PairsConfig, warehouse: Warehouse,
    model_registry: ModelRegistry,
) -> MaterializeResult:
    """Chosen/rejected transcripts per clip, exported as JSONL and a `datasets` dataset.

    Human verdicts (pulled by `pairwise_qc_verdicts`, or from a JSON export) replace the mined
    pair of the same clip and texts. Not a declared dependency: the verdicts are pulled from
    tasks pushed from this asset's own rows."""
    batch = context.partition_key
    hyps = _hypotheses(warehouse, batch)
    pair_config = PairConfig(config.strategy, config.min_wer_margin, config.max_pairs_per_clip)
    rows = model_pairs(hyps, pair_config)
    if max((h.get("round") or 1 for h in hyps), default=1) >= 2:  # the promoted model's errors
        mined = {p["pair_id"] for p in rows}
        rows += [r for r in hard_negative_pairs(hyps, config.hard_negative_share)
                 if r["pair_id"] not in mined]
    clips_audio = {h["clip_id"]: h["source_path"] for h in hyps}
    human = human_pairs(preferences_from_rows(
        warehouse.fetch_dicts(sql.load(VERDICTS_SQL), {"batch": batch})), clips_audio)
    if config.label_studio_export:
        human += human_pairs(aggregate(read_pairwise_export(config.label_studio_export)),
                             clips_audio)
    rows, replaced = apply_verdicts(rows, human)
    round_ = model_registry.current_round(SPEECH.family)
    made = made_from(hyps)
    rows = [{**r, "round": r.get("round") or round_, "clip_set": made} for r in rows]
    warehouse.write_partition("preference_pairs", batch, _stamp(rows))
    paths = export_pairs(rows, warehouse.report_dir("preference_pairs", batch))
    clips = {h["clip_id"] for h in hyps}
    paired = {r["clip_id"] for r in rows}
    margins = [r["margin"] for r in rows if r.get("margin") is not None]
    return MaterializeResult(metadata={
        "pairs": len(rows),
        "by_source": MetadataValue.json(dict(Counter(r["source"] for r in rows))),
        "mined_pairs_replaced_by_humans": replaced,
        "clips_with_pairs": len(paired),
        "clips_without_pairs": len(clips - paired),
        "mean_wer_margin": round(sum(margins) / len(margins), 4) if margins else 0.0,
        "sample": pair_sample(rows),
        "jsonl": MetadataValue.path(str(paths["jsonl"])),
        "dataset": MetadataValue.path(str(paths["dataset"])),
    })


SAMPLE_PAIRS = 6


def pair_sample(rows: list[dict]) -> MetadataValue:
    """A few pairs as a person reads them: the clip, chosen and rejected text with their WER,
    and where each pair came from. One pair per clip (its median margin), spread from the
    widest margin to the narrowest, so the sample shows typical pairs, not only the
    hallucinations the widest margins are."""
    by_clip: dict[str, list[dict]] = {}
    for r in rows:
        by_clip.setdefault(r["clip_id"], []).append(r)
    typical = sorted((sorted(pairs, key=lambda r: r.get("margin") or 0.0)[len(pairs) // 2]
                      for pairs in by_clip.values()), key=lambda r: -(r.get("margin") or 0.0))
    step = max(1, len(typical) / SAMPLE_PAIRS)
    picked = [typical[int(i * step)] for i in range(min(SAMPLE_PAIRS, len(typical)))]
    return table_md(["clip", "chosen (WER)", "rejected (WER)", "source"], [
        (Path(r["audio"]).name, f"{_cell(r['chosen'])} ({_pct(r.get('chosen_wer'))})",
         f"{_cell(r['rejected'])} ({_pct(r.get('rejected_wer'))})",
         r["source"] + (f" ({r['strategy']})" if r.get("strategy") else ""))
        for r in picked], "no pairs")


def _cell(text: str, limit: int = 80) -> str:
    text = (text or "∅").replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pct(wer: float | None) -> str:
    return "–" if wer is None else f"{100 * wer:.0f}%"


@asset(partitions_def=batches, group_name="preferences", deps=["asr_hypotheses", "audio_clips"],
       code_version=sql.version(HYPS_SQL, "schema/reward_shaping", THIS,
                                assets.label_sets, training.data.preference_data, training.rewards))
def reward_shaping(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Reward components per hypothesis: accuracy, hallucination, emptiness, repetition, length."""
    batch = context.partition_key
    hyps = _hypotheses(warehouse, batch)
    made = made_from(hyps)
    rows = [{**r, "clip_set": made} for r in shaped_rewards(hyps)]
    warehouse.write_partition("reward_shaping", batch, _stamp(rows))
    means = {k: round(sum(r[k] for r in rows) / len(rows), 4) if rows else 0.0
             for k in ("accuracy_wer", "hallucination_ratio", "empty", "repetition", "overlong")}
    return MaterializeResult(metadata={"hypotheses": len(rows),
                                       "means": MetadataValue.json(means)})
