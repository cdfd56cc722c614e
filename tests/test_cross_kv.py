"""Cross-attention keys/values shared per clip: the same log-probs and gradients as per row."""

from __future__ import annotations

import pytest
import torch
from transformers import WhisperForConditionalGeneration

import training.whisper.logps as logps_module
from training.whisper.logps import token_logps


@pytest.fixture()
def model(tiny_whisper_dir):
    torch.manual_seed(0)
    return WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir).train()


def _run(model, states, clips, targets):
    model.zero_grad(set_to_none=True)
    out = token_logps(model, states, clips, targets, prompt_ids=[1, 2], pad_id=0)
    (out.logps.sum() * 0.5).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return out, grads


def test_shared_keys_and_values_give_the_per_row_log_probs_and_gradients(model, monkeypatch):
    """A clip scored against several texts (GRPO samples, a DPO pair) trains exactly as before."""
    width = model.config.d_model
    frames = model.config.max_source_positions
    states = torch.randn(2, frames, width)
    clips = [0, 0, 0, 1, 1]
    targets = [[5, 6, 7, 3], [5, 8, 3], [9, 3], [10, 11, 12, 13, 3], [10, 3]]
    shared, shared_grads = _run(model, states, clips, targets)
    monkeypatch.setattr(logps_module, "worth_sharing", lambda rows, clips: False)
    plain, plain_grads = _run(model, states, clips, targets)

    assert torch.equal(shared.mask, plain.mask)
    torch.testing.assert_close(shared.logps, plain.logps, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(shared.entropy, plain.entropy, atol=1e-5, rtol=1e-5)
    assert shared_grads.keys() == plain_grads.keys()
    projections = [n for n in plain_grads if "encoder_attn.k_proj" in n or "encoder_attn.v_proj"
                   in n]
    assert projections  # the shared projections get the gradient summed over their rows
    for name, grad in plain_grads.items():
        torch.testing.assert_close(shared_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_one_text_per_clip_takes_the_plain_path(model, monkeypatch):
    """With no clip repeated there is nothing to share: the stock decoder call runs."""
    called = []
    real = logps_module.shared_cross_cache
    monkeypatch.setattr(logps_module, "shared_cross_cache",
                        lambda *a, **k: called.append(1) or real(*a, **k))
    states = torch.randn(2, model.config.max_source_positions, model.config.d_model)
    token_logps(model, states, [0, 1], [[5, 3], [6, 3]], prompt_ids=[1, 2], pad_id=0)
    assert not called
    token_logps(model, states, [0, 1, 1], [[5, 3], [6, 3], [7, 3]], prompt_ids=[1, 2], pad_id=0)
    assert called
