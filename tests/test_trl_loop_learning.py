"""Learning check through the loop's assets (slow, ~1.5 min for both families on one core):
the backend checks' synthetic tasks run as a user runs `vlm_loop` / `alm_loop` — training-set
snapshot, SFT, GRPO (out of process), `<family>_eval` with its blind control, the blocking gate
and promotion (`benchmarks/trl_loop_learning_check.py` is the same run with a table).

At the backend checks' size (SFT 60 steps; GRPO 200 vlm, 100 alm; 64 held-out rows; seed 0)
the numbers equal the backend checks': pointing 0 % -> 50 % -> 75 %, tones
0 % -> 93.8 % -> 98.4 %, blind at chance (25 %, 50 %) after both stages. Here GRPO runs
shorter (60 and 30 steps: pointing 50 % -> 50 %, tones 93.8 % -> 92.2 %, so the gate promotes
the SFT model), so after GRPO is only asked not to fall below after SFT by more than 0.05.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("trl")
ROOT = Path(__file__).resolve().parents[1]
SMALL = {"vlm": {"grpo_steps": 60}, "alm": {"grpo_steps": 30, "format_weight": 0.1}}


def _check_module():
    spec = importlib.util.spec_from_file_location(
        "trl_loop_learning_check", ROOT / "benchmarks" / "trl_loop_learning_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("family", ["vlm", "alm"])
def test_the_loop_trains_with_the_backend_checks_settings(family):
    """Each stage as the loop runs it (its config's defaults, then the check's run config)
    has every field the backend check sets to the same value."""
    from assets.loop.config import GrpoStageConfig, SftStageConfig
    from training.trl_backend.learning_check import TASKS, parser, stage_config

    check = _check_module()
    args = parser("check", TASKS[family]).parse_args([])
    ops = check.stage_ops(family, args)["ops"]
    for objective, stage in (("sft", SftStageConfig), ("grpo", GrpoStageConfig)):
        backend = stage_config(TASKS[family], objective, "m", "d", Path("o"), args, blind=False)
        loop = stage(**ops[f"{family}_{objective}_model"]["config"])
        assert {k: getattr(loop, k) for k in stage.model_fields if k != "base_model"} == {
            k: getattr(backend, k) for k in stage.model_fields if k != "base_model"}
    assert ops[f"{family}_training_set"]["config"]["tasks"] == [check.CHAIN_TASK[family]]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["vlm", "alm"])
def test_through_the_loop_sft_learns_grpo_keeps_it_blind_stays_at_chance_and_it_is_promoted(
        family, tmp_path, monkeypatch):
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # run() sets them for its children
        monkeypatch.setenv(name, "1")
    check = _check_module()
    args = argparse.Namespace(family=family, sft_steps=60, sft_lr=3e-3, grpo_lr=1e-3,
                              generations=4, train=64, heldout=64, seed=0, threads=1,
                              out=str(tmp_path), **SMALL[family])
    report = check.run(args)
    print(check.table(report))
    chance, metric, blind = report["chance"], report["metric"], report["blind"]
    assert report["training_set"]["train_rows"] == 64
    assert report["eval_metadata"]["eval_rows"] == 64
    assert metric["incumbent"] <= chance  # the untrained start writes no answer
    assert metric["sft"] >= chance + 0.15
    assert metric["grpo"] >= metric["sft"] - 0.05
    # without the media both trained models are at chance: what they learnt needs it
    assert abs(blind["sft"] - chance) <= 0.1 and abs(blind["grpo"] - chance) <= 0.1
    assert report["success"] and report["decision"]["passed"]
    assert report["promoted"] in (f"sft-{report['loop']}", f"grpo-{report['loop']}")
    assert report["promoted"].startswith(report["decision"]["candidate"])
