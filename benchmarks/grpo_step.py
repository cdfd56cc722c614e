"""GRPO on CPU: rollout throughput (sampled transcripts/s) and step time, against SFT.

Run (from the repository root):

    .venv/bin/python benchmarks/grpo_step.py [--steps 6] [--batch-size 4] [--generations 6]
        [--clips 4] [--temperature 0.7] [--device cuda --precision bf16]

Whisper tiny.en (the bundled weights) trains `--steps` GRPO steps on the first `--clips` clips
of the sample's train manifest (default: one batch, so from step 2 on every clip has been seen,
as in any run past its first epoch), `--generations` samples per clip at `--temperature`, with
the k3 KL to the frozen start (a second model in memory). SFT on the same clips and batch size
is the yardstick. Each objective runs in two variants, side by side in one process (`--repeats`
times, alternating; the fastest median of each is kept, as this box is shared): as the trainer runs
now (each clip's cross-attention keys/values projected once and shared by its samples, the
frozen encoder's states cached per clip) and "before" (keys/values projected per transcript,
the encoder run at every visit). A GRPO step splits into the rollout (sampling from the policy,
which the trainer times as `rollout_s`) and the rest (rewards, policy and reference forward,
backward, optimizer). Reported: medians over steps 2..N; results go to
`benchmarks/results/grpo_step.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
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


@contextlib.contextmanager
def per_row_cross_attention():
    """The trainer as it was: cross-attention keys/values projected for every transcript."""
    import models.whisper.asr as asr
    import training.whisper.logps as logps

    saved = logps.worth_sharing, asr.shared_cross_cache
    logps.worth_sharing = lambda rows, clips: False
    asr.shared_cross_cache = lambda model, states, rows, cache=None: cache
    try:
        yield
    finally:
        logps.worth_sharing, asr.shared_cross_cache = saved


def run(objective: str, data: Path, model: str, out: Path, args, before: bool) -> list[dict]:
    config = TrainConfig(objective=objective, model=model, output_dir=str(out), data=str(data),
                         max_steps=args.steps, batch_size=args.batch_size, save_every=10_000,
                         log_every=1, learning_rate=1e-6, seed=0,
                         num_generations=args.generations, entropy_stop_fraction=0.0,
                         device=args.device, precision=args.precision,
                         rollout_temperature=args.temperature,
                         encoder_cache_mb=0 if before else 4096)
    with per_row_cross_attention() if before else contextlib.nullcontext():
        train(config, log=lambda *_a, **_k: None)
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _median(rows: list[dict]) -> float:
    return statistics.median(r["step_time_s"] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--clips", type=int, default=None,
                        help="distinct clips (default: one batch, all seen after step 1)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs of each variant, alternating; the fastest median is kept")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", help="fp32 | bf16 | fp16 (CUDA only)")
    parser.add_argument("--temperature", type=float,
                        default=TrainConfig.model_fields["rollout_temperature"].default)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = resolve_model(BUNDLED_WHISPER, ROOT / ".rlfoundry" / "models")
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_sft(tmp, args.clips or args.batch_size)
        for repeat in range(args.repeats):  # alternating, so load changes hit both
            for objective in ("grpo", "sft"):
                for before in (False, True):
                    name = objective + (" before" if before else "")
                    rows = run(objective, data, model, tmp / f"{name}{repeat}".replace(" ", "_"),
                               args, before)[1:]
                    if name not in runs or _median(rows) < _median(runs[name]):
                        runs[name] = rows
    median = {name: _median(rows) for name, rows in runs.items()}
    rollout = {name: statistics.median(r["rollout_s"] for r in runs[name])
               for name in ("grpo", "grpo before")}
    samples = args.batch_size * args.generations
    result = {
        "device": args.device, "precision": args.precision, "temperature": args.temperature,
        "threads": args.threads, "batch_size": args.batch_size,
        "generations": args.generations, "steps": args.steps,
        "clips": args.clips or args.batch_size, "repeats": args.repeats,
        "step_s": {name: round(value, 3) for name, value in median.items()},
        "rollout_s": {name: round(value, 3) for name, value in rollout.items()},
        "rollout_transcripts_per_s": round(samples / rollout["grpo"], 2),
        "completion_tokens": round(statistics.median(r["completion_tokens"]
                                                     for r in runs["grpo"]), 1),
        "grpo_over_sft": round(median["grpo"] / median["sft"], 2),
        "grpo_over_sft_before": round(median["grpo before"] / median["sft before"], 2),
        "grpo_speedup": round(median["grpo before"] / median["grpo"], 2),
        "sft_speedup": round(median["sft before"] / median["sft"], 2),
        "load_average": os.getloadavg(),
    }
    if args.device.startswith("cuda"):
        result["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    name = "grpo_step.json" if args.device == "cpu" else f"grpo_step_{args.precision}_gpu.json"
    out = ROOT / "benchmarks" / "results" / name
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
