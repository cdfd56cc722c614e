"""One micro-batch of offline training for Whisper: SFT, DPO or MPO on fixed transcripts.

The transcripts come from the data (references, or mined chosen/rejected pairs), not from the
policy; :mod:`training.whisper.online` is the counterpart that samples them. The losses are
:mod:`training.objectives.losses` on teacher-forced log-probs (:mod:`training.whisper.logps`);
the reference's log-probs come from the cache (:mod:`training.whisper.reference_cache`).

Metrics (detached): ``loss``, each ``loss/<term>``; for pairs ``rewards/chosen``,
``rewards/rejected``, ``rewards/accuracies``, ``rewards/margins`` (TRL's names); ``entropy`` (mean
token entropy of the policy on chosen transcripts) and ``kl``. ``kl`` estimates KL(policy ‖
reference) per token as the batch mean of ``(policy_logp − ref_logp) / tokens`` on the chosen
transcripts: the "k1" Monte-Carlo estimator, but over the data's transcripts rather than samples
from the policy, so it is a drift monitor (0 at step 0, grows as the policy leaves the reference;
can be negative), not an unbiased KL.

With ``anchor_kl > 0`` the loss also gets ``anchor_kl`` x the token-level KL(start ‖ policy) of
the whole next-token distributions on the imitated transcripts
(:func:`training.objectives.losses.anchor_kl_loss`), logged as ``loss/anchor_kl``: the frozen
starting model (`anchor`) runs its decoder once more, without grad, on the same encoder states.
"""

from __future__ import annotations

import torch

from training.config import TrainConfig
from training.objectives.losses import anchor_kl_loss, dpo_sigmoid_loss, mpo_loss, sft_loss
from training.whisper.data import Batch
from training.whisper.encoder_cache import EncoderStates
from training.whisper.logps import TokenLogps, WhisperScorer
from training.whisper.reference_cache import ReferenceLogps


def step_loss(
    config: TrainConfig, scorer: torch.nn.Module, batch: Batch, ref: ReferenceLogps, autocast,
    encoder: EncoderStates | None = None, anchor: WhisperScorer | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The objective's loss on one micro-batch and its detached metrics (`encoder`: the frozen
    encoder's cached states, else the encoder runs on the batch's features; `anchor`: the
    frozen starting model, needed when ``config.anchor_kl > 0``)."""
    paired = batch.rejected is not None
    texts = batch.chosen + (batch.rejected or [])
    clips = batch.clips * (2 if paired else 1)
    imitated = _sft_texts(config, batch) if paired else None
    if imitated is not None:  # the SFT term's own transcripts, scored in the same pass
        texts, clips = texts + imitated, clips + batch.clips
    states = encoder.of(batch.clip_ids) if encoder is not None else None
    features = None if states is not None else batch.features
    anchored = config.anchor_kl > 0
    if anchored and anchor is None:
        raise ValueError("anchor_kl > 0 needs the frozen starting model (`anchor`)")
    with autocast():
        if anchored:
            per_token = scorer(features, clips, texts, states=states, per_token=True,
                               keep_distribution=True)
            out = per_token.sequences()
        else:
            out = scorer(features, clips, texts, states=states)
    b = len(batch.chosen)
    logps, tokens = out.logps.float(), out.tokens
    chosen, chosen_n = logps[:b], tokens[:b]
    ref_chosen, ref_rejected = (t.to(logps.device) for t in ref.lookup(batch.keys))
    metrics: dict[str, torch.Tensor] = {}
    if config.objective == "sft":
        loss = sft_loss(chosen, chosen_n)
        metrics["loss/sft"] = loss.detach()
    else:
        rejected = logps[b : 2 * b]
        sft_logps, sft_n = ((logps[2 * b :], tokens[2 * b :]) if imitated is not None
                            else (chosen, chosen_n))
        if imitated is not None:
            metrics["sft/on_reference"] = torch.tensor(
                sum(r is not None for r in batch.references) / b)
        if config.objective == "dpo":
            result = dpo_sigmoid_loss(
                chosen, rejected, ref_chosen, ref_rejected,
                beta=config.beta, label_smoothing=config.label_smoothing,
            )
            loss = result.loss
            if config.sft_weight:
                nll = sft_loss(sft_logps, sft_n)
                result.components["sft"] = nll.detach()
                loss = loss + config.sft_weight * nll
        else:
            result = mpo_loss(
                chosen, rejected, ref_chosen, ref_rejected, chosen_n,
                beta=config.beta, loss_types=config.loss_types, weights=config.loss_weights,
                sft_logps=sft_logps if imitated is not None else None,
                sft_lengths=sft_n if imitated is not None else None,
            )
            loss = result.loss
        metrics.update({
            "rewards/chosen": result.chosen_rewards.mean(),
            "rewards/rejected": result.rejected_rewards.mean(),
            "rewards/accuracies": result.reward_accuracy,
            "rewards/margins": result.margin,
        })
        metrics.update({f"loss/{k}": v for k, v in result.components.items()})
    if anchored:
        first = 2 * b if imitated is not None else 0  # the imitated texts' rows
        kl = _anchor_kl(anchor, per_token, first, clips[first : first + b],  # type: ignore[arg-type]
                        texts[first : first + b], features, states, autocast)
        metrics["loss/anchor_kl"] = kl.detach()
        loss = loss + config.anchor_kl * kl
    metrics["loss"] = loss.detach()
    metrics["entropy"] = out.entropy[:b].mean()
    metrics["kl"] = ((chosen.detach() - ref_chosen) / chosen_n).mean()
    return loss, metrics


def _anchor_kl(anchor: WhisperScorer, policy: TokenLogps, first: int, clips: list[int],
               texts: list[list[int]], features: torch.Tensor | None,
               states: torch.Tensor | None, autocast) -> torch.Tensor:
    """KL(start ‖ policy) per token on texts ``first:first + len(texts)`` of `policy`'s pass;
    the start scores them without grad, from the same cached encoder states (or, with no
    cache, from its own encoder: a trained encoder's states are not the start's)."""
    with torch.no_grad(), autocast():
        start = anchor(features, clips, texts, states=states, per_token=True,
                       keep_distribution=True)
    return anchor_kl_loss(policy.rows(first, first + len(texts)), start.rows(0, len(texts)))


def _sft_texts(config: TrainConfig, batch: Batch) -> list[list[int]] | None:
    """The transcripts an SFT term imitates when they are not the chosen ones: each pair's
    reference (its chosen side where it has none); None when the chosen ones are used."""
    has_sft = (config.objective == "dpo" and config.sft_weight > 0) or (
        config.objective == "mpo" and "sft" in config.loss_types)
    if not has_sft or config.sft_target != "reference":
        return None
    return [ref if ref is not None else chosen
            for ref, chosen in zip(batch.references, batch.chosen, strict=True)]
