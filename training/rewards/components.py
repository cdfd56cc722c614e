"""Reward components for speech, in TRL's reward-function signature.

Every reward here is ``fn(completions, **columns) -> list[float | None]``, the signature TRL's
``GRPOTrainer`` calls reward functions with, so one function serves the Whisper trainer and TRL:

* ``completions`` are the sampled transcripts: plain strings, or TRL's conversational form
  (``[{"role": "assistant", "content": ...}]`` per completion; see :func:`completion_text`);
* the dataset columns a reward needs arrive as keyword lists aligned with ``completions``
  (``reference=[...]``, ``duration_s=[...]``); every other keyword (TRL passes ``prompts``,
  ``completion_ids``, ``trainer_state`` and every other column) is ignored;
* one value per completion; ``None`` where the reward does not apply to that row (no reference:
  an unlabelled row), which TRL 1.16 reads as NaN and leaves out of its weighted ``nansum``.

Text is compared after the project's normaliser (`training.eval.metrics.normalize`), so a
reward never pays for casing or punctuation. RL objectives combine these by configured weights
(:mod:`training.rewards.composite`); `reward_components` gives all of them for one hypothesis,
which the `reward_shaping` asset stores per hypothesis so every component can be inspected and
logged. More rewards live in the other modules of :mod:`training.rewards`, which re-exports
them with these and names them all in ``REWARDS``.

Example:
    >>> r = reward_components("the cat sat", "the cat sat sat sat sat sat", audio_seconds=1.0)
    >>> round(r["accuracy_wer"], 2), round(r["hallucination_ratio"], 2), r["empty"]
    (0.0, 0.57, 0.0)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from training.eval.metrics import ErrorCounts, error_counts, normalize

__all__ = [
    "accuracy_cer",
    "accuracy_wer",
    "completion_text",
    "completion_texts",
    "hallucination_ratio",
    "is_empty",
    "length_ratio",
    "overlong",
    "repetition_ratio",
    "reward_components",
]

MAX_WORDS_PER_SECOND = 6.0  # faster than any natural speech: more words is hallucination

T = TypeVar("T")


# --------------------------------------------------------------------------- the signature


def completion_text(completion: str | Sequence[dict[str, Any]] | None) -> str:
    """The text of one completion: a string as is, a conversational one's last message content.

    TRL passes conversational completions (chat prompts: VLMs, audio LMs) as a list of
    messages; content may be a string or a list of typed parts, whose ``"text"`` parts are
    joined. ``None`` (no output) is the empty string.

    >>> completion_text("hi"), completion_text([{"role": "assistant", "content": "hi"}])
    ('hi', 'hi')
    """
    if completion is None or isinstance(completion, str):
        return completion or ""
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content")
        if isinstance(content, list):
            return "".join(p.get("text") or "" for p in content if p.get("type") == "text")
        if content is None or isinstance(content, str):
            return content or ""
    raise TypeError(
        f"a completion must be a str or a list of chat messages, got {completion!r:.80}"
    )


def completion_texts(completions: Sequence[Any]) -> list[str]:
    """:func:`completion_text` of each completion.

    >>> completion_texts(["a", None, [{"role": "assistant", "content": "b"}]])
    ['a', '', 'b']
    """
    if isinstance(completions, str):
        raise TypeError("completions must be a list with one completion each, got a str")
    return [completion_text(c) for c in completions]


def paired(completions: Sequence[Any], values: Sequence[T], name: str) -> list[tuple[str, T]]:
    """Each completion's text with its row's value of column ``name`` (one per completion).

    >>> paired(["a", "b"], ["x", None], "reference")
    [('a', 'x'), ('b', None)]
    """
    texts = completion_texts(completions)
    if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
        raise TypeError(
            f"{name} must be a list with one value per completion, got {type(values).__name__}"
        )
    if len(values) != len(completions):
        raise ValueError(
            f"{name} has {len(values)} values for {len(completions)} completions: pass one per "
            "completion (TRL repeats each row's columns for each of its generations)"
        )
    return list(zip(texts, values, strict=True))


@lru_cache(maxsize=8192)
def cached_counts(reference: str, hypothesis: str) -> ErrorCounts:
    """``error_counts`` cached: the rewards of one (reference, completion) share one alignment."""
    return error_counts(reference, hypothesis)


def by_reference(
    completions: Sequence[Any], reference: Sequence[str | None], score: Callable[[ErrorCounts], T]
) -> list[T | None]:
    """``score(error counts)`` per completion; ``None`` for a row without a reference."""
    return [None if ref is None else score(cached_counts(ref, text))
            for text, ref in paired(completions, reference, "reference")]


# --------------------------------------------------------------------------- rewards


def accuracy_wer(completions: Sequence[Any], *, reference: Sequence[str | None],
                 **_: Any) -> list[float | None]:
    """1 − WER per completion, clipped to [0, 1] (insertion loops drive WER past 1).

    >>> accuracy_wer(["a b x d"], reference=["a b c d"])
    [0.75]
    """
    return by_reference(completions, reference, _accuracy_wer)


def accuracy_cer(completions: Sequence[Any], *, reference: Sequence[str | None],
                 **_: Any) -> list[float | None]:
    """1 − CER per completion, clipped to [0, 1].

    >>> accuracy_cer(["abcd"], reference=["abcd"])
    [1.0]
    """
    return by_reference(completions, reference, _accuracy_cer)


def hallucination_ratio(completions: Sequence[Any], *, reference: Sequence[str | None],
                        **_: Any) -> list[float | None]:
    """Share of each completion's words that are insertions (0 = none invented).

    >>> hallucination_ratio(["hello there my friend"], reference=["hello"])
    [0.75]
    """
    return by_reference(completions, reference, _hallucination_ratio)


def is_empty(completions: Sequence[Any], **_: Any) -> list[float]:
    """1.0 for a completion with no words after normalisation, else 0.0.

    >>> is_empty(["  [noise] um ", "yes"])
    [1.0, 0.0]
    """
    return [_is_empty(text) for text in completion_texts(completions)]


def repetition_ratio(completions: Sequence[Any], *, n: int = 3, **_: Any) -> list[float]:
    """Share of each completion's word n-grams that repeat an earlier one (loops score near 1).

    >>> repetition_ratio(["go go go go go go go", "the quick brown fox jumps"])
    [0.8, 0.0]
    """
    return [_repetition_ratio(text, n) for text in completion_texts(completions)]


def overlong(completions: Sequence[Any], *, duration_s: Sequence[float | None],
             **_: Any) -> list[float]:
    """1.0 when a completion has more words than its audio could hold (> 6 words/s).

    A row without a duration (``None`` or 0) is never overlong.

    >>> overlong(["a cat and a dog and a bird and a fish"], duration_s=[1.0])
    [1.0]
    """
    return [_overlong(text, s) for text, s in paired(completions, duration_s, "duration_s")]


# --------------------------------------------------------------------------- one hypothesis


def length_ratio(counts: ErrorCounts) -> float:
    """Hypothesis words over reference words (1.0 is right; inf when the reference is empty).

    A diagnostic, not a reward (unbounded, and not "higher is better"), so it keeps the
    signature of a metric of one alignment.

    >>> length_ratio(error_counts("the cat sat down", "the cat"))
    0.5
    """
    if counts.ref_words == 0:
        return 1.0 if counts.hyp_words == 0 else math.inf
    return counts.hyp_words / counts.ref_words


def reward_components(
    reference: str, hypothesis: str | None, audio_seconds: float | None = None
) -> dict[str, float]:
    """Every component for one hypothesis, keyed by name (what `reward_shaping` stores).

    >>> reward_components("a b", "a b", 1.0)["accuracy_wer"]
    1.0
    """
    row = {"completions": [hypothesis], "reference": [reference], "duration_s": [audio_seconds]}
    c = cached_counts(reference, completion_text(hypothesis))
    return {
        "accuracy_wer": accuracy_wer(**row)[0],
        "accuracy_cer": accuracy_cer(**row)[0],
        "hallucination_ratio": hallucination_ratio(**row)[0],
        "empty": is_empty(**row)[0],
        "repetition": repetition_ratio(**row)[0],
        "length_ratio": length_ratio(c),
        "overlong": overlong(**row)[0],
        "wer": c.wer,
        "cer": c.cer,
    }


# --------------------------------------------------------------------------- per completion


def _accuracy_wer(counts: ErrorCounts) -> float:
    return _clip01(1.0 - counts.wer) if math.isfinite(counts.wer) else 0.0


def _accuracy_cer(counts: ErrorCounts) -> float:
    return _clip01(1.0 - counts.cer) if math.isfinite(counts.cer) else 0.0


def _hallucination_ratio(counts: ErrorCounts) -> float:
    return counts.insertions / counts.hyp_words if counts.hyp_words else 0.0


def _is_empty(hypothesis: str) -> float:
    return 0.0 if normalize(hypothesis).split() else 1.0


def _repetition_ratio(hypothesis: str, n: int) -> float:
    words = normalize(hypothesis).split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    repeats = sum(c - 1 for c in Counter(grams).values())
    return repeats / len(grams)


def _overlong(hypothesis: str, audio_seconds: float | None) -> float:
    if not audio_seconds:
        return 0.0
    words = len(normalize(hypothesis).split())
    return 1.0 if words > MAX_WORDS_PER_SECOND * audio_seconds + 2 else 0.0


def _clip01(x: float) -> float:
    return min(1.0, max(0.0, x))
