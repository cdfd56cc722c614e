"""Curriculum buckets of video questions: multiple choice before open-ended, obvious before
subtle.

Policy:

* the **form** orders first: a multiple-choice question (four options to pick from) is easier
  to learn from than its open-ended form (an answer to write), so every choice bucket comes
  before every open bucket (:data:`ORDER`);
* **obvious or subtle** comes from the blind control's margin (:mod:`labeling.video_qa.blind`):
  a question the text LLM, without the video, nearly answers (margin at least
  ``obvious_margin``, -0.15 by default: the right letter within 15 points of its favourite)
  leans on common sense and the options' wording, so it is *obvious*; one it is far from is
  *subtle*: the frames must be read. A question without a margin (the blind control read
  text, or was not run) counts as subtle: it is not shown early on a guess;
* ``bucket`` maps the four onto the spine's easy / medium / hard
  (:mod:`training.curriculum`): choice/obvious easy, choice/subtle medium, open hard.

Example:
    >>> curriculum("choice", -0.05), curriculum("choice", -0.6), curriculum("open", None)
    ... # doctest: +NORMALIZE_WHITESPACE
    (Bucket(name='choice/obvious', order=0, spine='easy'),
     Bucket(name='choice/subtle', order=1, spine='medium'),
     Bucket(name='open/subtle', order=3, spine='hard'))
"""

from __future__ import annotations

from dataclasses import dataclass

ORDER = ("choice/obvious", "choice/subtle", "open/obvious", "open/subtle")
SPINE = {"choice/obvious": "easy", "choice/subtle": "medium", "open/obvious": "hard",
         "open/subtle": "hard"}
"""Each bucket as the spine's curriculum sampler names its three (:mod:`training.curriculum`)."""


@dataclass(frozen=True)
class Bucket:
    name: str
    """One of :data:`ORDER`."""
    order: int
    """Its place in :data:`ORDER` (0 first)."""
    spine: str
    """easy, medium or hard."""


def curriculum(form: str, blind_margin: float | None, obvious_margin: float = -0.15) -> Bucket:
    """The bucket of a question form (``choice`` or ``open``) with its group's blind margin."""
    if form not in ("choice", "open"):
        raise ValueError(f"unknown question form {form!r}; expected 'choice' or 'open'")
    level = "obvious" if blind_margin is not None and blind_margin >= obvious_margin else "subtle"
    name = f"{form}/{level}"
    return Bucket(name, ORDER.index(name), SPINE[name])
