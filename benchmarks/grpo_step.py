"""GRPO on CPU: rollout throughput (sampled transcripts/s) and step time, against SFT.

Run (from the repository root):

    .venv/bin/python benchmarks/grpo_step.py [--steps 5] [--batch-size 4] [--generations 6]
        [--temperature 0.7] [--device cuda --precision bf16]

Whisper tiny.en (the bundled weights) trains `--steps` GRPO steps on the first clips of the
sample's train manifest, `--generations` samples per clip at `--temperature` (the trainer's
default unless given), with the k3 KL to
the frozen start (a second model in memory). Each step's time splits into the rollout
(sampling from the policy, which the trainer times as `rollout_s`) and the rest (rewards,
policy and reference forward, backward, optimizer). An SFT run on the same clips and batch
size is the yardstick. Reported: medians over steps 2..N; results go to
`benchmarks/results/grpo_step.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from models.bundled import BUNDLED_WHISPER, resolve_model  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.whisper.loop import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "data/sample/audio/train.jsonl"


def write_sft(folder: Path, clips: int) -> Path:
    rows = [json.loads(line) for line in MANIFEST.read_text().splitlines()[:clips]]
    path = folder / "sft.jsonl"
    path.write_text("".join(json.dumps({"id": f"c{i}", "text": r["text"],
                                        "audio": str(MANIFEST.parent / r["audio_filepath"])})
                            + "\n" for i, r in enumerate(rows)))
    return path


def run(objective: str, data: Path, model: str, out: Path, args) -> list[dict]:
    config = TrainConfig(objective=objective, model=model, output_dir=str(out), data=str(data),
                         max_steps=args.steps, batch_size=args.batch_size, save_every=10_000,
                         log_every=1, learning_rate=1e-6, seed=0,
                         num_generations=args.generations, entropy_stop_fraction=0.0,
                         device=args.device, precision=args.precision,
                         rollout_temperature=args.temperature)
    train(config, log=lambda *_a, **_k: None)
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", help="fp32 | bf16 | fp16 (CUDA only)")
    parser.add_argument("--temperature", type=float,
                        default=TrainConfig.model_fields["rollout_temperature"].default)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = resolve_model(BUNDLED_WHISPER, ROOT / ".rlfoundry" / "models")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_sft(tmp, args.batch_size * args.steps)
        started = time.perf_counter()
        grpo = run("grpo", data, model, tmp / "grpo", args)[1:]
        grpo_wall = time.perf_counter() - started
        sft = run("sft", data, model, tmp / "sft", args)[1:]
    step = statistics.median(r["step_time_s"] for r in grpo)
    rollout = statistics.median(r["rollout_s"] for r in grpo)
    samples = args.batch_size * args.generations
    result = {
        "device": args.device, "precision": args.precision, "temperature": args.temperature,
        "threads": args.threads, "batch_size": args.batch_size,
        "generations": args.generations, "steps": args.steps,
        "grpo_step_s": round(step, 3), "rollout_s": round(rollout, 3),
        "rollout_transcripts_per_s": round(samples / rollout, 2),
        "completion_tokens": round(statistics.median(r["completion_tokens"] for r in grpo), 1),
        "sft_step_s": round(statistics.median(r["step_time_s"] for r in sft), 3),
        "grpo_wall_s": round(grpo_wall, 1), "load_average": os.getloadavg(),
    }
    result["grpo_over_sft"] = round(result["grpo_step_s"] / result["sft_step_s"], 2)
    if args.device.startswith("cuda"):
        result["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    name = "grpo_step.json" if args.device == "cpu" else f"grpo_step_{args.precision}_gpu.json"
    out = ROOT / "benchmarks" / "results" / name
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
