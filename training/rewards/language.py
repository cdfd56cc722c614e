"""Language match: is the transcript in the language the clip is in?

Whisper sometimes answers English speech in another language (it translates,
or it guesses the language wrong on noisy audio). WER punishes that, but only
as "many substitutions"; a separate 0/1 component makes the failure visible in
the logs and lets a reward penalise it on purpose.

No model and no network: two cheap signals.

1. Script, from Unicode character names: each letter is Latin, Cyrillic, CJK,
   Arabic, Devanagari, ... The text matches when at least half of its letters
   are in a script the expected language is written in.
2. For Latin-script languages with a stop-word list (en, es, fr, de, it, pt,
   nl), the most frequent function words: the text fails when another listed
   language has strictly more stop words in it than the expected one. Ties,
   and texts with no stop words at all (``"yes"``, a name), go to the
   expected language: too little evidence to call it wrong.

It cannot tell apart languages that share a script and have no stop-word list
(Swedish vs Danish), nor Chinese from kanji-only Japanese.

``language_match`` has TRL's reward signature (see :mod:`training.rewards.components`): each
row's language arrives in the ``language`` column.

Example:
    >>> language_match(["The cat is on the mat.", "El gato está en la casa."], language=["en"] * 2)
    [1.0, 0.0]
    >>> language_match(["Кошка сидит на ковре."], language=["ru"])
    [1.0]
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Any

from training.rewards.components import paired

__all__ = ["SCRIPTS", "STOP_WORDS", "detect_script", "language_match", "stop_word_counts"]

_LATIN = frozenset({"LATIN"})


def _codes(codes: str, scripts: frozenset[str]) -> dict[str, frozenset[str]]:
    return dict.fromkeys(codes.split(), scripts)


#: ISO 639-1 code -> the scripts (first word of the Unicode character name) it is written in.
SCRIPTS: dict[str, frozenset[str]] = {
    **_codes("en es fr de it pt nl sv da no nb nn fi is pl cs sk sl hr bs ro hu tr", _LATIN),
    **_codes("et lv lt ca eu gl ga cy id ms tl vi sw af sq mt az uz", _LATIN),
    **_codes("ru uk be bg mk kk ky mn tg", frozenset({"CYRILLIC"})),
    "sr": frozenset({"CYRILLIC", "LATIN"}),
    "el": frozenset({"GREEK"}),
    **_codes("ar fa ur ps sd", frozenset({"ARABIC"})),
    **_codes("he yi", frozenset({"HEBREW"})),
    **_codes("hi mr ne sa", frozenset({"DEVANAGARI"})),
    **_codes("bn as", frozenset({"BENGALI"})),
    "pa": frozenset({"GURMUKHI"}),
    "gu": frozenset({"GUJARATI"}),
    "ta": frozenset({"TAMIL"}),
    "te": frozenset({"TELUGU"}),
    "kn": frozenset({"KANNADA"}),
    "ml": frozenset({"MALAYALAM"}),
    "si": frozenset({"SINHALA"}),
    "th": frozenset({"THAI"}),
    "lo": frozenset({"LAO"}),
    "my": frozenset({"MYANMAR"}),
    "km": frozenset({"KHMER"}),
    "ka": frozenset({"GEORGIAN"}),
    "hy": frozenset({"ARMENIAN"}),
    "am": frozenset({"ETHIOPIC"}),
    "zh": frozenset({"CJK"}),
    "ja": frozenset({"CJK", "HIRAGANA", "KATAKANA"}),
    "ko": frozenset({"HANGUL", "CJK"}),
}

#: Frequent function words, lower-case and without accents. A word may be in several lists.
STOP_WORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "the and of to is in that it was for on are with as i his they be at have this "
        "from or had by not but what we you he she were there which their will would been has "
        "my your do can could should an if so about out up them then than when who how me him "
        "her our just like these those its did does into because very",
        "es": "el la los las de del que y en un una es por con para no se lo le su al como mas "
        "pero sus yo esta estan son muy tambien hay ya fue ser tiene todo cuando porque donde "
        "nos mi me te",
        "fr": "le la les de des du un une et est en que qui dans pour pas sur au aux ce cette "
        "il elle ils nous vous je tu ne se sont avec mais ou son sa ses par plus c l j qu on y "
        "etait ete",
        "de": "der die das und ist nicht ich du er sie es wir ihr ein eine einen dem den des zu "
        "mit auf fur von im in sich auch als noch wie aber sind hat haben wird werden kann nur "
        "so dass was wenn oder bei nach uber",
        "it": "il lo la gli le di del della che e un una per non sono con si da in al nel ma "
        "anche piu questo questa ho essere mi ti ci cosa",
        "pt": "o os as uma de do da dos das que e em no na nos nas para com nao por se mais "
        "como mas foi ao ele ela eles isso este esta sao tem voce eu muito tambem ja",
        "nl": "de het een en van is dat die in te niet op zijn voor met als maar om hij ze zij "
        "wat ook aan bij nog wel dan kan naar ik je we u dit",
    }.items()
}

_WORD = re.compile(r"[^\W\d_]+")


def _script(char: str) -> str:
    """First word of the character's Unicode name: "LATIN", "CYRILLIC", "CJK", "HIRAGANA"..."""
    return re.split(r"[ -]", unicodedata.name(char, "UNKNOWN"), maxsplit=1)[0]


