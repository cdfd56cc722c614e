"""How `rlfoundry run` turns its flags into the loop job and its run config."""

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
