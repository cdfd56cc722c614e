"""Rewards for speech: small, pure functions of (reference, hypothesis, audio length).

One module per kind, every public function re-exported here:

* :mod:`training.rewards.components`: accuracy (1 − WER, 1 − CER), hallucination, empty
  output, repetition, length; ``reward_components`` gives all of them for one hypothesis;
* :mod:`training.rewards.text`: keyword (entity) recall;
* :mod:`training.rewards.language`: language match;
* :mod:`training.rewards.phonemes`: phoneme error rate via espeak-ng;
* :mod:`training.rewards.weighting`: the WER gate and per-group weights.

The weighted combination of all of them, ``speech_rewards``, is in
:mod:`training.rewards.composite` (which builds on these, so it is not re-exported here).

Example:
    >>> r = reward_components("the cat sat", "the cat sat sat sat sat sat", audio_seconds=1.0)
    >>> round(r["accuracy_wer"], 2), r["empty"]
    (0.0, 0.0)
"""

from training.rewards.components import (
    accuracy_cer,
    accuracy_wer,
    hallucination_ratio,
    is_empty,
    length_ratio,
    overlong,
    repetition_ratio,
    reward_components,
)
from training.rewards.language import detect_script, language_match
from training.rewards.phonemes import EspeakNotFoundError, accuracy_per, phoneme_error_rate
from training.rewards.text import keyword_recall, parse_keywords
from training.rewards.weighting import gated_accuracy, group_weights, weighted

__all__ = [
    "EspeakNotFoundError",
    "accuracy_cer",
    "accuracy_per",
    "accuracy_wer",
    "detect_script",
    "gated_accuracy",
    "group_weights",
    "hallucination_ratio",
    "is_empty",
    "keyword_recall",
    "language_match",
    "length_ratio",
    "overlong",
    "parse_keywords",
    "phoneme_error_rate",
    "repetition_ratio",
    "reward_components",
    "weighted",
]
