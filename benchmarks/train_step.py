"""Time of a DPO (and MPO) step against an SFT step: same model, same clips, same batch size.

Run (from the repository root):

    .venv/bin/python benchmarks/train_step.py [--steps 6] [--batch-size 4] [--threads 2]

Whisper tiny.en (the bundled weights, imported once into `.rlfoundry/models`)
is trained for `--steps` steps with each objective on the same first clips of
the sample's train manifest: SFT on the references, DPO and MPO on pairs
whose chosen side is the reference and whose rejected side drops its second
half (a deletion, the commonest real error). The reference model's log-probs
are computed once before a DPO run, as in training, and are not in the step
time. Reported: the median `step_time_s` of steps 2..N (step 1 warms up) and
the ratio to SFT. Target: DPO ≤ 2.2 × SFT. Results go to
`benchmarks/results/train_step.json`.
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


def write_data(folder: Path, clips: int) -> tuple[Path, Path]:
    rows = [json.loads(line) for line in MANIFEST.read_text().splitlines()[:clips]]
    sft, pairs = folder / "sft.jsonl", folder / "pairs.jsonl"
    with sft.open("w") as s, pairs.open("w") as p:
        for i, row in enumerate(rows):
            audio = str(MANIFEST.parent / row["audio_filepath"])
            words = row["text"].split()
            s.write(json.dumps({"id": f"c{i}", "audio": audio, "text": row["text"]}) + "\n")
            p.write(json.dumps({"pair_id": f"p{i}", "audio": audio, "prompt": "",
                                "chosen": row["text"],
                                "rejected": " ".join(words[: len(words) // 2])}) + "\n")
    return sft, pairs


def time_objective(objective: str, data: Path, model: str, out: Path, args) -> dict:
    config = TrainConfig(objective=objective, model=model, output_dir=str(out), data=str(data),
                         max_steps=args.steps, batch_size=args.batch_size, save_every=10_000,
                         log_every=1, learning_rate=1e-6, seed=0)
    started = time.perf_counter()
    train(config, log=lambda *_a, **_k: None)
    wall = time.perf_counter() - started
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step_time_s"] for r in rows[1:]]
    return {"objective": objective, "median_step_s": statistics.median(steps),
            "steps_timed": len(steps), "wall_s_incl_setup": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/train_step.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = resolve_model(BUNDLED_WHISPER, ROOT / ".rlfoundry/models")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sft, pairs = write_data(tmp, args.steps * args.batch_size)
        results = [time_objective("sft", sft, model, tmp / "sft", args),
                   time_objective("dpo", pairs, model, tmp / "dpo", args),
                   time_objective("mpo", pairs, model, tmp / "mpo", args)]
    base = results[0]["median_step_s"]
    for r in results:
        r["ratio_to_sft"] = r["median_step_s"] / base
        step, ratio = r["median_step_s"], r["ratio_to_sft"]
        print(f"{r['objective']:>4}: {step:.2f} s/step  ({ratio:.2f}x SFT)")
    Path(args.out).write_text(json.dumps({
        "benchmark": "train_step", "model": "whisper-tiny.en", "threads": args.threads,
        "batch_size": args.batch_size, "load_average": os.getloadavg(), "results": results,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2))


if __name__ == "__main__":
    main()
