"""training.objectives.losses against TRL 1.16's own DPOTrainer loss code, gradients, edge cases.

How TRL is called: TRL 1.16 has no standalone loss function; every loss type is computed inline in
``DPOTrainer._compute_loss(model, inputs, return_outputs)``, from the per-token log-probs a model
wrapped by ``add_fused_lm_head`` returns (``FusedCausalLMOutput.log_probs``, zero where the label is
-100). So the real method is run unmodified on a trainer made with ``DPOTrainer.__new__`` (no
model loading, no dataset):

- its loss settings (beta, loss_types, loss_weights, label_smoothing, ld_alpha, f_divergence_type,
  use_weighting, precompute_ref_logps) are copied from a real ``DPOConfig`` the same way
  ``DPOTrainer.__init__`` copies them, so defaults we do not set are TRL's own;
- the model is a stub returning preset per-token log-probs as a ``FusedCausalLMOutput``, zeroed
  where the label is -100 as the real fused head does; ``_compute_loss`` builds the labels from the
  completion mask, sums the per-token log-probs into sequence log-probs, splits chosen/rejected
  and evaluates the loss types and weights itself;
- reference log-probs come in as ``ref_chosen_logps``/``ref_rejected_logps`` inputs, TRL's
  ``precompute_ref_log_probs=True`` path, so no reference model is needed;
- the accelerator is a single-process stand-in whose ``gather`` is the identity, which is what
  ``Accelerator.gather`` is on one process; it is only used for logged metrics.

Our functions get the same numbers as per-sequence sums (and completion lengths for SFT).
"""

from __future__ import annotations

import doctest
import math
import warnings
from collections import defaultdict
from dataclasses import dataclass

import pytest
import torch

import training.objectives.losses
from training.objectives.losses import (
    RunningMean,
    bco_pair_loss,
    dpo_sigmoid_loss,
    mpo_loss,
    sft_loss,
)

dpo_trainer = pytest.importorskip("trl.trainer.dpo_trainer")
trl_utils = pytest.importorskip("trl.trainer.utils")
from trl import DPOConfig  # noqa: E402

ATOL = 1e-6
SEEDS = (0, 1, 2)
BETAS = (0.05, 0.1, 0.5)
MPO_TYPES = ("sigmoid", "bco_pair", "sft")
MPO_WEIGHTS = (0.8, 0.2, 1.0)


# --------------------------------------------------------------------------- TRL harness


class _FixedLogProbsModel(torch.nn.Module):
    """A causal LM with TRL's fused LM head, reduced to its output: preset per-token log-probs."""

    def __init__(self, token_logps: torch.Tensor):
        super().__init__()
        self.token_logps = token_logps

    def forward(self, input_ids, attention_mask, labels, fused_lm_head=False, use_cache=None):
        assert fused_lm_head, "DPOTrainer 1.16 is expected to call the fused LM head"
        assert labels.shape[1] == self.token_logps.shape[1] + 1
        # FusedCausalLMOutput: per-token fields are zero where the next-token label is -100.
        ignored = labels[:, 1:] == -100
        log_probs = self.token_logps.masked_fill(ignored, 0.0)
        zeros = torch.zeros_like(log_probs).detach()
        return trl_utils.FusedCausalLMOutput(
            log_probs=log_probs, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool()
        )


class _OneProcess:
    """Single-process accelerator: gathering a tensor over one process returns it unchanged."""

    device = torch.device("cpu")

    @staticmethod
    def gather(tensor):
        return tensor

    gather_for_metrics = gather


