"""The blind control: each multiple-choice question put to the text LLM without the video.

A question the text alone answers (the right option is the longest, the only one that says
"keeps moving", the only one about the objects the question names) teaches a model to read
options, not frames; Omni-R1 found much of a benchmark's gain came from such questions. So
each question is asked blind, with its options and a note that the video is not there:

* with a :class:`models.text_llm.CausalTextLLM` the blind **pick** is the letter it finds
  most likely (:func:`models.choice_scores.letter_probabilities`), and the **margin** is the
  right letter's probability minus the best other letter's (above 0: it picks the right one;
  near 0 from below: it nearly does);
* with another text LLM (no logits) the pick is read from its text (a letter, "B)", or the
  text of one option); an answer naming none is no pick, and there is no margin;
* a question whose blind pick is right is **answerable blind**; the dataset leaves such
  questions out by default.

Example (a stub that always answers "B", so it is right on the first question only):
    >>> from labeling.questions.choices import MultipleChoice
    >>> class Stub:
    ...     name = "stub"
    ...     def generate(self, prompts, *, max_new_tokens=64, temperature=0.0):
    ...         return ["B" for _ in prompts]
    >>> qs = [MultipleChoice("Next?", ("up", "down", "left", "right"), "B"),
    ...       MultipleChoice("Then?", ("up", "down", "left", "right"), "C")]
    >>> [(r.pick, r.answered(q.answer), r.method) for r, q in zip(blind_control(Stub(), qs), qs)]
    [('B', True, 'generated_text'), ('B', False, 'generated_text')]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from labeling.questions.choices import LETTERS, MultipleChoice
from labeling.questions.validate import check_choice
from models.choice_scores import letter_probabilities

BLIND_NOTE = ("You cannot see the video this question is about. Answer anyway, with the letter "
              "of the option you find most likely.")


@dataclass(frozen=True)
class BlindResult:
    """What the text LLM picked without the video, how sure it was, and how it was read."""

    pick: str | None
    """The letter it picked; None when its answer named no single option."""
    probabilities: tuple[float, ...] | None = None
    """Its probability of each letter A-D (None without logits)."""
    margin: float | None = None
    """P(right letter) - max P(other letter) (None without logits)."""
    method: str = "generated_text"
    """``letter_probabilities`` or ``generated_text``."""
    said: str | None = None
    """Its text, when the pick was read from text."""

    def answered(self, answer: str) -> bool:
        """Whether the blind pick is the right letter."""
        return self.pick is not None and self.pick == answer


def blind_prompt(choice: MultipleChoice) -> str:
    """The note, the question, its options and the answering hint.

    >>> print(blind_prompt(MultipleChoice("Next?", ("up", "down", "left", "right"), "A")))
    ... # doctest: +ELLIPSIS
    You cannot see the video ... most likely.
    Next?
    A. up
    B. down
    C. left
    D. right
    Answer with the letter of the correct option.
    """
    return f"{BLIND_NOTE}\n{choice.prompt}"


def read_letter(text: str, choice: MultipleChoice) -> str | None:
    """The option a blind answer names (its first line: a letter, "B)", or an option's text).

    >>> mc = MultipleChoice("Next?", ("up", "down", "left", "right"), "A")
    >>> read_letter("(c)", mc), read_letter("down\\nbecause", mc), read_letter("A or B", mc)
    ('C', 'B', None)
    """
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    if not lines:
        return None
    checked = check_choice({"question": choice.question, "options": list(choice.options),
                            "answer": lines[0].strip()})
    return checked.choice.answer if checked.ok else None


def blind_control(llm: Any, choices: Sequence[MultipleChoice], *, max_new_tokens: int = 8
                  ) -> list[BlindResult]:
    """One :class:`BlindResult` per question, in order."""
    if not choices:
        return []
    prompts = [blind_prompt(c) for c in choices]
    scores = letter_probabilities(llm, prompts, LETTERS)
    if scores is not None:
        return [_from_scores(c, probs) for c, probs in zip(choices, scores, strict=True)]
    texts = llm.generate(prompts, max_new_tokens=max_new_tokens)
    return [BlindResult(read_letter(t, c), said=t) for c, t in zip(choices, texts, strict=True)]


def _from_scores(choice: MultipleChoice, probs: Sequence[float]) -> BlindResult:
    best = max(range(len(LETTERS)), key=lambda i: (probs[i], -i))
    right = choice.index
    other = max(p for i, p in enumerate(probs) if i != right)
    return BlindResult(LETTERS[best], tuple(round(float(p), 6) for p in probs),
                       round(float(probs[right] - other), 6), "letter_probabilities")
