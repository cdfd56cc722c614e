"""What Whisper takes: checked audio clips, a token budget per clip, and the decoder prompt.

Audio is float32 mono at 16 kHz and at most 30 s a clip (Whisper's window); a clip that is not
gets a ValueError naming it and the fix. The prompt is start-of-transcript, then language and
task for a multilingual model, then no-timestamps.

**Bounded decoding.** A clip of `d` seconds may emit at most
`min(window, ceil(tokens_per_second * d) + extra_tokens)` text tokens, then
end-of-text is forced (`window` is the decoder's length less the prompt and
end-of-text). Whisper tiny.en falls into repetition loops on noisy speech;
this bounds what a loop costs. English speech runs about 3-5 tokens a
second, so the default 8 leaves room.

Example:
    >>> token_cap(2.5, tokens_per_second=8.0, extra_tokens=16, window=445)
    36
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
from transformers import PreTrainedModel
from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

from models.batching import batches_by_duration

SAMPLE_RATE = 16_000
MAX_SECONDS = 30.0  # Whisper's input window


def audio_durations(audios: Sequence[np.ndarray]) -> list[float]:
    """Seconds of each clip, after checking it is float32 mono 16 kHz within Whisper's window."""
    return [_checked_seconds(index, audio) for index, audio in enumerate(audios)]


class ClipRejected(ValueError):
    """A clip Whisper cannot take; `reason` is a quarantine reason (too_long, empty_audio,
    invalid_samples, undecodable)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def check_clip(audio: np.ndarray) -> float:
    """Seconds of one clip Whisper can take, or ClipRejected saying why not (e.g. longer than
    its 30 s window: segment it first), for per-clip checks before a batch is decoded."""
    try:
        return _checked_seconds(0, audio)
    except ValueError as exc:
        message = str(exc).removeprefix("audio 0: ")
        reason = ("too_long" if " s long" in message else "empty_audio" if "empty" in message
                  else "invalid_samples" if "NaN" in message else "undecodable")
        raise ClipRejected(message, reason) from None


def _checked_seconds(index: int, audio: np.ndarray) -> float:
    """Seconds of one clip; a ValueError naming `index` and the fix if Whisper cannot take it."""
    if not isinstance(audio, np.ndarray):
        raise ValueError(f"audio {index}: expected a numpy array, got {type(audio).__name__}")
    if audio.dtype != np.float32:
        raise ValueError(
            f"audio {index}: expected float32 samples, got {audio.dtype}; "
            "convert with .astype(np.float32)"
        )
    if audio.ndim != 1:
        raise ValueError(f"audio {index}: expected mono 1-D samples, got shape {audio.shape}")
    if audio.size == 0:
        raise ValueError(f"audio {index}: is empty")
    seconds = audio.size / SAMPLE_RATE
    if seconds > MAX_SECONDS:
        raise ValueError(
            f"audio {index}: is {seconds:.1f} s long at {SAMPLE_RATE} Hz; Whisper takes at most "
            f"{MAX_SECONDS:.0f} s, so split it first"
        )
    if not np.isfinite(audio).all():
        raise ValueError(f"audio {index}: contains NaN or infinite samples")
    return seconds


def token_cap(seconds: float, tokens_per_second: float, extra_tokens: int, window: int) -> int:
    """Most text tokens a clip of `seconds` may emit: bounds the cost of repetition loops.

    Example:
        >>> token_cap(2.5, tokens_per_second=8.0, extra_tokens=16, window=445)
        36
    """
    return min(window, math.ceil(tokens_per_second * seconds) + extra_tokens)



def is_multilingual(model: PreTrainedModel) -> bool:
    """Whether `model` expects language and task tokens (`.en` models do not)."""
    flag = getattr(model.generation_config, "is_multilingual", None)
    if flag is not None:
        return bool(flag)
    return model.config.vocab_size >= 51865  # openai-whisper's own rule


def decoder_prompt(model: PreTrainedModel, tokenizer, language: str | None = None) -> list[int]:
    """Token ids that start every transcript: no timestamps, and language + task if multilingual.

    A multilingual model without a `language` is told English: detecting it per
    clip would split batches by language for a project whose data is English.
    """
    start = model.generation_config.decoder_start_token_id or model.config.decoder_start_token_id
    no_timestamps = _special_id(tokenizer, "<|notimestamps|>")
    if not is_multilingual(model):
        if language is not None and _language_code(language) != "en":
            raise ValueError(f"the model is English-only; it cannot transcribe {language!r}")
        return [start, no_timestamps]
    code = _language_code(language or "en")
    return [
        start,
        _special_id(tokenizer, f"<|{code}|>"),
        _special_id(tokenizer, "<|transcribe|>"),
        no_timestamps,
    ]


def _language_code(language: str) -> str:
    """The language code of a name or code: "English", "english", "en" and "<|en|>" give "en"."""
    language = language.lower().strip("<|>")
    return TO_LANGUAGE_CODE.get(language, language)


def _special_id(tokenizer, token: str) -> int:
    """The id of a special token, or a ValueError saying the tokenizer lacks it."""
    token_id = tokenizer.get_vocab().get(token)
    if token_id is None:
        raise ValueError(f"the tokenizer has no {token} token (unknown language or not Whisper?)")
    return token_id


_T = TypeVar("_T")


def over_batches(audios: Sequence[np.ndarray], batch_size: int,
                 progress: Callable[[int, int], None] | None,
                 run: Callable[[list[np.ndarray], list[float]], list[_T]]) -> list[_T]:
    """Check every clip, run `run` on duration-sorted batches, return results in input order."""
    seconds = audio_durations(audios)
    results: list[_T | None] = [None] * len(audios)
    done = 0
    for batch in batches_by_duration(seconds, batch_size):
        outputs = run([audios[i] for i in batch], [seconds[i] for i in batch])
        for index, output in zip(batch, outputs, strict=True):
            results[index] = output
        done += len(batch)
        if progress is not None:
            progress(done, len(audios))
    return results  # type: ignore[return-value]
