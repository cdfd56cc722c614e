"""A TRL loop's evaluation and promotion: every trained model against the family's champion.

`<family>_eval` scores the incumbent (the family's champion, or the hub's default model
before any promotion) and each model the loop trained on the training set's eval rows, with
the media and without (blind control), per task and per curriculum bucket; the best trained
model that loses no task is the candidate, and the shared gate compares its score with the
incumbent's. `<family>_eval_candidate_not_worse` (blocking) fails when the gate refuses, and
`<family>_promoted_model` then never runs; when it passed, the candidate becomes the family's
champion — if the champion is still the incumbent it was judged against.
"""


import json
import sys

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

import assets.promotion
import sql
import training.trl_backend.evaluate
import training.trl_backend.loop_eval
from assets.common import png_markdown
from assets.loop.config import LoopEvalConfig
from assets.loop.models import base_model
from assets.loop.specs import promotion_asset
from assets.promotion import promote_candidate
from pipelines.partitions import loops
from resources.model_hub import ModelHub
from resources.registry import ModelRegistry
from resources.warehouse import Warehouse
from training.tasks import TaskSpec
from training.trl_backend import loop_eval
from training.trl_backend.config import TrlConfig

THIS = sys.modules[__name__]
EVAL_FIELDS = ("family", "max_frames", "point_format", "point_scale", "answer_style",
               "max_completion_length", "reward_weights")


def build_evaluation(spec: TaskSpec) -> tuple[list, list]:
    group, name = f"{spec.family}_loop", spec.evaluation

    @asset(name=name, group_name=group, partitions_def=loops, pool="gpu",
           deps=[spec.training_set, *spec.models.values()],
           code_version=sql.version(THIS, training.trl_backend.loop_eval,
                                    training.trl_backend.evaluate))
    def _eval(context: AssetExecutionContext, config: LoopEvalConfig, warehouse: Warehouse,
              model_hub: ModelHub, model_registry: ModelRegistry) -> MaterializeResult:
        """Incumbent and trained models on the held-out rows, with and without the media;
        the best trained model that loses no task is judged against the incumbent."""
        from training.trl_backend.data import read_rows
        from training.trl_backend.evaluate import evaluate_with_blind

        loop = context.partition_key
        snap = warehouse.read_output(spec.training_set, loop)
        models, trained, idle = _contenders(spec, loop, warehouse, model_registry, model_hub)
        settings = _eval_settings(warehouse, spec, loop, snap)
        rows = read_rows([snap["eval_data"]])
        scored = {}
        for label, entry in models.items():
            context.log.info(f"evaluating {label} ({entry['model_id']}) on {len(rows)} rows, "
                             "with and without the media")
            result = evaluate_with_blind(entry["checkpoint"], rows, settings,
                                         batch_size=config.batch_size)
            scored[label] = loop_eval.summary(result)
        decision = loop_eval.decide(scored, trained, "incumbent", tolerance=config.tolerance,
                                    max_task_drop=config.max_task_drop)
        out = warehouse.report_dir(name, loop)
        out.mkdir(parents=True, exist_ok=True)
        png = loop_eval.plot(scored, out / "by_task.png")
        table = loop_eval.table(scored)
        report = out / "report.json"
        report.write_text(json.dumps({"models": models, "scores": scored,
                                      "decision": decision}, indent=2, default=str))
        candidate = models[decision["candidate"]]
        for label in trained:
            model_registry.update(models[label]["model_id"],
                                  eval_score=scored[label]["score"] or 0.0,
                                  incumbent=models["incumbent"]["model_id"],
                                  incumbent_score=scored["incumbent"]["score"] or 0.0)
        warehouse.write_output(name, loop, {
            "decision": decision, "table": table, "report": str(report), "not_trained": idle,
            "models": {"candidate": candidate, "incumbent": models["incumbent"]}})
        return MaterializeResult(metadata={
            "candidate": MetadataValue.text(f"{decision['candidate']} "
                                            f"({candidate['model_id']})"),
            "decision": MetadataValue.text(("passed: " if decision["passed"] else "refused: ")
                                           + decision["reason"]),
            "selection": MetadataValue.text(decision["selection"]),
            "score": round(decision["candidate_score"] or 0.0, 4),
            "incumbent_score": round(decision["incumbent_score"] or 0.0, 4),
            "table": MetadataValue.md(table),
            **({"not_trained": MetadataValue.md("\n".join(f"- {a}: {why}"
                                                          for a, why in idle.items()))}
               if idle else {}),
            "by_bucket": MetadataValue.md(loop_eval.bucket_table(scored)),
            "by_task": png_markdown(png, "metric per task, media and blind"),
            "eval_rows": len(rows),
            "report": MetadataValue.path(str(report)),
        })

    @asset_check(asset=name, name=f"{name}_candidate_not_worse", partitions_def=loops,
                 blocking=True, description="The loop's candidate's score is not below the "
                 "incumbent's (beyond the tolerance) and it loses no task (ERROR, blocking: "
                 "a worse model is never promoted).")
    def _not_worse(context: AssetCheckExecutionContext, warehouse: Warehouse
                   ) -> AssetCheckResult:
        decision = warehouse.read_output(name, context.partition_key)["decision"]
        return AssetCheckResult(
            passed=bool(decision["passed"]), severity=AssetCheckSeverity.ERROR,
            description=decision["reason"],
            metadata={"candidate_score": round(decision["candidate_score"] or 0.0, 4),
                      "incumbent_score": round(decision["incumbent_score"] or 0.0, 4)})

    @asset(name=promotion_asset(spec), group_name=group, partitions_def=loops, deps=[name],
           code_version=sql.version(THIS, assets.promotion))
    def _promote(context: AssetExecutionContext, warehouse: Warehouse,
                 model_registry: ModelRegistry) -> MaterializeResult:
        """The family's champion: the model the next loop starts from and must beat."""
        return promote_candidate(context, warehouse, model_registry, family=spec.family,
                                 evaluation=name, output=promotion_asset(spec),
                                 metric="score")

    return [_eval, _promote], [_not_worse]


