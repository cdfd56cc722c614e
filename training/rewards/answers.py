"""Rewards for answers to questions: multiple choice, numbers, short text, and the format.

The question tasks (audio questions, video prediction) have rows with a question and a
verifiable answer; the model answers in prose, ideally as R1-AQA trains it to::

    <think>The dog barks from 0 to 2 s, the rain ...</think><answer>B</answer>

Every reward reads the **answer span**: the content of the last ``<answer>...</answer>``
(:func:`answer_span`), or, without one, the whole completion less any ``<think>`` block, so
thinking out loud about a wrong option never counts. Rewards, in TRL's signature (see
:mod:`training.rewards.components`: completions as strings or conversational message lists,
dataset columns as keyword lists aligned with them, ``None`` where a row has no answer):

* :func:`choice_correct`: the chosen option is the right one. The answer column is the
  letter ("B") or the option's text; the ``options`` column (each row's list of four) lets a
  completion answer with the text. A choice reads as "B", "b", "B)", "(B)", "B.", "[B]",
  "Answer: B", "The answer is (B)", "B) dog barking", or the text of exactly one option;
  naming two letters ("A or B") is no choice;
* :func:`numeric_correct`: the first number of the span (digits, or a word from "zero" to
  "twenty"; "ms" and "min" are converted to seconds) is within the row's ``tolerance`` of the
  answer; rows without one use ``max(abs_tol, rel_tol × |answer|)``;
* :func:`open_answer_match`: the span equals the answer (or one of a list of accepted
  answers) after :func:`normalize_answer`: lower case, punctuation and articles removed;
* :func:`answer_correct`: one of the three per row by its ``answer_type`` column
  (``"choice"``, ``"number"``, ``"text"``), for datasets that mix them;
* :func:`answer_format`: 1 when the completion is ``<think>...</think><answer>...</answer>``
  and nothing else (``think="required"``, R1-AQA's format), ``<think>`` optional
  (``"optional"``) or absent (``"none"``), with a non-empty answer. The audio and video
  question datasets' prompts ask for exactly the default, ``"required"`` (their last line,
  :data:`labeling.questions.reasoning.FORMAT_INSTRUCTION`: "Think it through inside <think>
  </think> tags first, then give only the final answer inside <answer> </answer> tags, with
  nothing after them.").

Settings (``abs_tol``, ``rel_tol``, ``think``) are keyword arguments bound with
``functools.partial``; a dataset column of the same name would reach the function as that
setting: do not have one.

Example:
    >>> answers = ["<think>The rain is longest.</think><answer>(B)</answer>",
    ...            "Answer: A", "rain", "<think>A? no: B.</think>"]
    >>> choice_correct(answers, answer=["B"] * 4, options=[["dog", "rain", "horn", "music"]] * 4)
    [1.0, 0.0, 1.0, 0.0]
    >>> answer_format(answers)
    [1.0, 0.0, 0.0, 0.0]
    >>> numeric_correct(["about 3.4 seconds", "3400 ms", "five"], answer=["3.5"] * 3,
    ...                 tolerance=[0.5] * 3)
    [1.0, 1.0, 0.0]
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any, Literal

from training.rewards.components import completion_texts, paired

__all__ = [
    "answer_correct",
    "answer_format",
    "answer_span",
    "choice_correct",
    "normalize_answer",
    "numeric_correct",
    "open_answer_match",
    "parse_choice_letter",
    "parse_number",
]

LETTERS = "ABCD"
_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.IGNORECASE | re.DOTALL)
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.IGNORECASE | re.DOTALL)
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_PUNCT = re.compile(r"(?!(?<=\d)[.,](?=\d))(?!-(?=\d))[^\w\s]|_")
_MARKUP = re.compile(r"[*`]")

_ONLY_LETTER = re.compile(r"^\s*[(\[]?([A-Da-d])[)\].:]?\s*$")
_KEYWORD_LETTER = re.compile(
    r"(?i:\b(?:answer|option|choice)\b(?:\s+is)?)\s*[:=\-]?\s*[(\[]?([A-D])(?![\w'])")
_LEADING_LETTER = re.compile(r"^\s*[(\[]?([A-D])[)\].:](?:\s|$)")
_BRACKETED_LETTER = re.compile(r"[(\[]([A-D])[)\]]")

_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
          "fourteen fifteen sixteen seventeen eighteen nineteen twenty").split()
_UNITS = {"ms": 0.001, "msec": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
          "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
          "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0}
_NUMBER = re.compile(
    r"(?<![\w.])(?P<num>-?\d+(?:\.\d+)?|-?\.\d+|\b(?:" + "|".join(_WORDS) + r")\b)"
    r"(?:\s*(?P<unit>" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")\b)?",
    re.IGNORECASE)

_THINK_PART = r"<think>(?:(?!</?think>|</?answer>).)*</think>\s*"
_ANSWER_PART = r"<answer>((?:(?!</?think>|</?answer>).)*)</answer>"
_FORMATS = {
    "required": re.compile(rf"\s*{_THINK_PART}{_ANSWER_PART}\s*", re.IGNORECASE | re.DOTALL),
    "optional": re.compile(rf"\s*(?:{_THINK_PART})?{_ANSWER_PART}\s*",
                           re.IGNORECASE | re.DOTALL),
    "none": re.compile(rf"\s*{_ANSWER_PART}\s*", re.IGNORECASE | re.DOTALL),
}


# --------------------------------------------------------------------------- parsing


def answer_span(text: str) -> str:
    """The part of a completion that is the answer: the last ``<answer>`` tag's content, else
    the text without ``<think>`` blocks (an unclosed tag runs to the end).

    >>> answer_span("<think>maybe A</think> <answer> B </answer>"), answer_span("<think>A")
    ('B', '')
    """
    tagged = _ANSWER.findall(text)
    if tagged:
        return tagged[-1].strip()
    return _THINK.sub(" ", text).strip()


def normalize_answer(text: str) -> str:
    """Lower case, NFKC, punctuation (but decimal points) and articles removed, spaces collapsed.

    Text that is nothing but articles is kept (``"A"`` stays ``"a"``).

    >>> normalize_answer("The Dog-barking!"), normalize_answer("3.5 s.")
    ('dog barking', '3.5 s')
    """
    text = _PUNCT.sub(" ", unicodedata.normalize("NFKC", str(text)).lower())
    return " ".join(_ARTICLES.sub(" ", text).split()) or " ".join(text.split())


def parse_choice_letter(text: str, options: Sequence[str] | None = None) -> str | None:
    """The option a completion chooses, as a letter, or None when it chooses none or several.

    Tried in order on the answer span: a lone letter; "answer/option/choice (is) X"; a
    leading "X)" / "(X)" / "X."; one bracketed "(X)"; the text of one option (``options``).

    >>> [parse_choice_letter(t) for t in ["b", "(C) rain", "Answer: D", "A or B", "I think so"]]
    ['B', 'C', 'D', None, None]
    >>> parse_choice_letter("It is the dog barking.", ["dog", "dog barking", "rain", "horn"])
    'B'
    """
    span = _MARKUP.sub("", answer_span(text))
    only = _ONLY_LETTER.match(span)
    if only:
        return only.group(1).upper()
    for pattern in (_KEYWORD_LETTER, _LEADING_LETTER, _BRACKETED_LETTER):
        found = set(pattern.findall(span))
        if found:
            return found.pop() if len(found) == 1 else None
    return _option_by_text(span, options) if options else None


def _option_by_text(span: str, options: Sequence[str]) -> str | None:
    said = normalize_answer(span)
    keys = [normalize_answer(o) for o in options]
    if said in keys:
        return LETTERS[keys.index(said)] if keys.count(said) == 1 else None
    padded = f" {said} "
    named = [k for k in keys if k and f" {k} " in padded]
    named = [k for k in named if not any(k != other and f" {k} " in f" {other} "
                                         for other in named)]  # "dog" inside "dog barking"
    if len(set(named)) == 1 and keys.count(named[0]) == 1:
        return LETTERS[keys.index(named[0])]
    return None


def parse_number(text: str) -> float | None:
    """The first number in the answer span, in seconds when it has a unit of time.

    >>> [parse_number(t) for t in ["3.5s", "It lasts 2 seconds, not 3", "1.5 min", "two",
    ...                            "250 ms", "3 sounds", "none"]]
    [3.5, 2.0, 90.0, 2.0, 0.25, 3.0, None]
    """
    found = _NUMBER.search(answer_span(text))
    if found is None:
        return None
    number = found.group("num").lower()
    value = float(_WORDS.index(number)) if number in _WORDS else float(number)
    unit = (found.group("unit") or "s").lower()
    return value * _UNITS[unit]


def _truth_index(answer: Any, options: Sequence[str] | None) -> int | None:
    text = str(answer).strip()
    letter = _ONLY_LETTER.match(text)
    if options:
        keys = [normalize_answer(o) for o in options]
        if normalize_answer(text) in keys:
            return keys.index(normalize_answer(text))
    return LETTERS.index(letter.group(1).upper()) if letter else None


def _as_number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return parse_number(str(value))


# --------------------------------------------------------------------------- one row


def _choice(text: str, answer: Any, options: Sequence[str] | None) -> float | None:
    if answer is None:
        return None
    truth = _truth_index(answer, options)
    if truth is None:  # an answer given as text, without options to letter it
        return float(normalize_answer(answer_span(text)) == normalize_answer(str(answer)))
    return float(parse_choice_letter(text, options) == LETTERS[truth])


def _numeric(text: str, answer: Any, tolerance: float | None, abs_tol: float,
             rel_tol: float) -> float | None:
    truth = _as_number(answer)
    if truth is None:
        return None
    allowed = max(abs_tol, rel_tol * abs(truth)) if tolerance is None else float(tolerance)
    said = parse_number(text)
    return float(said is not None and abs(said - truth) <= allowed + 1e-9)


def _open(text: str, answer: Any) -> float | None:
    if answer is None:
        return None
    accepted = [answer] if isinstance(answer, str) else list(answer)
    said = normalize_answer(answer_span(text))
    return float(bool(said) and said in {normalize_answer(str(a)) for a in accepted})


def _column(values: Sequence[Any] | None, completions: Sequence[Any], name: str) -> list[Any]:
    if values is None:
        return [None] * len(completions)
    return [value for _, value in paired(completions, values, name)]


# --------------------------------------------------------------------------- rewards


def choice_correct(
    completions: Sequence[Any], *, answer: Sequence[str | None],
    options: Sequence[Sequence[str] | None] | None = None, **_: Any,
) -> list[float | None]:
    """1.0 when the completion chooses the row's right option, else 0.0 (``None``: no answer).

    >>> choice_correct(["<answer>B</answer>", "B) dog", "It's dog.", "A"],
    ...                answer=["B", "B", "B", None], options=[["cat", "dog", "owl", "cow"]] * 4)
    [1.0, 1.0, 1.0, None]
    """
    rows = paired(completions, answer, "answer")
    opts = _column(options, completions, "options")
    return [_choice(text, truth, row_options) for (text, truth), row_options in zip(rows, opts,
                                                                                     strict=True)]


def numeric_correct(
    completions: Sequence[Any], *, answer: Sequence[float | str | None],
    tolerance: Sequence[float | None] | None = None, abs_tol: float = 0.5, rel_tol: float = 0.1,
    **_: Any,
) -> list[float | None]:
    """1.0 when the completion's first number is within tolerance of the row's answer.

    >>> numeric_correct(["2", "three", "<answer>2.4 s</answer>"], answer=[2, 2, "2"],
    ...                 tolerance=[0, 0, None])
    [1.0, 0.0, 1.0]
    """
    rows = paired(completions, answer, "answer")
    tols = _column(tolerance, completions, "tolerance")
    return [_numeric(text, truth, tol, abs_tol, rel_tol)
            for (text, truth), tol in zip(rows, tols, strict=True)]


def open_answer_match(
    completions: Sequence[Any], *, answer: Sequence[str | Sequence[str] | None], **_: Any,
) -> list[float | None]:
    """1.0 when the answer span equals the row's answer (or one of its list) once normalised.

    >>> open_answer_match(["The dog.", "<answer>a Dog</answer>", "a dog and rain", "rain"],
    ...                   answer=["dog", "dog", "dog", ["rain", "rainfall"]])
    [1.0, 1.0, 0.0, 1.0]
    """
    return [_open(text, truth) for text, truth in paired(completions, answer, "answer")]


def answer_correct(
    completions: Sequence[Any], *, answer: Sequence[Any],
    answer_type: Sequence[Literal["choice", "number", "text"] | None],
    options: Sequence[Sequence[str] | None] | None = None,
    tolerance: Sequence[float | None] | None = None, abs_tol: float = 0.5, rel_tol: float = 0.1,
    **_: Any,
) -> list[float | None]:
    """Each row's answer scored by its ``answer_type``: ``"choice"``, ``"number"`` or ``"text"``.

    >>> answer_correct(["(C)", "4.2 seconds", "rain"], answer=["C", "4", "rain"],
    ...                answer_type=["choice", "number", "text"], tolerance=[None, 0.5, None])
    [1.0, 1.0, 1.0]
    """
    rows = paired(completions, answer, "answer")
    kinds = _column(answer_type, completions, "answer_type")
    opts = _column(options, completions, "options")
    tols = _column(tolerance, completions, "tolerance")
    scores: list[float | None] = []
    for row, ((text, truth), kind, row_options, tol) in enumerate(zip(rows, kinds, opts, tols,
                                                                      strict=True)):
        if kind == "choice":
            scores.append(_choice(text, truth, row_options))
        elif kind == "number":
            scores.append(_numeric(text, truth, tol, abs_tol, rel_tol))
        elif kind == "text":
            scores.append(_open(text, truth))
        elif kind is None and truth is None:
            scores.append(None)
        else:
            raise ValueError(f"answer_type of row {row} is {kind!r}; expected 'choice', "
                             "'number' or 'text'")
    return scores


def answer_format(
    completions: Sequence[Any], *, think: Literal["required", "optional", "none"] = "required",
    **_: Any,
) -> list[float]:
    """1.0 for ``<think>...</think><answer>...</answer>`` and nothing else, with an answer.

    ``think``: ``"required"`` (R1-AQA), ``"optional"``, or ``"none"`` (the answer tag alone).

    >>> answer_format(["<think>x</think><answer>B</answer>", "<answer>B</answer>",
    ...                "<think>x</think><answer> </answer>", "B"])
    [1.0, 0.0, 0.0, 0.0]

    What the datasets' prompts ask for scores 1.0; text after the answer, or the answer
    inside the thinking, does not:

    >>> answer_format(["<think>Music starts at 0.7 s, speech at 1.0 s.</think>\\n"
    ...                "<answer>A</answer>",
    ...                "<think>x</think><answer>A</answer> Hope this helps!",
    ...                "<think>x <answer>A</answer></think>"])
    [1.0, 0.0, 0.0]
    >>> answer_format(["<answer>B</answer>"], think="optional")
    [1.0]
    """
    if think not in _FORMATS:
        raise ValueError(f"think must be 'required', 'optional' or 'none'; got {think!r}")
    pattern = _FORMATS[think]
    scores = []
    for text in completion_texts(completions):
        match = pattern.fullmatch(text)
        scores.append(float(match is not None and bool(match.group(1).strip())))
    return scores
