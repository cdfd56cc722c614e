"""The audio questions chain's rows as TRL rows, and the prompts a Qwen2-Audio-class model sees.

The ``alm`` family trains on ``audio_qa_dataset`` rows
(:func:`labeling.audio_qa.dataset.dataset_row`): a text-only conversational ``prompt`` asking
for ``<think>…</think><answer>…</answer>``, the clip's file in ``audio``, ``answer``,
``answer_type`` / ``problem_type``, ``options``, ``tolerance``, ``kind``.

* :func:`audio_trl_row` / :func:`audio_trl_rows`: one row as a TRL row: ``prompt``, ``audio``
  (the path; absent in the blind control), ``completion`` (the gold answer as one assistant
  turn, SFT's target) and the reward columns ``answer``, ``options``, ``answer_type``,
  ``problem_type``, ``tolerance``, ``answer_style``, plus ``kind`` and ``bucket`` for the
  evaluation's tables. Every answer type is kept: multiple choice, numbers (scored within the
  row's tolerance) and sound names (scored by normalised match).
* :func:`audio_messages`: the prompt with the clip in front of the last user turn's text, as
  Qwen2-Audio's chat template renders it (``Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>``);
  SFT, GRPO and evaluation all prompt through it, so they prompt alike.
* :class:`AudioPrompts`: renders and processes prompts: per (prompt text, clip) the token ids
  with the clip's audio tokens expanded, the log-mel ``input_features`` (the processor's
  window: 30 s for Qwen2-Audio) and ``feature_attention_mask``. Recent results are kept (a
  GRPO group repeats its prompt ``num_generations`` times; an epoch repeats the clips).

Example:
    >>> row = {"example_id": "q1", "audio": "/d/c1.wav", "kind": "longest",
    ...        "prompt": [{"role": "user", "content": "Which is longer? <think> <answer>"}],
    ...        "answer": "B", "answer_text": "the second sound", "answer_type": "choice",
    ...        "problem_type": "multiple choice", "options": ["the first sound",
    ...        "the second sound"], "tolerance": None}
    >>> out = audio_trl_row(row)
    >>> out["audio"], out["completion"][0]["content"]
    ('/d/c1.wav', '<think>the second sound</think><answer>B</answer>')
    >>> audio_messages(out["prompt"], audio=True)[-1]["content"][0]
    {'type': 'audio'}
    >>> "audio" in audio_trl_row(row, blind=True)
    False
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from training.trl_backend.data import (
    DataError,
    Row,
    _prompt_text,
    _where,
    answer_style_of,
    choice_answer,
    conversational_prompt,
    task_of,
)

AUDIO_COLUMNS = ("answer", "options", "answer_type", "problem_type", "tolerance",
                 "answer_style")
"""The reward columns of an audio TRL row (what :mod:`training.trl_backend.rewards` reads)."""
ANSWER_TYPES = ("choice", "number", "text")


# --------------------------------------------------------------------------- rows


def audio_answer(row: Mapping[str, Any], answer_style: str = "auto") -> str:
    """SFT's target: the right letter, number or name in the style the prompt asks for; the
    ``think`` style states the option's text (or the answer) as its minimal reasoning.

    >>> audio_answer({"answer": "6", "answer_text": "6", "answer_type": "number",
    ...               "prompt": [{"role": "user", "content": "How long? Answer with a number."}]})
    '6'
    >>> audio_answer({"answer": "rain", "answer_text": "rain", "answer_type": "text"}, "think")
    '<think>rain</think><answer>rain</answer>'
    """
    style = answer_style_of(_prompt_text(row), answer_style)
    answer = str(row["answer"]).strip()
    if row.get("answer_type", "choice") == "choice":
        letter = answer.upper()
        options = list(row.get("options") or [])
        index = "ABCD".find(letter) if len(letter) == 1 else -1
        option = options[index] if 0 <= index < len(options) else str(row.get("answer_text")
                                                                        or "")
        return choice_answer(letter, style, option)
    if style == "think":
        return f"<think>{row.get('answer_text') or answer}</think><answer>{answer}</answer>"
    return f"<answer>{answer}</answer>" if style == "tagged" else answer


def audio_trl_row(row: Mapping[str, Any], *, blind: bool = False,
                  answer_style: str = "auto") -> Row:
    """One ``audio_qa_dataset`` row as an audio TRL row (see the module docstring)."""
    if task_of(row) != "audio_qa":
        raise DataError(f"{_where(row)}: not an audio question (no `audio` and `answer`); the "
                        "'alm' family trains on the audio chain's audio_qa.jsonl")
    prompt = conversational_prompt(row)
    answer_type = row.get("answer_type") or "choice"
    if answer_type not in ANSWER_TYPES:
        raise DataError(f"{_where(row)}: answer_type {answer_type!r}; expected one of "
                        f"{list(ANSWER_TYPES)} (re-export the audio_qa dataset)")
    if not row.get("audio") and not blind:
        raise DataError(f"{_where(row)}: no `audio`; the row cannot be heard by an audio LM "
                        "(train with blind=true for a text-only control)")
    tolerance = row.get("tolerance")
    out: Row = {
        "example_id": str(row.get("example_id") or ""), "task": "audio_qa",
        "prompt": prompt,
        "completion": [{"role": "assistant", "content": audio_answer(row, answer_style)}],
        "answer": str(row["answer"]), "options": [str(o) for o in row.get("options") or []],
        "answer_type": answer_type,
        "problem_type": row.get("problem_type") or answer_type,
        "tolerance": None if tolerance is None else float(tolerance),
        "answer_style": answer_style_of(_prompt_text(row), answer_style),
        "kind": row.get("kind"), "bucket": row.get("bucket"),
    }
    if not blind:
        out["audio"] = str(row["audio"])
    return out


def audio_trl_rows(rows: Iterable[Mapping[str, Any]], *, blind: bool = False,
                   answer_style: str = "auto") -> tuple[list[Row], list[Row]]:
    """(TRL rows, skipped): every answer type has a verifiable reward, so nothing is skipped
    (the pair keeps :func:`training.trl_backend.data.trl_rows`' shape)."""
    return [audio_trl_row(r, blind=blind, answer_style=answer_style) for r in rows], []


# --------------------------------------------------------------------------- prompts


def audio_messages(prompt: Sequence[Mapping[str, Any]], *, audio: bool
                   ) -> list[dict[str, Any]]:
    """The conversation as the processor renders it: with ``audio``, the last user turn's
    content becomes ``[{"type": "audio"}, {"type": "text", ...}]`` (Qwen2-Audio's layout:
    the clip, then the question); without, the text alone."""
    messages = [dict(m) for m in prompt]
    if audio:
        text = str(messages[-1]["content"])
        messages[-1]["content"] = [{"type": "audio"}, {"type": "text", "text": text}]
    return messages


def load_clip(path: str, sample_rate: int = 16_000) -> np.ndarray:
    """Mono float32 samples of ``path`` at ``sample_rate`` (soundfile, PyAV for the rest),
    or a :class:`DataError` naming the file."""
    from labeling.ingest.audio import load_audio
    from labeling.ingest.media import MediaError

    try:
        return load_audio(path, sample_rate)[0]
    except (MediaError, OSError, ValueError) as exc:
        raise DataError(f"{path}: the clip cannot be decoded ({exc}); re-export the dataset "
                        "or restore the media") from None


@dataclass
class Encoded:
    """Prompts ready for the model: unpadded token ids per row, and the clips' features
    (``None`` without audio), one row each, in the rows' order."""

    ids: list[list[int]]
    input_features: torch.Tensor | None = None
    feature_attention_mask: torch.Tensor | None = None

    def fields(self) -> dict[str, torch.Tensor]:
        """The audio keyword arguments of the model's forward and ``generate``."""
        if self.input_features is None:
            return {}
        return {"input_features": self.input_features,
                "feature_attention_mask": self.feature_attention_mask}


class AudioPrompts:
    """Renders conversational prompts with the processor's chat template and processes them
    with their clips; a processed (text, clip) pair is kept for reuse (``cache_size`` most
    recent: a 30 s window's features are 1.5 MB)."""

    def __init__(self, processor, *, cache_size: int = 128):
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.sample_rate: int = processor.feature_extractor.sampling_rate
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str | None], tuple] = OrderedDict()

    def text(self, prompt: Sequence[Mapping[str, Any]], *, audio: bool) -> str:
        """The prompt rendered up to the assistant's turn."""
        return self.processor.apply_chat_template(audio_messages(prompt, audio=audio),
                                                  add_generation_prompt=True, tokenize=False)

    def encode(self, prompts: Sequence[Sequence[Mapping[str, Any]]],
               clips: Sequence[str | None], dtype: torch.dtype | None = None) -> Encoded:
        """Every prompt with its clip (a path) or, where the clip is ``None``, text only; a
        batch is all one or the other (the model's features are stacked per row)."""
        heard = [c is not None for c in clips]
        if any(heard) and not all(heard):
            raise DataError("a batch mixes rows with and without audio; train or evaluate "
                            "the blind control as its own run")
        done = [self._one(self.text(p, audio=c is not None), c)
                for p, c in zip(prompts, clips, strict=True)]
        out = Encoded([list(ids) for ids, _, _ in done])
        if all(heard) and done:
            features = torch.cat([f for _, f, _ in done])
            out.input_features = features if dtype is None else features.to(dtype)
            out.feature_attention_mask = torch.cat([m for _, _, m in done])
        return out

    def _one(self, text: str, clip: str | None) -> tuple:
        key = (text, clip)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if clip is None:
            done = (self.tokenizer(text, add_special_tokens=False)["input_ids"], None, None)
        else:
            inputs = self.processor(text=[text], audio=[load_clip(clip, self.sample_rate)],
                                    sampling_rate=self.sample_rate, return_tensors="pt")
            done = (inputs["input_ids"][0].tolist(), inputs["input_features"],
                    inputs["feature_attention_mask"].long())
        self._cache[key] = done
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return done


def left_padded(ids: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) of token-id rows padded on the left (for ``generate``).

    >>> left_padded([[5, 6], [7]], 0)
    (tensor([[5, 6],
            [0, 7]]), tensor([[1, 1],
            [0, 1]]))
    """
    width = max(len(row) for row in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        if row:
            input_ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row):] = 1
    return input_ids, mask
