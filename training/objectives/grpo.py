"""The GRPO objective on per-token log-probabilities, as TRL 1.16's ``GRPOTrainer`` computes it.

Why this module exists: TRL's ``GRPOTrainer`` trains causal LMs and VLMs only, so Whisper (an
encoder-decoder) cannot use it. The objective itself needs only, per sampled transcript, the
per-token log-probabilities of its tokens under the policy (with gradient), under the policy that
sampled it ("old", a constant) and optionally under a frozen reference, plus one scalar reward per
transcript. Given those, this module and :mod:`training.objectives.advantages` reproduce TRL
1.16's arithmetic exactly: the advantages of ``_generate_and_score_completions``
(``multi_objective_aggregation="sum_then_normalize"``, in ``advantages``) and the loss and logged
metrics of ``_compute_loss`` (``importance_sampling_level="token"``, no vLLM correction, no entropy
mask or bonus, ``delta=None``, here). ``tests/test_grpo.py`` runs TRL's own methods on the same
numbers.

Pure torch: no Dagster, no TRL import.

Conventions:

- Completions of one prompt (audio clip) are contiguous: row ``i`` belongs to group
  ``i // group_size``, the order TRL's ``RepeatSampler`` produces.
- Per-token tensors are ``[batch, tokens]`` with a ``completion_mask`` of the same shape; masked
  positions are ignored, whatever they hold (``-inf`` or NaN padding included).
- Only ``per_token_logps`` carries gradient: old and reference log-probs and advantages are
  detached here.

TRL 1.16 behaviour worth knowing (see each function):

- ``GRPOConfig`` defaults: ``loss_type="dapo"``, ``beta=0.0`` (no KL, no reference model),
  ``epsilon=0.2``, ``epsilon_high=None`` (= ``epsilon``), ``scale_rewards="group"``,
  ``max_completion_length=512``, ``use_bias_correction_kl=True``.
- The std that scales advantages is the *unbiased* (Bessel-corrected) std, and ``1e-4`` is added
  to it, not to the variance. ``scale_rewards="batch"`` still subtracts the *group* mean.
- With ``use_bias_correction_kl=True`` (the default) the k3 KL term is multiplied by the
  importance ratio ``π/π_old``: its value on-policy is unchanged, its gradient is not.

Example: two clips, four sampled transcripts each; the second clip's rewards are all equal, so it
carries no learning signal.

>>> import torch
>>> from training.objectives.advantages import group_advantages, zero_variance_fraction
>>> rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5]])
>>> advantages = group_advantages(rewards)
>>> [round(a, 3) for a in advantages[0].tolist()], advantages[1].tolist()
([0.866, -0.866, -0.866, 0.866], [0.0, 0.0, 0.0, 0.0])
>>> zero_variance_fraction(rewards)
0.5
>>> logps = torch.full((8, 3), -0.5, requires_grad=True)
>>> mask = torch.ones(8, 3, dtype=torch.bool)
>>> mask[0, 2] = False  # the first transcript is one token shorter
>>> out = grpo_loss(logps, None, None, advantages.flatten(), mask)  # on-policy, "dapo"
>>> round(out.loss.item(), 4), out.metrics()["ratio/mean"], out.metrics()["clip_ratio/region_mean"]
(0.0376, 1.0, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "VARIANTS",
    "GRPOOutput",
    "grpo_loss",
    "policy_entropy",
    "token_entropy",
]

#: Loss aggregations :func:`grpo_loss` accepts, named as TRL's ``GRPOConfig.loss_type``.
VARIANTS = ("grpo", "bnpo", "dr_grpo", "dapo")


# --------------------------------------------------------------------------- entropy


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of the next-token distribution at each position: ``logits[..., vocab]``.

    Computed in float32; same values as TRL's ``entropy_from_logits``. Keeps gradient (detach it
    for monitoring).
    """
    logps = torch.log_softmax(logits.float(), dim=-1)
    return -(logps.exp() * logps).sum(-1)


