"""Held-out evaluation of an audio LM (``alm``) on the audio chain's rows, with the clip and
without (the blind control).

The model answers each row greedily, prompted exactly as training prompts it
(:class:`~training.trl_backend.audio.AudioPrompts`: the clip in front of the question, the
processor's chat template); the answers are scored with the run's rewards and summarised:

* ``accuracy``: each row by its answer type's component (the right letter, a number within
  the row's tolerance, the sound's name), overall, per ``problem_type`` (``by_problem_type``:
  multiple choice, numerical, free-form), per question ``kind`` (``by_kind``: longest,
  shortest, starts_first, starts_last, max_concurrent, duration) and per ``bucket``;
* ``numeric``: on number rows, ``within_tolerance``, ``no_number_rate`` and the absolute error
  of the first number named (``mean_abs_error``, ``median_abs_error``; seconds for durations,
  sounds for counts) over the answers that name one;
* ``format_rate`` and ``reward`` (the weighted total, as GRPO would score the greedy answer).

:func:`training.trl_backend.evaluate.evaluate_with_blind` runs both conditions: a gain that
shows without the clip too was learnt from the question's text alone (Omni-R1's control).

Example:
    >>> from training.trl_backend.config import TrlConfig
    >>> rows = [{"answer": "B", "options": ["x", "y"], "answer_type": "choice",
    ...          "problem_type": "multiple choice", "kind": "longest", "answer_style": "plain"},
    ...         {"answer": "2.5", "options": [], "answer_type": "number", "tolerance": 0.5,
    ...          "problem_type": "numerical", "kind": "duration", "answer_style": "plain"}]
    >>> config = TrlConfig(family="alm", objective="grpo", model="m", data="d", output_dir="o")
    >>> got = score_audio(rows, ["B", "3.5 s"], config)
    >>> got["accuracy"], got["by_kind"]["longest"], got["numeric"]["mean_abs_error"]
    (0.5, {'n': 1, 'accuracy': 1.0}, 1.0)
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from training.rewards.answers import parse_number
from training.trl_backend.audio import AUDIO_COLUMNS, AudioPrompts, audio_trl_rows, left_padded
from training.trl_backend.config import TrlConfig
from training.trl_backend.rewards import reward_functions

CORRECT = {"choice": "choice_correct", "number": "numeric_correct", "text": "text_correct"}


@torch.inference_mode()
def generate_audio(model, processor, rows: Sequence[Mapping[str, Any]], *,
                   max_new_tokens: int = 64, batch_size: int = 8) -> list[str]:
    """The greedy answer to each audio TRL row (with its clip when it has ``audio``)."""
    prompts = AudioPrompts(processor)
    tokenizer = prompts.tokenizer
    answers: list[str] = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        encoded = prompts.encode([r["prompt"] for r in batch], [r.get("audio") for r in batch],
                                 dtype=model.dtype)
        input_ids, mask = left_padded(encoded.ids, tokenizer.pad_token_id)
        inputs = {"input_ids": input_ids, "attention_mask": mask, **encoded.fields()}
        inputs = {k: v.to(model.device) for k, v in inputs.items()}
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        answers += tokenizer.batch_decode(out[:, input_ids.shape[1]:], skip_special_tokens=True)
    return answers


def score_audio(rows: Sequence[Mapping[str, Any]], answers: Sequence[str], config: TrlConfig
                ) -> dict[str, Any]:
    """Metrics of ``answers`` to audio TRL ``rows`` (see the module docstring)."""
    funcs, weights = reward_functions(config)
    columns = {k: [r.get(k) for r in rows] for k in AUDIO_COLUMNS}
    table = {f.__name__: f(list(answers), **columns) for f in funcs}
    totals = [sum(w * v for w, v in zip(weights, vals, strict=True) if v is not None)
              for vals in zip(*table.values(), strict=True)]
    correct = [table[CORRECT[r.get("answer_type") or "choice"]][i] for i, r in enumerate(rows)]
    return {"n": len(rows), "reward": _mean(totals), "accuracy": _mean(correct),
            "format_rate": _mean(table["answer_format"]),
            "by_problem_type": _grouped(rows, correct, "problem_type"),
            "by_kind": _grouped(rows, correct, "kind"),
            "by_bucket": _grouped(rows, correct, "bucket"),
            "numeric": _numeric(rows, answers, table["numeric_correct"])}


def evaluate_audio(model_and_processor, chain_rows: Sequence[Mapping[str, Any]],
                   config: TrlConfig, *, blind: bool = False, batch_size: int = 8
                   ) -> dict[str, Any]:
    """Score a loaded model on audio chain rows, with their clips or, ``blind``, without."""
    model, processor = model_and_processor
    rows, skipped = audio_trl_rows(chain_rows, blind=blind, answer_style=config.answer_style)
    answers = generate_audio(model, processor, rows, max_new_tokens=config.max_completion_length,
                             batch_size=batch_size)
    return {**score_audio(rows, answers, config), "blind": blind, "skipped": len(skipped),
            "answers": answers}


# --------------------------------------------------------------------------- helpers


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _grouped(rows, scores, key) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for row, score in zip(rows, scores, strict=True):
        if score is not None and row.get(key) is not None:
            groups[str(row[key])].append(score)
    return {name: {"n": len(v), "accuracy": sum(v) / len(v)} for name, v in sorted(groups.items())}


def _numeric(rows, answers, within) -> dict[str, Any] | None:
    picked = [i for i, r in enumerate(rows) if r.get("answer_type") == "number"]
    if not picked:
        return None
    errors = []
    for i in picked:
        said = parse_number(answers[i])
        if said is not None:
            errors.append(abs(said - float(rows[i]["answer"])))
    return {"n": len(picked), "within_tolerance": _mean([within[i] for i in picked]),
            "no_number_rate": 1 - len(errors) / len(picked),
            "mean_abs_error": _mean(errors),
            "median_abs_error": statistics.median(errors) if errors else None}
