"""training.objectives.grpo against TRL 1.16's own GRPOTrainer code, plus gradients, masking, edges.

How TRL is called: TRL 1.16 has no standalone GRPO advantage or loss function; both are inline in
``GRPOTrainer`` methods. The real methods run unmodified on a trainer made with
``GRPOTrainer.__new__`` (no model, tokenizer or dataset loading), whose settings are copied from a
real ``GRPOConfig`` the way ``GRPOTrainer.__init__`` copies them, so every default we do not set is
TRL's own. Stand-ins replace only what talks to a model or to other processes:

- the accelerator is a single-process stand-in whose ``gather``/``reduce`` are the identity (what
  ``Accelerator.gather``/``reduce`` are on one process);
- ``trainer.model`` is a bare ``nn.Module`` in train mode (TRL reads only ``.training`` and
  ``.is_gradient_checkpointing`` from it here);
- ``current_gradient_accumulation_steps`` is 1, what ``Trainer`` sets with no accumulation.

Advantages: ``GRPOTrainer._generate_and_score_completions(inputs)`` is run with the instance's
``_generate`` replaced by a function returning fixed token ids (no generation). Rewards go through
TRL's real ``_calculate_rewards``: the reward function is a plain callable returning each row's
preset ``reward`` dataset column (None for an unscorable completion), exactly how TRL passes
dataset columns to reward functions. ``beta=0`` and no accumulation mean no model forward is made.
The method's output ``"advantages"`` and its logged ``frac_reward_zero_std`` are compared with
:func:`group_advantages` and :func:`zero_variance_fraction`.

Loss: ``GRPOTrainer._compute_loss(model, inputs)`` is run with the instance's
``_get_per_token_logps_and_entropies`` replaced by a function returning our preset per-token
log-probs (optionally a leaf tensor with ``requires_grad``) and entropies, so TRL's own loss code
computes the ratio, clipping, KL, aggregation and metrics from our numbers. ``inputs`` holds
``completion_mask``, ``advantages``, ``old_per_token_logps``, ``ref_per_token_logps`` and
``num_items_in_batch`` (the completion-token count, as ``_generate_and_score_completions`` computes
it), with dummy prompt/completion ids of the right widths. The loss, its gradient with respect to
the per-token log-probs and the logged metrics are compared with :func:`grpo_loss`.
"""

from __future__ import annotations

import doctest
import math
import types
import warnings
from collections import defaultdict, deque
from dataclasses import dataclass

import pytest
import torch

import training.objectives.grpo
from training.objectives.advantages import group_advantages, zero_variance_fraction
from training.objectives.grpo import grpo_loss, policy_entropy, token_entropy

grpo_trainer = pytest.importorskip("trl.trainer.grpo_trainer")
trl_utils = pytest.importorskip("trl.trainer.utils")
from transformers import TrainerState  # noqa: E402
from trl import GRPOConfig  # noqa: E402

ATOL = 1e-6
SEEDS = (0, 1, 2)
GROUP_SIZES = (2, 4, 8)
VARIANTS = ("grpo", "bnpo", "dr_grpo", "dapo")
MAX_COMPLETION_LENGTH = 24
METRICS = (
    "clip_ratio/low_mean",
    "clip_ratio/high_mean",
    "clip_ratio/region_mean",
    "clip_ratio/low_min",
    "clip_ratio/high_max",
)


# --------------------------------------------------------------------------- TRL harness


class _OneProcess:
    """Single-process accelerator: gathering or reducing over one process changes nothing."""

    device = torch.device("cpu")
    process_index = 0
    num_processes = 1
    is_main_process = True

    @staticmethod
    def gather(tensor):
        return tensor

    gather_for_metrics = gather

    @staticmethod
    def reduce(tensor, reduction="sum"):
        return tensor


class _Policy(torch.nn.Module):
    """What these methods read from ``trainer.model``: its mode, and no gradient checkpointing."""

    is_gradient_checkpointing = False


def _config(**kwargs) -> GRPOConfig:
    with warnings.catch_warnings():  # transformers' own deprecation notices, not ours
        warnings.simplefilter("ignore", FutureWarning)
        return GRPOConfig(use_cpu=True, bf16=False, report_to="none", **kwargs)