def policy_entropy(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean token entropy over the completion tokens of a batch, as TRL logs ``entropy``.

    ``logits`` is ``[batch, tokens, vocab]``, ``mask`` ``[batch, tokens]``. A token-weighted mean
    (long completions weigh more). Falling entropy is the first sign of policy collapse.
    """
    return _masked_mean(token_entropy(logits), mask.to(torch.float32))


# --------------------------------------------------------------------------- loss


@dataclass
class GRPOOutput:
    """The GRPO loss and the metrics TRL's ``GRPOTrainer`` logs alongside it.

    Every metric is a detached scalar tensor. Means are over completion tokens of the batch
    (token-weighted); ``clip_ratio_low_min``/``clip_ratio_high_max`` are the min/max over
    completions of the per-completion share (NaN-skipping, empty completions ignored).

    Attributes:
        loss: scalar to call ``backward()`` on.
        ratio_mean: mean importance ratio ``π/π_old`` (1 on-policy; drift means stale samples).
        clip_ratio_low: share of tokens clipped below (ratio < 1 − ε_low with negative advantage).
        clip_ratio_high: share clipped above (ratio > 1 + ε_high with positive advantage).
        clip_ratio_region: share clipped either way.
        clip_ratio_low_min: smallest per-completion share clipped below.
        clip_ratio_high_max: largest per-completion share clipped above.
        kl: mean per-token k3 KL to the reference (times the ratio if bias-corrected); None
            without a reference.
        entropy: mean token entropy, if per-token entropies were given.
    """

    loss: torch.Tensor
    ratio_mean: torch.Tensor
    clip_ratio_low: torch.Tensor
    clip_ratio_high: torch.Tensor
    clip_ratio_region: torch.Tensor
    clip_ratio_low_min: torch.Tensor
    clip_ratio_high_max: torch.Tensor
    kl: torch.Tensor | None = None
    entropy: torch.Tensor | None = None

    def metrics(self) -> dict[str, float]:
        """Plain floats under TRL's metric names (``clip_ratio/low_mean``...) and ``ratio/mean``."""
        out = {
            "loss": float(self.loss.detach()),
            "ratio/mean": float(self.ratio_mean),
            "clip_ratio/low_mean": float(self.clip_ratio_low),
            "clip_ratio/high_mean": float(self.clip_ratio_high),
            "clip_ratio/region_mean": float(self.clip_ratio_region),
            "clip_ratio/low_min": float(self.clip_ratio_low_min),
            "clip_ratio/high_max": float(self.clip_ratio_high_max),
        }
        if self.kl is not None:
            out["kl"] = float(self.kl)
        if self.entropy is not None:
            out["entropy"] = float(self.entropy)
        return out


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over all masked-in tokens (0 when there are none): TRL's ``global_masked_mean``."""
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def _nan_extreme(values: torch.Tensor, largest: bool) -> torch.Tensor:
    """Min or max ignoring NaNs; NaN when all are NaN (TRL's ``nanmin``/``nanmax``)."""
    kept = values[~torch.isnan(values)]
    if kept.numel() == 0:
        return torch.tensor(float("nan"), dtype=values.dtype, device=values.device)
    return kept.max() if largest else kept.min()


def _check_shapes(per_token_logps: torch.Tensor, *others: torch.Tensor | None) -> None:
    if per_token_logps.dim() != 2:
        raise ValueError(
            f"per_token_logps must be [batch, tokens]; got {tuple(per_token_logps.shape)}"
        )
    for other in others:
        if other is not None and other.shape != per_token_logps.shape:
            raise ValueError(
                "per-token tensors must share per_token_logps' shape "
                f"{tuple(per_token_logps.shape)}; got {tuple(other.shape)}"
            )


def _advantage_column(advantages: torch.Tensor, batch: int) -> torch.Tensor:
    """Advantages as ``[batch, 1]`` (one per completion) or ``[batch, tokens]``, detached."""
    advantages = advantages.detach()
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)
    if advantages.shape[0] != batch:
        raise ValueError(f"{advantages.shape[0]} advantages for {batch} completions")
    return advantages


def _aggregate(
    per_token_loss: torch.Tensor,
    mask: torch.Tensor,
    variant: str,
    max_completion_length: int | None,
    num_items_in_batch: float | None,
) -> torch.Tensor:
    """Reduce per-token losses to the scalar each TRL ``loss_type`` optimises."""
    masked = per_token_loss * mask
    if variant == "grpo":  # each completion's token mean, then the mean over completions
        return (masked.sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if variant == "bnpo":  # token mean over this batch
        return masked.sum() / mask.sum().clamp(min=1.0)
    if variant == "dr_grpo":  # a constant denominator: no length bias
        return masked.sum() / (per_token_loss.size(0) * max_completion_length)
    # dapo: token mean over the whole generation batch (across accumulation steps and ranks)
    tokens = mask.sum() if num_items_in_batch is None else mask.new_tensor(num_items_in_batch)
    return masked.sum() / tokens.clamp(min=1.0)


def _validate(
    variant: str,
    epsilon_low: float,
    epsilon_high: float,
    beta: float,
    has_ref: bool,
    max_completion_length: int | None,
    num_items_in_batch: float | None,
) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}; got {variant!r}")
    if epsilon_low < 0 or epsilon_high < 0:
        raise ValueError(f"clip epsilons must be >= 0; got {epsilon_low}, {epsilon_high}")
    if beta != 0.0 and not has_ref:
        raise ValueError(f"beta={beta} needs ref_per_token_logps (or set beta=0.0)")
    if variant == "dr_grpo" and not max_completion_length:
        raise ValueError("variant='dr_grpo' divides by max_completion_length: pass it (> 0)")
    if num_items_in_batch is not None and variant != "dapo":
        raise ValueError("num_items_in_batch is only used by variant='dapo'")


