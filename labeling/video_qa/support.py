"""Is an option supported by the truth? Word overlap between the option and the description of
what really happens (the last part of the video).

Policy:

* a sentence's **support** by another is the share of its content words
  (:func:`content_words`: lower case, no punctuation, no function or aspect words, a light
  suffix stem so "moves", "moving" and "keeps moving" meet) and of its pairs of neighbouring
  content words (:func:`terms`) that the other holds too; an option's support by the truth
  is the mean over the option's sentences of the support by the truth's best-matching
  sentence. 1.0: every word and pair of each sentence is in one sentence of the truth; 0.0:
  none (or it has no content word). Pairs and sentences keep a long truth about many things
  from supporting an option that reuses its words in other combinations: "the blue square
  moves up" is supported 0.57 by "The blue triangle moves up. The purple square stops.",
  not 1, though every word is there;
* a multiple-choice question is **supported** when its answer's support is at least
  ``min_support`` and every distractor's is below the answer's by at least ``margin``: the
  truth then points at one option. Otherwise it is refused: ``answer_unsupported`` (the
  truth does not hold the answer) or ``distractor_supported`` (the truth holds a distractor
  as well as the answer: two options could be right);
* ``answer_in_question``: the question already says the answer (its words, in order);
* word overlap is a screen, not a proof: a distractor that says the same with other words
  passes it. Human validation (a yes/no per question) is the proof.

Example:
    >>> truth = "The red circle keeps moving down and to the right."
    >>> support("the red circle moves down and to the right", truth)
    1.0
    >>> support("the red circle moves right and down", truth)  # 2 of its 9 terms are pairs it lacks
    0.7778
    >>> support("The red circle bounces off the top edge.", truth)
    0.3333
    >>> check_support("What will the red circle do next?", "It moves down and to the right",
    ...               ["It moves up", "It bounces off the left edge", "It stops"], truth)
    Support(answer=1.0, distractors=(0.3333, 0.0, 0.0), reason=None, detail='')
    >>> check_support("What will the red circle do next?", "It moves down and to the right",
    ...               ["It moves down", "It bounces off the left edge", "It stops"], truth).detail
    "distractor 'It moves down' is supported 1 by the truth, the answer 1: the margin is 0.1"
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from labeling.questions.choices import normalize_text

FUNCTION_WORDS = frozenset("""
a an the and or but nor of to in on at by for with from into onto off over under then than
it its itself they them their he she him her his is are was were be been being am do does did
this that these those there here as so not no yes very just also too will would can could
shall should may might must has have had what which who whom whose when where why how
keep keeps kept keeping continue continues continued continuing still again
""".split())
"""Words too common to tell options apart ("off", "then" and "not" included), and aspect words
("keeps moving" is "moves")."""

_SUFFIXES = ("ing", "ed", "es", "s")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


def stem(word: str) -> str:
    """A light suffix stem: -ing, -ed, -es, -s, then a final -e, while 3 letters remain.

    >>> [stem(w) for w in ["moves", "moving", "moved", "move", "bounces", "edge", "bus"]]
    ['mov', 'mov', 'mov', 'mov', 'bounc', 'edg', 'bus']
    """
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def content_words(text: str) -> list[str]:
    """The stemmed words of ``text`` that are not function words, in order.

    >>> content_words("The circle bounces off the top edge, then moves left.")
    ['circl', 'bounc', 'top', 'edg', 'mov', 'left']
    """
    return [stem(w) for w in normalize_text(text).split() if w not in FUNCTION_WORDS]


def terms(text: str) -> set[str | tuple[str, str]]:
    """The content words of ``text`` and its pairs of neighbouring content words.

    >>> sorted(terms("The blue square moves."), key=str)
    [('blu', 'squar'), ('squar', 'mov'), 'blu', 'mov', 'squar']
    """
    words = content_words(text)
    return {*words, *zip(words, words[1:], strict=False)}


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` that have a content word (split after . ! ? ;).

    >>> sentences("The ball rolls. Then it stops; the end!  ")
    ['The ball rolls.', 'Then it stops;', 'the end!']
    """
    return [part for part in _SENTENCE_END.split(text.strip()) if content_words(part)]


def support(option: str, truth: str) -> float:
    """The mean over ``option``'s sentences of the share of its distinct :func:`terms` that
    the best-matching sentence of ``truth`` holds (0.0 without content words), to 4 places.

    >>> support("The blue square moves up.", "The blue triangle moves up. The purple square stops.")
    0.5714
    """
    held = [terms(s) for s in sentences(truth)]
    shares = []
    for said in (terms(s) for s in sentences(option)):
        shares.append(max((len(said & h) / len(said) for h in held), default=0.0))
    return round(sum(shares) / len(shares), 4) if shares else 0.0


@dataclass(frozen=True)
class Support:
    """The answer's and each distractor's support, and the refusal when there is one."""

    answer: float
    distractors: tuple[float, ...]
    reason: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None


def check_support(question: str, answer: str, distractors: Sequence[str], truth: str, *,
                  min_support: float = 0.5, margin: float = 0.1) -> Support:
    """Whether the truth supports ``answer`` and no distractor as well (see the policy)."""
    scored = Support(support(answer, truth), tuple(support(d, truth) for d in distractors))

    def refuse(reason: str, detail: str) -> Support:
        return Support(scored.answer, scored.distractors, reason, detail)

    said = f" {normalize_text(answer)} "
    if content_words(answer) and said in f" {normalize_text(question)} ":
        return refuse("answer_in_question", f"the question {question!r} says the answer "
                                            f"{answer!r}")
    if scored.answer < min_support:
        return refuse("answer_unsupported", f"answer {answer!r} is supported {scored.answer:g} "
                                            f"by the truth; at least {min_support:g} needed")
    for text, value in zip(distractors, scored.distractors, strict=True):
        if value > scored.answer - margin:
            return refuse("distractor_supported", f"distractor {text!r} is supported {value:g} "
                                                  f"by the truth, the answer {scored.answer:g}: "
                                                  f"the margin is {margin:g}")
    return scored