def trl_loss(
    batch: _Batch,
    *,
    loss_type: tuple[str, ...],
    beta: float,
    label_smoothing: float = 0.0,
    loss_weights: tuple[float, ...] | None = None,
    token_logps: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss and logged metrics from TRL 1.16's ``DPOTrainer._compute_loss`` on ``batch``."""
    with warnings.catch_warnings():  # transformers' own deprecation notice, not ours
        warnings.simplefilter("ignore", FutureWarning)
        args = DPOConfig(
            loss_type=list(loss_type),
            loss_weights=None if loss_weights is None else list(loss_weights),
            beta=beta,
            label_smoothing=label_smoothing,
            precompute_ref_log_probs=True,
            bf16=False,
            use_cpu=True,
            report_to="none",
        )
    trainer = dpo_trainer.DPOTrainer.__new__(dpo_trainer.DPOTrainer)
    # As in DPOTrainer.__init__ ("Training arguments" block of trl/trainer/dpo_trainer.py).
    trainer.args = args
    trainer.beta = args.beta
    trainer.precompute_ref_logps = args.precompute_ref_log_probs
    trainer.loss_types = args.loss_type
    trainer.loss_weights = args.loss_weights or [1.0] * len(trainer.loss_types)
    trainer.ld_alpha = args.ld_alpha
    trainer.f_divergence_type = args.f_divergence_type
    trainer.f_alpha_divergence_coef = args.f_alpha_divergence_coef
    trainer.label_smoothing = args.label_smoothing
    trainer.use_weighting = args.use_weighting
    # Bookkeeping _compute_loss reads (no MoE aux loss, no tensor parallelism, one process).
    trainer.aux_loss_enabled = False
    trainer._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    trainer._total_train_tokens = 0
    trainer._tp_size = 1
    trainer.accelerator = _OneProcess()
    model = _FixedLogProbsModel(batch.token_logps if token_logps is None else token_logps).train()
    trainer.model = model
    inputs = {
        "input_ids": batch.input_ids,
        "attention_mask": torch.ones_like(batch.input_ids),
        "completion_mask": batch.completion_mask,
        "ref_chosen_logps": batch.ref_chosen,
        "ref_rejected_logps": batch.ref_rejected,
    }
    loss = trainer._compute_loss(model, inputs, return_outputs=False)
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    return loss, metrics


@dataclass
class _Batch:
    """One preference batch in TRL's layout ([chosen; rejected] stacked) and in ours."""

    input_ids: torch.Tensor  # [2B, T]
    completion_mask: torch.Tensor  # [2B, T]
    token_logps: torch.Tensor  # [2B, T-1]: log p(token t+1 | tokens <= t)
    ref_chosen: torch.Tensor  # [B]
    ref_rejected: torch.Tensor  # [B]

    @property
    def shift_mask(self) -> torch.Tensor:
        return self.completion_mask[:, 1:]

    @property
    def seq_logps(self) -> torch.Tensor:
        return self.token_logps.masked_fill(self.shift_mask == 0, 0.0).sum(dim=1).detach()

    @property
    def policy_chosen(self) -> torch.Tensor:
        return self.seq_logps.chunk(2)[0]

    @property
    def policy_rejected(self) -> torch.Tensor:
        return self.seq_logps.chunk(2)[1]

    @property
    def chosen_lengths(self) -> torch.Tensor:
        return self.shift_mask.sum(dim=1).chunk(2)[0]


def make_batch(
    seed: int, batch: int = 6, prompt_len: int = 4, max_completion: int = 9, const_ref_margin=None
) -> _Batch:
    g = torch.Generator().manual_seed(seed)
    total = prompt_len + max_completion
    lengths = torch.randint(1, max_completion + 1, (2 * batch,), generator=g)
    completion_mask = torch.zeros(2 * batch, total, dtype=torch.long)
    for row, n in enumerate(lengths.tolist()):
        completion_mask[row, prompt_len : prompt_len + n] = 1
    input_ids = torch.randint(0, 1000, (2 * batch, total), generator=g)
    token_logps = -4.0 * torch.rand(2 * batch, total - 1, generator=g)
    seq = token_logps.masked_fill(completion_mask[:, 1:] == 0, 0.0).sum(dim=1)
    ref = seq + 3.0 * torch.randn(2 * batch, generator=g)  # reference near the policy
    ref_chosen, ref_rejected = ref.chunk(2)
    if const_ref_margin is not None:
        ref_rejected = ref_chosen - const_ref_margin
    return _Batch(input_ids, completion_mask, token_logps, ref_chosen, ref_rejected.clone())


def _ours_args(b: _Batch):
    return b.policy_chosen, b.policy_rejected, b.ref_chosen, b.ref_rejected


def _assert_metrics_match(ours, trl_metrics):
    for name, value in ours.metrics().items():
        if name.startswith("rewards/"):
            assert value == pytest.approx(trl_metrics[name], abs=ATOL), name


# --------------------------------------------------------------------------- equality with TRL


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("beta", BETAS)
def test_sigmoid_matches_trl(seed, beta):
    b = make_batch(seed)
    ours = dpo_sigmoid_loss(*_ours_args(b), beta=beta)
    theirs, metrics = trl_loss(b, loss_type=("sigmoid",), beta=beta)
    torch.testing.assert_close(ours.loss, theirs, atol=ATOL, rtol=0)
    _assert_metrics_match(ours, metrics)


@pytest.mark.parametrize("seed", SEEDS)
def test_trl_116_sigmoid_ignores_label_smoothing(seed):
    # TRL 1.16 reads label_smoothing only in "robust", "exo_pair" and "aot*": its "sigmoid" with
    # label_smoothing=0.1 is plain DPO. If a TRL upgrade changes that, this test says so.
    b = make_batch(seed)
    theirs, _ = trl_loss(b, loss_type=("sigmoid",), beta=0.1, label_smoothing=0.1)
    torch.testing.assert_close(
        dpo_sigmoid_loss(*_ours_args(b), beta=0.1).loss, theirs, atol=ATOL, rtol=0
    )
    smoothed = dpo_sigmoid_loss(*_ours_args(b), beta=0.1, label_smoothing=0.1).loss
    assert not torch.allclose(smoothed, theirs, atol=1e-4)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("label_smoothing", (0.0, 0.1))
def test_smoothed_sigmoid_matches_trl_cdpo_term(seed, beta, label_smoothing):
    # TRL 1.16's only cDPO expression, -logsigmoid(βd)(1-ε) - logsigmoid(-βd)ε, is in "aot",
    # which applies it to d = sort(πc-πr) - sort(refc-refr). When every pair has the same
    # reference margin, sorting only permutes the pairs, and the batch mean is permutation
    # invariant: "aot" is then exactly the label-smoothed sigmoid loss (older TRL's "sigmoid").
    b = make_batch(seed, const_ref_margin=2.5)
    ours = dpo_sigmoid_loss(*_ours_args(b), beta=beta, label_smoothing=label_smoothing)
    theirs, _ = trl_loss(b, loss_type=("aot",), beta=beta, label_smoothing=label_smoothing)
    torch.testing.assert_close(ours.loss, theirs, atol=ATOL, rtol=0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("label_smoothing", (0.0, 0.1))
def test_bco_pair_matches_trl(seed, beta, label_smoothing):
    # label_smoothing goes to TRL only, which (1.16) does not use it for "bco_pair".
    b = make_batch(seed)
    ours = bco_pair_loss(*_ours_args(b), beta=beta)
    theirs, metrics = trl_loss(
        b, loss_type=("bco_pair",), beta=beta, label_smoothing=label_smoothing
    )
    torch.testing.assert_close(ours.loss, theirs, atol=ATOL, rtol=0)
    _assert_metrics_match(ours, metrics)


@pytest.mark.parametrize("seed", SEEDS)
def test_sft_matches_trl_per_token_mean(seed):
    b = make_batch(seed)
    theirs, _ = trl_loss(b, loss_type=("sft",), beta=0.1)
    per_sequence = sft_loss(b.policy_chosen, b.chosen_lengths)
    chosen_tokens, chosen_mask = b.token_logps.chunk(2)[0], b.shift_mask.chunk(2)[0]
    per_token = sft_loss(chosen_tokens, chosen_mask=chosen_mask)
    torch.testing.assert_close(per_sequence, theirs, atol=ATOL, rtol=0)
    torch.testing.assert_close(per_token, theirs, atol=ATOL, rtol=0)
    # Token-weighted, not a mean over sequences (lengths differ in these batches).
    per_sequence_mean = (-b.policy_chosen / b.chosen_lengths).mean()
    assert not torch.allclose(per_sequence_mean, theirs, atol=1e-4)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("label_smoothing", (0.0, 0.1))
def test_mpo_matches_trl(seed, beta, label_smoothing):
    b = make_batch(seed)
    ours = mpo_loss(*_ours_args(b), b.chosen_lengths, beta=beta)
    theirs, metrics = trl_loss(
        b, loss_type=MPO_TYPES, loss_weights=MPO_WEIGHTS, beta=beta, label_smoothing=label_smoothing
    )
    torch.testing.assert_close(ours.loss, theirs, atol=ATOL, rtol=0)
    _assert_metrics_match(ours, metrics)
    # Each logged component is the unweighted term, and the weighted sum is the loss.
    weighted = sum(w * ours.components[t] for t, w in zip(MPO_TYPES, MPO_WEIGHTS, strict=True))
    torch.testing.assert_close(weighted, ours.loss.detach(), atol=ATOL, rtol=0)
    for loss_type in MPO_TYPES:
        single, _ = trl_loss(b, loss_type=(loss_type,), beta=beta)
        torch.testing.assert_close(ours.components[loss_type], single, atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    ("loss_types", "weights"),
    [(("sigmoid", "sft"), (1.0, 0.5)), (("bco_pair", "sigmoid"), None), (("sft",), (2.0,))],
)
def test_other_combinations_match_trl(loss_types, weights):
    b = make_batch(7)
    ours = mpo_loss(
        *_ours_args(b), b.chosen_lengths, beta=0.2, loss_types=loss_types, weights=weights
    )
    theirs, _ = trl_loss(b, loss_type=loss_types, loss_weights=weights, beta=0.2)
    torch.testing.assert_close(ours.loss, theirs, atol=ATOL, rtol=0)


@pytest.mark.parametrize("seed", SEEDS)
def test_mpo_gradients_match_trl(seed):
    # TRL differentiates w.r.t. per-token log-probs; a sequence's log-prob is their sum, so each
    # completion token must receive exactly the gradient our loss gives its sequence.
    b = make_batch(seed)
    token_logps = b.token_logps.clone().requires_grad_(True)
    theirs, _ = trl_loss(
        b, loss_type=MPO_TYPES, loss_weights=MPO_WEIGHTS, beta=0.3, token_logps=token_logps
    )
    theirs.backward()

    chosen = b.policy_chosen.clone().requires_grad_(True)
    rejected = b.policy_rejected.clone().requires_grad_(True)
    ours = mpo_loss(chosen, rejected, b.ref_chosen, b.ref_rejected, b.chosen_lengths, beta=0.3)
    ours.loss.backward()
    seq_grad = torch.cat([chosen.grad, rejected.grad])

    mask = b.shift_mask.bool()
    expected = seq_grad[:, None].expand_as(token_logps)[mask]
    torch.testing.assert_close(token_logps.grad[mask], expected, atol=ATOL, rtol=0)


# --------------------------------------------------------------------------- gradients, edges


def _leaf_inputs(seed: int):
    b = make_batch(seed)
    leaves = [t.clone().requires_grad_(True) for t in _ours_args(b)]
    return leaves, b.chosen_lengths


@pytest.mark.parametrize(
    "compute",
    [
        lambda pc, pr, rc, rr, n: dpo_sigmoid_loss(pc, pr, rc, rr, beta=0.1).loss,
        lambda pc, pr, rc, rr, n: dpo_sigmoid_loss(pc, pr, rc, rr, label_smoothing=0.1).loss,
        lambda pc, pr, rc, rr, n: bco_pair_loss(pc, pr, rc, rr, beta=0.1).loss,
        lambda pc, pr, rc, rr, n: bco_pair_loss(pc, pr, rc, rr, running_mean=RunningMean()).loss,
        lambda pc, pr, rc, rr, n: mpo_loss(pc, pr, rc, rr, n).loss,
    ],
    ids=["sigmoid", "sigmoid-smoothed", "bco_pair", "bco_pair-running", "mpo"],
)
def test_gradients_reach_policy_only(compute):
    (pc, pr, rc, rr), lengths = _leaf_inputs(3)
    compute(pc, pr, rc, rr, lengths).backward()
    for policy in (pc, pr):
        assert policy.grad is not None and torch.isfinite(policy.grad).all()
        assert policy.grad.abs().sum() > 0
    for ref in (rc, rr):  # constants: detached inside, so no gradient at all
        assert ref.grad is None or not ref.grad.any()


def test_sigmoid_gradient_direction():
    # Lowering the loss means raising the chosen and lowering the rejected log-prob.
    (pc, pr, rc, rr), _ = _leaf_inputs(4)
    dpo_sigmoid_loss(pc, pr, rc, rr, beta=0.1).loss.backward()
    assert (pc.grad < 0).all() and (pr.grad > 0).all()


def test_equal_chosen_and_rejected_gives_log2():
    logps = torch.tensor([-3.0, -40.0, -7.5])
    ref = torch.tensor([-1.0, -50.0, -9.0])
    out = dpo_sigmoid_loss(logps, logps, ref, ref, beta=0.7)
    assert out.loss.item() == pytest.approx(math.log(2), abs=1e-7)
    assert out.margin.item() == 0.0 and out.reward_accuracy.item() == 0.0
    # With label smoothing the loss at logits 0 is still log 2 (both terms equal).
    smoothed = dpo_sigmoid_loss(logps, logps, ref, ref, label_smoothing=0.1)
    assert smoothed.loss.item() == pytest.approx(math.log(2), abs=1e-7)


def test_rewards_and_metrics():
    out = dpo_sigmoid_loss(
        torch.tensor([-10.0, -5.0]),
        torch.tensor([-20.0, -4.0]),
        torch.tensor([-15.0, -5.0]),
        torch.tensor([-15.0, -5.0]),
        beta=0.5,
    )
    torch.testing.assert_close(out.chosen_rewards, torch.tensor([2.5, 0.0]))
    torch.testing.assert_close(out.rejected_rewards, torch.tensor([-2.5, 0.5]))
    assert out.reward_accuracy.item() == 0.5
    assert out.margin.item() == pytest.approx((5.0 - 0.5) / 2)
    assert not out.chosen_rewards.requires_grad
    metrics = out.metrics()
    assert set(metrics) == {
        "loss",
        "loss/sigmoid",
        "rewards/chosen",
        "rewards/rejected",
        "rewards/accuracies",
        "rewards/margins",
    }


def test_running_mean_update():
    running = RunningMean()
    assert running.update(torch.tensor([1.0, 3.0])) == pytest.approx(2.0)
    assert running.update(torch.tensor(5.0)) == pytest.approx(3.0)  # (1 + 3 + 5) / 3
    assert running.count == 3


def test_bco_pair_running_mean_shift():
    b = make_batch(5)
    beta = 0.2
    running = RunningMean()
    pc, pr, rc, rr = _ours_args(b)

    def expected(policy_chosen, delta):
        rc_, rr_ = beta * (policy_chosen - rc), beta * (pr - rr)
        return (
            -torch.nn.functional.logsigmoid(rc_ - delta)
            - torch.nn.functional.logsigmoid(-(rr_ - delta))
        ).mean()

    batch_mean_1 = torch.cat([beta * (pc - rc), beta * (pr - rr)]).mean().item()
    first = bco_pair_loss(pc, pr, rc, rr, beta=beta, running_mean=running)
    # δ includes the current batch: on the first call it is that batch's mean reward.
    torch.testing.assert_close(first.loss, expected(pc, batch_mean_1), atol=ATOL, rtol=0)
    assert running.mean == pytest.approx(batch_mean_1)

    pc2 = pc + 1.0
    batch_mean_2 = torch.cat([beta * (pc2 - rc), beta * (pr - rr)]).mean().item()
    second = bco_pair_loss(pc2, pr, rc, rr, beta=beta, running_mean=running)
    # Each call contributes its batch mean once (older TRL updated with a scalar).
    delta = (batch_mean_1 + batch_mean_2) / 2
    torch.testing.assert_close(second.loss, expected(pc2, delta), atol=ATOL, rtol=0)
    assert running.count == 2


def test_validation_errors():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="same length|match loss_types"):
        mpo_loss(x, x, x, x, torch.ones(3), weights=(1.0, 2.0))
    with pytest.raises(ValueError, match="unknown loss types"):
        mpo_loss(x, x, x, x, torch.ones(3), loss_types=("ipo",), weights=None)
    with pytest.raises(ValueError, match="chosen_lengths"):
        mpo_loss(x, x, x, x)
    with pytest.raises(ValueError, match="share one shape"):
        dpo_sigmoid_loss(x, torch.zeros(2), x, x)
    with pytest.raises(ValueError, match="label_smoothing"):
        dpo_sigmoid_loss(x, x, x, x, label_smoothing=0.5)
    with pytest.raises(ValueError, match="exactly one"):
        sft_loss(x)


def test_docstring_examples():
    result = doctest.testmod(training.objectives.losses, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
