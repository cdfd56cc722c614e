"""Minimum word error rate (MWER) training on an N-best list, as an alternative objective.

For each clip the N-best hypotheses' sequence log-probs under the policy are
renormalised over the list, ``P(y_i) = softmax(log p(y_i))``, and the loss is the
expected number of word errors with the list's mean subtracted (a baseline that
lowers the variance without changing the gradient's expectation):

    L_mwer = Σ_i P(y_i) · (E_i − Ē)

Lowering it moves probability mass from worse hypotheses to better ones *within
the list*. Alone it can drift (nothing ties it to the reference), so a
cross-entropy term on the reference transcript is added, as in Prabhavalkar et
al. (2018), "Minimum Word Error Rate Training for Attention-based
Sequence-to-Sequence Models": ``L = L_mwer + λ · L_ce``.

Pure torch, no Dagster.

Example: two clips of three hypotheses each; the second clip's hypotheses all
have the same error count, so it contributes nothing.

>>> import torch
>>> logps = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.5, -2.0]], requires_grad=True)
>>> errors = torch.tensor([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
>>> out = mwer_loss(logps, errors)
>>> round(out.loss.item(), 4), round(out.metrics()["mwer/expected_errors"], 4)
(0.2103, 1.2103)
>>> out.loss.backward()
>>> logps.grad[0].tolist()[1] < 0  # raising the error-free hypothesis' probability helps
True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["MWEROutput", "mwer_loss"]


@dataclass
class MWEROutput:
    """The loss and what to log: expected errors, the N-best's best/mean errors, entropy."""

    loss: torch.Tensor
    mwer: torch.Tensor
    ce: torch.Tensor | None
    expected_errors: torch.Tensor
    oracle_errors: torch.Tensor
    mean_errors: torch.Tensor
    nbest_entropy: torch.Tensor

    def metrics(self) -> dict[str, float]:
        out = {
            "loss": self.loss.item(),
            "loss/mwer": self.mwer.item(),
            "mwer/expected_errors": self.expected_errors.item(),
            "mwer/oracle_errors": self.oracle_errors.item(),
            "mwer/mean_errors": self.mean_errors.item(),
            "mwer/nbest_entropy": self.nbest_entropy.item(),
        }
        if self.ce is not None:
            out["loss/ce"] = self.ce.item()
        return out


def mwer_loss(
    logps: torch.Tensor,
    errors: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    ce_loss: torch.Tensor | None = None,
    ce_weight: float = 0.01,
    normalize_by_words: torch.Tensor | None = None,
) -> MWEROutput:
    """MWER over ``[clips, N]`` sequence log-probs and word-error counts (plus λ·CE).

    ``mask`` (``[clips, N]``, bool) marks real hypotheses when clips have fewer
    than N; a clip with fewer than two real hypotheses carries no signal and is
    left out of the mean. ``ce_loss`` is the reference's cross-entropy (already
    reduced to a scalar) and ``ce_weight`` its λ. ``normalize_by_words``
    (``[clips]``, reference word counts) turns error counts into per-clip WERs,
    so long clips do not dominate.
    """
    if logps.shape != errors.shape or logps.dim() != 2:
        raise ValueError(f"logps and errors must both be [clips, N]; got {tuple(logps.shape)} "
                         f"and {tuple(errors.shape)}")
    mask = torch.ones_like(logps, dtype=torch.bool) if mask is None else mask.bool()
    errors = errors.detach().to(logps.dtype)
    if normalize_by_words is not None:
        errors = errors / normalize_by_words.to(logps.dtype).clamp_min(1).unsqueeze(-1)
    masked = logps.masked_fill(~mask, float("-inf"))
    probs = torch.softmax(masked, dim=-1).masked_fill(~mask, 0.0)
    count = mask.sum(-1).clamp_min(1)
    mean_err = (errors * mask).sum(-1) / count
    relative = (errors - mean_err.unsqueeze(-1)) * mask
    per_clip = (probs * relative).sum(-1)
    usable = mask.sum(-1) >= 2
    n = usable.sum().clamp_min(1)
    mwer = (per_clip * usable).sum() / n
    loss = mwer + ce_weight * ce_loss if ce_loss is not None else mwer
    with torch.no_grad():
        p = probs.detach()
        expected = ((p * errors * mask).sum(-1) * usable).sum() / n
        oracle = (errors.masked_fill(~mask, float("inf")).min(-1).values * usable).sum() / n
        entropy = (-(p * torch.log(p.clamp_min(1e-12))).sum(-1) * usable).sum() / n
        mean = (mean_err * usable).sum() / n
    return MWEROutput(loss, mwer, ce_loss, expected, oracle, mean, entropy)
