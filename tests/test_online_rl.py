"""Online RL (GRPO, MWER) in the Whisper trainer, on a tiny random Whisper and tone clips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import WhisperForConditionalGeneration

from labeling.testing import write_manifest, write_tone
from training.config import ConfigError, TrainConfig
from training.monitors import EntropyWatch
from training.whisper.loop import TrainingStopped, train

REFS = ["hello world", "the cat sat", "good morning"]


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("online-data")
    clips = [write_tone(root / f"c{i}.wav", seconds=0.5, freq=300 + 150 * i, seed=i).name
             for i in range(3)]
    return write_manifest(root / "sft.jsonl", [
        {"audio": clips[i], "text": REFS[i], "id": f"s{i}", "keywords": ["world"],
         "bucket": ["easy", "hard", "hard"][i]} for i in range(3)])


def _config(model, data, out, **overrides) -> TrainConfig:
    fields = dict(objective="grpo", model=str(model), output_dir=str(out), data=str(data),
                  learning_rate=1e-3, max_steps=2, batch_size=2, save_every=1, log_every=1,
                  seed=5, num_generations=3, nbest_size=3, entropy_stop_fraction=0.0)
    fields.update(overrides)
    return TrainConfig(**fields).validate()


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _changed(before: Path, after: Path) -> set[str]:
    a = WhisperForConditionalGeneration.from_pretrained(before).state_dict()
    b = WhisperForConditionalGeneration.from_pretrained(after).state_dict()
    return {k for k in a if not torch.equal(a[k], b[k])}


@pytest.mark.parametrize("variant", ["dapo", "grpo", "dr_grpo"])
def test_grpo_run_logs_rewards_entropy_kl_and_changes_the_decoder(
        tiny_whisper_dir, sft_data, tmp_path, variant):
    out = tmp_path / "grpo"
    result = train(_config(tiny_whisper_dir, sft_data, out, grpo_variant=variant,
                           rollout_temperature=1.5))
    rows = _rows(out)
    assert result.step == 2 and [r["step"] for r in rows] == [1, 2]
    for key in ("reward/mean", "reward/std", "frac_reward_zero_std", "entropy", "kl",
                "clip_ratio/region_mean", "rewards/gated_accuracy", "rewards/keyword_recall",
                "rewards/language_match", "completion_tokens"):
        assert key in rows[0], key
    assert any(k.startswith("reward/bucket/") for k in rows[0])
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # step 1: the policy is the reference
    changed = _changed(tiny_whisper_dir, result.checkpoint)
    assert changed and all(k.startswith("model.decoder.") or k == "proj_out.weight"
                           for k in changed)


def test_grpo_rollouts_are_reproducible_from_the_seed(tiny_whisper_dir, sft_data, tmp_path):
    a = train(_config(tiny_whisper_dir, sft_data, tmp_path / "a", max_steps=1))
    b = train(_config(tiny_whisper_dir, sft_data, tmp_path / "b", max_steps=1))
    ra, rb = _rows(tmp_path / "a")[0], _rows(tmp_path / "b")[0]
    assert ra["reward/mean"] == rb["reward/mean"] and ra["loss"] == pytest.approx(rb["loss"])
    assert a.checkpoint.name == b.checkpoint.name


def test_mwer_run_logs_expected_errors_and_changes_the_decoder(
        tiny_whisper_dir, sft_data, tmp_path):
    out = tmp_path / "mwer"
    result = train(_config(tiny_whisper_dir, sft_data, out, objective="mwer"))
    rows = _rows(out)
    assert {"mwer/expected_errors", "mwer/oracle_errors", "loss/ce", "entropy", "kl"} <= set(
        rows[0])
    assert rows[0]["mwer/oracle_errors"] <= rows[0]["mwer/expected_errors"] + 1e-6
    assert _changed(tiny_whisper_dir, result.checkpoint)


def test_entropy_watch_stops_a_collapsing_run_and_keeps_the_last_good_checkpoint(
        tiny_whisper_dir, sft_data, tmp_path):
    # a huge learning rate on the SFT-like CE of MWER drives the policy to collapse; the
    # watch must stop it and return the checkpoint saved before the collapse
    out = tmp_path / "collapse"
    config = _config(tiny_whisper_dir, sft_data, out, objective="mwer", learning_rate=0.3,
                     mwer_ce_weight=50.0, max_grad_norm=0.0, max_steps=12,
                     entropy_stop_fraction=0.3, entropy_warn_fraction=0.6,
                     entropy_window=1)
    result = train(config)
    rows = _rows(out)
    assert result.stopped and "policy entropy" in result.stopped
    last = rows[-1]
    assert last["watch"].startswith("stop:") and last["step"] < 12
    assert result.step == last["step"] - 1  # the collapsed step was never saved
    assert result.checkpoint.name == f"step-{result.step:08d}"
    assert rows[-1]["entropy"] < 0.3 * rows[0]["entropy"]


def test_a_stop_before_any_checkpoint_is_an_error_naming_the_reason(
        tiny_whisper_dir, sft_data, tmp_path):
    config = _config(tiny_whisper_dir, sft_data, tmp_path / "x", objective="mwer",
                     learning_rate=0.3, mwer_ce_weight=50.0, max_grad_norm=0.0, max_steps=12,
                     save_every=100, entropy_stop_fraction=0.3, entropy_window=1)
    with pytest.raises(TrainingStopped, match="no checkpoint had been saved yet"):
        train(config)


def test_watch_counts_steps_without_reward_variance():
    watch = EntropyWatch(patience=2)
    assert watch.update(1.0, 0.5).level == "ok"
    assert watch.update(1.0, 1.0).level == "warn"
    verdict = watch.update(1.0, 1.0)
    assert verdict.level == "stop" and "reward variance collapsed" in verdict.message


def test_online_config_errors_name_the_field(tiny_whisper_dir, sft_data, tmp_path):
    with pytest.raises(ConfigError, match="grpo_variant"):
        _config(tiny_whisper_dir, sft_data, tmp_path, grpo_variant="ppo")
    with pytest.raises(ConfigError, match="num_generations"):
        _config(tiny_whisper_dir, sft_data, tmp_path, num_generations=1)


def test_curriculum_by_steps_opens_buckets_in_order(tiny_whisper_dir, sft_data, tmp_path):
    from training.curriculum import curriculum_batch

    buckets = ["easy", "hard", "hard"]  # the fixture's rows
    assert set(curriculum_batch(buckets, 0, 4, seed=0, index=3)) == {0}
    assert set(curriculum_batch(buckets, 2, 3, seed=0, index=0)) == {0, 1, 2}
    out = tmp_path / "cur"
    train(_config(tiny_whisper_dir, sft_data, out, objective="sft", max_steps=3,
                  curriculum="steps", curriculum_boundaries=[0.3, 0.6]))
    assert [r["curriculum/stage"] for r in _rows(out)] == [0, 1, 2]


def test_curriculum_by_reward_advances_when_the_reward_passes(
        tiny_whisper_dir, sft_data, tmp_path):
    out = tmp_path / "cur-reward"
    train(_config(tiny_whisper_dir, sft_data, out, max_steps=3, curriculum="reward",
                  curriculum_threshold=-100.0, curriculum_window=1))
    assert [r["curriculum/stage"] for r in _rows(out)] == [0, 1, 2]
    with pytest.raises(ConfigError, match="curriculum"):
        _config(tiny_whisper_dir, sft_data, tmp_path, objective="mwer", curriculum="reward")


def test_grpo_scores_rollouts_at_their_sampling_temperature(tiny_whisper_dir):
    """Ratio, KL and entropy are of the distribution sampled from: logits / temperature."""
    from transformers import WhisperProcessor

    from training.whisper.logps import WhisperScorer, WhisperTokens

    model = WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir).eval()
    tokenizer = WhisperProcessor.from_pretrained(tiny_whisper_dir).tokenizer
    tokens = WhisperTokens.of(model, tokenizer)
    scorer = WhisperScorer(model, tokens, freeze_encoder=True)
    features = torch.randn(1, model.config.num_mel_bins, 3000, generator=torch.Generator()
                           .manual_seed(0))
    target = tokens.target(tokenizer, "hello world")
    with torch.no_grad():
        states = scorer.encode(features)
        plain = scorer(None, [0], [target], per_token=True, states=states)
        cooled = scorer(None, [0], [target], per_token=True, states=states, temperature=0.5)
        prompt = torch.tensor([tokens.prompt_ids + target[:-1]])
        logits = model(encoder_outputs=(states,), decoder_input_ids=prompt).logits[0]
    logits = logits[len(tokens.prompt_ids) - 1:]
    expected = (logits / 0.5).log_softmax(-1).gather(1, torch.tensor(target)[:, None])[:, 0]
    assert torch.allclose(cooled.logps[0][cooled.mask[0]], expected, atol=1e-4)
    assert not torch.allclose(plain.logps, cooled.logps)
    # a cooler distribution is sharper: lower entropy at the same positions
    assert cooled.entropy[cooled.mask].mean() < plain.entropy[plain.mask].mean()
