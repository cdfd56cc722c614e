"""One micro-batch of online RL for Whisper: rollouts from the current policy, rewards, loss.

- **GRPO**: ``num_generations`` transcripts sampled per clip at
  ``rollout_temperature``, scored by :func:`training.rewards.composite.reward_table`, which
  calls each reward as TRL's ``GRPOTrainer`` does (``fn(completions, **columns)``, the clip's
  reference, keywords, language and duration as columns repeated per transcript; an untagged
  clip's language is English), advantages
  normalised within the clip's group, and TRL's clipped objective with a k3 KL to the frozen
  starting model (:func:`training.objectives.grpo.grpo_loss`); log-probs, KL and entropy are
  taken at the rollout temperature, as TRL does. One optimizer step per rollout, so the
  "old" policy is the current one (ratio 1, as TRL with ``num_iterations=1``).
- **MWER**: the policy's ``nbest_size`` beams per clip; expected word errors under the
  renormalised N-best probabilities, mean-subtracted, plus ``mwer_ce_weight`` x the reference's
  cross-entropy (:func:`training.objectives.mwer.mwer_loss`).

Sampled texts are scored as their text (re-tokenised with Whisper's leading space, then
end-of-text), the convention of scoring, pair mining and DPO, so every objective optimises the
same quantity. The encoder runs once per micro-batch (frozen: shared by rollout, policy and
reference). Every reward component is averaged into the step's metrics.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import torch

from models.whisper.asr import WhisperASR
from training.config import TrainConfig
from training.eval.metrics import error_counts
from training.objectives.advantages import group_advantages, zero_variance_fraction
from training.objectives.grpo import grpo_loss
from training.objectives.losses import sft_loss
from training.objectives.mwer import mwer_loss
from training.rewards.composite import RewardWeights, reward_table
from training.whisper.data import Batch
from training.whisper.encoder_cache import EncoderStates
from training.whisper.logps import WhisperScorer, WhisperTokens

Metrics = dict[str, torch.Tensor]


@dataclass
class OnlineContext:
    """What online objectives need besides the policy: generation, tokens, the reference."""

    asr: WhisperASR
    tokens: WhisperTokens
    tokenizer: object
    reference: WhisperScorer
    weights: RewardWeights

    def targets(self, texts: list[str]) -> list[list[int]]:
        return [self.tokens.target(self.tokenizer, t) for t in texts]


def online_step_loss(
    config: TrainConfig, module: torch.nn.Module, scorer: WhisperScorer, ctx: OnlineContext,
    batch: Batch, seeds: list[int], autocast: Callable, encoder: EncoderStates | None = None,
) -> tuple[torch.Tensor, Metrics]:
    """The GRPO or MWER loss of one micro-batch (`module` may be `scorer` wrapped in DDP).

    `encoder` is the frozen encoder's state cache (None: encode the batch's features).
    `seeds` has one rollout seed per example (a function of its position in the data stream,
    so the same example gets the same samples whatever the batch size or number of ranks).
    """
    states = encoder.of(batch.clip_ids) if encoder is not None else scorer.encode(batch.features)
    example_states = states[batch.clips]
    seconds = [batch.seconds[c] for c in batch.clips]
    was_training = scorer.model.training
    scorer.model.eval()
    started = time.perf_counter()
    try:
        if config.objective == "grpo":
            drafts = ctx.asr.sample_encoded(example_states, seconds,
                                            num_samples=config.num_generations,
                                            temperature=config.rollout_temperature,
                                            seeds=seeds)
        else:
            drafts = ctx.asr.beams_encoded(example_states, seconds, num_beams=config.nbest_size)
    finally:
        scorer.model.train(was_training)
    rollout_s = time.perf_counter() - started
    step = _grpo if config.objective == "grpo" else _mwer
    loss, metrics = step(config, module, ctx, batch, states, drafts, seconds, autocast)
    metrics["rollout_s"] = torch.tensor(rollout_s)
    return loss, metrics


def _grpo(config, module, ctx, batch, states, drafts, seconds, autocast):
    groups = len(drafts)
    texts = [t for row in drafts for t in row]
    scored = reward_table(texts, **_reward_columns(batch, seconds, drafts), weights=ctx.weights,
                          gate_threshold=config.gate_threshold,
                          failure_penalty=config.failure_penalty)
    rewards = torch.tensor(scored["total"]).view(groups, -1)
    advantages = group_advantages(rewards).flatten()
    clips = [batch.clips[i] for i in range(groups) for _ in drafts[i]]
    targets = ctx.targets(texts)
    temperature = config.rollout_temperature
    with autocast():
        policy = module(None, clips, targets, per_token=True, states=states,
                        temperature=temperature)
    with torch.no_grad(), autocast():
        ref = ctx.reference(None, clips, targets, per_token=True, states=states,
                            temperature=temperature)
    device = policy.logps.device
    out = grpo_loss(
        policy.logps, None, ref.logps.float() if config.kl_beta > 0 else None,
        advantages.to(device), policy.mask, variant=config.grpo_variant,
        epsilon_low=config.epsilon_low, epsilon_high=config.epsilon_high, beta=config.kl_beta,
        max_completion_length=ctx.tokens.window + 1,
        num_items_in_batch=_tokens_per_rank(policy.mask) if config.grpo_variant == "dapo"
        else None)
    metrics: Metrics = {k: torch.tensor(v) for k, v in out.metrics().items()
                        if k not in ("kl", "entropy")}
    metrics.update({
        "loss": out.loss.detach(),
        "reward/mean": rewards.mean(),
        "reward/std": rewards.std(dim=1, unbiased=True).nan_to_num(0.0).mean(),
        "frac_reward_zero_std": torch.tensor(zero_variance_fraction(rewards)),
        "entropy": _masked_mean(policy.entropy, policy.mask),
        "kl": _k3(policy.logps.detach(), ref.logps.float(), policy.mask),
        "completion_tokens": policy.mask.sum(dim=1).float().mean(),
    })
    metrics.update(_component_means(scored))
    metrics.update(_bucket_rewards(batch, scored["total"], len(drafts[0])))
    return out.loss, metrics


def _reward_columns(batch: Batch, seconds: list[float], drafts: list[list[str]]) -> dict:
    """The reward columns of each transcript, its clip's row repeated per sample (as TRL does)."""
    rows = [i for i in range(len(drafts)) for _ in drafts[i]]
    return {
        "reference": [batch.texts[i] for i in rows],
        "keywords": [batch.tags[i].get("keywords") or () for i in rows],
        "language": [str(batch.tags[i].get("language") or "en") for i in rows],
        "duration_s": [seconds[i] for i in rows],
    }


