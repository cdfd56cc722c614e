"""Data contracts on ingested tables, graded by severity (the tasks' loops have their own,
in their folders)."""

import warnings

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    PreviewWarning,
    asset_check,
)

import sql
from pipelines.partitions import batches
from resources.warehouse import Warehouse

MAX_QUARANTINE_SHARE = 0.2
# Partitioned asset checks are a Dagster preview; they are what makes a check per batch possible.
warnings.filterwarnings("ignore", "Specifying a partitions_def on an AssetCheckSpec",
                        PreviewWarning)


@asset_check(
    asset="audio_clips", partitions_def=batches, blocking=True,
    description="Every row has a sha256 id and a positive duration; ids are unique in the batch; "
    "no transcript is blank (ERROR: downstream labeling would be wrong).",
)
def audio_clips_well_formed(context: AssetCheckExecutionContext, warehouse: Warehouse):
    query = sql.load("checks/audio_clips_well_formed")
    problems = dict(warehouse.fetch(query, {"batch": context.partition_key}))
    return AssetCheckResult(passed=not any(problems.values()), metadata=problems,
                            severity=AssetCheckSeverity.ERROR)


@asset_check(
    asset="audio_clips", partitions_def=batches,
    description=f"At most {MAX_QUARANTINE_SHARE:.0%} of a batch's audio is quarantined "
    "(WARN: look at the quarantine reasons).",
)
def audio_clips_quarantine_share(context: AssetCheckExecutionContext, warehouse: Warehouse):
    batch = context.partition_key
    kept = warehouse.count("audio_clips", batch)
    refused = warehouse.fetch(
        "SELECT count(*) FROM quarantine WHERE asset = 'audio_clips' AND batch = $b "
        "AND reason NOT IN ('duplicate', 'skipped')", {"b": batch})[0][0]  # not bad media
    share = refused / max(1, kept + refused)
    return AssetCheckResult(passed=share <= MAX_QUARANTINE_SHARE, severity=AssetCheckSeverity.WARN,
                            metadata={"kept": kept, "quarantined": refused,
                                      "share": round(share, 4)})
