"""Multiple choice: four distinct options, exactly one right, answer letters balanced.

Policy:

* four options, A–D; the right one is the question's answer, the three others its
  distractors; options are distinct after :func:`normalize_text` (case, punctuation and
  articles do not make two options different), and none equals the answer;
* label distractors (:func:`pick_distractors`) come first from a preferred pool (for audio:
  the other sounds present in the clip), then from a fallback pool (plausible sounds that are
  absent), drawn at random;
* numeric distractors (:func:`numeric_distractors`) sit at whole multiples of a ``spacing``
  from the answer, on both sides, within bounds where possible; the chain sets the spacing
  above twice the answer's tolerance, so no answer within tolerance of the truth is within
  tolerance of a distractor too;
* the letter of the right answer is balanced over a batch (:func:`balanced_positions`): each
  letter gets the right answer ``n/4`` times, rounded, in a seeded random order, so a model
  cannot gain by always answering "A"; the distractors fill the other letters in a seeded
  random order;
* a question with fewer than three distractors gets no multiple-choice form: it is skipped
  with ``too_few_options`` (its open-ended form may still be asked).

All randomness comes from ``random.Random`` seeded by :func:`rng_for` from the batch's seed
and stable keys, so a re-run builds the same options.

Example:
    >>> from labeling.questions.templates import Question
    >>> qs = [Question("longest", "Which sound lasts the longest?", "dog",
    ...                distractors=("rain", "music", "car horn"))] * 4
    >>> choices, skipped = multiple_choice(qs, seed=0)
    >>> sorted(c.answer for c in choices), {c.answer_text for c in choices}, skipped
    (['A', 'B', 'C', 'D'], {'dog'}, [])
    >>> print(choices[0].prompt)  # doctest: +NORMALIZE_WHITESPACE
    Which sound lasts the longest?
    A. music
    B. car horn
    C. dog
    D. rain
    Answer with the letter of the correct option.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from labeling.questions.templates import Question, Skipped, format_number

LETTERS = ("A", "B", "C", "D")
CHOICE_HINT = "Answer with the letter of the correct option."

_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
# punctuation, except a decimal point or comma between digits and a minus sign before one
_PUNCT = re.compile(r"(?!(?<=\d)[.,](?=\d))(?!-(?=\d))[^\w\s]|_")


def normalize_text(text: str) -> str:
    """Text as options and answers are compared: lower case, no punctuation, no articles.

    Unicode is NFKC-folded; underscores count as spaces; a decimal point between digits is
    kept, so ``"1.5"`` and ``"15"`` stay different. Text that is nothing but articles is kept
    (``"A"`` stays ``"a"``).

    >>> normalize_text("  The Dog-barking! "), normalize_text("1.5 s"), normalize_text("an_owl")
    ('dog barking', '1.5 s', 'owl')
    """
    text = _PUNCT.sub(" ", unicodedata.normalize("NFKC", str(text)).lower())
    return " ".join(_ARTICLES.sub(" ", text).split()) or " ".join(text.split())


@dataclass(frozen=True)
class MultipleChoice:
    """One multiple-choice question: its options and the letter of the right one.

    Example:
        >>> mc = MultipleChoice("Which starts first?", ("rain", "dog", "music", "horn"), "B")
        >>> mc.answer_text, mc.index, mc.row()["answer_type"]
        ('dog', 1, 'choice')
    """

    question: str
    options: tuple[str, ...]
    answer: str
    """The right option's letter, "A"–"D"."""
    kind: str = ""
    subject: str | None = None

    @property
    def index(self) -> int:
        return LETTERS.index(self.answer)

    @property
    def answer_text(self) -> str:
        return self.options[self.index]

    @property
    def prompt(self) -> str:
        """The question, one option per line ("A. dog"), and the answering hint."""
        lines = [f"{letter}. {option}" for letter, option in zip(LETTERS, self.options,
                                                                  strict=True)]
        return "\n".join([self.question, *lines, CHOICE_HINT])

    def row(self) -> dict[str, Any]:
        """The dataset row's question columns (``answer_type`` "choice")."""
        return {"kind": self.kind, "question": self.question, "prompt": self.prompt,
                "options": list(self.options), "answer": self.answer,
                "answer_text": self.answer_text, "answer_type": "choice",
                "subject": self.subject}


