"""A multiple-choice question as a language model writes it, parsed and checked.

The video chain asks a text LLM for one question in a JSON schema::

    {"question": "...", "options": ["...", "...", "...", "..."], "answer": "B"}

Models wrap JSON in code fences or prose, letter their options, answer with the letter or
the option's text. :func:`parse_choice` finds the object in the text and :func:`check_choice`
checks it; neither raises on anything a model can write. Accepted forms:

* keys (any case): ``question`` (or ``q``); ``options`` (or ``choices``): a list of four, or
  an object keyed "A"–"D"; ``answer`` (or ``correct``, ``correct_answer``,
  ``correct_option``, ``answer_letter``);
* options may carry their own letter ("B) dog", "(B) dog", "B. dog"), which is removed;
  numbers are taken as their text;
* the answer: a letter ("B", "(B)", "B)", "b", "Answer: B", "B) dog"), the text of one option,
  or a list holding one of these.

Failures, each with a detail (reason codes):

* ``no_json``: no JSON object in the text; ``not_an_object``: JSON, but not an object (or a
  list of them);
* ``missing_question``: no question, or an empty one;
* ``missing_options``: no options, or not a list / lettered object; ``wrong_option_count``:
  not exactly four; ``empty_option``: an empty one, or one that is not text or a number;
  ``duplicate_options``: two options equal after :func:`~labeling.questions.choices.normalize_text`;
  ``option_repeats_question``: an option equal to the question;
* ``missing_answer``: no answer; ``multiple_answers``: several ("A and C", ``["A", "C"]``);
  ``answer_not_in_options``: neither a letter A–D nor an option's text;
  ``ambiguous_answer``: a letter and a text that name different options.

Example:
    >>> out = '''Here is the question:
    ... ```json
    ... {"question": "What happens next?", "options": ["A) he jumps", "B) he sits",
    ...  "C) he runs", "D) he falls"], "answer": "C"}
    ... ```'''
    >>> parsed = parse_choice(out)
    >>> parsed.ok, parsed.choice.answer_text
    (True, 'he runs')
    >>> bad = parse_choice('{"question": "Q?", "options": ["dog", "cat", "The cat!", "owl"], '
    ...                    '"answer": "A"}')
    >>> bad.reason, bad.detail
    ('duplicate_options', "options B and C are the same: 'cat' / 'The cat!'")
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labeling.questions.choices import LETTERS, MultipleChoice, normalize_text
from models.output import json_values

_MAX_CHARS = 100_000
_KEYS = {
    "question": ("question", "q"),
    "options": ("options", "choices"),
    "answer": ("answer", "correct", "correct_answer", "correct_option", "answer_letter"),
}
_LETTER = "ABCD"
# "B", "(B)", "B)", "B.", "[B]", "Answer: B", "Option B"
_LETTER_ONLY = re.compile(
    r"^\s*(?:(?:answer|option|choice)\s*(?:is)?\s*[:=\-]?\s*)?[(\[]?([A-Da-d])[)\].:]?\s*$",
    re.IGNORECASE)
# "B) dog", "(B) dog", "B. dog", "B: dog"
_LETTERED = re.compile(r"^\s*(?:\(([A-Da-d])\)|\[([A-Da-d])\]|([A-Da-d])[).:])\s*(.+?)\s*$",
                       re.DOTALL)
_SEVERAL = re.compile(r"^\s*\(?[A-D]\)?(?:\s*(?:,|/|&|and|or)\s*\(?[A-D]\)?)+\s*$",
                      re.IGNORECASE)


@dataclass(frozen=True)
class Checked:
    """The outcome: the question, or the reason (and detail) it was refused."""

    choice: MultipleChoice | None
    reason: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.choice is not None

    def row(self) -> dict[str, Any]:
        """Flat columns: the question's (empty when refused), ``valid``, ``reason``, ``detail``."""
        base = self.choice.row() if self.choice else {}
        return {**base, "valid": self.ok, "reason": self.reason, "detail": self.detail}


def _fail(reason: str, detail: str) -> Checked:
    return Checked(None, reason, detail)


def parse_choice(text: Any) -> Checked:
    """The first JSON object in a model's output that holds a question, checked.

    JSON inside code fences or prose is found; a list of objects gives its first. When no
    object looks like a question (has a question, options or answer key), the first object
    found is checked, so the failure says what is missing.

    >>> parse_choice("I cannot do that.").reason
    'no_json'
    >>> parse_choice('Sure! {"q": "Next?", "choices": {"A": 1, "B": 2, "C": 3, "D": 4}, '
    ...              '"correct": "4"}').choice.answer
    'D'
    """
    if not isinstance(text, str):
        return _fail("no_json", f"expected the model's text, got {type(text).__name__}")
    found: list[Any] = []
    for value in json_values(text[:_MAX_CHARS]):
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and _looks_like_question(item):
                return check_choice(item)
            found.append(item)
    if not found:
        return _fail("no_json", f"no JSON object in {len(text)} characters: {text[:80]!r}")
    return check_choice(found[0])


