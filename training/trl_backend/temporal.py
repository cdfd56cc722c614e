"""Video-R1's temporal contrast bonus (T-GRPO) for the ``vlm`` family's video questions.

A model can answer many "what happens next?" questions from one frame, or from the frames as
a bag; T-GRPO pays it for using their order. For each video multiple-choice row, besides the
group of completions sampled from its frames in order (the group GRPO trains on), a second,
smaller group is sampled from the same frames shuffled (it only feeds the comparison, it is
never trained on). With p the share of right answers on ordered frames and p̃ on shuffled
ones, when ``p >= ratio * p̃`` the right completions of the ordered group get ``+alpha``.
Pointing rows get no bonus (``None``: the component does not apply).

As in Video-R1's trainer (``src/r1-v/src/open_r1/trainer/grpo_trainer.py``): alpha 0.3, ratio
0.8, the test ``>=``, a shuffled group of ``num_generations // 2`` completions, one shuffled
order per question, the bonus given to the right completions. Different here: the order is
seeded and never the original one (Video-R1's ``torch.randperm`` can return it), "right" is
``choice_correct >= 0.5`` (Video-R1: accuracy reward > 0.1, for its partial-credit tasks),
the comparison is per question however TRL spreads a group over processes, and the bonus is
its own reward component, ``temporal_bonus`` (weight 1, logged as ``rewards/temporal_bonus``:
the mean bonus of the video completions compared), instead of being added into the accuracy
reward, so ``rewards/choice_correct`` stays an accuracy.

:class:`TemporalGRPOTrainer` is TRL's GRPOTrainer with the shuffled group; it logs
``temporal/ordered_acc`` and ``temporal/shuffled_acc`` (mean p and p̃ over the video questions
compared) and ``temporal/bonus_share`` (the share of those whose right completions got the
bonus). A video row with a single frame has no other order: it is said once (a warning) and
its question gets no bonus.

Example:
    >>> temporal_bonus([1, 1, 0, 0], [1, 0])  # p = 0.5 >= 0.8 * 0.5
    [0.3, 0.3, 0.0, 0.0]
    >>> temporal_bonus([1, 0, 0, 0], [1, 1])  # p = 0.25 < 0.8 * 1.0: the order did not help
    [0.0, 0.0, 0.0, 0.0]
    >>> shuffled_frames(["f0", "f1", "f2"], seed=[0, 5, 1])  # seeded: [run seed, step, question]
    ['f2', 'f1', 'f0']
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from trl import GRPOTrainer
from trl.data_utils import prepare_multimodal_messages

TEMPORAL_REWARD = "temporal_bonus"
CORRECT = 0.5  # a completion is right when its choice_correct score is at least this


def frame_order(n_frames: int, seed: int | Sequence[int]) -> list[int]:
    """A seeded order of ``n_frames`` frames that is never their original order.

    >>> frame_order(2, seed=0)
    [1, 0]
    >>> order = frame_order(5, seed=[7, 3, 1])
    >>> sorted(order), order != [0, 1, 2, 3, 4], frame_order(5, seed=[7, 3, 1]) == order
    ([0, 1, 2, 3, 4], True, True)
    >>> frame_order(1, seed=0)
    Traceback (most recent call last):
    ...
    ValueError: 1 frame: there is no other order to compare with, so no temporal bonus
    """
    if n_frames < 2:
        raise ValueError(f"{n_frames} frame{'s' * (n_frames != 1)}: there is no other order to "
                         "compare with, so no temporal bonus")
    rng = np.random.default_rng(seed)
    identity = list(range(n_frames))
    while (order := rng.permutation(n_frames).tolist()) == identity:  # 1 in n! draws
        pass
    return order


def shuffled_frames(frames: Sequence[Any], seed: int | Sequence[int]) -> list[Any]:
    """``frames`` in :func:`frame_order` (a ValueError for fewer than two)."""
    return [frames[i] for i in frame_order(len(frames), seed)]


def temporal_bonus(ordered: Sequence[float], shuffled: Sequence[float], *, alpha: float = 0.3,
                   ratio: float = 0.8) -> list[float]:
    """The bonus of each completion of one question's ordered group: ``alpha`` for the right
    ones when the ordered group's accuracy p is at least ``ratio`` times the shuffled
    group's p̃, else 0. ``ordered`` and ``shuffled`` are the completions' ``choice_correct``
    scores; without a shuffled group there is nothing to compare, so no bonus.

    >>> temporal_bonus([1, 0], [0, 0]), temporal_bonus([0, 0], [0, 0])  # 0 >= 0, none right
    ([0.3, 0.0], [0.0, 0.0])
    >>> temporal_bonus([1, 1, 1, 0, 0], [1, 1, 1, 0])  # p = 3/5 = 0.8 * 3/4: paid
    [0.3, 0.3, 0.3, 0.0, 0.0]
    >>> temporal_bonus([1, 1, 0], [], alpha=0.5)
    [0.0, 0.0, 0.0]
    """
    right = [score >= CORRECT for score in ordered]
    if not shuffled or not right:
        return [0.0] * len(right)
    p = sum(right) / len(right)
    p_shuffled = sum(score >= CORRECT for score in shuffled) / len(shuffled)
    paid = p >= ratio * p_shuffled - 1e-9  # 3/5 >= 0.8 * 3/4, whatever the rounding
    return [alpha if r else 0.0 for r in right] if paid else [0.0] * len(right)


@dataclass(frozen=True)
class TemporalStats:
    """The video questions of one batch that had a shuffled group to compare with."""

    questions: int
    ordered_acc: float  # mean p
    shuffled_acc: float  # mean p̃
    rewarded: int  # questions whose right completions got the bonus

    def metrics(self) -> dict[str, float]:
        return {"temporal/ordered_acc": self.ordered_acc,
                "temporal/shuffled_acc": self.shuffled_acc,
                "temporal/bonus_share": self.rewarded / self.questions}


def batch_bonus(ordered: Sequence[float | None], shuffled: Sequence[float | None],
                group_size: int, *, alpha: float = 0.3, ratio: float = 0.8,
                ) -> tuple[list[float | None], TemporalStats | None]:
    """The bonus of every completion of a batch laid out as TRL does (``group_size``
    consecutive completions share a prompt), and the batch's stats (None: no question had a
    shuffled group).

    ``ordered``: each completion's ``choice_correct`` (None: not a video question);
    ``shuffled``: the score of the shuffled-frames completion sampled beside it (None where
    none was). A question not compared (not a video question, or no shuffled group: a
    one-frame row) gets None, which the reward counts as 0 and the logged mean leaves out.

    >>> bonus, stats = batch_bonus([1, 0, None, None, 0, 0, 1, 1],
    ...                            [0, None, None, None, 1, None, None, None], 2)
    >>> bonus  # 3rd group: pointing; 4th: no shuffled group
    [0.3, 0.0, None, None, 0.0, 0.0, None, None]
    >>> stats.metrics()
    {'temporal/ordered_acc': 0.25, 'temporal/shuffled_acc': 0.5, 'temporal/bonus_share': 0.5}
    """
    if len(ordered) != len(shuffled) or group_size < 1 or len(ordered) % group_size:
        raise ValueError(f"{len(ordered)} ordered and {len(shuffled)} shuffled scores: both "
                         f"must be whole groups of {group_size} completions")
    bonus: list[float | None] = []
    p, p_shuffled, rewarded = [], [], 0
    for start in range(0, len(ordered), group_size):
        group = ordered[start:start + group_size]
        others = [s for s in shuffled[start:start + group_size] if s is not None]
        if not others or any(score is None for score in group):
            bonus += [None] * group_size
            continue
        paid = temporal_bonus(group, others, alpha=alpha, ratio=ratio)
        bonus += paid
        p.append(sum(s >= CORRECT for s in group) / group_size)
        p_shuffled.append(sum(s >= CORRECT for s in others) / len(others))
        rewarded += any(paid)
    if not p:
        return bonus, None
    return bonus, TemporalStats(len(p), sum(p) / len(p), sum(p_shuffled) / len(p), rewarded)


def _filled_by_the_trainer(completions: Sequence[Any], **_: Any) -> list[None]:
    """The ``temporal_bonus`` component's slot: :class:`TemporalGRPOTrainer` fills it."""
    return [None] * len(completions)


