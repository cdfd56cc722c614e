"""A frozen encoder runs once per clip in a training run, and the run learns exactly the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers.models.whisper import modeling_whisper

from labeling.testing import write_manifest, write_tone
from training.config import TrainConfig
from training.whisper.encoder_cache import EncoderStates
from training.whisper.loop import train


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("encoder-cache")
    clips = [write_tone(root / f"c{i}.wav", seconds=0.5, freq=250 + 100 * i, seed=i).name
             for i in range(3)]
    texts = ["hello world", "the cat sat", "one two three"]
    write_manifest(root / "sft.jsonl", [{"audio": clips[i], "text": texts[i], "id": f"s{i}"}
                                        for i in range(3)])
    write_manifest(root / "pairs.jsonl", [
        {"chosen": texts[i % 3], "rejected": texts[(i + 1) % 3], "audio": clips[i % 3],
         "pair_id": f"p{i}"} for i in range(5)])
    return root


@pytest.fixture()
def encoded_clips(monkeypatch) -> list[int]:
    """Rows each encoder call ran on, across the whole run."""
    rows: list[int] = []
    real = modeling_whisper.WhisperEncoder.forward

    def counted(self, input_features, *args, **kwargs):
        rows.append(len(input_features))
        return real(self, input_features, *args, **kwargs)

    monkeypatch.setattr(modeling_whisper.WhisperEncoder, "forward", counted)
    return rows


def _run(tiny_whisper_dir, out, **fields) -> list[dict]:
    config = dict(model=str(tiny_whisper_dir), output_dir=str(out), learning_rate=1e-3,
                  max_steps=4, batch_size=2, save_every=4, log_every=1, seed=1)
    config.update(fields)
    train(TrainConfig(**config).validate())
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("objective, file, extra", [
    ("sft", "sft.jsonl", {}),
    ("dpo", "pairs.jsonl", {}),
    ("grpo", "sft.jsonl", {"num_generations": 3}),
])
def test_each_clip_is_encoded_once_and_the_curve_is_unchanged(
    tiny_whisper_dir, data, tmp_path, encoded_clips, objective, file, extra
):
    """4 steps of 2 examples over 3 clips: the encoder sees each clip once, not once a visit."""
    cached = _run(tiny_whisper_dir, tmp_path / "cached", objective=objective,
                  data=str(data / file), **extra)
    assert sum(encoded_clips) == 3, encoded_clips
    encoded_clips.clear()
    fresh = _run(tiny_whisper_dir, tmp_path / "fresh", objective=objective,
                 data=str(data / file), encoder_cache_mb=0, **extra)
    assert sum(encoded_clips) > 3 * 2  # every visit: several times each clip
    for a, b in zip(cached, fresh, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-5, abs=1e-7)


def test_over_the_cap_clips_are_encoded_at_each_visit_not_kept():
    """Memory stays bounded: what does not fit is recomputed, never dropped or failed."""
    calls: list[int] = []
    features = torch.randn(3, 2**18)  # 1 MiB a clip in float32

    def encode(rows):
        calls.append(len(rows))
        return rows + 1

    cache = EncoderStates(encode, features, cap_mb=2)
    first = cache.of([0, 1, 2])
    assert cache.cached == 2 and calls == [3]
    again = cache.of([2, 1, 0])
    assert calls == [3, 1]  # only the clip that did not fit
    assert torch.equal(again, first.flip(0))
