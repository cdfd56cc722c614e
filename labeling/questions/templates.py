"""Templated questions: what is asked, the verifiable answer, and why a question was skipped.

Policy:

* a :class:`Template` names a question kind (``"longest"``) and holds its wording with
  ``{fields}``, the answer type (``"text"``: a label; ``"number"``: a value compared within a
  tolerance) and the hint the open-ended form adds ("Answer with a number of seconds.");
* a :class:`Question` is one asked question: its open-ended text, its canonical answer as
  text, the numeric value and tolerance for numbers, the values it was decided on
  (``measured``, for inspection) and its ``distractors`` (wrong options for the
  multiple-choice form, chosen by the chain; see :mod:`labeling.questions.choices`);
* a question that cannot be asked unambiguously is not asked: a :class:`Skipped` records its
  kind, a reason code and the measured detail, which the asset sends to quarantine and
  counts. Reason codes are the chain's (see :mod:`labeling.questions.guards` for the shared
  ones).

Dataset rows (:meth:`Question.row`) carry the columns the answer rewards read
(:mod:`training.rewards.answers`): ``answer``, ``answer_type``, ``tolerance``.

Example:
    >>> t = Template("duration", "For how many seconds in total can {label} be heard?",
    ...              "number", hint="Answer with a number of seconds.")
    >>> q = t.ask(answer=3.5, tolerance=0.5, label="a dog")
    >>> q.prompt
    'For how many seconds in total can a dog be heard? Answer with a number of seconds.'
    >>> q.answer, q.value, q.tolerance
    ('3.5', 3.5, 0.5)
    >>> Skipped("longest", "near_tie", "dog 4.1 s vs rain 4.0 s").row()["reason"]
    'near_tie'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

AnswerType = Literal["text", "number"]


def format_number(value: float, decimals: int = 1) -> str:
    """A number as an answer shows it: at most ``decimals`` places, no trailing zeros.

    Halves round away from zero on the decimal value, after float noise below 1e-9 is
    dropped, so a duration summed from regions (3.6500000000000004) and the same duration
    measured directly (3.65, stored as 3.64999...) show the same answer.

    >>> format_number(3.0), format_number(2.25), format_number(2.24), format_number(-0.0)
    ('3', '2.3', '2.2', '0')
    >>> format_number(3.6500000000000004) == format_number(3.65) == "3.7"
    True
    """
    if not math.isfinite(value):
        return str(value)
    exact = Decimal(repr(round(value, 9))).quantize(Decimal(1).scaleb(-decimals),
                                                     rounding=ROUND_HALF_UP)
    text = f"{exact:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@dataclass(frozen=True)
class Question:
    """One question with its verifiable answer.

    Example:
        >>> q = Question("longest", "Which sound lasts the longest?", "dog",
        ...              distractors=("rain", "car horn", "music"))
        >>> q.row()["answer"], q.row()["answer_type"], q.row()["tolerance"]
        ('dog', 'text', None)
    """

    kind: str
    """The template's kind ("longest", "duration", ...)."""
    text: str
    """The question itself, without an answering hint."""
    answer: str
    """The canonical answer as text: a label, or the number as :func:`format_number` writes it."""
    answer_type: AnswerType = "text"
    value: float | None = None
    """For numbers: the true value."""
    tolerance: float | None = None
    """For numbers: an answer within this of ``value`` is right (0: exact)."""
    hint: str = ""
    """What the open-ended form asks of the answer ("Answer with a number.")."""
    subject: str | None = None
    """What the question is about when it is about one thing (the label of a duration question)."""
    distractors: tuple[str, ...] = ()
    """Wrong options for the multiple-choice form, distinct from the answer and each other."""
    measured: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """The values the answer was decided on (per label durations, the margin, ...)."""

    @property
    def prompt(self) -> str:
        """The open-ended form: the question and its hint."""
        return f"{self.text} {self.hint}".strip()

    def row(self) -> dict[str, Any]:
        """The open-ended dataset row's question columns."""
        return {"kind": self.kind, "question": self.prompt, "answer": self.answer,
                "answer_type": self.answer_type, "tolerance": self.tolerance,
                "subject": self.subject}


@dataclass(frozen=True)
class Skipped:
    """A question not asked (or a form of it not built), with the reason code and detail.

    Example:
        >>> Skipped("shortest", "too_few_classes", "1 sound present (dog); 2 needed").detail
        '1 sound present (dog); 2 needed'
    """

    kind: str
    reason: str
    detail: str
    subject: str | None = None
    measured: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def row(self) -> dict[str, Any]:
        """A quarantine row's columns."""
        return {"kind": self.kind, "subject": self.subject, "reason": self.reason,
                "detail": self.detail}


@dataclass(frozen=True)
class Template:
    """A question kind's wording, answer type and hint."""

    kind: str
    text: str
    """The wording, with ``{fields}`` filled by :meth:`ask`."""
    answer_type: AnswerType = "text"
    hint: str = ""
    decimals: int = 1
    """Places a numeric answer (and its numeric distractors) is written with."""

    def ask(
        self, *, answer: str | float, tolerance: float | None = None, subject: str | None = None,
        distractors: Sequence[str] = (), measured: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Question:
        """The question for these fields with its answer (a label, or a number)."""
        if self.answer_type == "number":
            value = float(answer)
            text_answer = format_number(value, self.decimals)
        else:
            value, text_answer = None, str(answer)
        return Question(
            kind=self.kind, text=self.text.format(**fields), answer=text_answer,
            answer_type=self.answer_type, value=value,
            tolerance=tolerance if self.answer_type == "number" else None, hint=self.hint,
            subject=subject, distractors=tuple(distractors), measured=dict(measured or {}),
        )
