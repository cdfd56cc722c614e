"""Data contracts on ingested tables, graded by severity."""

import warnings

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    PreviewWarning,
    asset_check,
)

import sql
from pipelines.partitions import batches, loops
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
        "AND reason <> 'duplicate'", {"b": batch})[0][0]
    share = refused / max(1, kept + refused)
    return AssetCheckResult(passed=share <= MAX_QUARANTINE_SHARE, severity=AssetCheckSeverity.WARN,
                            metadata={"kept": kept, "quarantined": refused,
                                      "share": round(share, 4)})


MAX_DELETION_RATE_INCREASE = 0.02


@asset_check(
    asset="asr_eval", partitions_def=loops, blocking=True,
    description="The loop's candidate's WER on the eval batches is not worse than the "
    "incumbent's (ERROR, blocking: a worse model is never promoted).",
)
def asr_eval_candidate_not_worse(context: AssetCheckExecutionContext, warehouse: Warehouse):
    decision = warehouse.read_output("asr_eval", context.partition_key)["decision"]
    return AssetCheckResult(
        passed=bool(decision["passed"]), severity=AssetCheckSeverity.ERROR,
        description=decision["reason"],
        metadata={k: round(decision[k], 4) for k in ("candidate_wer", "incumbent_wer",
                                                      "wer_delta")},
    )


@asset_check(
    asset="asr_eval", partitions_def=loops,
    description=f"The candidate deletes at most {MAX_DELETION_RATE_INCREASE:.0%} more of the "
    "reference words than the incumbent (WARN: a WER gain may come from emitting less).",
)
def asr_eval_deletions_not_up(context: AssetCheckExecutionContext, warehouse: Warehouse):
    decision = warehouse.read_output("asr_eval", context.partition_key)["decision"]
    delta = decision["deletion_rate_delta"]
    return AssetCheckResult(
        passed=delta <= MAX_DELETION_RATE_INCREASE, severity=AssetCheckSeverity.WARN,
        metadata={"candidate_deletion_rate": round(decision["candidate_deletion_rate"], 4),
                  "incumbent_deletion_rate": round(decision["incumbent_deletion_rate"], 4),
                  "delta": round(delta, 4)},
    )


@asset_check(
    asset="whisper_rl_model", partitions_def=loops,
    description="The RL run finished without the entropy watch stopping it (WARN: a stop means "
    "the policy collapsed; the model is the last checkpoint before it).",
)
def whisper_rl_model_entropy_ok(context: AssetCheckExecutionContext, warehouse: Warehouse):
    output = warehouse.read_output("whisper_rl_model", context.partition_key)
    reason = output.get("stop_reason") or ""
    return AssetCheckResult(passed=not reason, severity=AssetCheckSeverity.WARN,
                            description=reason or "no entropy or reward-variance collapse")
