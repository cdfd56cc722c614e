"""GRPO's group-relative advantages, as TRL 1.16's ``GRPOTrainer`` computes them.

The critic-free half of GRPO (:mod:`training.objectives.grpo` is the loss): each sampled
transcript's reward relative to the other samples of the same clip, and the share of clips whose
samples all scored the same (no learning signal). Reproduces the advantages of TRL's
``_generate_and_score_completions`` (``multi_objective_aggregation="sum_then_normalize"``);
``tests/test_grpo.py`` runs TRL's own code on the same numbers.

Pure torch. Completions of one prompt (audio clip) are contiguous: row ``i`` belongs to group
``i // group_size``, the order TRL's ``RepeatSampler`` produces.

Example: two clips, four sampled transcripts each; the second clip's rewards are all equal.

>>> import torch
>>> rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5]])
>>> advantages = group_advantages(rewards)
>>> [round(a, 3) for a in advantages[0].tolist()], advantages[1].tolist()
([0.866, -0.866, -0.866, 0.866], [0.0, 0.0, 0.0, 0.0])
>>> zero_variance_fraction(rewards)
0.5
"""

from __future__ import annotations

import torch

__all__ = ["SCALES", "group_advantages", "zero_variance_fraction"]

#: Advantage scalings :func:`group_advantages` accepts, as TRL's ``GRPOConfig.scale_rewards``.
SCALES = ("group", "batch", "none")


def _grouped(rewards: torch.Tensor, group_size: int | None) -> torch.Tensor:
    """Rewards as ``[groups, group_size]`` floats, from ``[groups * group_size]`` or 2-D input."""
    if not rewards.is_floating_point():
        rewards = rewards.float()
    if rewards.dim() == 2:
        if group_size is not None and group_size != rewards.shape[1]:
            raise ValueError(
                f"rewards of shape {tuple(rewards.shape)} hold groups of {rewards.shape[1]}, "
                f"but group_size={group_size}"
            )
        return rewards
    if rewards.dim() != 1 or group_size is None:
        raise ValueError(
            "pass rewards as [groups, group_size], or flat [groups * group_size] with group_size; "
            f"got shape {tuple(rewards.shape)} and group_size={group_size}"
        )
    if group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    return rewards.view(-1, group_size)


def _nanstd(values: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Unbiased std ignoring NaNs (NaN where fewer than two values): TRL's ``nanstd``."""
    mean = torch.nanmean(values, dim=dim, keepdim=True)
    variance = torch.nanmean((values - mean) ** 2, dim=dim, keepdim=True)
    count = torch.sum(~torch.isnan(values), dim=dim, keepdim=True)
    correction = count / (count - 1)
    correction = torch.where(count > 1, correction, torch.full_like(correction, float("nan")))
    return torch.sqrt(variance * correction)


def _group_std(grouped: torch.Tensor) -> torch.Tensor:
    """Per-group std, ``[groups, 1]``; zeros for groups of one, as TRL does."""
    if grouped.shape[1] == 1:
        return torch.zeros_like(grouped)
    return _nanstd(grouped, dim=1)


def group_advantages(
    rewards: torch.Tensor,
    group_size: int | None = None,
    *,
    scale: str = "group",
    eps: float = 1e-4,
) -> torch.Tensor:
    """Each completion's reward relative to its group: GRPO's critic-free advantage.

    ``A = (r − mean(group)) / (std + eps)``, with the std chosen by ``scale`` (TRL's
    ``scale_rewards``):

    - ``"group"`` (TRL's default, the GRPO paper): the std of the completion's own group;
    - ``"batch"``: one std over every reward of the batch (PPO-Lite); the mean is still the group's;
    - ``"none"``: no division (Dr. GRPO: dividing by the std favours too-easy and too-hard prompts).

    The std is unbiased (n − 1), and ``eps=1e-4`` is TRL's constant, so a group whose rewards are
    all equal gets advantages of exactly 0. NaN rewards (a completion no reward function could
    score) are left out of the group's mean and std and get advantage 0, as in TRL.

    `rewards` is ``[groups, group_size]``, or ``[groups * group_size]`` with `group_size` given
    (group members contiguous); the result has the same shape. Combine several reward functions
    (a weighted sum) before calling this, as TRL's ``"sum_then_normalize"`` does.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}; got {scale!r}")
    grouped = _grouped(rewards, group_size)
    advantages = grouped - torch.nanmean(grouped, dim=1, keepdim=True)
    if scale == "group":
        advantages = advantages / (_group_std(grouped) + eps)
    elif scale == "batch":
        std = _nanstd(grouped) if grouped.numel() > 1 else torch.zeros_like(grouped)
        advantages = advantages / (std + eps)
    return torch.nan_to_num(advantages, nan=0.0).view(rewards.shape)


def zero_variance_fraction(rewards: torch.Tensor, group_size: int | None = None) -> float:
    """Share of groups whose rewards are all equal, i.e. that give no learning signal.

    It is TRL's logged ``frac_reward_zero_std`` (with ``scale_rewards`` "group" or "none"): a group
    counts when its std is within ``1e-8`` of zero. A rising value means the task got too easy
    (every sample right) or too hard (every sample wrong) for the policy. Shapes as in
    :func:`group_advantages`.
    """
    std = _group_std(_grouped(rewards, group_size))
    return float(torch.isclose(std, torch.zeros_like(std)).float().mean())