def _contenders(spec: TaskSpec, loop: str, warehouse: Warehouse, registry: ModelRegistry,
                model_hub: ModelHub) -> tuple[dict[str, dict], list[str], dict[str, str]]:
    """{label: {model_id, checkpoint}} of the incumbent and the loop's trained models, the
    labels that compete, and {asset: why} of the stages that trained nothing."""
    champion = registry.champion(spec.family)
    incumbent = ({"model_id": champion["model_id"], "checkpoint": champion["checkpoint"]}
                 if champion else
                 {"model_id": "baseline",
                  "checkpoint": base_model("", spec, loop, warehouse, registry, model_hub)})
    models, trained, idle = {"incumbent": incumbent}, [], {}
    for stage, asset_name in spec.models.items():
        try:
            output = warehouse.read_output(asset_name, loop)
        except FileNotFoundError:
            continue
        if "checkpoint" not in output:  # a stage that trained nothing (no pairs)
            idle[asset_name] = output.get("skipped", "trained nothing")
            continue
        label = (output.get("config") or {}).get("objective") or stage
        models[label] = {"model_id": output["model_id"], "checkpoint": output["checkpoint"]}
        trained.append(label)
    if not trained:
        raise Failure(f"Loop {loop!r} has no trained model: materialize "
                      f"{' or '.join(spec.models.values())} for it first.")
    return models, trained, idle


def _eval_settings(warehouse: Warehouse, spec: TaskSpec, loop: str, snap: dict) -> TrlConfig:
    """The prompt and answer formats the loop trained with (its last run's config), so every
    model is asked and scored as the candidate was trained."""
    trained = {}
    for asset_name in spec.models.values():
        try:
            trained = warehouse.read_output(asset_name, loop).get("config") or trained
        except FileNotFoundError:
            continue
    fields = {k: trained[k] for k in EVAL_FIELDS if k in trained}
    return TrlConfig(**{"family": spec.family, **fields, "objective": "grpo",
                        "model": "evaluated", "data": snap["eval_data"],
                        "output_dir": snap["dir"]})
