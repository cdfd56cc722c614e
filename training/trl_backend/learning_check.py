"""The TRL backend's learning checks, shared by both families: a tiny model built from a config
trained on a synthetic task (SFT, then GRPO from the SFT checkpoint), beside the same two stages
trained blind, each evaluated on held-out rows with and without the media.

:data:`TASKS` holds each family's :class:`LearningTask` (vlm: pointing at one red square among
four positions; alm: which of two tones is longer). `benchmarks/trl_learning_check.py` and
`benchmarks/trl_learning_check_alm.py` run :func:`run` on the backend alone and print their own
table; `benchmarks/trl_loop_learning_check.py` writes the same data (:func:`write_data`) as
the chains' datasets of two batches and trains with the same settings (:func:`stage_config`)
through the loop's Dagster assets. The slow tests run the same code.

Example:
    >>> sorted(TASKS), TASKS["vlm"].grpo_steps, TASKS["alm"].grpo_steps
    (['alm', 'vlm'], 200, 100)
    >>> args = parser("check", TASKS["alm"]).parse_args(["--train", "8"])
    >>> args.train, args.heldout, args.format_weight
    (8, 64, 0.1)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.runtime.metrics_log import read_metrics
from training.trl_backend.config import TrlConfig
from training.trl_backend.data import read_rows
from training.trl_backend.evaluate import evaluate_with_blind, load_model
from training.trl_backend.synthetic import build_learning_llava, quadrant_pointing
from training.trl_backend.synthetic_audio import build_learning_qwen2_audio, two_tone_rows
from training.trl_backend.train import train


@dataclass(frozen=True)
class LearningTask:
    """One family's check.

    Attributes:
        write_rows: ``(folder, n=, seed=)`` -> the JSONL of ``n`` synthetic rows.
        build_model: ``(folder, seed=)`` -> a tiny model built from a config.
        config: fields every stage's TrlConfig gets (family, answer format, lengths).
        media: the name of the media-trained runs' folders ("media", "audio").
        prefix: the temporary folder's prefix.
        grpo_extra: ``args`` -> GRPO-only TrlConfig fields (e.g. reward weights).
        grpo_steps: the check's GRPO steps unless ``--grpo-steps`` says otherwise.
        options: more command-line options, ``(flag, argparse keywords)`` each.
        chance: the held-out metric of the best guess without the media (hit rate, accuracy).
    """

    write_rows: Callable[..., Path]
    build_model: Callable[..., Path]
    config: dict[str, Any]
    media: str = "media"
    prefix: str = "trl-learning-"
    grpo_extra: Callable[[Any], dict[str, Any]] = field(default=lambda args: {})
    grpo_steps: int = 200
    options: tuple[tuple[str, dict[str, Any]], ...] = ()
    chance: float = 0.25


def _format_weight(args) -> dict[str, Any]:
    return {"reward_weights": {"answer_format": args.format_weight}}


#: Each family's check: vlm points at a red square (answers ``(x, y)`` in percent), alm says
#: which of two tones is longer (the audio chain's think/answer format).
TASKS: dict[str, LearningTask] = {
    "vlm": LearningTask(write_rows=quadrant_pointing, build_model=build_learning_llava,
                        config={"point_format": "tuple", "point_scale": "percent",
                                "max_completion_length": 10, "log_every": 1000}),
    "alm": LearningTask(write_rows=two_tone_rows, build_model=build_learning_qwen2_audio,
                        config={"family": "alm", "max_completion_length": 24,
                                "log_every": 1000},
                        media="audio", prefix="trl-learning-alm-", grpo_extra=_format_weight,
                        grpo_steps=100, chance=0.5,
                        options=(("--format-weight", {
                            "type": float, "default": 0.1,
                            "help": "GRPO's answer_format weight (the family's default)"}),)),
}


def stage_config(task: LearningTask, objective: str, model: str, data: str, out: Path, args,
                 blind: bool) -> TrlConfig:
    """The run's config: SFT at a high rate (a random model), GRPO gentler, KL logged."""
    common = dict(model=model, data=data, output_dir=str(out), blind=blind, seed=args.seed,
                  save_every=10_000, **task.config)
    if objective == "sft":
        return TrlConfig(objective="sft", max_steps=args.sft_steps, batch_size=8,
                         learning_rate=args.sft_lr, lr_scheduler="constant", **common)
    return TrlConfig(objective="grpo", max_steps=args.grpo_steps, batch_size=8,
                     num_generations=args.generations, learning_rate=args.grpo_lr,
                     **task.grpo_extra(args),
                     lr_scheduler="constant", beta=0.04, temperature=1.0, loss_type="dapo",
                     entropy_stop_fraction=0.0, collapse_patience=10_000, **common)