def _trainer(args: GRPOConfig) -> grpo_trainer.GRPOTrainer:
    """A GRPOTrainer without model or data, its settings copied as ``__init__`` copies them."""
    trainer = grpo_trainer.GRPOTrainer.__new__(grpo_trainer.GRPOTrainer)
    trainer.args = args
    # As in GRPOTrainer.__init__ ("Training arguments", "Multi-step", "Reference model" blocks).
    trainer.num_generations = args.num_generations
    trainer.max_completion_length = args.max_completion_length
    trainer.pad_to_multiple_of = args.pad_to_multiple_of
    trainer.use_vllm = args.use_vllm
    trainer.vllm_importance_sampling_correction = args.vllm_importance_sampling_correction
    trainer.loss_type = args.loss_type
    trainer.multi_objective_aggregation = args.multi_objective_aggregation
    trainer.scale_rewards = args.scale_rewards
    trainer.importance_sampling_level = args.importance_sampling_level
    trainer.off_policy_mask_threshold = args.off_policy_mask_threshold
    trainer.mask_truncated_completions = args.mask_truncated_completions
    trainer.top_entropy_quantile = args.top_entropy_quantile
    trainer.entropy_coef = args.entropy_coef
    trainer.use_adaptive_entropy = args.use_adaptive_entropy
    trainer._entropy_bonus_enabled = trainer.entropy_coef != 0.0 or trainer.use_adaptive_entropy
    trainer.num_iterations = args.num_iterations
    trainer.epsilon_low = args.epsilon
    trainer.epsilon_high = args.epsilon_high if args.epsilon_high is not None else args.epsilon
    trainer.beta = args.beta
    trainer.log_multimodal = args.log_multimodal
    # Bookkeeping (no MoE aux loss, no tools or environments, one process, no accumulation).
    trainer.aux_loss_enabled = False
    trainer.environment_factories = None
    trainer.environments = None
    trainer.tools = None
    trainer._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    trainer.accelerator = _OneProcess()
    trainer.model = _Policy().train()
    trainer.current_gradient_accumulation_steps = 1
    trainer.state = TrainerState()
    return trainer


def _preset_reward(prompts, completions, completion_ids, reward, **kwargs):
    """A reward function returning each row's ``reward`` dataset column (None: unscorable)."""
    return list(reward)


def trl_advantages(
    rewards: list[float | None], group_size: int, scale: str
) -> tuple[torch.Tensor, dict[str, float]]:
    """Advantages and logged metrics from TRL's ``_generate_and_score_completions``."""
    n = len(rewards)
    args = _config(num_generations=group_size, per_device_train_batch_size=n, scale_rewards=scale)
    trainer = _trainer(args)
    # As GRPOTrainer.__init__ sets up reward functions and logging for one callable reward.
    trainer.reward_funcs = [_preset_reward]
    trainer.reward_processing_classes = [None]
    trainer.reward_func_names = [_preset_reward.__name__]
    trainer.reward_weights = torch.ones(1, dtype=torch.float32)
    trainer._tokenizer = types.SimpleNamespace(pad_token_id=0)
    size = args.generation_batch_size
    trainer._logs = {
        "images": deque(maxlen=size),
        "prompt": deque(maxlen=size),
        "completion": deque(maxlen=size),
        "rewards": defaultdict(lambda: deque(maxlen=size)),
        "advantages": deque(maxlen=size),
        "extra": defaultdict(lambda: deque(maxlen=size)),
    }
    trainer._pending_extra_logs = defaultdict(list)
    trainer._pending_metrics = defaultdict(list)

    def fixed_generation(prompts):  # what _generate returns: ids, no tool masks, no logprobs
        completion_ids = [[5] * (1 + i % 3) for i in range(len(prompts))]
        texts = ["x" * len(ids) for ids in completion_ids]
        return [[1, 2]] * len(prompts), completion_ids, None, texts, None, {}, None, None

    trainer._generate = fixed_generation
    inputs = [{"prompt": f"clip {i // group_size}", "reward": r} for i, r in enumerate(rewards)]
    output = trainer._generate_and_score_completions(inputs)
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    return output["advantages"], metrics


@dataclass
class _Batch:
    """Per-token inputs of the loss, ``[batch, width]``; completion lengths vary, one is empty."""

    logps: torch.Tensor
    old: torch.Tensor
    ref: torch.Tensor
    mask: torch.Tensor
    advantages: torch.Tensor
    entropies: torch.Tensor


