"""Learning check of the TRL backend's ``alm`` family: a tiny Qwen2-Audio learns "which sound is
longer" from the clip (SFT, GRPO, blind control).

Run (from the repository root; about a minute on one CPU core):

    .venv/bin/python benchmarks/trl_learning_check_alm.py [--sft-steps 60] [--grpo-steps 100]
        [--train 64] [--heldout 64] [--seed 0] [--out DIR]

The task (:func:`training.trl_backend.synthetic_audio.two_tone_rows`, written as the audio
chain's dataset rows): a 3 s clip with a low tone, a pause and a high tone, of lengths
0.3-1.3 s that differ by at least the chain's margin; "Which sound is longer, the first or the
second?" with options A and B (right letters balanced) and the chain's think/answer format;
scored by ``choice_correct`` (+ 0.1 ``answer_format``). A Qwen2-Audio built from a config
(:func:`~training.trl_backend.synthetic_audio.build_learning_qwen2_audio`: a 1-layer 32-wide
audio encoder over a 3 s window, a 2-layer 64-wide Qwen2, a BPE trained on the task's text) is
trained through ``training.trl_backend.train`` exactly as ``python -m training.trl_backend.run``
trains: SFT on the gold answers (short: it learns the format, and the clip only part-way on
some seeds), then GRPO from the SFT checkpoint. The same two stages run on the blind variant
(no clip: the best it can do is one in two). Held-out rows are evaluated greedily, with the
clip and without (:func:`training.trl_backend.evaluate.evaluate_with_blind`).

Printed: one table (stage, GRPO's sampled training reward at its first and last 5 steps,
held-out reward, accuracy with the clip, accuracy without it, format rate); written:
``results/trl_learning_check_alm.json``, the GRPO run's curves as
``results/trl_learning_check_alm.png`` and every run's ``curves.png`` under ``--out``. Rows
"blind ..." are the models trained without clips; their reward and format columns are
measured without clips too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from training.runtime.metrics_log import read_metrics  # noqa: E402
from training.trl_backend.config import TrlConfig  # noqa: E402
from training.trl_backend.data import read_rows  # noqa: E402
from training.trl_backend.evaluate import evaluate_with_blind, load_model  # noqa: E402
from training.trl_backend.synthetic_audio import (  # noqa: E402
    build_learning_qwen2_audio,
    two_tone_rows,
)
from training.trl_backend.train import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TASK = {"family": "alm", "max_completion_length": 24, "log_every": 1000}


def stage_config(objective: str, model: str, data: str, out: Path, args, blind: bool
                 ) -> TrlConfig:
    """The run's config: SFT at a high rate (a random model), GRPO gentler, KL logged."""
    common = dict(model=model, data=data, output_dir=str(out), blind=blind, seed=args.seed,
                  save_every=10_000, **TASK)
    if objective == "sft":
        return TrlConfig(objective="sft", max_steps=args.sft_steps, batch_size=8,
                         learning_rate=args.sft_lr, lr_scheduler="constant", **common)
    return TrlConfig(objective="grpo", max_steps=args.grpo_steps, batch_size=8,
                     num_generations=args.generations, learning_rate=args.grpo_lr,
                     reward_weights={"answer_format": args.format_weight},
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


def run(args) -> dict:
    root = Path(args.out or tempfile.mkdtemp(prefix="trl-learning-alm-"))
    train_data = str(two_tone_rows(root / "train", n=args.train, seed=args.seed))
    heldout = read_rows(str(two_tone_rows(root / "heldout", n=args.heldout,
                                          seed=args.seed + 1000)))
    start = str(build_learning_qwen2_audio(root / "start", seed=args.seed))
    stages, timings = {}, {}
    probe = stage_config("grpo", start, train_data, root, args, blind=False)
    stages["start"] = {"eval": evaluate_stage(start, heldout, probe)}
    for blind in (False, True):
        tag = "blind " if blind else ""
        model = start
        for objective in ("sft", "grpo"):
            out = root / f"{tag.strip() or 'audio'}-{objective}"
            config = stage_config(objective, model, train_data, out, args, blind)
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


def table(report: dict) -> str:
    def pct(v):
        return "   -  " if v is None else f"{100 * v:5.1f}%"

    def num(v):
        return "  -  " if v is None else f"{v:5.2f}"

    lines = ["stage              | GRPO reward first->last | held-out reward | acc (audio) | "
             "acc (no audio) | format",
             "-------------------|-------------------------|-----------------|-------------|"
             "----------------|-------"]
    for name, s in report["stages"].items():
        heard, blind = s["eval"]["media"], s["eval"]["blind"]
        shown = blind if name.startswith("blind") else heard
        grpo = (f"{num(s.get('train_reward_first'))} -> {num(s.get('train_reward_last'))}"
                if s.get("train_reward_first") is not None else "")
        lines.append(f"{name:<19}| {grpo:<24}| {num(shown['reward']):>15} | "
                     f"{pct(heard['accuracy']):>11} | {pct(blind['accuracy']):>14} | "
                     f"{pct(shown['format_rate']):>6}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sft-steps", type=int, default=60)
    parser.add_argument("--grpo-steps", type=int, default=100)
    parser.add_argument("--sft-lr", type=float, default=3e-3)
    parser.add_argument("--grpo-lr", type=float, default=1e-3)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--format-weight", type=float, default=0.1,
                        help="GRPO's answer_format weight (the family's default)")
    parser.add_argument("--train", type=int, default=64)
    parser.add_argument("--heldout", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = run(args)
    print(table(report))
    print(f"seconds: {report['seconds']}  load average: {report['load_average']}  "
          f"(runs under {report['dir']})")
    results = ROOT / "benchmarks" / "results"
    path = results / "trl_learning_check_alm.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    shutil.copyfile(report["stages"]["after grpo"]["curves"],
                    results / "trl_learning_check_alm.png")
    print(f"wrote {path} and the GRPO run's curves, {results / 'trl_learning_check_alm.png'}")


if __name__ == "__main__":
    main()