def grpo_reward(out: Path, window: int = 5) -> tuple[float | None, float | None]:
    """GRPO's mean sampled reward over its first and last ``window`` steps."""
    rewards = [r["reward/mean"] for r in read_metrics(out / "metrics.jsonl")
               if r.get("reward/mean") is not None]
    if not rewards:
        return None, None
    return (sum(rewards[:window]) / len(rewards[:window]),
            sum(rewards[-window:]) / len(rewards[-window:]))


def evaluate_stage(model: str, rows, config: TrlConfig) -> dict:
    result = evaluate_with_blind(model, rows, config, model_and_processor=load_model(model, "cpu"),
                                 batch_size=32)
    return {name: {k: v for k, v in r.items() if k != "answers"} | {"sample": r["answers"][:4]}
            for name, r in result.items()}


def write_data(task: LearningTask, args, folder: Callable[[str], Path]) -> dict[str, Path]:
    """The check's rows: ``train`` (``args.train`` rows, seed ``args.seed``) and ``heldout``
    (``args.heldout`` rows, seed ``args.seed + 1000``), each written by ``task.write_rows``
    into ``folder(split)``; returns each split's JSONL."""
    return {"train": task.write_rows(folder("train"), n=args.train, seed=args.seed),
            "heldout": task.write_rows(folder("heldout"), n=args.heldout,
                                       seed=args.seed + 1000)}


def run(task: LearningTask, args) -> dict:
    """Start, after SFT, after GRPO, and the same two stages trained blind: each evaluated."""
    root = Path(args.out or tempfile.mkdtemp(prefix=task.prefix))
    data = write_data(task, args, lambda split: root / split)
    train_data, heldout = str(data["train"]), read_rows(str(data["heldout"]))
    start = str(task.build_model(root / "start", seed=args.seed))
    stages, timings = {}, {}
    probe = stage_config(task, "grpo", start, train_data, root, args, blind=False)
    stages["start"] = {"eval": evaluate_stage(start, heldout, probe)}
    for blind in (False, True):
        tag = "blind " if blind else ""
        model = start
        for objective in ("sft", "grpo"):
            out = root / f"{tag.strip() or task.media}-{objective}"
            config = stage_config(task, objective, model, train_data, out, args, blind)
            began = time.perf_counter()
            result = train(config)
            timings[f"{tag}{objective}"] = round(time.perf_counter() - began, 1)
            model = str(result.checkpoint)
            first, last = grpo_reward(out) if objective == "grpo" else (None, None)
            stages[f"{tag}after {objective}"] = {
                "train_reward_first": first, "train_reward_last": last,
                "kl_last": result.metrics.get("kl"),
                "entropy_last": result.metrics.get("entropy"),
                "loss_last": result.metrics.get("loss"),
                "eval": evaluate_stage(model, heldout, config),
                "curves": str(out / "curves.png")}
    return {"stages": stages, "seconds": timings, "settings": vars(args), "dir": str(root),
            "load_average": os.getloadavg()}


def pct(v: float | None) -> str:
    return "   -  " if v is None else f"{100 * v:5.1f}%"


def num(v: float | None) -> str:
    return "  -  " if v is None else f"{v:5.2f}"


def grpo_cell(stage: dict) -> str:
    """A table's "GRPO reward first->last" cell (empty for a stage without GRPO)."""
    if stage.get("train_reward_first") is None:
        return ""
    return f"{num(stage.get('train_reward_first'))} -> {num(stage.get('train_reward_last'))}"


def parser(description: str, task: LearningTask) -> argparse.ArgumentParser:
    """The options every check takes, with ``task``'s GRPO steps and own options."""
    out = argparse.ArgumentParser(description=description)
    out.add_argument("--sft-steps", type=int, default=60)
    out.add_argument("--grpo-steps", type=int, default=task.grpo_steps)
    out.add_argument("--sft-lr", type=float, default=3e-3)
    out.add_argument("--grpo-lr", type=float, default=1e-3)
    out.add_argument("--generations", type=int, default=4)
    out.add_argument("--train", type=int, default=64)
    out.add_argument("--heldout", type=int, default=64)
    out.add_argument("--seed", type=int, default=0)
    out.add_argument("--threads", type=int, default=1)
    out.add_argument("--out", default=None)
    for flag, options in task.options:
        out.add_argument(flag, **options)
    return out


def report_and_save(report: dict, table: str, results: Path, name: str) -> None:
    """Print the table and timings; write ``results/<name>.json`` and the GRPO run's curves
    as ``results/<name>.png``."""
    print(table)
    print(f"seconds: {report['seconds']}  load average: {report['load_average']}  "
          f"(runs under {report['dir']})")
    path = results / f"{name}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    shutil.copyfile(report["stages"]["after grpo"]["curves"], results / f"{name}.png")
    print(f"wrote {path} and the GRPO run's curves, {results / f'{name}.png'}")
