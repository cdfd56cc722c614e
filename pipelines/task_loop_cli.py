"""`rlfoundry run --task image|video|vision|audio-qa`: a VLM or audio-LM loop for named batches.

1. every train and eval batch of the task's chains without a dataset gets its chain's
   labeling run (`image_labeling`, `video_qa_labeling`, `audio_qa_labeling`);
2. a new loop partition of the family (``vlm-<UTC time>-<4 hex>``) is registered, with its job
   and run config kept beside its outputs (`rlfoundry run --resume LOOP` picks it up), and
   one `vlm_loop` / `alm_loop` run trains SFT, then DPO/MPO (where verdicts give pairs) and
   GRPO, evaluates every model with and without the media, and promotes through the
   blocking gate. A starting model that cannot load here stops it in one line first.

Exit codes as for the speech loop: 0 promoted, 3 evaluated but not promoted, 1 otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

#: --task -> (loop spec name, chain tasks)
TASKS = {"image": ("vision", ["pointing"]), "video": ("vision", ["video_qa"]),
         "vision": ("vision", ["pointing", "video_qa"]), "audio-qa": ("audio_qa", ["audio_qa"])}


def spec_of(task: str):
    from assets.loop.specs import SPECS

    name, _ = TASKS[task]
    return next(s for s in SPECS if s.name == name)


def run_task_loop(task: str, train: list[str], evals: list[str], config_file: Path | None,
                  relabel: bool, instance_factory: Callable, run_job: Callable) -> None:
    from assets.loop.specs import CHAINS
    from assets.loop.training_set import batches_with_datasets, dataset_file
    from pipelines.loop_cli import LOOP_RECORD, read_run_config
    from pipelines.partitions import BATCHES, new_loop
    from resources.warehouse import Warehouse

    spec, (_, tasks) = spec_of(task), TASKS[task]
    base = read_run_config(config_file) if config_file else {}
    warehouse = Warehouse()
    instance = instance_factory()
    train = train or _holding(warehouse, tasks, "train")
    evals = evals or _holding(warehouse, tasks, "eval")
    if not train or not evals:
        role = "train" if not train else "eval"
        raise click.ClickException(
            f"No {role} batch for --task {task}: name some (--{role}) or ingest one "
            f"(`rlfoundry ingest PATH --batch NAME{' --role eval' if role == 'eval' else ''}`).")
    missing = [b for b in train + evals if not instance.has_dynamic_partition(BATCHES, b)]
    if missing:
        raise click.ClickException(f"Batches not registered: {', '.join(missing)}. Register "
                                   "them with `rlfoundry ingest PATH --batch NAME`.")
    for batch in train + evals:
        for chain in tasks:
            table, job = CHAINS[chain]
            if batch in warehouse.batches_holding(table, _role(warehouse, batch)) and (
                    relabel or not dataset_file(warehouse, spec, chain, batch).is_file()):
                click.echo(f"\n### labeling batch {batch} ({job})")
                run_job(job, batch, None)
    if not batches_with_datasets(warehouse, spec, "train", tasks):
        raise click.ClickException(f"No train batch has a {'/'.join(tasks)} dataset after "
                                   "labeling: see the labeling runs above.")
    job = spec.loop_job("grpo")
    config = _run_config(base, spec, train, evals, tasks)
    _check_start_model(spec, config, warehouse)
    loop = new_loop(instance, spec.family)
    warehouse.write_output(LOOP_RECORD, loop, {"job": job, "objective": "grpo",
                                               "run_config": config, "task": task})
    click.echo(f"\n### {job} ({task}), loop {loop}: train on {train}, evaluate on {evals}"
               f"\n(if it is interrupted: `rlfoundry run --resume {loop}`)")
    run_and_report(warehouse, spec, run_job, job, loop, config)


def _check_start_model(spec, config: dict, warehouse) -> None:
    """One line, before a loop partition is made, when the SFT stage's starting model (the
    family's champion, else the hub's default) cannot load here."""
    from assets.loop.models import base_model
    from assets.loop.specs import ROLE
    from resources.model_hub import ModelHub, ModelUnavailable, check_available
    from resources.registry import ModelRegistry

    stage = config.get("ops", {}).get(spec.models["sft"], {}).get("config", {})
    name = stage.get("base_model", "promoted")
    if name == "sft":
        return
    start = base_model(name, spec, "", warehouse, ModelRegistry(), ModelHub())
    try:
        check_available(start, ROLE[spec.family])
    except ModelUnavailable as exc:
        role = ROLE[spec.family]
        raise click.ClickException(
            f"{exc} A dry run on tiny random weights: `.venv/bin/python -c \"from models.tiny "
            f"import BUILDERS; BUILDERS['{role}']('DIR')\"`, then point it at DIR.") from None


def run_and_report(warehouse, spec, run_job: Callable, job: str, loop: str, config: dict,
                   assets: list | None = None) -> None:
    """Run the loop's job and print its comparison table and the gate's decision once; a
    refused candidate exits 3."""
    from assets.loop.specs import promotion_asset
    from pipelines.loop_cli import run_loop_job

    run_loop_job(warehouse, run_job, job, loop, config, assets, evaluation=spec.evaluation,
                  promotion=promotion_asset(spec), printer=print_outcome)


def print_outcome(evaluation: dict) -> None:
    click.echo("\n" + evaluation["table"])
    for asset_name, why in (evaluation.get("not_trained") or {}).items():
        click.echo(f"(not in the table: {asset_name} trained nothing: {why})")
    decision = evaluation["decision"]
    for guard in decision.get("guards", []):
        click.echo(("  ok  " if guard["passed"] else "  LOSES  ") + guard["reason"])
    click.echo(f"candidate {decision['selection']}")
    verdict = "PROMOTED" if decision["passed"] else "NOT PROMOTED"
    click.echo(f"\n{verdict} {evaluation['models']['candidate']['model_id']}: "
               f"{decision['reason']}")


def _run_config(base: dict, spec, train: list[str], evals: list[str], tasks: list[str]) -> dict:
    ops = dict(base.get("ops", {}))
    ops[spec.training_set] = {"config": {**ops.get(spec.training_set, {}).get("config", {}),
                                         "train_batches": train, "eval_batches": evals,
                                         "tasks": tasks}}
    return {**base, "ops": ops}


def _holding(warehouse, tasks: list[str], role: str) -> list[str]:
    """Batches of `role` whose media one of the tasks' chains labels."""
    from assets.loop.specs import CHAINS

    found: list[str] = []
    for chain in tasks:
        found += [b for b in warehouse.batches_holding(CHAINS[chain][0], role) if b not in found]
    return found


def _role(warehouse, batch: str) -> str:
    return next((role for role, batches in warehouse.batches_by_role().items()
                 if batch in batches), "train")
