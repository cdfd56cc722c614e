"""The speech loop's checks: the blocking promotion gate, deletions, RL entropy."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    asset_check,
)

from pipelines.partitions import loops
from resources.warehouse import Warehouse

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
    passed = delta <= MAX_DELETION_RATE_INCREASE
    said = (f"the candidate deletes {decision['candidate_deletion_rate']:.1%} of the reference "
            f"words, the incumbent {decision['incumbent_deletion_rate']:.1%} ({100 * delta:+.1f} "
            f"points; the limit is +{100 * MAX_DELETION_RATE_INCREASE:.0f})")
    return AssetCheckResult(
        passed=passed, severity=AssetCheckSeverity.WARN,
        description=said if passed else f"{said}: part of its WER gain is emitting less; "
        "read the S/D/I line of the comparison",
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
