"""Rewards for speech, in TRL's reward-function signature, and ``REWARDS`` naming them.

Every reward is ``fn(completions, **columns) -> list[float | None]``: ``completions`` are the
sampled transcripts (strings, or TRL's conversational message lists), the dataset columns it
needs arrive as keyword lists aligned with them (``reference``, ``keywords``, ``language``,
``duration_s``), and every other keyword is ignored. That is how TRL's ``GRPOTrainer`` calls a
reward function (with ``prompts``, ``completion_ids``, ``trainer_state`` and every other column
besides), so the same function serves TRL and the Whisper trainer, which calls them the same way
(:func:`training.rewards.composite.reward_table`). ``None`` marks a row the reward does not
apply to (no reference, no language); TRL 1.16 reads it as NaN and leaves it out of its
weighted sum. Settings (``threshold`` and ``failure_penalty`` of ``gated_accuracy``, ``voice``
of ``accuracy_per``, ``n`` of ``repetition_ratio``) are keyword arguments with defaults, bound
with ``functools.partial``; TRL names a partial after the function it wraps. A dataset column
of the same name as a setting would reach the function as that setting: do not have one.

One module per kind, every public function re-exported here:

* :mod:`training.rewards.components`: accuracy (1 − WER, 1 − CER), hallucination, empty
  output, repetition, length; ``reward_components`` gives all of them for one hypothesis;
* :mod:`training.rewards.text`: keyword (entity) recall;
* :mod:`training.rewards.language`: language match;
* :mod:`training.rewards.phonemes`: phoneme error rate via espeak-ng;
* :mod:`training.rewards.weighting`: the WER gate and per-group weights;
* :mod:`training.rewards.pointing`: point in the target's mask (F1 over several) and the point
  format, for the image pointing task.
* :mod:`training.rewards.answers`: answers to questions (choice, number, short text) and the
  ``<think>``/``<answer>`` format, for the question tasks (audio questions, video prediction).

The weighted combination of all of them, ``reward_table`` (and ``speech_rewards`` for one
hypothesis), is in :mod:`training.rewards.composite` (which builds on these, so it is not
re-exported here).

Example:
    >>> REWARDS["accuracy_wer"](["a b x d"], reference=["a b c d"], prompts=["..."])
    [0.75]
    >>> r = reward_components("the cat sat", "the cat sat sat sat sat sat", audio_seconds=1.0)
    >>> round(r["accuracy_wer"], 2), r["empty"]
    (0.0, 0.0)
"""

from collections.abc import Callable

from training.rewards.answers import (
    answer_correct,
    answer_format,
    answer_span,
    choice_correct,
    normalize_answer,
    numeric_correct,
    open_answer_match,
    parse_choice_letter,
    parse_number,
)
from training.rewards.components import (
    accuracy_cer,
    accuracy_wer,
    completion_text,
    completion_texts,
    hallucination_ratio,
    is_empty,
    length_ratio,
    overlong,
    repetition_ratio,
    reward_components,
)
from training.rewards.language import detect_script, language_match
from training.rewards.phonemes import EspeakNotFoundError, accuracy_per, phoneme_error_rate
from training.rewards.pointing import (
    ParsedPoints,
    decode_rle,
    encode_rle,
    parse_points,
    point_f1,
    point_format,
    point_in_mask,
    to_original,
)
from training.rewards.text import keyword_recall, parse_keywords
from training.rewards.weighting import gated_accuracy, group_weights, weighted

#: Every reward by the name a task spec gives it: speech's first, by their ``RewardWeights``
#: names in the order of ``training.rewards.composite.REWARD_NAMES``, then pointing's, then the
#: question tasks' answer rewards. Each is ``fn(completions, **columns)``.
REWARDS: dict[str, Callable[..., list[float | None]]] = {
    "gated_accuracy": gated_accuracy,
    "accuracy_wer": accuracy_wer,
    "accuracy_cer": accuracy_cer,
    "accuracy_per": accuracy_per,
    "keyword_recall": keyword_recall,
    "language_match": language_match,
    "hallucination_ratio": hallucination_ratio,
    "empty": is_empty,
    "repetition": repetition_ratio,
    "overlong": overlong,
    "point_in_mask": point_in_mask,
    "point_format": point_format,
    "answer_correct": answer_correct,
    "choice_correct": choice_correct,
    "numeric_correct": numeric_correct,
    "open_answer_match": open_answer_match,
    "answer_format": answer_format,
}

__all__ = [
    "REWARDS",
    "EspeakNotFoundError",
    "ParsedPoints",
    "accuracy_cer",
    "accuracy_per",
    "accuracy_wer",
    "answer_correct",
    "answer_format",
    "answer_span",
    "choice_correct",
    "completion_text",
    "completion_texts",
    "decode_rle",
    "detect_script",
    "encode_rle",
    "gated_accuracy",
    "group_weights",
    "hallucination_ratio",
    "is_empty",
    "keyword_recall",
    "language_match",
    "length_ratio",
    "normalize_answer",
    "numeric_correct",
    "open_answer_match",
    "overlong",
    "parse_choice_letter",
    "parse_keywords",
    "parse_number",
    "parse_points",
    "phoneme_error_rate",
    "point_f1",
    "point_format",
    "point_in_mask",
    "repetition_ratio",
    "reward_components",
    "to_original",
    "weighted",
]