def make_batch(seed: int, group_size: int, groups: int = 3, width: int = 12) -> _Batch:
    """Random log-probs far enough from the old ones that both clip bounds are hit."""
    g = torch.Generator().manual_seed(seed)
    n = groups * group_size
    logps = -torch.rand(n, width, generator=g) * 3 - 0.05
    old = logps + 0.3 * torch.randn(n, width, generator=g)
    ref = logps + 0.5 * torch.randn(n, width, generator=g)
    lengths = torch.randint(1, width + 1, (n,), generator=g)
    lengths[-1] = 0  # an empty completion (e.g. masked as truncated)
    mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
    rewards = torch.randint(0, 3, (n,), generator=g).float()
    rewards[:group_size] = 1.0  # one group with no learning signal
    advantages = group_advantages(rewards, group_size)
    entropies = torch.rand(n, width, generator=g) * 4
    return _Batch(logps, old, ref, mask, advantages, entropies)


def trl_loss(
    batch: _Batch,
    *,
    loss_type: str,
    beta: float = 0.0,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    use_bias_correction_kl: bool = True,
    on_policy: bool = False,
    logps: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss and logged metrics from TRL's ``GRPOTrainer._compute_loss`` on ``batch``."""
    n, width = batch.logps.shape
    args = _config(
        loss_type=loss_type,
        beta=beta,
        epsilon=epsilon,
        epsilon_high=epsilon_high,
        use_bias_correction_kl=use_bias_correction_kl,
        max_completion_length=MAX_COMPLETION_LENGTH,
        num_generations=2,
        per_device_train_batch_size=n,
    )
    trainer = _trainer(args)
    policy_logps = batch.logps if logps is None else logps

    def preset_logps(model, input_ids, attention_mask, logits_to_keep, **kwargs):
        assert logits_to_keep == width and input_ids.shape[1] == 2 + width
        return policy_logps, batch.entropies, None

    trainer._get_per_token_logps_and_entropies = preset_logps
    inputs = {
        "prompt_ids": torch.ones(n, 2, dtype=torch.long),
        "prompt_mask": torch.ones(n, 2, dtype=torch.long),
        "completion_ids": torch.full((n, width), 5, dtype=torch.long),
        "completion_mask": batch.mask,
        "advantages": batch.advantages,
        "num_items_in_batch": batch.mask.sum(),
    }
    if not on_policy:
        inputs["old_per_token_logps"] = batch.old
    if beta != 0.0:
        inputs["ref_per_token_logps"] = batch.ref
    loss = trainer._compute_loss(trainer.model, inputs)
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    return loss, metrics


def ours(batch: _Batch, *, loss_type: str, on_policy: bool = False, logps=None, **kwargs):
    return grpo_loss(
        batch.logps if logps is None else logps,
        None if on_policy else batch.old,
        batch.ref,
        batch.advantages,
        batch.mask,
        variant=loss_type,
        max_completion_length=MAX_COMPLETION_LENGTH,
        entropies=batch.entropies,
        **kwargs,
    )


def _assert_metrics_match(out, theirs: dict[str, float], with_kl: bool) -> None:
    mine = out.metrics()
    names = (*METRICS, "entropy", "kl") if with_kl else (*METRICS, "entropy")
    for name in names:
        assert mine[name] == pytest.approx(theirs[name], abs=ATOL), name
    assert with_kl or "kl" not in theirs


# --------------------------------------------------------------------------- advantages vs TRL


def _rewards(seed: int, group_size: int, groups: int = 4) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(groups * group_size, generator=g)
    rewards[:group_size] = 0.25  # identical rewards: zero std
    rewards[group_size : 2 * group_size] = torch.randint(0, 2, (group_size,), generator=g).float()
    return rewards


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("group_size", GROUP_SIZES)
@pytest.mark.parametrize("scale", ("group", "batch", "none"))
def test_advantages_match_trl(seed, group_size, scale):
    rewards = _rewards(seed, group_size)
    theirs, metrics = trl_advantages(rewards.tolist(), group_size, scale)
    mine = group_advantages(rewards, group_size, scale=scale)
    torch.testing.assert_close(mine, theirs, atol=ATOL, rtol=0)
    # The [groups, group_size] form gives the same numbers in that shape.
    grouped = group_advantages(rewards.view(-1, group_size), scale=scale)
    torch.testing.assert_close(grouped, theirs.view(-1, group_size), atol=ATOL, rtol=0)
    assert mine[:group_size].abs().max() == 0.0  # the all-equal group
    if scale != "batch":  # TRL logs the batch std's zero-ness under "batch"
        assert zero_variance_fraction(rewards, group_size) == pytest.approx(
            metrics["frac_reward_zero_std"], abs=ATOL
        )


@pytest.mark.parametrize("scale", ("group", "batch", "none"))
def test_unscorable_rewards_match_trl(scale):
    # A None reward becomes NaN in TRL: left out of the group statistics, advantage 0. A group
    # with a single scorable member has NaN std (n - 1 = 0) and also gets advantage 0.
    rewards = [1.0, None, 0.0, 0.5, None, None, None, 2.0, 3.0, 1.0, None, 1.0]
    theirs, metrics = trl_advantages(rewards, 4, scale)
    as_tensor = torch.tensor([math.nan if r is None else r for r in rewards])
    mine = group_advantages(as_tensor, 4, scale=scale)
    torch.testing.assert_close(mine, theirs, atol=ATOL, rtol=0)
    assert mine[1] == 0 and mine[4:8].abs().max() == 0
    if scale != "batch":
        assert zero_variance_fraction(as_tensor, 4) == pytest.approx(
            metrics["frac_reward_zero_std"], abs=ATOL
        )


def test_advantage_formula_by_hand():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    std = math.sqrt((4 * 0.25) / 3)  # unbiased: n - 1 in the denominator
    expected = torch.tensor([[0.5, -0.5, -0.5, 0.5], [0.0] * 4]) / (std + 1e-4)
    torch.testing.assert_close(group_advantages(rewards), expected)
    torch.testing.assert_close(
        group_advantages(rewards, scale="none"), torch.tensor([[0.5, -0.5, -0.5, 0.5], [0.0] * 4])
    )
    batch_std = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0]).std().item()
    torch.testing.assert_close(
        group_advantages(rewards, scale="batch"),
        torch.tensor([[0.5, -0.5, -0.5, 0.5], [0.0] * 4]) / (batch_std + 1e-4),
    )
    assert zero_variance_fraction(rewards) == 0.5
    assert zero_variance_fraction(torch.tensor([1, 1, 0, 2, 3, 3]), group_size=2) == pytest.approx(
        2 / 3
    )