def check_choice(obj: Any) -> Checked:
    """Check one question object (already parsed JSON); see the module's reason codes.

    >>> ok = check_choice({"question": "Which?", "options": ["dog", "cat", "owl", "cow"],
    ...                    "answer": "(b)"})
    >>> ok.choice.answer, ok.choice.answer_text
    ('B', 'cat')
    >>> check_choice({"question": "Which?", "options": ["dog", "cat", "owl"],
    ...               "answer": "A"}).reason
    'wrong_option_count'
    >>> check_choice({"question": "Which?", "options": ["dog", "cat", "owl", "cow"],
    ...               "answer": "A or C"}).detail
    "answer 'A or C' names several options"
    """
    if isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    if not isinstance(obj, Mapping):
        return _fail("not_an_object", f"expected a JSON object, got {type(obj).__name__}: "
                                      f"{_short(obj)}")
    fields = {str(k).strip().lower(): v for k, v in obj.items()}
    question, options, answer = (_field(fields, name) for name in ("question", "options",
                                                                   "answer"))
    if not isinstance(question, str) or not question.strip():
        return _fail("missing_question", f"question is {_short(question)}")
    question = question.strip()
    checked = _check_options(options, question)
    if isinstance(checked, Checked):
        return checked
    index = _answer_index(answer, checked)
    if isinstance(index, Checked):
        return index
    return Checked(MultipleChoice(question, tuple(checked), LETTERS[index]))


def _field(fields: Mapping[str, Any], name: str) -> Any:
    return next((fields[k] for k in _KEYS[name] if k in fields), None)


def _looks_like_question(item: Mapping[Any, Any]) -> bool:
    keys = {str(k).strip().lower() for k in item}
    return any(k in keys for names in _KEYS.values() for k in names)


def _check_options(options: Any, question: str) -> list[str] | Checked:
    if isinstance(options, Mapping):
        keys = {str(k).strip().upper().strip("().:"): v for k, v in options.items()}
        if set(keys) != set(LETTERS):
            return _fail("wrong_option_count" if len(keys) != len(LETTERS) else "missing_options",
                         f"options keyed {sorted(map(str, options))}; expected A, B, C, D")
        options = [keys[letter] for letter in LETTERS]
    if not isinstance(options, list):
        return _fail("missing_options", f"options is {_short(options)}; expected a list of "
                                        f"{len(LETTERS)}")
    if len(options) != len(LETTERS):
        return _fail("wrong_option_count", f"{len(options)} options; expected {len(LETTERS)}")
    texts: list[str] = []
    for letter, option in zip(LETTERS, options, strict=True):
        text = _option_text(option, letter)
        if not text or not normalize_text(text):
            return _fail("empty_option", f"option {letter} is {_short(option)}")
        texts.append(text)
    keys = [normalize_text(t) for t in texts]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            j = keys.index(key)
            return _fail("duplicate_options", f"options {LETTERS[j]} and {LETTERS[i]} are the "
                                              f"same: {texts[j]!r} / {texts[i]!r}")
    if normalize_text(question) in keys:
        letter = LETTERS[keys.index(normalize_text(question))]
        return _fail("option_repeats_question", f"option {letter} repeats the question")
    return texts


def _option_text(option: Any, letter: str) -> str | None:
    if isinstance(option, bool) or not isinstance(option, str | int | float):
        return None
    text = str(option).strip()
    lettered = _LETTERED.match(text)
    if lettered and next(g for g in lettered.groups()[:3] if g).upper() == letter:
        text = lettered.group(4).strip()
    return text


def _answer_index(answer: Any, options: list[str]) -> int | Checked:
    if isinstance(answer, list):
        if len(answer) > 1:
            return _fail("multiple_answers", f"{len(answer)} answers: {_short(answer)}")
        answer = answer[0] if answer else None
    if isinstance(answer, bool) or not isinstance(answer, str | int | float):
        return _fail("missing_answer", f"answer is {_short(answer)}")
    text = str(answer).strip()
    if not text:
        return _fail("missing_answer", "answer is empty")
    keys = [normalize_text(o) for o in options]
    by_text = keys.index(normalize_text(text)) if normalize_text(text) in keys else None
    letter = _LETTER_ONLY.match(text)
    lettered = _LETTERED.match(text)
    if letter:
        by_letter = _LETTER.index(letter.group(1).upper())
    elif lettered:
        by_letter = _LETTER.index(next(g for g in lettered.groups()[:3] if g).upper())
        rest = normalize_text(lettered.group(4))
        if rest in keys and keys.index(rest) != by_letter:
            return _fail("ambiguous_answer", f"answer {text!r}: the letter names option "
                                             f"{LETTERS[by_letter]}, the text option "
                                             f"{LETTERS[keys.index(rest)]}")
    else:
        by_letter = None
    if by_text is not None and by_letter is not None and by_text != by_letter:
        return _fail("ambiguous_answer", f"answer {text!r} is option {LETTERS[by_text]}'s text "
                                         f"and the letter of option {LETTERS[by_letter]}")
    if by_text is not None:
        return by_text
    if by_letter is not None:
        return by_letter
    if _SEVERAL.match(text):
        return _fail("multiple_answers", f"answer {text!r} names several options")
    return _fail("answer_not_in_options", f"answer {text!r} is neither a letter A-D nor the "
                                          "text of an option")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
