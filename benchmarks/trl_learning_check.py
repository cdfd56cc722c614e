"""Learning check of the TRL backend: a tiny LLaVA learns to point (SFT, GRPO, blind control).

Run (from the repository root; about a minute on one CPU core):

    .venv/bin/python benchmarks/trl_learning_check.py [--sft-steps 60] [--grpo-steps 200]
        [--train 64] [--heldout 64] [--seed 0] [--out DIR]

The task (:func:`training.trl_backend.synthetic.quadrant_pointing`, written through the image
chain's own dataset code): a 32 px picture with one red square at one of four positions,
"Point at red square.", the square's mask; the answer is a point ``(x, y)`` in percent of the
image, scored by ``point_in_mask`` (+ 0.1 ``point_format``). A LLaVA built from a config
(:func:`~training.trl_backend.synthetic.build_learning_llava`: CLIP 16 px / 8 px patches, a
2-layer 64-wide Qwen2, a BPE trained on the task's text) is trained through
``training.trl_backend.train`` exactly as ``python -m training.trl_backend.run`` trains: SFT
on the gold points, then GRPO from the SFT checkpoint. The same two stages run on the blind
variant (no image: the best it can do is one quadrant in four). Held-out rows are evaluated
greedily, with the image and without (:func:`training.trl_backend.evaluate.evaluate_with_blind`).

Printed: one table (stage, GRPO's sampled training reward at its first and last 5 steps,
held-out reward, hit rate with the image, hit rate without it, mean distance); written:
``results/trl_learning_check.json``, the GRPO run's curves as ``results/trl_learning_check.png``
and every run's ``curves.png`` under ``--out``. Rows "blind ..." are the models trained without
images; their reward and distance columns are measured without images too.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from training.trl_backend import learning_check  # noqa: E402
from training.trl_backend.learning_check import grpo_cell, num, pct  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TASK = learning_check.TASKS["vlm"]


def run(args) -> dict:
    return learning_check.run(TASK, args)


def table(report: dict) -> str:
    lines = ["stage              | GRPO reward first->last | held-out reward | hit (image) | "
             "hit (no image) | distance px",
             "-------------------|-------------------------|-----------------|-------------|"
             "----------------|------------"]
    for name, s in report["stages"].items():
        media, blind = s["eval"]["media"], s["eval"]["blind"]
        shown = blind if name.startswith("blind") else media
        lines.append(
            f"{name:<19}| {grpo_cell(s):<24}| {num(shown['reward']):>15} | "
            f"{pct(media['pointing']['hit_rate']):>11} | "
            f"{pct(blind['pointing']['hit_rate']):>14} | "
            f"{num(shown['pointing']['mean_distance_px']):>10}")
    return "\n".join(lines)


def main() -> None:
    args = learning_check.parser(__doc__.split("\n")[0], TASK).parse_args()
    torch.set_num_threads(args.threads)
    report = run(args)
    learning_check.report_and_save(report, table(report), ROOT / "benchmarks" / "results",
                                   "trl_learning_check")


if __name__ == "__main__":
    main()
