"""A run's reward components, as TRL reward functions, each scoring its own rows.

One function per component of the family's weights
(:data:`training.trl_backend.config.FAMILY_REWARD_WEIGHTS`), named after it (TRL logs
``rewards/<name>/mean`` per function, so every component is logged, weight 0 included),
built on :mod:`training.rewards`. The ``vlm`` family:

* ``point_in_mask`` and ``point_format`` score pointing rows
  (:func:`training.rewards.pointing.point_in_mask` on the run's ``point_scale``);
* ``choice_correct`` and ``answer_format`` score video multiple-choice rows
  (:func:`training.rewards.answers.choice_correct`, which reads the last ``<answer>`` span;
  the format is the row's ``answer_style``: R1's ``<think>…</think><answer>X</answer>`` when
  the prompt asks for it, as the chain's reasoning format does, else the letter).

On the other task's rows a component is ``None`` (TRL: NaN, left out of the weighted sum and
of the logged mean), so a mixed batch is scored fairly.

The ``alm`` family (audio questions) scores each row by its ``answer_type``:
``choice_correct`` (multiple choice), ``numeric_correct`` (the first number of the answer
within the row's ``tolerance``: :func:`training.rewards.answers.numeric_correct`),
``text_correct`` (a sound's name, normalised: :func:`~training.rewards.answers.open_answer_match`)
and ``answer_format`` on every row (R1-AQA's ``<think>…</think><answer>…</answer>`` when the
prompt asks for it, as the chain's prompts do).

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

from training.rewards.answers import (
    answer_format,
    answer_span,
    choice_correct,
    numeric_correct,
    open_answer_match,
    parse_number,
)
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


def for_answer_type(answer_type: str, fn: Reward, name: str) -> Reward:
    """``fn`` on the rows whose ``answer_type`` column is ``answer_type``; ``None`` on the
    others (so a number row never counts against ``choice_correct``)."""

    def reward(completions: Sequence[Any], **columns: Any) -> list[float | None]:
        types = columns.get("answer_type") or ["choice"] * len(completions)
        scores = fn(completions, **columns)
        return [s if t == answer_type else None for s, t in zip(scores, types, strict=True)]

    reward.__name__ = reward.__qualname__ = name
    return reward


def _plain_ok(text: str, answer_type: str | None) -> float:
    """A bare answer of its type: a lone letter, a number, or one short line of words."""
    if answer_type == "number":
        return float(parse_number(text) is not None and "<" not in text)
    if answer_type == "text":
        span = answer_span(text)
        return float(bool(span) and "<" not in text and "\n" not in span.strip())
    return letter_format([text])[0]


def styled_answer_format(completions: Sequence[Any], *,
                         answer_style: Sequence[str | None] | None = None,
                         answer_type: Sequence[str | None] | None = None,
                         **_: Any) -> list[float]:
    """The format reward of each row's ``answer_style`` (see
    :func:`training.trl_backend.data.answer_style_of`): ``think`` is R1's
    ``<think>…</think><answer>…</answer>``, ``tagged`` the answer tag alone, ``plain`` a lone
    letter (a number, or one line, for ``answer_type`` ``number`` / ``text`` rows).

    >>> styled_answer_format(["<think>x</think><answer>B</answer>", "<answer>B</answer>", "B",
    ...                       "3.5 s", "3.5 s"],
    ...                      answer_style=["think", "think", "plain", "plain", "plain"],
    ...                      answer_type=["choice", "choice", "choice", "number", "choice"])
    [1.0, 0.0, 1.0, 1.0, 0.0]
    """
    styles = list(answer_style or [None] * len(completions))
    types = list(answer_type or ["choice"] * len(completions))
    texts = completion_texts(completions)
    scorers = {"think": partial(answer_format, think="required"),
               "tagged": partial(answer_format, think="none")}
    return [scorers[style]([text])[0] if style in scorers else _plain_ok(text, kind)
            for text, style, kind in zip(texts, styles, types, strict=True)]


def _audio_functions() -> dict[str, Reward]:
    """The ``alm`` family's components (see the module docstring)."""

    def answer_format_(completions: Sequence[Any], **columns: Any) -> list[float]:
        return styled_answer_format(completions, **columns)

    answer_format_.__name__ = answer_format_.__qualname__ = "answer_format"
    return {
        "choice_correct": for_answer_type("choice", choice_correct, "choice_correct"),
        "numeric_correct": for_answer_type("number", numeric_correct, "numeric_correct"),
        "text_correct": for_answer_type("text", open_answer_match, "text_correct"),
        "answer_format": answer_format_,
    }


def reward_functions(config: TrlConfig) -> tuple[list[Reward], list[float]]:
    """The run's reward functions (one per component) and their weights, in the same order.

    >>> alm = TrlConfig(family="alm", objective="grpo", model="m", data="d", output_dir="o")
    >>> funcs, weights = reward_functions(alm)
    >>> columns = dict(answer=["B", "6", "rain"], options=[["x", "y"], [], []],
    ...                answer_type=["choice", "number", "text"], tolerance=[None, 0.6, None],
    ...                answer_style=["plain"] * 3)
    >>> {f.__name__: f(["B", "5.5 seconds", "Rain."], **columns) for f in funcs}
    ... # doctest: +NORMALIZE_WHITESPACE
    {'choice_correct': [1.0, None, None], 'numeric_correct': [None, 1.0, None],
     'text_correct': [None, None, 1.0], 'answer_format': [1.0, 1.0, 1.0]}
    """
    weights = config.weights()
    if config.family == "alm":
        funcs = _audio_functions()
        return list(funcs.values()), [weights[name] for name in funcs]
    funcs = {
        "point_in_mask": for_task("pointing", partial(
            point_in_mask, scale=config.point_scale, sigma=config.point_sigma), "point_in_mask"),
        "point_format": for_task("pointing", partial(point_format, expected=config.point_format),
                                 "point_format"),
        "choice_correct": for_task("video_qa", choice_correct, "choice_correct"),
        "answer_format": for_task("video_qa", styled_answer_format, "answer_format"),
    }
    return list(funcs.values()), [weights[name] for name in funcs]
