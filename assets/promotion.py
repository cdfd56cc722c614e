"""Promotion, shared by every family's loop: the judged candidate becomes the champion.

A loop's evaluation asset records its decision and the two models it compared
(`{"decision": {"passed", "reason", "candidate_<metric>", "incumbent_<metric>"}, "models":
{"candidate", "incumbent"}}`); its promotion asset calls :func:`promote_candidate`, which
refuses a candidate the gate refused, and one judged against a champion that another loop
has replaced since (it must be judged again), and otherwise moves the family's `champion`
alias in the registry to it.
"""

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue

from resources.registry import ModelRegistry
from resources.warehouse import Warehouse


def promote_candidate(context: AssetExecutionContext, warehouse: Warehouse,
                      registry: ModelRegistry, *, family: str, evaluation: str,
                      output: str, metric: str) -> MaterializeResult:
    """Promote the loop's candidate of `evaluation` in `family`; record it as `output`."""
    loop = context.partition_key
    judged = warehouse.read_output(evaluation, loop)
    decision, candidate = judged["decision"], judged["models"]["candidate"]
    if not decision["passed"]:
        raise Failure(f"{candidate['model_id']} is not promoted: {decision['reason']}.",
                      metadata={"report": MetadataValue.path(judged["report"])})
    judged_against = judged["models"]["incumbent"]["model_id"]
    champion = registry.champion(family)
    now = champion["model_id"] if champion else "baseline"
    if now != judged_against:
        raise Failure(f"{candidate['model_id']} is not promoted: it was judged against "
                      f"{judged_against}, but {now} was promoted since (by another loop). "
                      f"Materialize {evaluation} for loop {loop} again to judge it against "
                      f"{now}.")
    row = registry.promote(family, candidate["model_id"])
    warehouse.write_output(output, loop, {"model_id": row["model_id"],
                                          "checkpoint": row["checkpoint"],
                                          "promoted_at": row["promoted_at"]})
    context.log.debug(f"promoted {row['model_id']}: {decision['reason']}")  # the CLI prints it
    return MaterializeResult(metadata={
        "model_id": row["model_id"],
        "registry": MetadataValue.text(f"{row['name']} version {row['version']} is now alias "
                                       f"'champion' ({registry.uri()})"),
        "checkpoint": MetadataValue.path(row["checkpoint"]),
        "replaces": MetadataValue.text(judged_against),
        metric: round(decision[f"candidate_{metric}"] or 0.0, 4),
        f"previous_{metric}": round(decision[f"incumbent_{metric}"] or 0.0, 4),
        "train_batches": MetadataValue.json(list(row["train_batches"])),
    })
