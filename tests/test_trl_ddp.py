"""The TRL backend under torchrun on CPU (gloo), both families: two processes match one (slow).

SFT trains 2 steps twice from the same tiny model: once as one process with batch_size 4, once
as `torch.distributed.run --nproc-per-node 2` with 2 per rank. The Trainer hands rank r the r-th
half of the same global batch and DDP averages the gradients; every completion has the same
number of tokens (and, for the ``alm`` family, every prompt the same length: a 3 s clip is 75
audio tokens), so the token-mean losses agree. GRPO runs 2 steps under the same launcher: one
metrics log (rank 0), with KL and every reward component.

* ``vlm``: a tiny LLaVA on the quadrant pointing rows;
* ``alm``: a tiny learnable Qwen2-Audio on the two-tone rows.
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
# family -> (GRPO's completion length, a reward component every GRPO row logs)
GRPO = {"vlm": (6, "rewards/point_in_mask"), "alm": (8, "rewards/choice_correct")}


@pytest.fixture(scope="module", params=["vlm", "alm"])
def setup(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"trl-ddp-{request.param}")
    common = {"max_steps": 2, "save_every": 10, "log_every": 1, "learning_rate": 1e-3}
    if request.param == "vlm":
        from models.tiny import build_tiny_llava
        from training.trl_backend.synthetic import quadrant_pointing

        data = quadrant_pointing(root / "data", n=8, seed=0)
        return request.param, root, {
            **common, "model": str(build_tiny_llava(root / "llava")), "data": str(data),
            "point_format": "tuple", "point_scale": "percent"}
    from training.trl_backend.synthetic_audio import build_learning_qwen2_audio, two_tone_rows

    data = two_tone_rows(root / "data", n=8, seed=0)
    return request.param, root, {
        **common, "family": "alm", "model": str(build_learning_qwen2_audio(root / "alm")),
        "data": str(data)}


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
    family, root, base = setup
    one = _run(root, "sft-one", 1, {**base, "objective": "sft", "batch_size": 4})
    two = _run(root, "sft-two", 2, {**base, "objective": "sft", "batch_size": 2})
    assert [r["step"] for r in one] == [r["step"] for r in two] == [1, 2]
    for a, b in zip(one, two, strict=True):
        for key in ("loss", "grad_norm", "num_tokens", "mean_token_accuracy"):
            assert b[key] == pytest.approx(a[key], rel=1e-4), key
    if family == "vlm":
        assert (root / "sft-two" / "checkpoints" / "checkpoint-2" / "model.safetensors").is_file()


def test_grpo_runs_under_two_processes_with_one_log(setup):
    family, root, base = setup
    length, reward = GRPO[family]
    rows = _run(root, "grpo-two", 2, {**base, "objective": "grpo", "batch_size": 2,
                                      "num_generations": 2, "max_completion_length": length})
    assert [r["step"] for r in rows] == [1, 2]
    assert all("kl" in r and reward in r and "entropy" in r for r in rows)
