"""Which models a loop's evaluation scores, and which of them compete for promotion.

The incumbent (the family's champion, or the hub's baseline before any promotion), each
model the loop trained, by stage (`STAGES`), and a trained model's starting point when it
is none of those ('start': the DPO model GRPO started from, from another loop). With
`checkpoints`, the intermediate checkpoints of each trained run (saved every
`save_every` steps, `<run>/checkpoints/step-N`) compete too, as `<stage>.stepN` with
model id `<model id>.stepN`: the eval batches then choose the step (a DPO run that
starts deleting words late keeps its earlier step). Such a checkpoint is registered in
the model registry only when it wins (`register_checkpoint`).
"""

from __future__ import annotations

from pathlib import Path

from assets.speech.spec import SPEECH
from resources.model_hub import ModelHub
from resources.registry import ModelRegistry
from resources.warehouse import Warehouse
from training.runtime.checkpoints import step_of

STAGES = {"sft": "whisper_sft_model", "preference": "whisper_preference_model",
          "rl": "whisper_rl_model"}  # a loop's trained models, in training order
STEP = ".step"  # `<stage>.stepN`, `<model id>.stepN`: an intermediate checkpoint


def contenders(candidate: str, loop: str, warehouse: Warehouse, registry: ModelRegistry,
               model_hub: ModelHub, checkpoints: bool = False
               ) -> tuple[dict[str, dict], list[str]]:
    """The models to evaluate, {label: {model_id, checkpoint}}, and the labels that compete
    (`candidate`: 'best' = every trained model, or one stage)."""
    if candidate != "best" and candidate not in STAGES:
        raise ValueError(f"candidate must be 'best' or one of {list(STAGES)}, got {candidate!r}")
    promoted = registry.champion(SPEECH.family)
    baseline = model_hub.resolve(None)
    out = {"incumbent": ({"model_id": promoted["model_id"], "checkpoint": promoted["checkpoint"]}
                         if promoted else {"model_id": "baseline", "checkpoint": baseline})}
    starts, trained = [], []
    for stage, asset_name in STAGES.items():
        entry = _output(warehouse, asset_name, loop)
        if entry is None:
            continue
        starts.append(entry.pop("base_model", None))
        steps = intermediate_checkpoints(stage, entry) if checkpoints else {}
        out.update(steps)
        out[stage] = entry
        if candidate in ("best", stage):
            trained += [*steps, stage]
    if not trained:
        wanted = STAGES[candidate] if candidate != "best" else " or ".join(STAGES.values())
        raise FileNotFoundError(f"Loop {loop!r} has no trained candidate: materialize "
                                f"{wanted} for it first.")
    start = next((s for s in starts if s and s not in {m["checkpoint"] for m in out.values()}),
                 None)
    if start:
        out = {"incumbent": out.pop("incumbent"),
               "start": {"model_id": _model_id_of(registry, start, baseline),
                         "checkpoint": start}, **out}
    return out, trained


def intermediate_checkpoints(stage: str, entry: dict) -> dict[str, dict]:
    """{`<stage>.stepN`: entry} for each checkpoint its run saved before the final one."""
    final = Path(entry["checkpoint"])
    found = {}
    for folder in sorted(final.parent.glob("step-*"), key=step_of):
        if folder.resolve() != final.resolve() and (folder / "config.json").is_file():
            step = step_of(folder)
            found[f"{stage}{STEP}{step}"] = {"model_id": f"{entry['model_id']}{STEP}{step}",
                                             "checkpoint": str(folder)}
    return found


def register_checkpoint(registry: ModelRegistry, entry: dict, loop: str) -> None:
    """Record a winning intermediate checkpoint as its own model version, with its run's
    fields and its step, so that it can be promoted like any trained model."""
    run_id, _, step = entry["model_id"].rpartition(STEP)
    run = registry.get(run_id, SPEECH.family)
    registry.record(SPEECH.family, model_id=entry["model_id"], stage=run["stage"],
                    checkpoint=entry["checkpoint"], base_model=run["base_model"],
                    train_batches=run["train_batches"], eval_batches=run["eval_batches"],
                    config={**run["config"], "step": int(step)}, run_id=run["run_id"] or None,
                    loop=loop)


def _model_id_of(registry: ModelRegistry, checkpoint: str, baseline: str) -> str:
    """The registry's id for a checkpoint ('baseline' for the hub's; else the path itself)."""
    if checkpoint == baseline:
        return "baseline"
    ids = [m["model_id"] for m in registry.all_models(SPEECH.family)
           if m["checkpoint"] == checkpoint]
    return ids[0] if ids else checkpoint


def _output(warehouse: Warehouse, asset: str, loop: str) -> dict | None:
    try:
        p = warehouse.read_output(asset, loop)
    except FileNotFoundError:
        return None
    return {"model_id": p["model_id"], "checkpoint": p["checkpoint"],
            "base_model": p.get("base_model")}
