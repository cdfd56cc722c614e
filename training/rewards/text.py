"""Keyword (entity) recall: did the transcript keep the words that matter for this clip?

WER weighs every word the same, so a transcript that drops the drug name, the
account number or the speaker's name can still score well. A clip's manifest
may list its keywords (tag ``keywords``, a list or a comma-separated string);
this reward is the share of them the hypothesis contains. Keywords and
hypothesis both go through the project's normaliser
(:func:`training.eval.metrics.normalize`), so casing, punctuation, spelled-out
numbers and British spellings never decide a match.

``keyword_recall`` has TRL's reward signature (see :mod:`training.rewards.components`): the
clips' tags arrive as the ``keywords`` column, one entry per completion.

Example:
    >>> keyword_recall(["Please call Doctor Smith at 5 pm"], keywords=["Dr Smith, 5 pm, pharmacy"])
    [0.6666666666666666]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from training.eval.metrics import normalize
from training.rewards.components import paired

__all__ = ["keyword_recall", "parse_keywords"]


def parse_keywords(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Keywords from a manifest tag value: a list of strings or one comma-separated string.

    Blank entries are dropped and surrounding whitespace stripped; order is kept.
    ``None`` (no tag) gives no keywords.

    >>> parse_keywords("aspirin, Dr Smith ,, 5 pm")
    ('aspirin', 'Dr Smith', '5 pm')
    >>> parse_keywords(["New York", " "]), parse_keywords(None)
    (('New York',), ())
    """
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(
                f"keywords must be strings, got {item!r} ({type(item).__name__}); "
                'quote it in the manifest, e.g. "keywords": ["2024"]'
            )
    return tuple(item.strip() for item in items if item.strip())


def keyword_recall(
    completions: Sequence[Any], *, keywords: Sequence[str | Iterable[str] | None], **_: Any
) -> list[float]:
    """Share of each row's keywords found in its completion as whole-word sequences.

    A row's keywords are a list or one comma-separated string (:func:`parse_keywords`).
    A multi-word keyword counts only when its words appear together and in
    order (``"new york"`` is not found in ``"new cars in york"``), and a
    keyword never matches inside a longer word (``"cat"`` is not in
    ``"category"``). Keywords are de-duplicated after normalisation; one that
    normalises to nothing (``"um"``, ``"[noise]"``) is ignored. With no
    keywords the reward is 1.0: nothing was asked for, so nothing was missed.

    >>> keyword_recall(["we flew to new york"], keywords=[["New York", "Boston"]])
    [0.5]
    >>> keyword_recall(["new cars in york", "anything"], keywords=["new york", []])
    [0.0, 1.0]
    """
    return [_recall(text, k) for text, k in paired(completions, keywords, "keywords")]


def _recall(hypothesis: str, keywords: str | Iterable[str] | None) -> float:
    wanted = dict.fromkeys(k for k in map(normalize, parse_keywords(keywords)) if k)
    if not wanted:
        return 1.0
    text = f" {normalize(hypothesis)} "
    found = sum(f" {keyword} " in text for keyword in wanted)
    return found / len(wanted)
