"""DDP on CPU (gloo): two processes give the loss of one with the same global batch (slow).

Each case trains 2 steps twice from the same tiny Whisper: once as one process with
batch_size 2, once under `torchrun --nproc-per-node 2` with batch_size 1 per rank. Rank r
takes stream position 2·step + r, so both runs see the same examples (and, for GRPO, draw the
same rollouts: seeds follow the example's position); DDP averages gradients and metrics.

GRPO's first step has learning rate 0 (warmup), so both of its steps sample from bit-identical
weights: after a real update, one process and two differ by float rounding in the all-reduce
(~1e-7), and sampling from a tiny random model's near-uniform distribution turns that into a
different token now and then, which says nothing about DDP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labeling.testing import write_manifest, write_tone

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp-data")
    clips = [write_tone(root / f"c{i}.wav", seconds=0.5, freq=300 + 120 * i, seed=i).name
             for i in range(4)]
    refs = ["hello world", "the cat sat", "good morning", "see you"]
    write_manifest(root / "sft.jsonl", [{"audio": clips[i], "text": refs[i], "id": f"s{i}"}
                                        for i in range(4)])
    write_manifest(root / "pairs.jsonl", [
        {"prompt": "", "chosen": refs[i], "rejected": refs[i].split()[0], "audio": clips[i],
         "clip_id": f"c{i}", "pair_id": f"p{i}", "source": "model"} for i in range(4)])
    return root


def _run(tmp: Path, name: str, nproc: int, config: dict) -> list[dict]:
    out = tmp / name
    out.mkdir()
    path = out / "config.json"
    path.write_text(json.dumps({**config, "output_dir": str(out / "run")}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc-per-node", str(nproc), "-m", "training.run", str(path)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("objective", ["dpo", "grpo"])
def test_two_processes_match_one_with_the_same_global_batch(
        tiny_whisper_dir, data, tmp_path, objective):
    config = {"objective": objective, "model": str(tiny_whisper_dir), "learning_rate": 1e-3,
              "max_steps": 2, "save_every": 2, "seed": 1, "device": "cpu",
              "data": str(data / ("pairs.jsonl" if objective == "dpo" else "sft.jsonl")),
              "num_generations": 3, "grpo_variant": "dapo", "rollout_temperature": 1.5,
              "entropy_stop_fraction": 0.0}
    if objective == "grpo":
        config["warmup_steps"] = 2  # step 1 at lr 0: see the module docstring
    one = _run(tmp_path, "one", 1, {**config, "batch_size": 2})
    two = _run(tmp_path, "two", 2, {**config, "batch_size": 1})
    assert [r["step"] for r in one] == [r["step"] for r in two] == [1, 2]
    for a, b in zip(one, two, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-5)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4, abs=1e-6)
    if objective == "grpo":
        assert [r["reward/mean"] for r in two] == pytest.approx([r["reward/mean"] for r in one])
