"""Curriculum: each training clip's difficulty and its bucket (easy → hard), in SQL."""

import sys
from collections import Counter
from datetime import UTC, datetime

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import assets.label_sets
import sql
from assets.common import batches
from assets.label_sets import clip_set, stale_labels
from assets.speech.spec import SPEECH
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

DIFFICULTY_SQL = "queries/curriculum_difficulty"


class CurriculumConfig(Config):
    weight_wer: float = Field(2.0, description="Weight of the baseline greedy WER's rank.")
    weight_noise: float = Field(1.0, description="Weight of the noise rank (lower snr_db tag "
                                "is harder).")
    weight_duration: float = Field(0.5, description="Weight of the duration rank.")
    weight_rate: float = Field(0.5, description="Weight of the speaking-rate rank (words/s).")
    easy_quantile: float = Field(1 / 3, description="Clips up to this difficulty quantile "
                                 "are easy.")
    hard_quantile: float = Field(2 / 3, description="Clips above this quantile are hard; "
                                 "between the two, medium.")


@asset(partitions_def=batches, group_name="curriculum", deps=["audio_clips", "reward_shaping"],
       code_version=sql.version(DIFFICULTY_SQL, "queries/clip_sets", "queries/label_sets",
                                "schema/curriculum_buckets", THIS, assets.label_sets))
def curriculum_buckets(
    context: AssetExecutionContext, config: CurriculumConfig, warehouse: Warehouse,
) -> MaterializeResult:
    """Difficulty per labeled clip (baseline WER, noise, duration, speaking rate) and its bucket."""
    weights = (config.weight_wer, config.weight_noise, config.weight_duration, config.weight_rate)
    if min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"curriculum weights must be >= 0 and not all 0, got {weights}")
    if not 0 < config.easy_quantile <= config.hard_quantile < 1:
        raise ValueError("need 0 < easy_quantile <= hard_quantile < 1, got "
                         f"{config.easy_quantile} and {config.hard_quantile}")
    batch = context.partition_key
    # made from the clips now, unless the baseline WERs it ranks are of an earlier clip set
    stale = stale_labels(warehouse, SPEECH.media_table, ["reward_shaping"], [batch])
    made_from = None if stale else clip_set(warehouse, SPEECH.media_table, batch)
    rows = warehouse.fetch_dicts(sql.load(DIFFICULTY_SQL), {
        "batch": batch, "w_wer": config.weight_wer,
        "w_noise": config.weight_noise, "w_duration": config.weight_duration,
        "w_rate": config.weight_rate, "easy_quantile": config.easy_quantile,
        "hard_quantile": config.hard_quantile})
    now = datetime.now(UTC)
    warehouse.write_partition("curriculum_buckets", batch,
                              [{**r, "clip_set": made_from, "created_at": now} for r in rows])
    sizes = Counter(r["bucket"] for r in rows)
    return MaterializeResult(metadata={
        "clips": len(rows),
        "unlabeled": sum(r["baseline_wer"] is None for r in rows),
        "buckets": MetadataValue.md(_bucket_table(rows, sizes)),
    })


def _bucket_table(rows: list[dict], sizes: Counter) -> str:
    lines = ["| bucket | clips | mean baseline WER | mean duration s | mean words/s |",
             "| :--- | ---: | ---: | ---: | ---: |"]
    for bucket in ("easy", "medium", "hard"):
        group = [r for r in rows if r["bucket"] == bucket]
        if not group:
            continue
        wers = [r["baseline_wer"] for r in group if r["baseline_wer"] is not None]
        mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
        lines.append(f"| {bucket} | {sizes[bucket]} | {100 * mean(wers):.1f}% | "
                     f"{mean([r['duration_s'] for r in group]):.2f} | "
                     f"{mean([r['words_per_s'] for r in group]):.2f} |")
    return "\n".join(lines)
