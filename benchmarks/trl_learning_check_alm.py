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

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from training.trl_backend import learning_check  # noqa: E402
from training.trl_backend.learning_check import grpo_cell, num, pct  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TASK = learning_check.TASKS["alm"]


def run(args) -> dict:
    return learning_check.run(TASK, args)


def table(report: dict) -> str:
    lines = ["stage              | GRPO reward first->last | held-out reward | acc (audio) | "
             "acc (no audio) | format",
             "-------------------|-------------------------|-----------------|-------------|"
             "----------------|-------"]
    for name, s in report["stages"].items():
        heard, blind = s["eval"]["media"], s["eval"]["blind"]
        shown = blind if name.startswith("blind") else heard
        lines.append(f"{name:<19}| {grpo_cell(s):<24}| {num(shown['reward']):>15} | "
                     f"{pct(heard['accuracy']):>11} | {pct(blind['accuracy']):>14} | "
                     f"{pct(shown['format_rate']):>6}")
    return "\n".join(lines)


def main() -> None:
    args = learning_check.parser(__doc__.split("\n")[0], TASK).parse_args()
    torch.set_num_threads(args.threads)
    report = run(args)
    learning_check.report_and_save(report, table(report), ROOT / "benchmarks" / "results",
                                   "trl_learning_check_alm")


if __name__ == "__main__":
    main()