def test_groups_of_one_carry_no_signal():
    rewards = torch.tensor([0.3, 1.0, -2.0])
    for scale in ("group", "batch", "none"):
        assert group_advantages(rewards, 1, scale=scale).abs().max() == 0
    assert zero_variance_fraction(rewards, 1) == 1.0


def test_advantage_validation():
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(torch.zeros(6))
    with pytest.raises(ValueError, match="do not split"):
        group_advantages(torch.zeros(6), 4)
    with pytest.raises(ValueError, match="groups of 3"):
        group_advantages(torch.zeros(2, 3), 2)
    with pytest.raises(ValueError, match="scale"):
        group_advantages(torch.zeros(4), 2, scale="global")


# --------------------------------------------------------------------------- loss vs TRL


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("group_size", GROUP_SIZES)
@pytest.mark.parametrize("loss_type", VARIANTS)
@pytest.mark.parametrize("beta", (0.0, 0.04))
def test_loss_matches_trl(seed, group_size, loss_type, beta):
    b = make_batch(seed, group_size)
    theirs, metrics = trl_loss(b, loss_type=loss_type, beta=beta)
    out = ours(b, loss_type=loss_type, beta=beta)
    torch.testing.assert_close(out.loss, theirs, atol=ATOL, rtol=0)
    _assert_metrics_match(out, metrics, with_kl=beta != 0.0)
    assert out.metrics()["clip_ratio/region_mean"] > 0  # the clipped branch is exercised


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("loss_type", VARIANTS)
@pytest.mark.parametrize(("epsilon", "epsilon_high"), [(0.2, 0.28), (0.1, 0.3), (0.3, None)])
def test_clip_higher_matches_trl(seed, loss_type, epsilon, epsilon_high):
    b = make_batch(seed, 4)
    theirs, metrics = trl_loss(
        b, loss_type=loss_type, beta=0.04, epsilon=epsilon, epsilon_high=epsilon_high
    )
    out = ours(b, loss_type=loss_type, beta=0.04, epsilon_low=epsilon, epsilon_high=epsilon_high)
    torch.testing.assert_close(out.loss, theirs, atol=ATOL, rtol=0)
    _assert_metrics_match(out, metrics, with_kl=True)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("loss_type", VARIANTS)
