"""How `rlfoundry run` turns its flags into the loop job and its run config."""

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.loop_cli import loop_job, loop_run_config

BASE = {"ops": {"whisper_sft_model": {"config": {"max_steps": 3}},
                "whisper_preference_model": {"config": {"beta": 0.2}},
                "asr_eval": {"config": {"group_by": ["accent"]}}}}


def test_preference_objectives_run_speech_loop_with_batches_and_objective_set():
    config = loop_run_config(BASE, ["a", "b"], ["dev"], "mpo")
    assert loop_job("mpo") == "speech_loop"
    ops = config["ops"]
    assert ops["speech_training_set"]["config"] == {"train_batches": ["a", "b"],
                                                    "eval_batches": ["dev"]}
    assert ops["whisper_preference_model"]["config"] == {"beta": 0.2, "objective": "mpo"}
    assert ops["whisper_sft_model"]["config"] == {"max_steps": 3}


def test_rl_objectives_run_speech_rl_loop_with_the_rl_model_as_candidate():
    config = loop_run_config(BASE, [], [], "grpo", "sft")
    assert loop_job("grpo") == "speech_rl_loop"
    ops = config["ops"]
    assert ops["whisper_rl_model"]["config"] == {"objective": "grpo", "base_model": "sft"}
    assert ops["asr_eval"]["config"] == {"group_by": ["accent"], "candidate": "rl"}
    # ops of assets outside speech_rl_loop would be rejected by Dagster's config check
    assert "whisper_preference_model" not in ops and "whisper_sft_model" not in ops
    assert ops["speech_training_set"]["config"] == {}


def test_from_applies_to_rl_objectives_only():
    result = CliRunner().invoke(main, ["run", "--objective", "dpo", "--from", "sft"])
    assert result.exit_code != 0 and "--from applies to --objective grpo or mwer" in result.output


@pytest.mark.parametrize("flags, named", [
    (["--train", "a"], "--train"), (["--eval", "d"], "--eval"), (["--relabel"], "--relabel"),
    (["--objective", "grpo", "--from", "sft"], "--from, --objective"),
    (["--config", "CONFIG"], "--config"),
])
def test_resume_refuses_flags_that_would_change_the_loop(tmp_path, monkeypatch, flags, named):
    monkeypatch.setenv("RLFOUNDRY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    config = tmp_path / "loop.json"
    config.write_text("{}")
    flags = [str(config) if f == "CONFIG" else f for f in flags]
    result = CliRunner().invoke(main, ["run", "--resume", "asr-x", *flags])
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert (f"Error: --resume asr-x reruns the loop with the batches and config it started "
            f"with: drop {named} (or start a new loop without --resume).") in result.output
