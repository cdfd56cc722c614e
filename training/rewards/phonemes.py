"""Phoneme error rate (PER): how far the hypothesis *sounds* from the reference.

WER counts ``their``/``there`` or ``ice cream``/``I scream`` as whole-word
errors although the model heard the audio right; PER compares the phoneme
sequences instead, so it rewards acoustic accuracy separately from spelling
and word segmentation. Phonemes come from the ``espeak-ng`` system binary
(``apt-get install espeak-ng``; not a Python package), run as::

    espeak-ng -q --ipa --sep=_ -v en-us --stdin   # text on stdin, IPA on stdout

Conventions: stress marks (ˈ ˌ) and word boundaries are dropped, length
marks stay (``iː`` and ``ɪ`` differ); multi-letter phonemes (``aɪ``, ``dʒ``)
are one symbol. For an English voice the text first goes through the
project's normaliser (:func:`training.eval.metrics.normalize`) so fillers and
bracketed events are not spoken and both sides read numbers the same way;
for other voices only bracketed events are removed. Phonemisation is cached
per (text, voice), so a reference shared by a group of sampled hypotheses is
phonemised once.

``accuracy_per`` is a reward in TRL's signature (see :mod:`training.rewards.components`);
``phoneme_error_rate`` is the metric of one (reference, hypothesis) pair it is built on.

Example (any phonemiser can be passed; by default it is espeak-ng):
    >>> def letters(text, voice):
    ...     return tuple(text.replace(" ", ""))
    >>> phoneme_error_rate("cat", "cut", phonemizer=letters)
    0.3333333333333333
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import jiwer

from training.eval.metrics import normalize
from training.rewards.components import paired

__all__ = [
    "ESPEAK_BINARY",
    "EspeakNotFoundError",
    "accuracy_per",
    "phoneme_error_rate",
    "phonemize",
]

#: Name or path of the espeak-ng executable (a module constant so tests can point it elsewhere).
ESPEAK_BINARY = "espeak-ng"
_TIMEOUT_S = 30.0
_SEPARATOR = "_"
_STRESS = re.compile("[ˈˌ]")
_LANGUAGE_SWITCH = re.compile(r"\([a-z-]+\)")  # espeak marks a switch of voice as "(en)"
_EVENTS = re.compile(r"\[[^\]]*\]|<[^>]*>|\([^)]*\)")

Phonemizer = Callable[[str, str], Sequence[str]]


class EspeakNotFoundError(RuntimeError):
    """The espeak-ng binary is not installed (or not where ``ESPEAK_BINARY`` points)."""


def phonemize(text: str, voice: str = "en-us") -> tuple[str, ...]:
    """The IPA phonemes of ``text`` as espeak-ng speaks it with ``voice`` (cached)."""
    return _phonemize_cached(text, voice, ESPEAK_BINARY)


@lru_cache(maxsize=65536)
def _phonemize_cached(text: str, voice: str, binary: str) -> tuple[str, ...]:
    prepared = _prepare(text, voice)
    if not prepared:
        return ()
    return _parse(_run_espeak(prepared, voice, binary))


def _prepare(text: str, voice: str) -> str:
    if voice.lower().startswith("en"):
        return normalize(text)
    return " ".join(_EVENTS.sub(" ", text).split())


def _run_espeak(text: str, voice: str, binary: str) -> str:
    executable = shutil.which(binary)
    if executable is None:
        raise EspeakNotFoundError(
            f"phoneme rewards need the espeak-ng binary, and {binary!r} was not found: "
            "install the system package (`apt-get install espeak-ng`, `brew install espeak-ng`) "
            "or set training.rewards.phonemes.ESPEAK_BINARY to its path"
        )
    cmd = [executable, "-q", "--ipa", f"--sep={_SEPARATOR}", "-v", voice, "--stdin"]
    done = subprocess.run(
        cmd, input=text.encode(), capture_output=True, timeout=_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"espeak-ng failed (exit {done.returncode}) for voice {voice!r}: "
            f"{done.stderr.decode(errors='replace').strip()}; "
            "list the installed voices with `espeak-ng --voices`"
        )
    return done.stdout.decode()


def _parse(ipa: str) -> tuple[str, ...]:
    cleaned = _STRESS.sub("", _LANGUAGE_SWITCH.sub(" ", ipa))
    return tuple(p for word in cleaned.split() for p in word.split(_SEPARATOR) if p)


def phoneme_error_rate(
    reference: str,
    hypothesis: str | None,
    voice: str = "en-us",
    *,
    phonemizer: Phonemizer = phonemize,
) -> float:
    """Levenshtein distance between the phoneme sequences / reference phonemes.

    0.0 for a perfect match; can exceed 1 when the hypothesis adds phonemes.
    With an empty reference: 0.0 when the hypothesis is empty too, else
    ``inf`` (the same rule as WER in :mod:`training.eval.metrics`).
    ``phonemizer(text, voice)`` gives the symbols (none may contain
    whitespace); the default, :func:`phonemize`, runs espeak-ng and raises
    :class:`EspeakNotFoundError` when it is missing.

    >>> phoneme_error_rate("ab", "abba", phonemizer=lambda text, voice: tuple(text))
    1.0
    """
    ref = phonemizer(reference, voice)
    hyp = phonemizer(hypothesis or "", voice)
    if not ref:
        return 0.0 if not hyp else math.inf
    # Symbols hold no whitespace, so jiwer's word alignment is a Levenshtein over phonemes.
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    return (out.substitutions + out.deletions + out.insertions) / len(ref)


def accuracy_per(
    completions: Sequence[Any],
    *,
    reference: Sequence[str | None],
    voice: str = "en-us",
    phonemizer: Phonemizer = phonemize,
    **_: Any,
) -> list[float | None]:
    """1 − PER per completion, clipped to [0, 1] (like ``accuracy_wer``, a loop cannot go below 0).

    ``voice`` (an espeak-ng voice) and ``phonemizer`` are settings, not columns: bind them with
    ``functools.partial``. A row without a reference gets ``None``.

    >>> accuracy_per(["abxd"], reference=["abcd"], phonemizer=lambda text, voice: tuple(text))
    [0.75]
    """
    return [None if ref is None else _accuracy_per(ref, text, voice, phonemizer)
            for text, ref in paired(completions, reference, "reference")]


def _accuracy_per(reference: str, hypothesis: str, voice: str, phonemizer: Phonemizer) -> float:
    per = phoneme_error_rate(reference, hypothesis, voice, phonemizer=phonemizer)
    return min(1.0, max(0.0, 1.0 - per)) if math.isfinite(per) else 0.0
