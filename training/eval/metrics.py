"""ASR error rates: the one place WER and CER are computed in rlfoundry.

Evaluation uses it now and the RL rewards will later, so every number the
project reports goes through the same normalisation and the same alignment.

Pure code: no Dagster and no torch. The alignment is jiwer's (Levenshtein via
rapidfuzz), so per-utterance and corpus counts are identical to
``jiwer.process_words`` / ``jiwer.process_characters`` on the same
normalised strings. Scores per group, tables and charts of them are in
:mod:`training.eval.report`.

Conventions
-----------
* Text is normalised with :func:`normalize` (Whisper's English normaliser)
  before scoring, unless a caller passes ``normalized=True``.
* Words are the whitespace-separated tokens of the normalised text.
  Characters are those of the normalised text with leading/trailing
  whitespace removed, *including* the single spaces between words (jiwer's
  ``cer`` default).
* Corpus (and group) scores are pooled: counts are summed over utterances
  and the rate is taken once, ``WER = (S + D + I) / N`` with ``N`` the total
  number of reference words. This is what ``jiwer.wer(list, list)`` gives; it
  is *not* the mean of per-utterance WERs.

Edge cases (all deliberate and tested)
--------------------------------------
* Reference empty after normalisation (e.g. ``"Um."``, ``"[noise]"``): it
  contributes ``ref_words = 0`` and every hypothesis word is an insertion.
  In a corpus with other, non-empty references it therefore adds to the
  numerator only, and corpus WER stays finite.
* Hypothesis empty after normalisation: every reference word is a deletion.
* Both empty: no errors (``wer == 0.0``).
* Rate with ``N == 0`` (one empty reference, or a corpus / group whose
  references are all empty): ``0.0`` when there are no errors, otherwise
  ``float("inf")`` -- inserting words into silence has no finite rate. jiwer
  4.0.0 returns the raw insertion *count* in this case, which is not a rate.
  ``to_dict`` / ``to_rows`` write a non-finite rate as ``None`` so the
  output stays strict JSON, and the text tables print ``inf``.
* No rows at all: every count is 0 and ``wer == cer == 0.0``.
* A hypothesis of ``None`` is treated as ``""`` (the model produced nothing).
  A reference of ``None`` or any non-string raises ``TypeError``: an
  unlabelled row in an evaluation set is a data bug, not an empty transcript.

Example:
    >>> normalize("Twenty-five dollars, please!")
    '$25 please'
    >>> c = error_counts("The colour is red.", "the color is bread")
    >>> (c.substitutions, c.deletions, c.insertions, c.wer)
    (1, 0, 0, 0.25)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jiwer

__all__ = [
    "ErrorCounts",
    "corpus_scores",
    "error_counts",
    "json_rate",
    "normalize",
]

# Typographic apostrophes folded to ASCII before Whisper's normaliser runs;
# see ``normalize``.
_APOSTROPHES = re.compile("[\u2018\u2019\u02bc]")


# --------------------------------------------------------------------------- normalisation


@lru_cache(maxsize=1)
def _normalizer():
    # Loading english.json (~1,700 British->American spellings) and compiling
    # the rules costs a few ms: build it once per process.
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalize(text: str) -> str:
    """Normalise English text for WER/CER the way Whisper's evaluation does.

    This is ``whisper_normalizer.english.EnglishTextNormalizer`` (PyPI
    ``whisper-normalizer`` 0.1.15, a verbatim copy of
    ``whisper/normalizers/english.py`` from openai/whisper), with two
    documented rlfoundry additions marked (+). Steps, in order:

    1. (+) Fold typographic apostrophes ``’ ‘ ʼ`` (U+2019, U+2018, U+02BC) to
       ``'``. Whisper's rules only know the ASCII apostrophe, so without this
       ``"it’s"`` becomes ``"it s"`` while ``"it's"`` becomes ``"it is"``.
    2. Lower-case.
    3. Delete anything in square or angle brackets (``"[noise]"``,
       ``"<unk>"``) and in parentheses (``"(laughs)"``).
    4. Delete the fillers ``hmm mm mhm mmm uh um`` as whole words
       (``"uh-huh"`` -> ``"huh"``; ``"er"``, ``"ah"``, ``"eh"`` are kept).
    5. Remove whitespace before an apostrophe, then expand contractions and
       abbreviations by regex: ``won't`` -> ``will not``, ``can't`` ->
       ``can not``, ``let's`` -> ``let us``, ``gonna`` -> ``going to``,
       ``wanna``/``gotta``/``kinda``/``dunno``..., ``cause`` -> ``because``,
       ``ma'am`` -> ``madam``; titles ``mr mrs st dr prof capt gov ald gen sen
       rep pres rev hon asst assoc lt col jr sr esq`` -> ``mister missus saint
       doctor ...`` (as whole words, with or without a period); then generic
       ``n't -> not``, ``'re -> are``, ``'s -> is``, ``'d -> would``,
       ``'ll -> will``, ``'ve -> have``, ``'m -> am`` (``'s been``/``'s got``
       -> ``has``, ``'d been``/``'d gone``/``'d done`` -> ``had``).
    6. Remove commas between digits (``"1,000"`` -> ``"1000"``) and periods
       not followed by a digit (``"3.14"`` keeps its point).
    7. Unicode NFKD; drop combining marks (``"café"`` -> ``"cafe"``,
       ``æ ø ß ł ...`` spelled out); replace every other mark, symbol or
       punctuation character with a space, except ``. % $ ¢ € £``.
    8. Numbers (``EnglishNumberNormalizer``): spelled-out numbers become
       digits (``"twenty five"``/``"Twenty-five"`` -> ``"25"``, ``"one
       hundred and one"`` -> ``"101"``, ``"three point one four"`` ->
       ``"3.14"``, ``"and a half"`` -> ``".5"``); successive single digits are
       read as a nominal string (``"one two three"`` -> ``"123"``, ``"one oh
       one"`` -> ``"101"``; ``"oh"``/``"o"``/``"zero"`` -> ``"0"``); ordinals
       and plurals keep a suffix (``"first"`` -> ``"1st"``, ``"nineteen
       sixties"`` -> ``"1960s"``); currency words after a number become a
       prefix symbol (``"twenty five dollars"`` -> ``"$25"``, ``"$2 and 7
       cents"`` -> ``"$2.07"``, ``"50 cents"`` -> ``"¢50"``), ``"percent"``
       /``"per cent"`` -> ``"%"``; ``plus/minus`` before a number -> sign.
       Finally a standalone ``1`` is written ``one`` (``"1"`` and ``"one"``
       both give ``"one"``; ``"ones"`` stays).
    9. British -> American spelling from the package's ``english.json``
       (``colour`` -> ``color``, ``centre`` -> ``center``, ``analyse`` ->
       ``analyze``, ``grey`` -> ``gray``), word by word.
    10. Drop ``. $ ¢ € £`` not followed by a digit and ``%`` not preceded by
        one; collapse whitespace runs to one space.
    11. (+) Strip leading/trailing whitespace (Whisper can leave a trailing
        space, e.g. ``"abc%"`` -> ``"abc "``; it changes no word count but
        would count as a character for CER).

    The empty string stays empty; a string of fillers or bracketed events
    normalises to ``""``.

    Known quirks of Whisper's rules, kept for comparability with published
    Whisper numbers (both sides get them, so they cost errors only when
    reference and hypothesis use different surface forms):

    * spelled digit runs merge into one token but spaced digits do not:
      ``"one two"`` -> ``"12"`` while ``"1 2"`` -> ``"one 2"`` (2 word errors
      apart); ``"five five five one two one two"`` -> ``"5551212"`` vs
      ``"555 1212"``;
    * ``"cause"`` always becomes ``"because"`` (``"the root cause"`` ->
      ``"the root because"``); ``st rep col gen ...`` are expanded even when
      not abbreviations (``"Main St"`` -> ``"main saint"``, ``"one more
      rep"`` -> ``"one more representative"``);
    * ``"a second ago"`` -> ``"a 2nd ago"``; ``"one o'clock"`` -> ``"10
      clock"``; ``"two ones"`` -> ``"21s"``; ``"1.5"`` -> ``"one.5"``;
    * ``"24/7"`` -> ``"24 7"``; ``"U.S.A."`` -> ``"u s a"`` (three words); a
      lone ``"$"`` at the end of a string survives.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize() takes a str, got {type(text).__name__}")
    if not text:
        return ""
    return _normalizer()(_APOSTROPHES.sub("'", text)).strip()


# --------------------------------------------------------------------------- counts


def _rate(errors: int, total: int) -> float:
    if total > 0:
        return errors / total
    return 0.0 if errors == 0 else math.inf


def json_rate(rate: float) -> float | None:
    """A rate for strict JSON: ``None`` when it is infinite."""
    return rate if math.isfinite(rate) else None


@dataclass(frozen=True)
class ErrorCounts:
    """Word and character edit counts for one utterance or a pooled set.

    ``substitutions``, ``deletions``, ``insertions`` and ``hits`` are word
    level; ``ref_words == hits + substitutions + deletions``. ``ref_chars`` is
    the length of the normalised reference (spaces between words included)
    and ``char_errors`` the character-level S + D + I. Counts add with ``+``
    and ``sum(..., ErrorCounts())``.
    """

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    hits: int = 0
    ref_words: int = 0
    ref_chars: int = 0
    char_errors: int = 0

    @property
    def errors(self) -> int:
        """Word errors S + D + I (the WER numerator)."""
        return self.substitutions + self.deletions + self.insertions

    @property
    def hyp_words(self) -> int:
        return self.hits + self.substitutions + self.insertions

    @property
    def wer(self) -> float:
        """(S + D + I) / N; 0.0 if N == 0 and no errors, ``inf`` if N == 0 with errors."""
        return _rate(self.errors, self.ref_words)

    @property
    def cer(self) -> float:
        """Character errors / reference characters, with the same N == 0 rule as ``wer``."""
        return _rate(self.char_errors, self.ref_chars)

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        if not isinstance(other, ErrorCounts):
            return NotImplemented
        return ErrorCounts(
            substitutions=self.substitutions + other.substitutions,
            deletions=self.deletions + other.deletions,
            insertions=self.insertions + other.insertions,
            hits=self.hits + other.hits,
            ref_words=self.ref_words + other.ref_words,
            ref_chars=self.ref_chars + other.ref_chars,
            char_errors=self.char_errors + other.char_errors,
        )

    def __radd__(self, other: Any) -> ErrorCounts:
        if other == 0:  # lets plain sum() work
            return self
        return NotImplemented

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: rates as floats (``None`` when infinite) and all counts."""
        return {
            "wer": json_rate(self.wer),
            "cer": json_rate(self.cer),
            "substitutions": self.substitutions,
            "deletions": self.deletions,
            "insertions": self.insertions,
            "hits": self.hits,
            "ref_words": self.ref_words,
            "ref_chars": self.ref_chars,
            "char_errors": self.char_errors,
        }


def _check_texts(reference: Any, hypothesis: Any) -> tuple[str, str]:
    if not isinstance(reference, str):
        raise TypeError(f"reference must be a str, got {type(reference).__name__}")
    if hypothesis is None:
        hypothesis = ""
    elif not isinstance(hypothesis, str):
        raise TypeError(f"hypothesis must be a str or None, got {type(hypothesis).__name__}")
    return reference, hypothesis


def error_counts(
    reference: str, hypothesis: str | None, *, normalized: bool = False
) -> ErrorCounts:
    """Edit counts of one hypothesis against one reference.

    Both strings go through :func:`normalize` unless ``normalized=True`` (then
    they are scored as given, split on whitespace for words, stripped for
    characters). Counts equal ``jiwer.process_words`` and
    ``jiwer.process_characters`` on the normalised strings; see the module
    docstring for empty references / hypotheses.
    """
    reference, hypothesis = _check_texts(reference, hypothesis)
    if not normalized:
        reference, hypothesis = normalize(reference), normalize(hypothesis)
    words = jiwer.process_words(reference, hypothesis)
    chars = jiwer.process_characters(reference, hypothesis)
    return ErrorCounts(
        substitutions=words.substitutions,
        deletions=words.deletions,
        insertions=words.insertions,
        hits=words.hits,
        ref_words=words.hits + words.substitutions + words.deletions,
        ref_chars=chars.hits + chars.substitutions + chars.deletions,
        char_errors=chars.substitutions + chars.deletions + chars.insertions,
    )


def corpus_scores(
    references: Iterable[str],
    hypotheses: Iterable[str | None],
    *,
    normalized: bool = False,
) -> ErrorCounts:
    """Pooled counts over paired utterances: WER = sum(S+D+I) / sum(N).

    Equals ``jiwer.wer(refs, hyps)`` / ``jiwer.cer(refs, hyps)`` on the
    normalised lists whenever at least one reference is non-empty. Raises
    ``ValueError`` if the two sequences differ in length.
    """
    refs, hyps = list(references), list(hypotheses)
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    total = ErrorCounts()
    for ref, hyp in zip(refs, hyps, strict=True):
        total = total + error_counts(ref, hyp, normalized=normalized)
    return total