def test_kl_without_bias_correction_matches_trl(seed, loss_type):
    b = make_batch(seed, 4)
    theirs, metrics = trl_loss(b, loss_type=loss_type, beta=0.1, use_bias_correction_kl=False)
    out = ours(b, loss_type=loss_type, beta=0.1, kl_bias_correction=False)
    torch.testing.assert_close(out.loss, theirs, atol=ATOL, rtol=0)
    _assert_metrics_match(out, metrics, with_kl=True)
    # Plain k3: exp(ref - logp) - (ref - logp) - 1, token mean.
    gap = b.ref - b.logps
    k3 = ((gap.exp() - gap - 1) * b.mask).sum() / b.mask.sum()
    torch.testing.assert_close(out.kl, k3, atol=ATOL, rtol=0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("loss_type", VARIANTS)
def test_on_policy_matches_trl(seed, loss_type):
    # old_per_token_logps absent: TRL uses per_token_logps.detach(), so every ratio is 1.
    b = make_batch(seed, 4)
    theirs, metrics = trl_loss(b, loss_type=loss_type, beta=0.04, on_policy=True)
    out = ours(b, loss_type=loss_type, beta=0.04, on_policy=True)
    torch.testing.assert_close(out.loss, theirs, atol=ATOL, rtol=0)
    _assert_metrics_match(out, metrics, with_kl=True)
    assert out.ratio_mean.item() == pytest.approx(1.0) and out.clip_ratio_region.item() == 0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("loss_type", VARIANTS)
@pytest.mark.parametrize("bias_correction", (True, False))
@pytest.mark.parametrize("on_policy", (True, False))
def test_gradients_match_trl(seed, loss_type, bias_correction, on_policy):
    b = make_batch(seed, 4)
    theirs_leaf = b.logps.clone().requires_grad_(True)
    theirs, _ = trl_loss(
        b,
        loss_type=loss_type,
        beta=0.1,
        use_bias_correction_kl=bias_correction,
        on_policy=on_policy,
        logps=theirs_leaf,
    )
    theirs.backward()
    mine_leaf = b.logps.clone().requires_grad_(True)
    out = ours(
        b,
        loss_type=loss_type,
        beta=0.1,
        kl_bias_correction=bias_correction,
        on_policy=on_policy,
        logps=mine_leaf,
    )
    out.loss.backward()
    torch.testing.assert_close(mine_leaf.grad, theirs_leaf.grad, atol=ATOL, rtol=0)
    assert mine_leaf.grad.abs().sum() > 0


def test_bias_correction_changes_gradient_not_value_on_policy():
    b = make_batch(0, 4)
    grads, losses = [], []
    for correction in (True, False):
        leaf = b.logps.clone().requires_grad_(True)
        out = ours(
            b, loss_type="dapo", beta=0.5, on_policy=True, logps=leaf, kl_bias_correction=correction
        )
        out.loss.backward()
        grads.append(leaf.grad)
        losses.append(out.loss.detach())
    torch.testing.assert_close(losses[0], losses[1])
    assert not torch.allclose(grads[0], grads[1])


def test_variant_normalisations_by_hand():
    # Two completions, lengths 1 and 3, on-policy: the per-token loss is -A exactly.
    logps = torch.zeros(2, 4)
    mask = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 0]])
    adv = torch.tensor([2.0, -1.0])
    token_losses = torch.tensor([-2.0, 1.0, 1.0, 1.0])
    expected = {
        "grpo": ((-2.0) + (3.0 / 3)) / 2,
        "bnpo": token_losses.sum().item() / 4,
        "dapo": token_losses.sum().item() / 4,
        "dr_grpo": token_losses.sum().item() / (2 * 10),
    }
    for variant, value in expected.items():
        out = grpo_loss(logps, None, None, adv, mask, variant=variant, max_completion_length=10)
        assert out.loss.item() == pytest.approx(value), variant
    # dapo over a generation batch of 8 tokens (this micro-batch holds 4 of them).
    out = grpo_loss(logps, None, None, adv, mask, variant="dapo", num_items_in_batch=8)
    assert out.loss.item() == pytest.approx(1.0 / 8)


