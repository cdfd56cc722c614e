"""The VLM run's reward components, as TRL reward functions, each scoring its own task's rows.

One function per component of :data:`training.trl_backend.config.DEFAULT_REWARD_WEIGHTS`,
named after it (TRL logs ``rewards/<name>/mean`` per function, so every component is logged,
weight 0 included), built on :mod:`training.rewards`:

* ``point_in_mask`` and ``point_format`` score pointing rows
  (:func:`training.rewards.pointing.point_in_mask` on the run's ``point_scale``);
* ``choice_correct`` and ``answer_format`` score video multiple-choice rows
  (:func:`training.rewards.answers.choice_correct`, which reads the last ``<answer>`` span;
  the format is the row's ``answer_style``: R1's ``<think>…</think><answer>X</answer>`` when
  the prompt asks for it, as the chain's reasoning format does, else the letter).

On the other task's rows a component is ``None`` (TRL: NaN, left out of the weighted sum and
of the logged mean), so a mixed batch is scored fairly.

Example:
    >>> from training.trl_backend.config import TrlConfig
    >>> funcs, weights = reward_functions(TrlConfig(objective="grpo", model="m", data="d",
    ...                                             output_dir="o"))
    >>> [f.__name__ for f in funcs], weights
    (['point_in_mask', 'point_format', 'choice_correct', 'answer_format'], [1.0, 0.1, 1.0, 0.1])
    >>> scores = {f.__name__: f(["B", "(A)"], task=["video_qa"] * 2, answer=["B"] * 2,
    ...                         masks=[None] * 2, options=[["a", "b", "c", "d"]] * 2,
    ...                         answer_style=["plain"] * 2)
    ...           for f in funcs}
    >>> scores["choice_correct"], scores["answer_format"], scores["point_format"]
    ([1.0, 0.0], [1.0, 1.0], [None, None])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from training.rewards.answers import answer_format, choice_correct
from training.rewards.components import completion_texts
from training.rewards.pointing import point_format, point_in_mask
from training.trl_backend.config import TrlConfig

Reward = Callable[..., list[float | None]]
_LETTER = re.compile(r"\s*[(\[]?[A-Da-d][)\].]?\s*")


def letter_format(completions: Sequence[Any], **_: Any) -> list[float]:
    """1.0 when the completion is a lone option letter ("B", "(B)", "B.").

    >>> letter_format(["B", " (c) ", "B) dog", "maybe"])
    [1.0, 1.0, 0.0, 0.0]
    """
    return [float(_LETTER.fullmatch(text) is not None) for text in completion_texts(completions)]


def for_task(task: str, fn: Reward, name: str) -> Reward:
    """``fn`` on the rows of ``task``; ``None`` on the others (the row's ``task`` column)."""

    def reward(completions: Sequence[Any], **columns: Any) -> list[float | None]:
        tasks = columns.pop("task", None) or [task] * len(completions)
        scores = fn(completions, **columns)
        return [s if t == task else None for s, t in zip(scores, tasks, strict=True)]

    reward.__name__ = reward.__qualname__ = name
    return reward


def styled_answer_format(completions: Sequence[Any], *,
                         answer_style: Sequence[str | None] | None = None,
                         **_: Any) -> list[float]:
    """The format reward of each row's ``answer_style`` (see
    :func:`training.trl_backend.data.answer_style_of`): ``think`` is R1's
    ``<think>…</think><answer>…</answer>``, ``tagged`` the answer tag alone, ``plain`` a lone
    letter.

    >>> styled_answer_format(["<think>x</think><answer>B</answer>", "<answer>B</answer>", "B"],
    ...                      answer_style=["think", "think", "plain"])
    [1.0, 0.0, 1.0]
    """
    styles = list(answer_style or [None] * len(completions))
    texts = completion_texts(completions)
    scorers = {"think": partial(answer_format, think="required"),
               "tagged": partial(answer_format, think="none")}
    return [scorers[style]([text])[0] if style in scorers else letter_format([text])[0]
            for text, style in zip(texts, styles, strict=True)]


def reward_functions(config: TrlConfig) -> tuple[list[Reward], list[float]]:
    """The run's reward functions (one per component) and their weights, in the same order."""
    funcs = {
        "point_in_mask": for_task("pointing", partial(
            point_in_mask, scale=config.point_scale, sigma=config.point_sigma), "point_in_mask"),
        "point_format": for_task("pointing", partial(point_format, expected=config.point_format),
                                 "point_format"),
        "choice_correct": for_task("video_qa", choice_correct, "choice_correct"),
        "answer_format": for_task("video_qa", styled_answer_format, "answer_format"),
    }
    weights = config.weights()
    return list(funcs.values()), [weights[name] for name in funcs]