def rng_for(*keys: Any) -> random.Random:
    """A random generator seeded by ``keys`` (stable across runs and Python processes).

    >>> rng_for(0, "clip1").random() == rng_for(0, "clip1").random()
    True
    """
    digest = hashlib.sha256(repr(keys).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def pick_distractors(
    answer: str, preferred: Iterable[str], fallback: Iterable[str] = (), *,
    rng: random.Random, k: int = 3,
) -> tuple[str, ...]:
    """Up to ``k`` wrong options: from ``preferred`` first, then ``fallback``, each drawn at random.

    Candidates equal to the answer, or to one already picked, after :func:`normalize_text`,
    are left out (blank ones too). Fewer than ``k`` come back when the pools run dry.

    >>> pick_distractors("dog", ["rain", "Dog", "the rain"], ["music", "horn"],
    ...                  rng=random.Random(0), k=3)
    ('rain', 'horn', 'music')
    """
    seen = {normalize_text(answer)}
    picked: list[str] = []
    for pool in (preferred, fallback):
        candidates = list(dict.fromkeys(pool))
        rng.shuffle(candidates)
        for candidate in candidates:
            key = normalize_text(candidate)
            if len(picked) < k and key and key not in seen:
                seen.add(key)
                picked.append(candidate)
    return tuple(picked)


def numeric_distractors(
    value: float, *, spacing: float, rng: random.Random, k: int = 3, lower: float = 0.0,
    upper: float | None = None, decimals: int = 1,
) -> tuple[str, ...]:
    """``k`` wrong numbers at whole multiples of ``spacing`` from ``value``, within bounds first.

    Candidates are ``value ± j × spacing`` for ``j = 1 .. k + 3`` that are at least
    ``lower``; those up to ``upper`` are drawn at random, and if fewer than ``k`` remain, the
    nearest ones above ``upper`` fill in. Written as :func:`format_number` writes the answer
    (``spacing`` must be at least the rounding, ``10**-decimals``).

    >>> numeric_distractors(2.0, spacing=1.5, rng=random.Random(1), upper=10.0)
    ('5', '6.5', '9.5')
    >>> numeric_distractors(1, spacing=1, rng=random.Random(0), lower=1, upper=3, decimals=0)
    ('2', '3', '4')
    """
    if not (math.isfinite(value) and math.isfinite(spacing) and spacing >= 10.0 ** -decimals):
        raise ValueError(f"spacing must be finite and at least {10.0 ** -decimals} (the rounding), "
                         f"got {spacing!r} for value {value!r}")
    steps = [value + sign * j * spacing for j in range(1, k + 4) for sign in (1, -1)]
    steps = [s for s in steps if s >= lower - 1e-9]
    inside = [s for s in steps if upper is None or s <= upper + 1e-9]
    rng.shuffle(inside)
    outside = sorted(s for s in steps if s not in inside)
    seen = {format_number(value, decimals)}
    picked: list[str] = []
    for candidate in inside + outside:
        text = format_number(candidate, decimals)
        if len(picked) < k and text not in seen:
            seen.add(text)
            picked.append(text)
    return tuple(picked)


def balanced_positions(n: int, *, seed: Any, k: int = len(LETTERS)) -> list[int]:
    """``n`` answer positions in ``0 .. k-1``, each used ``n/k`` times (rounded), seeded order.

    >>> positions = balanced_positions(10, seed=0)
    >>> [positions.count(i) for i in range(4)]
    [2, 3, 3, 2]
    """
    rng = rng_for("positions", seed)
    offset = rng.randrange(k)  # which letters get the extra ones when n is not a multiple of k
    positions = [(i + offset) % k for i in range(n)]
    rng.shuffle(positions)
    return positions


def assemble(
    question: str, answer: str, distractors: Sequence[str], position: int, *,
    rng: random.Random, kind: str = "", subject: str | None = None,
) -> MultipleChoice:
    """Four options with ``answer`` at ``position`` and the distractors, shuffled, around it.

    >>> mc = assemble("Which?", "dog", ["rain", "horn", "music"], 3, rng=random.Random(0))
    >>> mc.answer, mc.options[3]
    ('D', 'dog')
    """
    options = list(distractors)
    keys = [normalize_text(o) for o in [answer, *options]]
    if len(options) != len(LETTERS) - 1 or len(set(keys)) != len(LETTERS) or "" in keys:
        raise ValueError(f"a multiple-choice question needs {len(LETTERS) - 1} distractors "
                         f"distinct from the answer and each other; got {options!r} for "
                         f"{answer!r}")
    rng.shuffle(options)
    options.insert(position, answer)
    return MultipleChoice(question, tuple(options), LETTERS[position], kind, subject)


def multiple_choice(
    questions: Sequence[Question], *, seed: Any,
) -> tuple[list[MultipleChoice], list[Skipped]]:
    """The multiple-choice form of each question that has three distractors; letters balanced.

    A question with fewer is skipped (``too_few_options``). The right answer's letters are
    balanced over the questions kept (:func:`balanced_positions`); distractor order is
    seeded by ``seed`` and the question's place in the batch.
    """
    need = len(LETTERS) - 1
    kept = [q for q in questions if len(q.distractors) >= need]
    skipped = [Skipped(q.kind, "too_few_options",
                       f"{len(q.distractors)} distractor(s) ({', '.join(q.distractors) or 'none'})"
                       f"; {need} needed", q.subject)
               for q in questions if len(q.distractors) < need]
    positions = balanced_positions(len(kept), seed=seed)
    choices = [assemble(q.text, q.answer, q.distractors[:need], pos, rng=rng_for(seed, i),
                        kind=q.kind, subject=q.subject)
               for i, (q, pos) in enumerate(zip(kept, positions, strict=True))]
    return choices, skipped
