"""`rlfoundry run`: the speech loop for named batches, as the same Dagster runs the UI launches.

1. every train batch without preference pairs (or all, with ``--relabel``) gets a
   ``speech_data`` run (ingest, N-best, pairs, rewards) for its partition;
2. a new loop partition (``asr-<UTC time>-<4 hex>``) is registered, with the loop's job and
   run config kept beside its outputs, and one ``speech_loop`` run of that partition trains
   on the train batches and evaluates on the eval batches, with the blocking promotion
   check deciding ``promoted_model``.

``rlfoundry run --resume LOOP`` runs the loop's job again for the same partition and config,
for the assets it has not materialized yet: training resumes from its last checkpoint.

Exit codes: 0 promoted, 3 evaluated but not promoted (the gate refused the candidate),
1 anything else (bad input, a failed step).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click

from assets.speech.spec import SPEECH

FAMILY = SPEECH.family
LABEL_JOB = SPEECH.label_job
RL_OBJECTIVES = ("grpo", "mwer")


CONFIG_SHAPE = '{"ops": {"OP_NAME": {"config": {...}}}} (the launchpad\'s shape)'


def read_run_config(path: Path) -> dict:
    """A run config file's JSON object, or a one-line error naming the file, where it is
    wrong and what to do."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"Cannot read run config {path}: {exc}. Pass a UTF-8 JSON "
                                   f"file shaped {CONFIG_SHAPE}.") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"Run config {path} is not valid JSON: {exc.msg} at line "
                                   f"{exc.lineno}, column {exc.colno}. Fix the file; it must "
                                   f"be shaped {CONFIG_SHAPE}.") from None
    problem = _config_problem(config)
    if problem:
        raise click.ClickException(f"Run config {path}: {problem}. It must be shaped "
                                   f"{CONFIG_SHAPE}.")
    return config


def _config_problem(config) -> str | None:
    """What is wrong with a run config's shape (before Dagster checks its fields), if
    anything."""
    if not isinstance(config, dict):
        return f"the top level is a JSON {_json_kind(config)}, not an object"
    ops = config.get("ops", {})
    if not isinstance(ops, dict):
        return f'"ops" is a JSON {_json_kind(ops)}, not an object of op names'
    for name, op in ops.items():
        if not isinstance(op, dict):
            return f'"ops.{name}" is a JSON {_json_kind(op)}, not an object like {{"config": ...}}'
        if "config" in op and not isinstance(op["config"], dict):
            return (f'"ops.{name}.config" is a JSON {_json_kind(op["config"])}, not an object '
                    "of fields")
    return None


def _json_kind(value) -> str:
    kinds = ((bool, "boolean"), (dict, "object"), (list, "array"), (str, "string"),
             ((int, float), "number"))
    return next((kind for types, kind in kinds if isinstance(value, types)), "null")


def loop_job(objective: str) -> str:
    return SPEECH.loop_job(objective)


def loop_run_config(base: dict, train: list[str], evals: list[str], objective: str,
                    start_from: str | None = None, guards: list[str] | None = None) -> dict:
    """The loop's run config: the file's, with batches, objective (and RL start) set."""
    ops = dict(base.get("ops", {}))

    def set_config(op: str, **values) -> None:
        ops[op] = {"config": {**ops.get(op, {}).get("config", {}), **values}}

    batches = {k: v for k, v in (("train_batches", train), ("eval_batches", evals),
                                 ("guard_batches", guards)) if v}
    set_config("speech_training_set", **batches)
    if objective in RL_OBJECTIVES:
        set_config("whisper_rl_model", objective=objective,
                   **({"base_model": start_from} if start_from else {}))
        set_config("asr_eval", candidate="rl")
        ops.pop("whisper_preference_model", None)
        ops.pop("whisper_sft_model", None)
    else:
        set_config("whisper_preference_model", objective=objective)
        ops.pop("whisper_rl_model", None)
    return {**base, "ops": ops}


def batches_to_label(instance, warehouse, train: list[str], relabel: bool) -> list[str]:
    """Train batches whose preference pairs were never materialized, or whose labels were
    made from clips the batch no longer holds (re-ingested since); all with relabel."""
    from dagster import AssetKey

    from assets.label_sets import stale_labels

    done = instance.get_materialized_partitions(AssetKey("preference_pairs"))
    stale = stale_labels(warehouse, SPEECH.media_table, SPEECH.label_tables, train)
    for batch, tables in stale.items():
        click.echo(f"batch {batch}: its {', '.join(tables)} were made from clips it no longer "
                   "holds (re-ingested since): labeling it again")
    return [b for b in train if relabel or b not in done or b in stale]


PROMOTION = "promoted_model"  # the loop asset the gate's verdict materializes
LOOP_RECORD = "loops"  # the warehouse report folder keeping each loop's job and run config