# --------------------------------------------------------------------------- gradients, masking


def test_gradient_reaches_policy_only():
    b = make_batch(1, 4)
    logps, old, ref, adv = (
        t.clone().requires_grad_(True) for t in (b.logps, b.old, b.ref, b.advantages)
    )
    out = grpo_loss(logps, old, ref, adv, b.mask, variant="grpo", beta=0.04)
    out.loss.backward()
    assert torch.isfinite(logps.grad).all() and logps.grad.abs().sum() > 0
    for constant in (old, ref, adv):
        assert constant.grad is None
    assert logps.grad[b.mask == 0].abs().max() == 0  # padding gets no gradient
    for name in ("kl", "ratio_mean", "clip_ratio_region"):
        assert not getattr(out, name).requires_grad


@pytest.mark.parametrize("loss_type", VARIANTS)
def test_masked_tokens_do_not_change_loss(loss_type):
    b = make_batch(2, 4)
    clean = ours(b, loss_type=loss_type, beta=0.04)
    padding = b.mask == 0
    garbage = _Batch(
        logps=b.logps.masked_fill(padding, -math.inf),
        old=b.old.masked_fill(padding, math.nan),
        ref=b.ref.masked_fill(padding, 7.0),
        mask=b.mask,
        advantages=b.advantages,
        entropies=b.entropies.masked_fill(padding, math.nan),
    )
    leaf = garbage.logps.clone().requires_grad_(True)
    dirty = ours(garbage, loss_type=loss_type, beta=0.04, logps=leaf)
    dirty.loss.backward()
    torch.testing.assert_close(dirty.loss, clean.loss, atol=0, rtol=0)
    assert dirty.metrics() == pytest.approx(clean.metrics(), nan_ok=True)
    assert torch.isfinite(leaf.grad).all() and leaf.grad[padding].abs().max() == 0


def test_zero_advantage_and_on_policy_gives_zero_loss():
    b = make_batch(3, 4)
    zero = torch.zeros_like(b.advantages)
    for variant in VARIANTS:
        out = grpo_loss(
            b.logps, None, None, zero, b.mask, variant=variant, max_completion_length=24
        )
        assert out.loss.item() == 0.0


def test_loss_validation():
    x = torch.zeros(2, 3)
    mask = torch.ones(2, 3)
    adv = torch.zeros(2)
    with pytest.raises(ValueError, match="variant"):
        grpo_loss(x, x, None, adv, mask, variant="ppo")
    with pytest.raises(ValueError, match="ref_per_token_logps"):
        grpo_loss(x, x, None, adv, mask, beta=0.1)
    with pytest.raises(ValueError, match="max_completion_length"):
        grpo_loss(x, x, None, adv, mask, variant="dr_grpo")
    with pytest.raises(ValueError, match="only used by"):
        grpo_loss(x, x, None, adv, mask, variant="grpo", num_items_in_batch=6)
    with pytest.raises(ValueError, match="shape"):
        grpo_loss(x, torch.zeros(2, 4), None, adv, mask)
    with pytest.raises(ValueError, match="advantages"):
        grpo_loss(x, x, None, torch.zeros(3), mask)


# --------------------------------------------------------------------------- entropy


def test_entropy_matches_trl():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 11, generator=g) * 3
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]])
    theirs = trl_utils.entropy_from_logits(logits)
    torch.testing.assert_close(token_entropy(logits), theirs, atol=ATOL, rtol=0)
    expected = (theirs * mask).sum() / mask.sum()
    torch.testing.assert_close(policy_entropy(logits, mask), expected, atol=ATOL, rtol=0)
    uniform = torch.zeros(1, 2, 11)
    assert policy_entropy(uniform, torch.ones(1, 2)).item() == pytest.approx(math.log(11))


def test_docstring_examples():
    result = doctest.testmod(training.objectives.grpo, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
