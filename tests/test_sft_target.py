"""An SFT term on the reference transcript (sft_target='reference') for DPO (RPO) and MPO."""

from __future__ import annotations

import pytest
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from labeling.testing import write_manifest, write_tone
from training.config import TrainConfig
from training.objectives.losses import sft_loss
from training.whisper.data import load_train_data
from training.whisper.logps import WhisperScorer, WhisperTokens
from training.whisper.offline import step_loss
from training.whisper.reference_cache import compute_reference

ROWS = [("hello world", "hello word", "hello world!"),
        ("the cat sat", "the cat", "the cat sat down"),
        ("good morning", "", None)]  # chosen, rejected, reference (None: the row has none)


@pytest.fixture()
def setup(tiny_whisper_dir, tmp_path):
    audio = [write_tone(tmp_path / f"c{i}.wav", seconds=0.5, freq=300 + 90 * i, seed=i).name
             for i in range(3)]
    rows = []
    for i, (chosen, rejected, reference) in enumerate(ROWS):
        row = {"chosen": chosen, "rejected": rejected, "audio": audio[i], "pair_id": f"p{i}"}
        if reference is not None:
            row["reference"] = reference
        rows.append(row)
    write_manifest(tmp_path / "pairs.jsonl", rows)
    model = WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir)
    processor = WhisperProcessor.from_pretrained(tiny_whisper_dir)
    tokens = WhisperTokens.of(model, processor.tokenizer)
    target = lambda text: tokens.target(processor.tokenizer, text)  # noqa: E731
    data = load_train_data(tmp_path / "pairs.jsonl", paired=True, targets=target,
                           feature_extractor=processor.feature_extractor)
    scorer = WhisperScorer(model, tokens, freeze_encoder=True).eval()
    return data, scorer, target, compute_reference(scorer, data, batch_size=3)


def _config(**fields):
    return TrainConfig(model="m", output_dir="o", data="d", **fields).validate()


def test_pairs_rows_keep_their_reference_transcript(setup):
    data, _, target, _ = setup
    assert [e.reference for e in data.examples] == [target("hello world!"),
                                                    target("the cat sat down"), None]


@pytest.mark.parametrize("objective, fields", [
    ("dpo", {"sft_weight": 0.7}),
    ("mpo", {"loss_types": ["sft"], "loss_weights": [1.0]}),
])
def test_the_sft_term_imitates_the_reference_and_falls_back_to_chosen(setup, objective, fields):
    data, scorer, target, ref = setup
    batch = data.batch([0, 1, 2])
    on_ref = _config(objective=objective, sft_target="reference", **fields)
    on_chosen = _config(objective=objective, sft_target="chosen", **fields)
    _, metrics = step_loss(on_ref, scorer, batch, ref, torch.no_grad)
    _, chosen_metrics = step_loss(on_chosen, scorer, batch, ref, torch.no_grad)
    with torch.no_grad():
        imitated = [target("hello world!"), target("the cat sat down"), target("good morning")]
        out = scorer(batch.features, batch.clips, imitated)
        expected = sft_loss(out.logps.float(), out.tokens)
        chosen_out = scorer(batch.features, batch.clips, batch.chosen)
        expected_chosen = sft_loss(chosen_out.logps.float(), chosen_out.tokens)
    assert float(metrics["loss/sft"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(chosen_metrics["loss/sft"]) == pytest.approx(float(expected_chosen), rel=1e-5)
    assert abs(float(expected) - float(expected_chosen)) > 1e-4  # the two targets differ
    assert float(metrics["sft/on_reference"]) == pytest.approx(2 / 3)
    assert "sft/on_reference" not in chosen_metrics