def run_loop(train: list[str], evals: list[str], objective: str, config_file: Path | None,
             relabel: bool, instance_factory: Callable, run_job: Callable,
             start_from: str | None = None, guards: list[str] | None = None) -> None:
    from pipelines.partitions import BATCHES, new_loop
    from resources.warehouse import Warehouse

    base = read_run_config(config_file) if config_file else {}  # a bad file: fail first
    warehouse = Warehouse()
    train = train or warehouse.batches_holding(SPEECH.media_table, "train")
    evals = evals or warehouse.batches_holding(SPEECH.media_table, "eval")
    instance = instance_factory()
    guards = guards or warehouse.batches_holding(SPEECH.media_table, "guard")
    missing = [b for b in train + evals + guards
               if not instance.has_dynamic_partition(BATCHES, b)]
    if missing:
        raise click.ClickException(f"Batches not registered: {', '.join(missing)}. Register "
                                   "them with `rlfoundry ingest PATH --batch NAME`.")
    for batch in batches_to_label(instance, warehouse, train, relabel):
        click.echo(f"### labeling train batch {batch} ({LABEL_JOB})")
        run_job(LABEL_JOB, batch, None)
    job = loop_job(objective)
    config = loop_run_config(base, train, evals, objective, start_from, guards)
    loop = new_loop(instance, FAMILY)
    warehouse.write_output(LOOP_RECORD, loop, {"job": job, "objective": objective,
                                               "run_config": config})
    click.echo(f"\n### {job} ({objective}), loop {loop}: train on "
               f"{', '.join(train) or 'every train batch'}, evaluate on "
               f"{', '.join(evals) or 'every eval batch'}"
               + (f", guard {', '.join(guards)}" if guards else "")
               + f" (if interrupted: `rlfoundry run --resume {loop}`)")
    run_loop_job(warehouse, run_job, job, loop, config)


def resume_loop(loop: str, instance_factory: Callable, run_job: Callable) -> None:
    """Run a loop's job again for its partition and config, for the assets it has not
    materialized yet; its training resumes from the last checkpoint."""
    from dagster import AssetKey

    from pipelines.definitions import defs
    from pipelines.partitions import LOOPS
    from resources.warehouse import Warehouse

    warehouse = Warehouse()
    instance = instance_factory()
    if not instance.has_dynamic_partition(LOOPS, loop):
        known = instance.get_dynamic_partitions(LOOPS)[-5:]
        raise click.ClickException(f"No loop {loop!r}; recent loops: {', '.join(known) or 'none'}.")
    try:
        record = warehouse.read_output(LOOP_RECORD, loop)
    except FileNotFoundError:
        raise click.ClickException(f"Loop {loop!r} was not started by `rlfoundry run` (no "
                                   "saved config): re-run it from the Dagster UI.") from None
    job = record["job"]
    keys = defs.resolve_job_def(job).asset_layer.executable_asset_keys
    todo = [k for k in keys
            if loop not in instance.get_materialized_partitions(AssetKey(k.path))]
    if not todo:
        click.echo(f"Loop {loop} has materialized every asset of {job}: nothing to resume.")
        if record.get("task"):
            from pipelines.task_loop_cli import print_outcome, spec_of

            return print_outcome(warehouse.read_output(spec_of(record["task"]).evaluation,
                                                       loop))
        _print_outcome(warehouse.read_output(SPEECH.evaluation, loop))
        return
    click.echo(f"\n### resuming {job}, loop {loop}: "
               f"{', '.join(sorted(k.to_user_string() for k in todo))}")
    if record.get("task"):  # a vlm or alm loop (`rlfoundry run --task ...`)
        from pipelines.task_loop_cli import run_and_report, spec_of

        return run_and_report(warehouse, spec_of(record["task"]), run_job, job, loop,
                              record["run_config"], todo)
    run_loop_job(warehouse, run_job, job, loop, record["run_config"], todo)


def run_loop_job(warehouse, run_job: Callable, job: str, loop: str, config: dict,
                  assets: list | None = None, *, evaluation: str = SPEECH.evaluation,
                  promotion: str = PROMOTION, printer: Callable | None = None) -> None:
    """Run a loop's job for its partition and print its evaluation and the gate's verdict
    once (`printer`, the speech table by default); a refused candidate raises NotPromoted
    (exit code 3)."""
    printer = printer or _print_outcome
    try:  # the evaluation and the promotion: printed once, by the printer
        run_job(job, loop, config, assets, told=(evaluation, promotion))
    except click.ClickException as exc:
        judged = _loop_eval(warehouse, loop, evaluation)
        if judged is None:
            raise
        printer(judged)
        if not judged["decision"]["passed"]:
            raise NotPromoted(exc.message) from exc
        raise
    printer(_loop_eval(warehouse, loop, evaluation))


class NotPromoted(click.ClickException):
    """The loop ran and evaluated, and the gate refused the candidate: exit code 3, so that
    scripts can tell a refused candidate (a result) from a broken run (exit code 1). The
    verdict line printed above says why: no `Error:` line follows it."""

    exit_code = 3

    def show(self, file=None) -> None:
        del file


def _loop_eval(warehouse, loop: str, evaluation: str = SPEECH.evaluation) -> dict | None:
    try:
        return warehouse.read_output(evaluation, loop)
    except FileNotFoundError:
        return None


def _print_outcome(evaluation: dict) -> None:
    """The comparison table and the promotion decision of this run's evaluation."""
    click.echo("\n" + evaluation["table"])
    decision = evaluation["decision"]
    for guard in decision.get("guards", []):
        click.echo(("  ok  " if guard["passed"] else "  REGRESSES  ") + guard["reason"])
    if decision.get("selection"):
        click.echo(f"candidate {decision['selection']}")
    verdict = "PROMOTED" if decision["passed"] else "NOT PROMOTED"
    click.echo(f"\n{verdict} {evaluation['models']['candidate']['model_id']}: "
               f"{decision['reason']}")
