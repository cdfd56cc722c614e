"""Preference losses on per-sequence log-probabilities, as TRL 1.16's ``DPOTrainer`` computes them.

Why this module exists: TRL's ``DPOTrainer`` only trains causal LMs, so Whisper (an encoder-decoder)
cannot use it. The objectives themselves only need, per preference pair, four numbers: the summed
log-probability of the chosen and the rejected transcript under the policy and under the frozen
reference. Given those, this module reproduces TRL 1.16's loss arithmetic exactly (``_compute_loss``
in ``trl/trainer/dpo_trainer.py``, default ``f_divergence_type="reverse_kl"``, ``ld_alpha=None``,
``use_weighting=False``), so a Whisper run and a TRL text/VLM run optimise the same objectives and
report the same metrics. ``tests/test_losses.py`` checks every function against TRL's own code.

Pure torch: no Dagster, no TRL import.

Conventions (all tensors have shape ``[batch]`` unless noted):

- ``*_logps`` are sums of per-token log-probabilities over the completion (transcript) tokens only.
- Reference log-probabilities are constants: they are detached here, so a reference computed without
  ``torch.no_grad()`` (or a policy used as its own reference) never receives gradient.
- The implicit reward of a completion is ``beta * (policy_logp - ref_logp)``.

Where TRL 1.16 differs from older TRL / the papers (see each function):

- ``"sigmoid"`` ignores ``label_smoothing`` in TRL 1.16 (only ``"robust"``, ``"exo_pair"`` and the
  ``"aot"`` losses read it). :func:`dpo_sigmoid_loss` defaults to ``label_smoothing=0`` (exactly
  TRL 1.16) and with ``label_smoothing > 0`` computes conservative DPO (cDPO), the formula older
  TRL used.
- ``"bco_pair"`` has no running-mean reward shift in TRL 1.16 (``RunningMoments`` is gone from TRL).
  :func:`bco_pair_loss` without ``running_mean`` is exactly TRL 1.16; pass a :class:`RunningMean` to
  get the shift older TRL (and the BCO paper) applied.
- ``"sft"`` is the mean NLL per *token* over all chosen tokens of the batch (long transcripts weigh
  more), not a mean over sequences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

__all__ = [
    "LOSS_TYPES",
    "anchor_kl_loss",
    "LossOutput",
    "RunningMean",
    "bco_pair_loss",
    "dpo_sigmoid_loss",
    "mpo_loss",
    "sft_loss",
]

#: Loss types :func:`mpo_loss` accepts, named as in TRL's ``DPOConfig.loss_type``.
LOSS_TYPES = ("sigmoid", "bco_pair", "sft")


@dataclass
class LossOutput:
    """A preference loss and the metrics TRL's ``DPOTrainer`` logs alongside it.

    Attributes:
        loss: scalar tensor to call ``backward()`` on.
        chosen_rewards: ``beta * (policy_chosen_logps - ref_chosen_logps)``, detached, ``[batch]``.
        rejected_rewards: ``beta * (policy_rejected_logps - ref_rejected_logps)``, detached,
            ``[batch]``.
        reward_accuracy: fraction of pairs whose chosen reward is strictly higher (scalar tensor).
        margin: mean of ``chosen_rewards - rejected_rewards`` (scalar tensor).
        components: unweighted value of each loss term (detached scalars), keyed by TRL loss type.
    """

    loss: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor
    reward_accuracy: torch.Tensor
    margin: torch.Tensor
    components: dict[str, torch.Tensor] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """Plain floats under TRL's metric names (``rewards/chosen`` ...) plus ``loss/<type>``."""
        out = {
            "loss": float(self.loss.detach()),
            "rewards/chosen": float(self.chosen_rewards.mean()),
            "rewards/rejected": float(self.rejected_rewards.mean()),
            "rewards/accuracies": float(self.reward_accuracy),
            "rewards/margins": float(self.margin),
        }
        out.update({f"loss/{name}": float(value) for name, value in self.components.items()})
        return out