def _script_counts(text: str) -> Counter[str]:
    # NFKC folds full-width Latin and half-width katakana into their usual forms.
    return Counter(_script(c) for c in unicodedata.normalize("NFKC", text) if c.isalpha())


def detect_script(text: str | None) -> str | None:
    """The script most of the text's letters are in (``None`` when it has no letters).

    >>> detect_script("Hello"), detect_script("Привет"), detect_script("你好"), detect_script("42")
    ('LATIN', 'CYRILLIC', 'CJK', None)
    """
    counts = _script_counts(text or "")
    return counts.most_common(1)[0][0] if counts else None


def _fold(text: str) -> str:
    """Lower-case without accents ("Está" -> "esta"), for stop-word lookup."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def stop_word_counts(text: str | None) -> dict[str, int]:
    """How many of the text's words are stop words of each listed language.

    >>> stop_word_counts("Le chat est dans la maison")["fr"]
    4
    """
    words = _WORD.findall(_fold(text or ""))
    return {lang: sum(w in stops for w in words) for lang, stops in STOP_WORDS.items()}


def _language_code(expected: str) -> str:
    code = expected.strip().lower().replace("_", "-").split("-")[0]
    if code not in SCRIPTS:
        raise ValueError(
            f"unknown language {expected!r}: pass an ISO 639-1 code, one of {sorted(SCRIPTS)}"
        )
    return code


def language_match(
    completions: Sequence[Any], *, language: Sequence[str | None], **_: Any
) -> list[float | None]:
    """1.0 when a completion is written in its row's language, else 0.0.

    A language is an ISO 639-1 code; a region suffix is ignored (``"en-US"``);
    an unknown code raises ``ValueError``. A row whose language is ``None`` gets
    ``None``: the reward does not apply (TRL leaves it out of the sum).
    Text with no letters (empty, digits only) scores 1.0: there is no
    language to get wrong, and empty output is the ``empty`` component's job.

    >>> language_match(["Der Hund ist nicht hier", "Le chat est ici"], language=["de", "en"])
    [1.0, 0.0]
    >>> language_match(["", "hello"], language=["fr", None])
    [1.0, None]
    """
    return [None if lang is None else _match(text, lang)
            for text, lang in paired(completions, language, "language")]


def _match(hypothesis: str, expected: str) -> float:
    code = _language_code(expected)
    counts = _script_counts(hypothesis)
    letters = sum(counts.values())
    if letters == 0:
        return 1.0
    if sum(counts[s] for s in SCRIPTS[code]) * 2 < letters:
        return 0.0
    if code not in STOP_WORDS:
        return 1.0
    hits = stop_word_counts(hypothesis)
    return 1.0 if hits[code] >= max(hits.values()) else 0.0
