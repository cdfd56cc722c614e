"""The ``alm`` family under torchrun on CPU (gloo): two processes match one (slow).

SFT trains 2 steps twice from the same tiny learnable Qwen2-Audio on the two-tone rows: once as
one process with batch_size 4, once as `torch.distributed.run --nproc-per-node 2` with 2 per
rank. Every prompt has the same length (a 3 s clip is 75 audio tokens) and every completion
the same number of tokens, so the token-mean losses agree. GRPO runs 2 steps under the same
launcher: one metrics log (rank 0), with KL and every reward component.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.runtime.metrics_log import read_metrics

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from training.trl_backend.synthetic_audio import build_learning_qwen2_audio, two_tone_rows

    root = tmp_path_factory.mktemp("trl-audio-ddp")
    data = two_tone_rows(root / "data", n=8, seed=0)
    return root, {"family": "alm", "model": str(build_learning_qwen2_audio(root / "alm")),
                  "data": str(data), "max_steps": 2, "save_every": 10, "log_every": 1,
                  "learning_rate": 1e-3}


def _run(root: Path, name: str, nproc: int, config: dict) -> list[dict]:
    path = root / f"{name}.json"
    path.write_text(json.dumps({**config, "output_dir": str(root / name)}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc-per-node", str(nproc), "-m", "training.trl_backend.run", str(path)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert sum(e["event"] == "materialization" for e in events) == 1  # rank 0 reports
    return read_metrics(root / name / "metrics.jsonl")


def test_two_sft_processes_match_one_with_the_same_global_batch(setup):
    root, base = setup
    one = _run(root, "sft-one", 1, {**base, "objective": "sft", "batch_size": 4})
    two = _run(root, "sft-two", 2, {**base, "objective": "sft", "batch_size": 2})
    assert [r["step"] for r in one] == [r["step"] for r in two] == [1, 2]
    for a, b in zip(one, two, strict=True):
        for key in ("loss", "grad_norm", "num_tokens", "mean_token_accuracy"):
            assert b[key] == pytest.approx(a[key], rel=1e-4), key


def test_grpo_runs_under_two_processes_with_one_log(setup):
    root, base = setup
    rows = _run(root, "grpo-two", 2, {**base, "objective": "grpo", "batch_size": 2,
                                      "num_generations": 2, "max_completion_length": 8})
    assert [r["step"] for r in rows] == [1, 2]
    assert all("kl" in r and "rewards/choice_correct" in r and "entropy" in r for r in rows)
