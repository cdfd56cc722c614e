"""Learning check (slow, ~1.5 min): a tiny Qwen2-Audio learns "which sound is longer" with SFT,
keeps or improves it with GRPO, and only with the clip (`benchmarks/trl_learning_check_alm.py`
is the same run with a table).

The task: a low tone, a pause, a high tone; "Which sound is longer, the first or the second?"
with options A and B, in the audio chain's think/answer format, scored by `choice_correct`
(+ 0.1 `answer_format`). Without the clip the best policy is right 1 in 2.
Measured (SFT 60 steps, GRPO 100), held-out accuracy start -> SFT -> GRPO: seed 0
0 % -> 93.8 % -> 98.4 %, seed 2 0 % -> 50 % -> 95.3 %; blind 50 % throughout.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _check_module():
    spec = importlib.util.spec_from_file_location(
        "trl_learning_check_alm", ROOT / "benchmarks" / "trl_learning_check_alm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sft_then_grpo_learn_which_sound_is_longer_and_the_blind_control_stays_at_chance(
        tmp_path):
    import torch

    torch.set_num_threads(1)
    check = _check_module()
    args = argparse.Namespace(sft_steps=60, grpo_steps=100, sft_lr=3e-3, grpo_lr=1e-3,
                              generations=4, format_weight=0.1, train=64, heldout=64, seed=0,
                              threads=1, out=str(tmp_path))
    stages = check.run(args)["stages"]
    heard = {name: s["eval"]["media"]["accuracy"] for name, s in stages.items()}
    blind = {name: s["eval"]["blind"]["accuracy"] for name, s in stages.items()}
    reward = {name: s["eval"]["media"]["reward"] for name, s in stages.items()}
    assert heard["start"] <= 0.55
    assert heard["after sft"] >= 0.6 and heard["after grpo"] >= max(heard["after sft"], 0.9)
    assert reward["start"] < reward["after sft"] <= reward["after grpo"] + 1e-9
    assert stages["after grpo"]["eval"]["media"]["format_rate"] >= 0.9
    grpo = stages["after grpo"]
    assert grpo["train_reward_last"] > grpo["train_reward_first"]
    assert grpo["kl_last"] is not None and grpo["kl_last"] >= 0
    # without the clip no model beats chance: the gain needs the audio
    assert all(rate <= 0.6 for rate in blind.values())
    assert stages["blind after grpo"]["eval"]["blind"]["accuracy"] <= 0.6
