"""anchor_kl: a token-level KL(start ‖ policy) to the frozen starting model beside SFT/DPO/MPO."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from labeling.testing import write_manifest, write_tone
from training.config import ConfigError, TrainConfig
from training.objectives.losses import anchor_kl_loss, sft_loss
from training.runtime.metrics_log import METRICS_NAME
from training.whisper.data import load_train_data
from training.whisper.encoder_cache import EncoderStates
from training.whisper.logps import WhisperScorer, WhisperTokens
from training.whisper.loop import train
from training.whisper.offline import step_loss
from training.whisper.reference_cache import compute_reference

TEXTS = ["hello world", "the cat sat", "good morning"]
PAIRS = [("hello world", "hello word", "hello world!"), ("the cat sat", "the cat", None),
         ("good morning", "", "good morning to you")]  # chosen, rejected, reference


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Three tones, a 3-row SFT JSONL and a 3-pair JSONL (two with a reference transcript)."""
    root = tmp_path_factory.mktemp("anchor-data")
    audio = [write_tone(root / f"c{i}.wav", seconds=0.5, freq=300 + 90 * i, seed=i).name
             for i in range(3)]
    write_manifest(root / "sft.jsonl", [{"audio": a, "text": t, "id": f"s{i}"}
                                        for i, (a, t) in enumerate(zip(audio, TEXTS, strict=True))])
    pairs = []
    for i, (chosen, rejected, reference) in enumerate(PAIRS):
        row = {"chosen": chosen, "rejected": rejected, "audio": audio[i], "pair_id": f"p{i}"}
        if reference:
            row["reference"] = reference
        pairs.append(row)
    write_manifest(root / "pairs.jsonl", pairs)
    return root


def _parts(model_dir, path, paired: bool):
    model = WhisperForConditionalGeneration.from_pretrained(model_dir)
    processor = WhisperProcessor.from_pretrained(model_dir)
    tokens = WhisperTokens.of(model, processor.tokenizer)
    data = load_train_data(path, paired=paired,
                           targets=lambda text: tokens.target(processor.tokenizer, text),
                           feature_extractor=processor.feature_extractor)
    policy = WhisperScorer(model, tokens, freeze_encoder=True)
    start = copy.deepcopy(model).eval().requires_grad_(False)
    anchor = WhisperScorer(start, tokens, freeze_encoder=True).eval()
    return data, policy, anchor, compute_reference(policy, data, batch_size=3)


def _config(**fields) -> TrainConfig:
    return TrainConfig(**{"objective": "sft", "model": "m", "output_dir": "o", "data": "d",
                          **fields}).validate()