def _mwer(config, module, ctx, batch, states, drafts, seconds, autocast):
    groups, n = len(drafts), len(drafts[0])
    counts = [[error_counts(batch.texts[i], h) for h in drafts[i]] for i in range(groups)]
    errors = torch.tensor([[float(c.errors) for c in row] for row in counts])
    ref_words = torch.tensor([row[0].ref_words for row in counts])
    mask = torch.tensor([[h not in drafts[i][:j] for j, h in enumerate(drafts[i])]
                         for i in range(groups)])  # a repeated text counts once
    texts = [h for row in drafts for h in row]
    clips = [batch.clips[i] for i in range(groups) for _ in range(n)] + list(batch.clips)
    targets = ctx.targets(texts) + list(batch.chosen)
    with autocast():
        out = module(None, clips, targets, states=states)
    logps = out.logps.float()
    hyp, refs = logps[: groups * n].view(groups, n), logps[groups * n :]
    ce = sft_loss(refs, out.tokens[groups * n :])
    device = logps.device
    res = mwer_loss(hyp, errors.to(device), mask.to(device), ce_loss=ce,
                    ce_weight=config.mwer_ce_weight, normalize_by_words=ref_words.to(device))
    with torch.no_grad(), autocast():
        ref = ctx.reference(None, list(batch.clips), list(batch.chosen), states=states)
    tokens = out.tokens[groups * n :]
    metrics: Metrics = {k: torch.tensor(v) for k, v in res.metrics().items()}
    metrics.update({
        "loss": res.loss.detach(),
        "entropy": out.entropy[groups * n :].mean(),
        "kl": ((refs.detach() - ref.logps.float()) / tokens).mean(),
        "mwer/best_wer": (errors.min(dim=1).values / ref_words.clamp_min(1)).mean(),
    })
    return res.loss, metrics


def _tokens_per_rank(mask: torch.Tensor) -> float | None:
    """DAPO's normaliser under DDP: all ranks' completion tokens / ranks (None on one process).

    DDP averages gradients over ranks, so dividing each rank's token sum by the global count
    over ranks gives exactly the single-process token-level mean.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    world = torch.distributed.get_world_size()
    if world == 1:
        return None
    total = mask.sum().float()
    torch.distributed.all_reduce(total)
    return float(total) / world


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp_min(1)


def _k3(logps: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean per-token k3 estimate of KL(policy ‖ reference) on the policy's own samples."""
    delta = (ref - logps).masked_fill(~mask, 0.0)
    return _masked_mean(torch.exp(delta) - delta - 1, mask)


def _component_means(scored: dict[str, list[float | None]]) -> Metrics:
    """Mean of each component over the transcripts it is finite for (None, NaN, inf left out)."""
    sums = {name: [v for v in values if v is not None and math.isfinite(v)]
            for name, values in scored.items() if name != "total"}
    return {f"rewards/{k}": torch.tensor(sum(v) / len(v)) for k, v in sums.items() if v}


def _bucket_rewards(batch: Batch, totals: list[float], per_clip: int) -> Metrics:
    """Mean reward per curriculum bucket (rows tagged with `bucket`)."""
    acc: dict[str, list[float]] = defaultdict(list)
    for i, tags in enumerate(batch.tags):
        bucket = tags.get("bucket")
        if bucket:
            acc[str(bucket)] += totals[i * per_clip : (i + 1) * per_clip]
    return {f"reward/bucket/{b}": torch.tensor(sum(v) / len(v)) for b, v in acc.items()}
