"""Learning check through the loop's Dagster assets: the backend checks' synthetic task, run
as a user runs a loop (training-set snapshot, SFT, GRPO, evaluation with its blind control,
promotion) on a tiny model.

Run (from the repository root; 1-2.5 minutes on one CPU core):

    .venv/bin/python benchmarks/trl_loop_learning_check.py [--family vlm|alm] [--sft-steps 60]
        [--grpo-steps 200] [--train 64] [--heldout 64] [--seed 0] [--threads 1] [--out DIR]

Data, model and settings are the backend checks' (:mod:`training.trl_backend.learning_check`:
``TASKS``, ``write_data``, ``stage_config``): vlm points at one red square among four
positions, alm says which of two tones is longer. The train rows become batch ``lc-train``'s
dataset (role train) and the held-out rows batch ``lc-eval``'s (role eval), in the files the
chain's dataset asset writes (``assets.loop.training_set.dataset_file``); the tiny start model
is the model hub's default for the family, so the loop's incumbent (``baseline``) is the
untrained start. One Dagster run then materializes ``<family>_training_set``,
``<family>_sft_model`` and ``<family>_grpo_model`` (each trained out of process by the training
launcher: torchrun, Pipes, the TRL backend), ``<family>_eval`` (every model on the held-out
rows with and without the media) with its blocking check, and ``<family>_promoted_model``;
MLflow's registry is a SQLite file under ``--out``. The stage configs are the backend check's,
field for field (a field the loop's stage configs cannot set stops the check, except
``log_every``, which only paces the progress reports).

Printed: one row (held-out metric of the family's task, pointing hit rate or accuracy: start
= the incumbent, after SFT, after GRPO; blind = the SFT and GRPO models asked without the
media), the evaluation asset's tables and its decision, the promoted model, each asset's
seconds and the load; written: ``results/trl_loop_learning_check[_alm].json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("vlm", "alm")
#: the chain task each family's check is (the loop's training set takes only it)
CHAIN_TASK = {"vlm": "pointing", "alm": "audio_qa"}
BATCHES = {"train": ("lc-train", "train"), "heldout": ("lc-eval", "eval")}
#: backend-check fields that only pace reporting: the loop may leave them at its default
REPORTING_ONLY = ("log_every",)
#: fields the loop's assets set themselves (the starting model, data, folder, family, task)
SET_BY_THE_LOOP = ("model", "data", "output_dir", "objective", "family", "blind", "backend")


def stage_ops(family: str, args) -> dict:
    """The loop's run config: each stage the backend check's settings, the evaluation at the
    backend check's batch size. Raises ValueError naming any setting the loop cannot take
    (GRPO's fields in the SFT stage's config are not read by SFT: left out).

    >>> from training.trl_backend.learning_check import TASKS, parser
    >>> ops = stage_ops("vlm", parser("x", TASKS["vlm"]).parse_args([]))["ops"]
    >>> sorted(ops["vlm_sft_model"]["config"].items())  # doctest: +NORMALIZE_WHITESPACE
    [('batch_size', 8), ('learning_rate', 0.003), ('lr_scheduler', 'constant'),
     ('max_steps', 60), ('point_format', 'tuple'), ('point_scale', 'percent'),
     ('save_every', 10000)]
    >>> ops["vlm_grpo_model"]["config"]["collapse_patience"], ops["vlm_eval"]
    (10000, {'config': {'batch_size': 32}})
    """
    from assets.loop.config import (
        GRPO_ONLY,
        GrpoStageConfig,
        PreferenceStageConfig,
        SftStageConfig,
    )
    from training.trl_backend.config import TrlConfig
    from training.trl_backend.learning_check import TASKS, stage_config

    task, ops = TASKS[family], {}
    for objective, stage in (("sft", SftStageConfig), ("grpo", GrpoStageConfig)):
        wanted = stage_config(task, objective, "m", "d", Path("o"), args, blind=False)
        fields = {k: v for k, v in wanted.model_dump().items() if k not in SET_BY_THE_LOOP}
        unread = REPORTING_ONLY + (GRPO_ONLY if objective == "sft" else ())
        missing = sorted(k for k, v in fields.items() if k not in stage.model_fields
                         and k not in unread and v != TrlConfig.model_fields[k].default)
        if missing:
            raise ValueError(f"the {family} loop's {objective} stage cannot set {missing}: add "
                             "them to assets/loop/config.py or drop them from the check")
        defaults = stage().model_dump()
        ops[f"{family}_{objective}_model"] = {"config": {
            k: v for k, v in fields.items() if k in stage.model_fields and v != defaults[k]}}
    if getattr(args, "preference", "off") != "off":  # the SFT stage's settings, DPO/MPO's own
        shared = {k: v for k, v in ops[f"{family}_sft_model"]["config"].items()
                  if k in PreferenceStageConfig.model_fields}
        ops[f"{family}_preference_model"] = {"config": {
            **shared, "objective": args.preference, "pairs_from": "verified",
            "max_steps": args.preference_steps, "learning_rate": args.preference_lr,
            "dpo_beta": args.dpo_beta}}
    ops[f"{family}_training_set"] = {"config": {"tasks": [CHAIN_TASK[family]]}}
    ops[f"{family}_eval"] = {"config": {"batch_size": 32}}
    return {"ops": ops}


def prepare(family: str, args, root: Path):
    """The warehouse with both batches' datasets, the registry, the hub (the start model as
    the family's default) and a Dagster instance with the loop's partitions."""
    from dagster import DagsterInstance

    from assets.loop.specs import AUDIO_QA, ROLE, VISION
    from assets.loop.training_set import dataset_file
    from pipelines.partitions import BATCHES as BATCH_PARTITIONS
    from resources.model_hub import ModelHub
    from resources.registry import ModelRegistry
    from resources.training_launcher import TrainingLauncher
    from resources.warehouse import Warehouse
    from training.trl_backend.learning_check import TASKS, write_data

    spec, task = {"vlm": VISION, "alm": AUDIO_QA}[family], TASKS[family]
    chain_task = CHAIN_TASK[family]
    warehouse = Warehouse(root=str(root / "warehouse"))
    where = {split: dataset_file(warehouse, spec, chain_task, batch)
             for split, (batch, _) in BATCHES.items()}
    written = write_data(task, args, lambda split: where[split].parent)
    for split, path in written.items():
        if Path(path).resolve() != where[split].resolve():
            raise RuntimeError(f"{task.write_rows.__name__} wrote {path}, but the loop reads "
                               f"{where[split]}")
    for batch, role in BATCHES.values():
        warehouse.register_batch(batch, root, role=role)
    start = task.build_model(root / "start", seed=args.seed)
    resources = {
        "warehouse": warehouse, "training_launcher": TrainingLauncher(),
        "model_registry": ModelRegistry(tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
                                        name_prefix="learning-check"),
        "model_hub": ModelHub(cache_dir=str(root / "models"),
                              **{f"{ROLE[family]}_model": str(start)})}
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BATCH_PARTITIONS, [b for b, _ in BATCHES.values()])
    return spec, resources, instance


def run(args) -> dict:
    """Materialize the family's loop on the check's data; its numbers, decision and times."""
    import torch
    from dagster import materialize

    from assets.loop import ASSETS, CHECKS
    from pipelines.partitions import LOOPS
    from training.trl_backend.learning_check import TASKS, grpo_reward

    family = args.family
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # the torchrun children read these
        os.environ[name] = str(args.threads)
    torch.set_num_threads(args.threads)  # the evaluation runs in this process
    root = Path(args.out or tempfile.mkdtemp(prefix=f"trl-loop-learning-{family}-"))
    root.mkdir(parents=True, exist_ok=True)
    run_config = stage_ops(family, args)
    spec, resources, instance = prepare(family, args, root)
    loop = f"{family}-lc{args.seed}"
    instance.add_dynamic_partitions(LOOPS, [loop])
    names = {spec.training_set, spec.models["sft"], spec.models["rl"], spec.evaluation,
             f"{family}_promoted_model"}  # the loop's SFT -> GRPO path, as the backend check
    if args.preference != "off":  # and DPO/MPO from the same SFT model, on verified pairs
        names.add(spec.models["preference"])
    began = time.perf_counter()
    with instance:
        result = materialize(
            [a for a in ASSETS if a.key.path[-1] in names]
            + [c for c in CHECKS if spec.evaluation in str(c.check_specs_by_output_name)],
            instance=instance, resources=resources, partition_key=loop,
            run_config=run_config, raise_on_error=False)
        seconds = _step_seconds(instance, result.run_id)
    wall = round(time.perf_counter() - began, 1)
    warehouse, registry = resources["warehouse"], resources["model_registry"]
    try:
        output = warehouse.read_output(spec.evaluation, loop)
    except FileNotFoundError:
        raise RuntimeError(f"the loop failed before {spec.evaluation} (see the Dagster log "
                           f"above; runs under {root})") from None
    scores = json.loads(Path(output["report"]).read_text())["scores"]
    champion = registry.champion(family)
    first, last = grpo_reward(warehouse.report_dir(spec.models["rl"], loop))
    return {
        "family": family, "chance": TASKS[family].chance, "loop": loop,
        "metric": {label: s["score"] for label, s in scores.items()},
        "blind": {label: s["blind_score"] for label, s in scores.items()},
        "reward": {label: s["reward"] for label, s in scores.items()},
        "by_bucket": {label: s["by_bucket"] for label, s in scores.items()},
        "grpo_train_reward": {"first": first, "last": last},
        "decision": output["decision"], "success": result.success,
        "promoted": champion["model_id"] if champion else None,
        "eval_metadata": _metadata(result, spec.evaluation),
        "training_set": _metadata(result, spec.training_set),
        "run_config": run_config, "seconds": seconds, "wall_s": wall,
        "settings": vars(args), "dir": str(root), "load_average": os.getloadavg()}


def _metadata(result, asset: str) -> dict:
    """The asset's materialization metadata (plots left out: they are inline PNGs)."""
    events = [e.event_specific_data.materialization for e in
              result.get_asset_materialization_events() if e.asset_key.path[-1] == asset]
    if not events:
        return {}
    return {k: getattr(v, "value", v) for k, v in events[-1].metadata.items()
            if "data:image/png" not in str(getattr(v, "value", v))}


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    """Each step's seconds, from its start and success (or failure) events."""
    began, out = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not entry.step_key:
            continue
        if event.event_type_value == "STEP_START":
            began[entry.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            out[entry.step_key] = round(entry.timestamp - began.get(entry.step_key,
                                                                    entry.timestamp), 1)
    return out


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def table(report: dict) -> str:
    """The check's row: start / after SFT / after GRPO / blind, the GRPO run's sampled reward
    and what was promoted."""
    m, b, g = report["metric"], report["blind"], report["grpo_train_reward"]
    pref = report["settings"].get("preference", "off")
    reward = ("-" if g["first"] is None else f"{g['first']:.2f} -> {g['last']:.2f}")
    decision = report["decision"]
    verdict = ("promoted " + str(report["promoted"]) if decision["passed"]
               else "refused: " + decision["reason"])
    return "\n".join([
        "family | chance | start | after SFT | after GRPO | blind (SFT / GRPO) | "
        f"GRPO reward first->last | promotion | after {pref.upper()} (blind)",
        "---|---:|---:|---:|---:|---:|---|---|---:",
        f"{report['family']} | {pct(report['chance'])} | {pct(m.get('incumbent'))} | "
        f"{pct(m.get('sft'))} | {pct(m.get('grpo'))} | {pct(b.get('sft'))} / "
        f"{pct(b.get('grpo'))} | {reward} | {verdict} | "
        f"{pct(m.get(pref))} ({pct(b.get(pref))})"])


def parser() -> argparse.ArgumentParser:
    from training.trl_backend.learning_check import TASKS
    from training.trl_backend.learning_check import parser as check_parser

    family = argparse.ArgumentParser(add_help=False)
    family.add_argument("--family", choices=FAMILIES, default="vlm")
    known, _ = family.parse_known_args()
    out = check_parser(__doc__.split("\n")[0], TASKS[known.family])
    out.add_argument("--family", choices=FAMILIES, default="vlm",
                     help="vlm: the pointing task; alm: the two tones")
    out.add_argument("--preference", choices=("off", "dpo", "mpo"), default="off",
                     help="also train the loop's preference stage from the SFT model on the "
                     "verified pairs (pairs_from: verified), evaluated beside GRPO")
    out.add_argument("--preference-steps", type=int, default=60)
    out.add_argument("--preference-lr", type=float, default=1e-3)
    out.add_argument("--dpo-beta", type=float, default=0.1)
    return out


def main() -> None:
    args = parser().parse_args()
    report = run(args)
    meta = report["eval_metadata"]
    print(table(report))
    print(f"\n{meta.get('table', '')}\n\n{meta.get('by_bucket', '')}\n")
    print(f"decision: {meta.get('decision')}; selection: {meta.get('selection')}")
    print(f"seconds: {report['seconds']} (wall {report['wall_s']})  load average: "
          f"{report['load_average']}  (runs under {report['dir']})")
    name = "trl_loop_learning_check" + ("" if args.family == "vlm" else f"_{args.family}") \
        + ("" if args.preference == "off" else f"_{args.preference}")
    path = ROOT / "benchmarks" / "results" / f"{name}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