def _nudge(scorer: WhisperScorer, seed: int = 0) -> None:
    """Move the policy's decoder away from the start, as training would."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in scorer.model.get_decoder().parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))


# ----------------------------------------------------------------------------- the loss itself


def test_anchor_kl_loss_is_the_forward_kl_per_token():
    generator = torch.Generator().manual_seed(0)
    policy = torch.randn(5, 11, generator=generator).log_softmax(-1)
    start = torch.randn(5, 11, generator=generator).log_softmax(-1)
    expected = torch.nn.functional.kl_div(policy, start, log_target=True, reduction="sum") / 5
    assert float(anchor_kl_loss(policy, start)) == pytest.approx(float(expected), rel=1e-6)
    assert float(anchor_kl_loss(start, start)) == 0.0
    assert float(anchor_kl_loss(policy, start)) > 0


def test_anchor_kl_loss_gradient_pulls_the_policy_toward_the_start():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 7, generator=generator, requires_grad=True)
    start = torch.randn(4, 7, generator=generator).log_softmax(-1).requires_grad_(True)
    anchor_kl_loss(logits.log_softmax(-1), start).backward()
    # d/dlogits of mean_t KL(p_start ‖ softmax(logits)) = (softmax(logits) - p_start) / tokens
    expected = (logits.detach().softmax(-1) - start.detach().exp()) / 4
    assert torch.allclose(logits.grad, expected, atol=1e-6)
    assert start.grad is None  # the start is a constant


def test_anchor_kl_loss_ignores_tokens_the_start_rules_out():
    start = torch.tensor([[0.0, float("-inf")]])
    policy = torch.tensor([[0.5, 0.5]]).log().requires_grad_(True)
    loss = anchor_kl_loss(policy, start)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(torch.log(torch.tensor(2.0)).item())
    assert torch.isfinite(policy.grad).all()


def test_anchor_kl_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        anchor_kl_loss(torch.zeros(3, 5), torch.zeros(3, 6))


# ----------------------------------------------------------------------------- config


def test_config_default_is_off_and_bad_values_name_the_field():
    assert _config().anchor_kl == 0.0
    assert _config(anchor_kl=0.5, objective="dpo", sft_weight=1.0).anchor_kl == 0.5
    with pytest.raises(ConfigError) as negative:
        _config(anchor_kl=-1.0)
    assert negative.value.field == "anchor_kl"
    with pytest.raises(ConfigError) as online:
        _config(anchor_kl=1.0, objective="grpo")
    assert online.value.field == "anchor_kl" and "kl_beta" in str(online.value)
    assert _config(anchor_kl=0.0, objective="grpo").objective == "grpo"


# ----------------------------------------------------------------------------- one micro-batch


def test_off_leaves_the_sft_loss_bit_identical(tiny_whisper_dir, data_dir):
    data, policy, anchor, ref = _parts(tiny_whisper_dir, data_dir / "sft.jsonl", paired=False)
    _nudge(policy)
    batch = data.batch([0, 1, 2])
    off, off_metrics = step_loss(_config(), policy, batch, ref, torch.no_grad)
    with_anchor_given, _ = step_loss(_config(), policy, batch, ref, torch.no_grad, None, anchor)
    out = policy(batch.features, batch.clips, batch.chosen)
    before = sft_loss(out.logps.float(), out.tokens)  # the SFT loss as computed without anchor_kl
    assert torch.equal(off, before) and torch.equal(with_anchor_given, before)
    assert "loss/anchor_kl" not in off_metrics
    on, on_metrics = step_loss(_config(anchor_kl=2.0), policy, batch, ref, torch.no_grad, None,
                               anchor)
    assert torch.equal(on_metrics["loss/sft"], off_metrics["loss/sft"])  # same NLL, bit for bit
    kl = on_metrics["loss/anchor_kl"]
    assert float(kl) > 0
    assert float(on.detach()) == pytest.approx(float(before.detach() + 2.0 * kl), rel=1e-6)


def test_zero_when_the_policy_is_the_start_and_gradient_flows(tiny_whisper_dir, data_dir):
    data, policy, anchor, ref = _parts(tiny_whisper_dir, data_dir / "sft.jsonl", paired=False)
    batch = data.batch([0, 1, 2])
    config = _config(anchor_kl=1.0)
    _, metrics = step_loss(config, policy, batch, ref, torch.enable_grad, None, anchor)
    assert abs(float(metrics["loss/anchor_kl"])) < 1e-6
    _nudge(policy)
    loss, metrics = step_loss(config, policy, batch, ref, torch.enable_grad, None, anchor)
    kl_only = loss - metrics["loss/sft"]  # the anchor term, with its graph
    kl_only.backward()
    decoder_grads = [p.grad for p in policy.model.get_decoder().parameters()
                     if p.grad is not None]
    assert decoder_grads and sum(float(g.abs().sum()) for g in decoder_grads) > 0
    assert all(p.grad is None for p in anchor.model.parameters())  # the start stays frozen


def test_needs_the_frozen_start(tiny_whisper_dir, data_dir):
    data, policy, _, ref = _parts(tiny_whisper_dir, data_dir / "sft.jsonl", paired=False)
    with pytest.raises(ValueError, match="anchor"):
        step_loss(_config(anchor_kl=1.0), policy, data.batch([0]), ref, torch.no_grad)


def test_dpo_anchors_on_the_imitated_reference_transcripts(tiny_whisper_dir, data_dir):
    data, policy, anchor, ref = _parts(tiny_whisper_dir, data_dir / "pairs.jsonl", paired=True)
    _nudge(policy)
    batch = data.batch([0, 1, 2])
    config = _config(objective="dpo", sft_weight=1.0, sft_target="reference", anchor_kl=0.5)
    loss, metrics = step_loss(config, policy, batch, ref, torch.no_grad, None, anchor)
    imitated = [r if r is not None else c
                for r, c in zip(batch.references, batch.chosen, strict=True)]
    with torch.no_grad():
        mine = policy(batch.features, batch.clips, imitated, per_token=True,
                      keep_distribution=True)
        start = anchor(batch.features, batch.clips, imitated, per_token=True,
                       keep_distribution=True)
    expected = anchor_kl_loss(mine.distribution, start.distribution)
    assert float(metrics["loss/anchor_kl"]) == pytest.approx(float(expected), rel=1e-5)
    off, off_metrics = step_loss(config.model_copy(update={"anchor_kl": 0.0}), policy, batch,
                                 ref, torch.no_grad)
    assert float(loss) == pytest.approx(float(off + 0.5 * expected), rel=1e-5)
    assert "loss/anchor_kl" not in off_metrics


def test_cached_encoder_states_serve_the_start_too(tiny_whisper_dir, data_dir):
    data, policy, anchor, ref = _parts(tiny_whisper_dir, data_dir / "sft.jsonl", paired=False)
    _nudge(policy)
    batch = data.batch([2, 0])
    config = _config(anchor_kl=1.0)
    cache = EncoderStates(policy.encode, data.features, cap_mb=64)
    _, cached = step_loss(config, policy, batch, ref, torch.no_grad, cache, anchor)
    _, fresh = step_loss(config, policy, batch, ref, torch.no_grad, None, anchor)  # start encodes
    assert cache.encoded == 2
    assert float(cached["loss/anchor_kl"]) == pytest.approx(float(fresh["loss/anchor_kl"]),
                                                            rel=1e-5)


# ----------------------------------------------------------------------------- the loop


def test_sft_run_logs_the_anchor_term_from_zero_upward(tiny_whisper_dir, data_dir, tmp_path):
    fields = dict(objective="sft", model=str(tiny_whisper_dir), data=str(data_dir / "sft.jsonl"),
                  learning_rate=3e-3, max_steps=4, batch_size=3, save_every=4, log_every=1,
                  seed=1)
    anchored = train(TrainConfig(output_dir=str(tmp_path / "on"), anchor_kl=1.0, **fields))
    plain = train(TrainConfig(output_dir=str(tmp_path / "off"), **fields))
    rows = [json.loads(line) for line in (anchored.output_dir / METRICS_NAME).open()]
    kl = [r["loss/anchor_kl"] for r in rows]
    assert abs(kl[0]) < 1e-6 and kl[-1] > 1e-4
    assert all(r["loss"] == pytest.approx(r["loss/sft"] + r["loss/anchor_kl"], rel=1e-5)
               for r in rows)
    plain_rows = [json.loads(line) for line in (plain.output_dir / METRICS_NAME).open()]
    assert all("loss/anchor_kl" not in r for r in plain_rows)
    assert rows[0]["loss/sft"] == plain_rows[0]["loss/sft"]  # same first step, bit for bit
    saved = json.loads((anchored.output_dir / "config.json").read_text())
    assert saved["anchor_kl"] == 1.0