@dataclass
class RunningMean:
    """Running mean of a stream of tensors: the reward baseline δ of the BCO loss.

    Mirrors the mean part of ``RunningMoments`` that older TRL releases kept on ``DPOTrainer`` as
    ``self.running`` for ``loss_type="bco_pair"``: each :meth:`update` merges the batch mean into
    the running mean weighted by element count (Chan et al.'s parallel update; TRL started from
    ``count=1e-24``, which gives the same numbers as starting from 0). Under ``torch.distributed``
    the batch statistics are summed over ranks first, as TRL did through ``accelerator.reduce``, so
    every rank holds the same δ. Save ``mean``/``count`` with a checkpoint to resume the baseline.
    """

    mean: float = 0.0
    count: float = 0.0

    @torch.no_grad()
    def update(self, values: torch.Tensor) -> float:
        """Merge ``values`` into the running mean; return the new mean."""
        values = values.detach().float().reshape(-1)
        total = values.sum()
        n = torch.tensor(float(values.numel()), device=values.device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            stats = torch.stack([total, n])
            torch.distributed.all_reduce(stats)
            total, n = stats[0], stats[1]
        n = float(n)
        if n == 0:
            return self.mean
        batch_mean = float(total) / n
        new_count = self.count + n
        self.mean += (batch_mean - self.mean) * n / new_count
        self.count = new_count
        return self.mean


def _rewards(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-ratios ``policy - ref`` for chosen and rejected (reference treated as constant)."""
    if not (
        policy_chosen_logps.shape
        == policy_rejected_logps.shape
        == ref_chosen_logps.shape
        == ref_rejected_logps.shape
    ):
        raise ValueError(
            "policy/ref chosen/rejected log-probs must share one shape [batch]; got "
            f"{tuple(policy_chosen_logps.shape)}, {tuple(policy_rejected_logps.shape)}, "
            f"{tuple(ref_chosen_logps.shape)}, {tuple(ref_rejected_logps.shape)}"
        )
    chosen_logratios = policy_chosen_logps - ref_chosen_logps.detach()
    rejected_logratios = policy_rejected_logps - ref_rejected_logps.detach()
    return chosen_logratios, rejected_logratios


def _output(
    loss: torch.Tensor,
    chosen_logratios: torch.Tensor,
    rejected_logratios: torch.Tensor,
    beta: float,
    components: dict[str, torch.Tensor],
) -> LossOutput:
    # Same metric definitions as the end of TRL's DPOTrainer._compute_loss.
    chosen_rewards = beta * chosen_logratios.detach()
    rejected_rewards = beta * rejected_logratios.detach()
    return LossOutput(
        loss=loss,
        chosen_rewards=chosen_rewards,
        rejected_rewards=rejected_rewards,
        reward_accuracy=(chosen_rewards > rejected_rewards).float().mean(),
        margin=(chosen_rewards - rejected_rewards).mean(),
        components=components,
    )


def _sigmoid_terms(delta: torch.Tensor, beta: float, label_smoothing: float) -> torch.Tensor:
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must lie in [0, 0.5); got {label_smoothing}")
    per_pair = -F.logsigmoid(beta * delta)
    if label_smoothing:
        per_pair = per_pair * (1 - label_smoothing) - F.logsigmoid(-beta * delta) * label_smoothing
    return per_pair


def dpo_sigmoid_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
) -> LossOutput:
    """DPO's logistic loss: TRL ``loss_type="sigmoid"``.

    With ``logits = (πc − πr) − (refc − refr)`` (sums of token log-probs), the per-pair loss is
    ``−logsigmoid(β·logits)·(1−ε) − logsigmoid(−β·logits)·ε`` and the loss is its batch mean. It
    raises the policy's preference for the chosen transcript relative to the reference's, with β
    setting how far from the reference the policy may move (larger β: closer to the reference).

    ``label_smoothing`` ε (conservative DPO, the chance a pair's label is flipped) is *not* applied
    by TRL 1.16's ``"sigmoid"``, which ignores ``DPOConfig.label_smoothing``; ε=0 (the default) is
    exactly TRL 1.16, ε>0 is the cDPO formula older TRL used for ``"sigmoid"``.

    Pairs with equal policy and reference margins have ``logits = 0`` and loss ``log 2``:

    >>> import torch
    >>> lp = torch.tensor([-12.0, -30.0])
    >>> out = dpo_sigmoid_loss(lp, lp, lp, lp, beta=0.1)
    >>> round(out.loss.item(), 4), out.reward_accuracy.item(), out.margin.item()
    (0.6931, 0.0, 0.0)
    >>> out = dpo_sigmoid_loss(
    ...     torch.tensor([-10.0]), torch.tensor([-20.0]),  # policy chosen, rejected
    ...     torch.tensor([-15.0]), torch.tensor([-15.0]),  # reference chosen, rejected
    ...     beta=0.1,
    ... )
    >>> round(out.loss.item(), 4), out.chosen_rewards.tolist(), out.rejected_rewards.tolist()
    (0.3133, [0.5], [-0.5])
    """
    chosen_logratios, rejected_logratios = _rewards(
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps
    )
    per_pair = _sigmoid_terms(chosen_logratios - rejected_logratios, beta, label_smoothing)
    loss = per_pair.mean()
    return _output(loss, chosen_logratios, rejected_logratios, beta, {"sigmoid": loss.detach()})


def bco_pair_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    *,
    beta: float = 0.1,
    running_mean: RunningMean | None = None,
) -> LossOutput:
    """Binary classifier optimisation on pairs: TRL ``loss_type="bco_pair"``.

    Each completion is classified on its own: chosen rewards ``rc = β(πc − refc)`` are pushed up,
    rejected ``rr = β(πr − refr)`` down, per pair ``−logsigmoid(rc − δ) − logsigmoid(−(rr − δ))``,
    batch mean. Unlike ``"sigmoid"`` it constrains absolute rewards, not only their difference,
    which is why MPO adds it as a quality term.

    δ, the reward baseline:

    - ``running_mean=None`` (default): δ = 0. This is exactly TRL 1.16, whose ``"bco_pair"`` has no
      baseline (its ``DPOTrainer`` no longer keeps ``RunningMoments``).
    - a :class:`RunningMean`: older TRL's (and the BCO paper's) shift. Before the loss, the batch's
      mean reward ``mean(cat(rc, rr))`` (detached) is merged into ``running_mean``, and δ is the
      updated running mean (it includes the current batch). The state advances on every call, so
      use one instance per training run and do not call this for evaluation with it.
    """
    chosen_logratios, rejected_logratios = _rewards(
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps
    )
    chosen_rewards = beta * chosen_logratios
    rejected_rewards = beta * rejected_logratios
    delta = 0.0
    if running_mean is not None:
        delta = running_mean.update(torch.cat((chosen_rewards, rejected_rewards), 0).mean())
    if delta:
        per_pair = -F.logsigmoid(chosen_rewards - delta) - F.logsigmoid(-(rejected_rewards - delta))
    else:
        # TRL 1.16's expression, term for term.
        per_pair = -F.logsigmoid(chosen_rewards) - F.logsigmoid(-rejected_rewards)
    loss = per_pair.mean()
    return _output(loss, chosen_logratios, rejected_logratios, beta, {"bco_pair": loss.detach()})


def sft_loss(
    chosen_logps: torch.Tensor,
    chosen_lengths: torch.Tensor | None = None,
    *,
    chosen_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Negative log-likelihood of the chosen completions: TRL ``loss_type="sft"``.

    TRL 1.16 computes ``-chosen_per_token_logps[chosen_mask].mean()``: the mean NLL per token over
    *all* chosen completion tokens of the batch (token-weighted, so a long transcript counts more
    than a short one), not a mean of per-sequence means nor of per-sequence sums. Two equivalent
    ways to call it:

    - per-sequence: ``chosen_logps`` ``[batch]`` summed log-probs and ``chosen_lengths`` ``[batch]``
      completion token counts; returns ``-sum(chosen_logps) / sum(chosen_lengths)``.
    - per-token: ``chosen_logps`` ``[batch, seq]`` token log-probs and ``chosen_mask`` of the same
      shape (1 on completion tokens); returns TRL's expression verbatim.

    A batch with no chosen tokens gives NaN, as in TRL. (TRL's ``ld_alpha`` length-desensitised
    sums are not supported: with them the per-sequence form no longer matches the per-token one.)
    The result is a scalar tensor, not a :class:`LossOutput`: SFT has no reference and no rewards.
    """
    if (chosen_lengths is None) == (chosen_mask is None):
        raise ValueError(
            "pass exactly one of chosen_lengths (per-sequence) or chosen_mask (per-token)"
        )
    if chosen_mask is not None:
        if chosen_mask.shape != chosen_logps.shape:
            raise ValueError(
                f"chosen_mask shape {tuple(chosen_mask.shape)} != "
                f"token log-probs shape {tuple(chosen_logps.shape)}"
            )
        return -chosen_logps[chosen_mask.bool()].mean()
    if chosen_lengths.shape != chosen_logps.shape:
        raise ValueError(
            f"chosen_lengths shape {tuple(chosen_lengths.shape)} != "
            f"chosen_logps shape {tuple(chosen_logps.shape)}"
        )
    return -chosen_logps.sum() / chosen_lengths.sum().to(chosen_logps.dtype)


def anchor_kl_loss(policy_logprobs: torch.Tensor, start_logprobs: torch.Tensor) -> torch.Tensor:
    """Token-level KL(p_start ‖ p_policy), the mean over positions: distillation toward a model.

    Both arguments are log-softmax rows ``[tokens, vocab]`` at the same positions (a
    transcript's target positions, teacher-forced): the policy's, with gradient, and a frozen
    model's (detached here). Per position ``Σ_v p_start(v) · (log p_start(v) − log p_policy(v))``,
    then the mean over all positions of the batch (token-weighted, like :func:`sft_loss`).
    Added to an SFT loss it keeps the whole next-token distribution, not only the target
    token's probability, near the starting model's: the forward KL is what distilling the
    start into the policy minimises, so the language prior the data does not speak to stays.
    Tokens the start gives probability 0 contribute 0.

    >>> import torch
    >>> start = torch.tensor([[0.7, 0.2, 0.1], [0.5, 0.25, 0.25]]).log()
    >>> anchor_kl_loss(start, start).item()
    0.0
    >>> policy = torch.tensor([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]]).log()
    >>> round(anchor_kl_loss(policy, start).item(), 4)  # (0.6 log 7 + 0) / 2
    0.5838
    """
    if policy_logprobs.shape != start_logprobs.shape:
        raise ValueError(f"policy and start log-probs must share one shape [tokens, vocab]; got "
                         f"{tuple(policy_logprobs.shape)} and {tuple(start_logprobs.shape)}")
    start = start_logprobs.detach().float()
    probs = start.exp()
    terms = probs * (start - policy_logprobs.float())
    return torch.where(probs > 0, terms, torch.zeros_like(terms)).sum(dim=-1).mean()


def mpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    chosen_lengths: torch.Tensor | None = None,
    *,
    beta: float = 0.1,
    loss_types: Sequence[str] = ("sigmoid", "bco_pair", "sft"),
    weights: Sequence[float] | None = (0.8, 0.2, 1.0),
    running_mean: RunningMean | None = None,
    sft_logps: torch.Tensor | None = None,
    sft_lengths: torch.Tensor | None = None,
) -> LossOutput:
    """Mixed preference optimisation: a weighted sum of TRL loss types.

    Mirrors ``DPOConfig(loss_type=loss_types, loss_weights=weights)``:
    ``loss = Σ weight_i · mean(loss_i)``; the defaults are MPO (``["sigmoid", "bco_pair", "sft"]``
    with ``[0.8, 0.2, 1.0]``): preference (relative), quality (absolute) and generation (SFT on the
    chosen transcript) terms. ``weights=None`` means 1.0 each, as TRL's ``loss_weights=None``.

    ``chosen_lengths`` (completion token counts, ``[batch]``) is needed only for ``"sft"``; see
    :func:`sft_loss`. ``sft_logps``/``sft_lengths`` put the ``"sft"`` term on other
    transcripts (e.g. the clips' reference transcripts) instead of the chosen ones.
    ``running_mean`` is passed to :func:`bco_pair_loss` (None: TRL 1.16).
    No label smoothing: TRL 1.16 applies none to any of these three terms.

    ``components`` holds each term's unweighted value; the rewards and metrics are those of the
    whole batch, as TRL logs them whatever the loss types.
    """
    if weights is None:
        weights = [1.0] * len(loss_types)
    if len(weights) != len(loss_types):
        raise ValueError(
            f"weights must match loss_types in length; got {len(weights)} weights for "
            f"{len(loss_types)} loss types"
        )
    if not loss_types:
        raise ValueError("loss_types is empty")
    unknown = [t for t in loss_types if t not in LOSS_TYPES]
    if unknown:
        raise ValueError(f"unknown loss types {unknown}; supported: {list(LOSS_TYPES)}")
    if "sft" in loss_types and chosen_lengths is None:
        raise ValueError('loss type "sft" needs chosen_lengths (completion token counts)')

    chosen_logratios, rejected_logratios = _rewards(
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps
    )
    terms: list[torch.Tensor] = []
    components: dict[str, torch.Tensor] = {}
    for loss_type, weight in zip(loss_types, weights, strict=True):
        if loss_type == "sigmoid":
            term = dpo_sigmoid_loss(
                policy_chosen_logps,
                policy_rejected_logps,
                ref_chosen_logps,
                ref_rejected_logps,
                beta=beta,
            ).loss
        elif loss_type == "bco_pair":
            term = bco_pair_loss(
                policy_chosen_logps,
                policy_rejected_logps,
                ref_chosen_logps,
                ref_rejected_logps,
                beta=beta,
                running_mean=running_mean,
            ).loss
        elif sft_logps is not None:  # "sft" on other transcripts
            term = sft_loss(sft_logps, sft_lengths)
        else:  # "sft"
            term = sft_loss(policy_chosen_logps, chosen_lengths)
        components[loss_type] = term.detach()
        terms.append(term * weight)
    # Summed left to right from the first term, as TRL's `loss += per_sequence_loss.mean() * w`.
    loss = terms[0]
    for term in terms[1:]:
        loss = loss + term
    return _output(loss, chosen_logratios, rejected_logratios, beta, components)
