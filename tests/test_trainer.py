"""The Whisper trainer (training.run, training.whisper.loop) on a tiny random Whisper and tones."""

from __future__ import annotations

import doctest
import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import WhisperForConditionalGeneration

from labeling.testing import write_manifest, write_tone
from training import run
from training.config import ConfigError, TrainConfig
from training.whisper import loop
from training.whisper.loop import train
from training.whisper.reference_cache import CACHE_NAME

ROOT = Path(__file__).resolve().parents[1]
PAIRS = [
    ("hello world", "hello word"),
    ("the cat sat", "the cat sat sat sat"),
    ("good morning", ""),
    ("one two three", "one to three"),
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Three 0.5 s tones, a 4-pair JSONL (relative audio paths) and a 3-row SFT JSONL."""
    root = tmp_path_factory.mktemp("trainer-data")
    clips = [write_tone(root / f"clip{i}.wav", seconds=0.5, freq=300 + 150 * i, seed=i).name
             for i in range(3)]
    write_manifest(root / "pairs.jsonl", [
        {"prompt": "<|startoftranscript|><|notimestamps|>", "chosen": c, "rejected": r,
         "audio": clips[i % 3], "clip_id": f"c{i % 3}", "pair_id": f"p{i}", "source": "model"}
        for i, (c, r) in enumerate(PAIRS)
    ])
    write_manifest(root / "sft.jsonl", [
        {"audio": clips[i], "text": PAIRS[i][0], "id": f"s{i}"} for i in range(3)
    ])
    return root


def _config(model: Path, data_dir: Path, out: Path, **overrides) -> TrainConfig:
    fields = dict(objective="dpo", model=str(model), output_dir=str(out),
                  data=str(data_dir / "pairs.jsonl"), learning_rate=1e-3, max_steps=2, batch_size=2,
                  save_every=2, log_every=1, seed=3)
    fields.update(overrides)
    return TrainConfig(**fields).validate()


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("objective", ["dpo", "mpo"])
def test_preference_run_moves_decoder_only_and_saves_loadable_checkpoint(
    tiny_whisper_dir, data_dir, tmp_path, objective
):
    out = tmp_path / "run"
    logged = []
    result = train(_config(tiny_whisper_dir, data_dir, out, objective=objective),
                   log=logged.append)

    assert result.step == 2 and [r["step"] for r in logged] == [1, 2]
    start = WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir).state_dict()
    tuned = WhisperForConditionalGeneration.from_pretrained(result.checkpoint).state_dict()
    changed = {k for k in start if not torch.equal(start[k], tuned[k])}
    assert any(k.startswith("model.decoder.") for k in changed)
    assert not any(k.startswith("model.encoder.") for k in changed)  # freeze_encoder default
    assert (result.checkpoint / "model.safetensors").is_file()
    assert (result.checkpoint / "tokenizer.json").is_file()
    rows = _metrics(out)
    assert [r["step"] for r in rows] == [1, 2]
    expected = {"loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
                "rewards/margins", "entropy", "kl", "lr", "grad_norm", "step_time_s"}
    terms = {"dpo": {"loss/sigmoid"}, "mpo": {"loss/sigmoid", "loss/bco_pair", "loss/sft"}}
    assert expected | terms[objective] <= set(rows[-1])
    assert all(math.isfinite(v) for r in rows for v in r.values())
    pointer = json.loads((out / "latest.json").read_text())
    assert pointer == {"step": 2, "checkpoint": "checkpoints/step-00000002"}


def test_sft_runs_and_logs(tiny_whisper_dir, data_dir, tmp_path):
    out = tmp_path / "sft"
    cfg = _config(tiny_whisper_dir, data_dir, out, objective="sft",
                  data=str(data_dir / "sft.jsonl"))
    result = train(cfg)
    rows = _metrics(out)
    assert result.step == 2 and len(rows) == 2
    assert rows[0]["loss"] == pytest.approx(rows[0]["loss/sft"]) and rows[0]["loss"] > 0
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-5)  # policy == reference at step 1
    assert "rewards/chosen" not in rows[0]
    assert WhisperForConditionalGeneration.from_pretrained(result.checkpoint) is not None


def test_sft_growing_confident_is_not_an_entropy_collapse(tiny_whisper_dir, data_dir, tmp_path):
    """SFT's entropy on the references falls as it learns them: the watch must not stop it."""
    out = tmp_path / "sft"
    cfg = _config(tiny_whisper_dir, data_dir, out, objective="sft", max_steps=8,
                  data=str(data_dir / "sft.jsonl"), learning_rate=5e-2, save_every=8,
                  entropy_window=1, entropy_warn_fraction=0.999, entropy_stop_fraction=0.995)
    result = train(cfg)
    rows = _metrics(out)
    assert rows[-1]["entropy"] < 0.99 * rows[0]["entropy"]  # it did grow confident
    assert not result.stopped and result.step == 8
    assert not any("watch" in r for r in rows)


def test_resume_continues_the_same_curve(tiny_whisper_dir, data_dir, tmp_path, monkeypatch):
    common = dict(max_steps=4, warmup_steps=1, lr_schedule_steps=4, grad_accum_steps=2)
    straight = train(_config(tiny_whisper_dir, data_dir, tmp_path / "straight", **common))

    calls = []
    real = loop.compute_reference
    monkeypatch.setattr(loop, "compute_reference", lambda *a, **k: calls.append(1) or real(*a, **k))
    out = tmp_path / "interrupted"
    first = train(_config(tiny_whisper_dir, data_dir, out, **{**common, "max_steps": 2}))
    assert first.step == 2 and first.resumed_from is None
    resumed = train(_config(tiny_whisper_dir, data_dir, out, **common))

    assert resumed.step == straight.step == 4 and resumed.resumed_from == 2
    assert calls == [1]  # the reference was computed once, before step 1, and reused on resume
    losses = [r["loss"] for r in _metrics(out)]
    assert [r["step"] for r in _metrics(out)] == [1, 2, 3, 4]
    np.testing.assert_allclose(losses, [r["loss"] for r in _metrics(tmp_path / "straight")],
                               rtol=1e-5, atol=1e-6)
    a = load_file(str(straight.checkpoint / "model.safetensors"))
    b = load_file(str(resumed.checkpoint / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    state = torch.load(resumed.checkpoint / "trainer_state.pt", weights_only=True)
    assert state["step"] == 4


def test_first_dpo_step_has_policy_equal_reference(tiny_whisper_dir, data_dir, tmp_path):
    out = tmp_path / "dpo"
    train(_config(tiny_whisper_dir, data_dir, out, max_steps=1, beta=0.5))
    row = _metrics(out)[0]
    assert row["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert row["kl"] == pytest.approx(0.0, abs=1e-5)
    assert row["rewards/margins"] == pytest.approx(0.0, abs=1e-5)
    cache = load_file(str(out / CACHE_NAME))
    assert cache["chosen_logps"].shape == (4,) and bool((cache["chosen_logps"] < 0).all())
    assert cache["rejected_tokens"][2] == 1  # the empty rejected text is just end-of-text


def test_logps_agree_with_asr_scores(tiny_whisper_dir, data_dir):
    """What training optimises is what WhisperASR.score (pair mining, evaluation) measures."""
    from labeling.ingest.audio import load_audio
    from models.whisper.asr import WhisperASR
    from training.whisper.logps import WhisperScorer, WhisperTokens

    asr = WhisperASR.from_pretrained(str(tiny_whisper_dir), device="cpu")
    audio = load_audio(data_dir / "clip0.wav")[0]
    texts = ["hello world", "", "the cat sat sat sat"]
    tokens = WhisperTokens.of(asr.model, asr.processor.tokenizer)
    targets = [tokens.target(asr.processor.tokenizer, t) for t in texts]
    assert targets == [asr._target_ids(t) for t in texts]
    features = asr.processor.feature_extractor([audio], sampling_rate=16_000,
                                               return_tensors="pt").input_features
    with torch.no_grad():
        out = WhisperScorer(asr.model, tokens, freeze_encoder=True)(features, [0, 0, 0], targets)
    scores = asr.score(audio, texts)
    assert out.tokens.tolist() == [n for _, n in scores]
    np.testing.assert_allclose((out.logps / out.tokens).numpy(), [s for s, _ in scores],
                               rtol=1e-5)
    assert bool((out.entropy > 0).all())


@pytest.mark.parametrize(("change", "field"), [
    ({"objective": "ppo"}, "objective"),
    ({"beta": 0}, "beta"),
    ({"precision": "fp8"}, "precision"),
    ({"loss_weights": [1.0]}, "loss_weights"),
    ({"batch_size": 0}, "batch_size"),
    ({"lerning_rate": 1e-5}, "lerning_rate"),
])
def test_bad_config_names_the_field(tmp_path, capsys, change, field):
    raw = {"objective": "dpo", "model": "m", "output_dir": "o", "data": "d", **change}
    with pytest.raises(ConfigError, match=f"'{field}'"):
        TrainConfig.from_dict(raw)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(SystemExit) as exit_info:
        run.main([str(path)])
    assert exit_info.value.code == 2
    assert f"config field '{field}'" in capsys.readouterr().err


def test_entry_point_runs_and_reports_json_lines(tiny_whisper_dir, data_dir, tmp_path):
    config = _config(tiny_whisper_dir, data_dir, tmp_path / "cli", objective="mpo", max_steps=1)
    path = config.to_json(tmp_path / "config.json")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("DAGSTER_PIPES_CONTEXT", None)
    done = subprocess.run([sys.executable, "-m", "training.run", str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events] == ["message", "progress", "materialization"]
    final = events[-1]
    assert final["checkpoint"].endswith("checkpoints/step-00000001") and "loss/bco_pair" in final


@pytest.mark.parametrize("name", ["training.config", "training.whisper.data",
                                  "training.whisper.logps", "training.runtime.pipes_report"])
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_two_runs_of_one_config_on_two_threads_end_with_identical_weights(
        tiny_whisper_dir, data_dir, tmp_path):
    """The demo's table repeats run to run only if training does: same config, same thread
    count, bitwise the same checkpoint (a multi-threaded backward reduction used to
    accumulate in whatever order the threads finished)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        weights = []
        for name in ("first", "second"):
            config = _config(tiny_whisper_dir, data_dir, tmp_path / name, max_steps=5,
                             save_every=5, sft_weight=1.0)
            weights.append(load_file(str(train(config).checkpoint / "model.safetensors")))
    finally:
        torch.set_num_threads(threads)
    first, second = weights
    assert all(torch.equal(first[k], second[k]) for k in first)