def grpo_loss(
    per_token_logps: torch.Tensor,
    old_per_token_logps: torch.Tensor | None,
    ref_per_token_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    variant: str = "dapo",
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    max_completion_length: int | None = None,
    num_items_in_batch: float | None = None,
    kl_bias_correction: bool = True,
    entropies: torch.Tensor | None = None,
) -> GRPOOutput:
    """PPO's clipped surrogate with group-relative advantages, plus an optional KL penalty.

    Per token, with ratio ``ρ = exp(logp − old_logp)`` and the completion's advantage ``A``::

        loss_t = −min(ρ·A, clip(ρ, 1 − ε_low, 1 + ε_high)·A) + β·KL_t
        KL_t   = exp(ref − logp) − (ref − logp) − 1        (k3 estimator, ≥ 0)
                 × ρ when kl_bias_correction (TRL's use_bias_correction_kl, default True)

    and ``variant`` (TRL's ``loss_type``) sets how tokens are averaged:

    - ``"dapo"`` (TRL's default): sum over all tokens / number of tokens, the count being
      ``num_items_in_batch`` when given (the whole generation batch, across gradient-accumulation
      steps and ranks: pass TRL's ``num_items_in_batch / num_processes * accumulation_steps /
      steps_per_generation``), else this batch's;
    - ``"bnpo"``: sum / number of tokens of this batch;
    - ``"grpo"``: each completion's token mean, then the mean over completions (the paper; short
      completions weigh more per token);
    - ``"dr_grpo"``: sum / (batch · ``max_completion_length``), a constant, so no length bias.

    Arguments:
        per_token_logps: ``[batch, tokens]`` log-probs of the sampled tokens under the policy being
            trained; the only input that receives gradient.
        old_per_token_logps: the same under the policy that sampled them; None means on-policy
            (one update per generation): the ratio is then 1 but its gradient is not 0.
        ref_per_token_logps: the same under the frozen reference; needed when ``beta != 0``; when
            given, ``kl`` is reported even with ``beta=0``.
        advantages: ``[batch]`` (from :func:`group_advantages`) or ``[batch, tokens]``.
        completion_mask: ``[batch, tokens]``, nonzero on completion tokens.
        epsilon_high: upper clip; None means ``epsilon_low`` (DAPO's clip-higher uses 0.28).
        max_completion_length: the generation limit, required by ``"dr_grpo"``.
        entropies: optional ``[batch, tokens]`` token entropies (:func:`token_entropy`), only
            reported.

    The loss is not divided by the number of gradient-accumulation steps (TRL divides ``grpo``,
    ``bnpo`` and ``dr_grpo`` by it; ``dapo`` gets it through ``num_items_in_batch``).
    """
    epsilon_high = epsilon_low if epsilon_high is None else epsilon_high
    _validate(
        variant,
        epsilon_low,
        epsilon_high,
        beta,
        ref_per_token_logps is not None,
        max_completion_length,
        num_items_in_batch,
    )
    _check_shapes(per_token_logps, old_per_token_logps, ref_per_token_logps, completion_mask)
    keep = completion_mask.bool()
    mask = keep.to(per_token_logps.dtype)
    # Zero what is masked out first, so padding (-inf, NaN) cannot reach the loss or its gradient.
    logps = per_token_logps.masked_fill(~keep, 0.0)
    old = logps.detach() if old_per_token_logps is None else old_per_token_logps.detach()
    ratio = torch.exp(logps - old.masked_fill(~keep, 0.0))
    adv = _advantage_column(advantages, per_token_logps.shape[0])

    per_token_kl = None
    if ref_per_token_logps is not None:
        ref_gap = ref_per_token_logps.detach().masked_fill(~keep, 0.0) - logps
        per_token_kl = torch.exp(ref_gap) - ref_gap - 1
        if kl_bias_correction:
            per_token_kl = per_token_kl * ratio

    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    per_token_loss = -torch.min(ratio * adv, clipped * adv)
    if beta != 0.0:
        per_token_loss = per_token_loss + beta * per_token_kl
    loss = _aggregate(per_token_loss, mask, variant, max_completion_length, num_items_in_batch)
    return _output(loss, ratio, adv, mask, epsilon_low, epsilon_high, per_token_kl, entropies)


@torch.no_grad()
def _output(
    loss: torch.Tensor,
    ratio: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    epsilon_low: float,
    epsilon_high: float,
    per_token_kl: torch.Tensor | None,
    entropies: torch.Tensor | None,
) -> GRPOOutput:
    """The metrics at the end of TRL's ``_compute_loss``, from detached values."""
    low = ((ratio < 1 - epsilon_low) & (adv < 0)).float()
    high = ((ratio > 1 + epsilon_high) & (adv > 0)).float()
    region = torch.maximum(low, high)

    def per_completion(flags: torch.Tensor) -> torch.Tensor:  # NaN for empty completions
        return (flags * mask).sum(-1) / mask.sum(-1)

    return GRPOOutput(
        loss=loss,
        ratio_mean=_masked_mean(ratio, mask),
        clip_ratio_low=_masked_mean(low, mask),
        clip_ratio_high=_masked_mean(high, mask),
        clip_ratio_region=_masked_mean(region, mask),
        clip_ratio_low_min=_nan_extreme(per_completion(low), largest=False),
        clip_ratio_high_max=_nan_extreme(per_completion(high), largest=True),
        kl=None if per_token_kl is None else _masked_mean(per_token_kl, mask),
        entropy=None
        if entropies is None
        else _masked_mean(entropies.masked_fill(mask == 0, 0.0), mask),
    )