_filled_by_the_trainer.__name__ = TEMPORAL_REWARD


class TemporalGRPOTrainer(GRPOTrainer):
    """GRPOTrainer with Video-R1's temporal contrast bonus (see the module docstring).

    The bonus is one more reward component, ``temporal_bonus`` (weight 1, so the reward adds
    it as it is); :meth:`_calculate_rewards` (TRL: every component of the whole generation
    batch, gathered over processes) samples the shuffled group of this process's video rows,
    gathers its scores and fills that component per question. Everything else is TRL's.
    Only training batches get it (an evaluation's ``temporal_bonus`` stays NaN).
    """

    def __init__(self, *args: Any, temporal_bonus: float, temporal_ratio: float = 0.8,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.use_vllm:  # vLLM's server mode samples num_generations per distinct prompt
            raise ValueError("temporal_bonus samples its shuffled group with transformers' "
                             "generate; it does not run with vLLM")
        if "choice_correct" not in self.reward_func_names:
            raise ValueError("temporal_bonus compares choice_correct on ordered and shuffled "
                             f"frames; the run's rewards are {self.reward_func_names}")
        self._choice = self.reward_funcs[self.reward_func_names.index("choice_correct")]
        self.alpha, self.ratio = float(temporal_bonus), float(temporal_ratio)
        # as TRL adds an environment's own reward: one more column, weight 1
        self.reward_funcs.append(_filled_by_the_trainer)
        self.reward_func_names.append(TEMPORAL_REWARD)
        self.reward_processing_classes.append(None)
        self.reward_weights = torch.cat([self.reward_weights, torch.ones(1)])

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if not self.model.training:
            return rewards
        shuffled = self._shuffled_scores(inputs)
        device = rewards.device
        gathered = self.accelerator.gather(torch.tensor(
            [float("nan") if s is None else s for s in shuffled], device=device))
        bonus, stats = batch_bonus(_optional(rewards[:, self.reward_func_names.index(
            "choice_correct")]), _optional(gathered), self.num_generations, alpha=self.alpha,
            ratio=self.ratio)
        rewards[:, -1] = torch.tensor([float("nan") if b is None else b for b in bonus],
                                      device=device)
        for name, value in (stats.metrics() if stats else {}).items():
            self._metrics["train"][name].append(value)
        return rewards

    def _shuffled_scores(self, inputs: list[dict]) -> list[float | None]:
        """The ``choice_correct`` score of one completion sampled from shuffled frames beside
        each of the first ``num_generations // 2`` completions of every video question on
        this process (None elsewhere)."""
        group = self.num_generations
        start = self.accelerator.process_index * len(inputs)  # row i is row start + i overall
        rows, prompts = [], []
        for i, row in enumerate(inputs):
            if row.get("task") != "video_qa" or (start + i) % group >= group // 2:
                continue
            frames = list(row.get("images") or [])
            if len(frames) < 2:
                warnings.warn(f"temporal_bonus: video row {row.get('example_id')!r} has "
                              f"{len(frames)} frame(s), so no other order to compare with; "
                              "its question gets no temporal bonus (export it with more "
                              "frames)", stacklevel=2)
                continue
            order_seed = [self.args.seed, self.state.global_step, (start + i) // group]
            rows.append(i)
            prompts.append(prepare_multimodal_messages(
                copy.deepcopy(row["prompt"]), images=shuffled_frames(frames, order_seed)))
        # every process samples when any does (FSDP's generate runs in step on all of them)
        wanted = self.accelerator.gather(torch.tensor([len(rows)], device=self.accelerator.device))
        if int(wanted.max()) == 0:
            return [None] * len(inputs)
        if not prompts:  # a stand-in, thrown away
            prompts = [prepare_multimodal_messages(copy.deepcopy(inputs[0]["prompt"]),
                                                   images=inputs[0].get("images") or [])]
        prompt_ids, images, fields = self._tokenize_prompts(prompts)
        completion_ids, _ = self._generate_single_turn(prompt_ids, images, fields, group)
        texts = self.processing_class.batch_decode(completion_ids, skip_special_tokens=True)
        scores: list[float | None] = [None] * len(inputs)
        if rows:
            columns = {key: [inputs[i].get(key) for i in rows] for key in inputs[0]
                       if key not in ("prompt", "images", "completion")}
            for i, score in zip(rows, self._choice(texts[:len(rows)], **columns), strict=True):
                scores[i] = score
        return scores


def _optional(values: torch.Tensor) -> list[float | None]:
    return [None if v != v else float(v) for v in values.tolist()]  # NaN -> None
