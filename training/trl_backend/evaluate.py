"""Held-out evaluation of a VLM (or, through :mod:`training.trl_backend.audio_eval`, an audio
LM) on the chains' rows, with the media and without (blind control).

The model answers each row greedily, prompted exactly as TRL's trainers prompt it (the row's
conversational prompt, its images inserted by ``trl.data_utils.prepare_multimodal_messages``,
the processor's chat template); the answers are scored with the run's rewards
(:mod:`training.trl_backend.rewards`) and summarised per task:

* pointing: ``hit_rate`` (mean point-in-mask score: 1 inside, F1 over several instances),
  per size bucket (``by_bucket``: the target's share of the image, large = easy),
  ``format_rate``, ``no_point_rate`` and the distance of the first point to the nearest mask
  pixel (0 inside) in pixels and as a fraction of the image diagonal (``mean_distance_px``,
  ``mean_distance_frac``, over answers that name a point);
* video multiple choice: ``accuracy``, and per question ``kind`` (``by_kind``) and per
  curriculum ``bucket`` (``by_bucket``);
* ``reward``: the mean weighted total, as GRPO would score the greedy answer.

The ``alm`` family's rows (audio questions) are scored per question type, with the numeric
error of number answers (:func:`training.trl_backend.audio_eval.score_audio`).

:func:`evaluate_with_blind` runs both conditions: a gain that shows without the image too was
learnt from the text alone (Omni-R1's control).

Run::

    python -m training.trl_backend.evaluate MODEL DATA.jsonl [CONFIG.json] [--blind-too]
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from training.rewards.pointing import decode_rle, parse_points, to_original
from training.trl_backend.config import TrlConfig
from training.trl_backend.curriculum import size_bucket
from training.trl_backend.data import (
    REWARD_COLUMNS,
    load_images,
    read_rows,
    task_of,
    trl_rows,
)
from training.trl_backend.rewards import reward_functions


def load_model(path: str, device: str | None = None):
    """Model and processor of a folder (a checkpoint or a starting model), for evaluation:
    the class its config names (a LLaVA, a Qwen2-Audio, ...), as TRL loads it."""
    import transformers
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    names = AutoConfig.from_pretrained(path).architectures or []
    architecture = getattr(transformers, names[0], None) if names else None
    model = (architecture or AutoModelForImageTextToText).from_pretrained(path,
                                                                          dtype=torch.float32)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), AutoProcessor.from_pretrained(path)


@torch.inference_mode()
def generate(model, processor, rows: Sequence[Mapping[str, Any]], *, max_new_tokens: int = 64,
             batch_size: int = 8) -> list[str]:
    """The greedy answer to each TRL row (with its ``images`` when it has them)."""
    from trl.data_utils import prepare_multimodal_messages

    tokenizer = processor.tokenizer
    answers: list[str] = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        images = [load_images(r["images"]) if r.get("images") else None for r in batch]
        texts = []
        for row, row_images in zip(batch, images, strict=True):
            messages = [dict(m) for m in row["prompt"]]
            if row_images:
                messages = prepare_multimodal_messages(messages, images=row_images)
            texts.append(processor.apply_chat_template(messages, add_generation_prompt=True,
                                                       tokenize=False))
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True,
                                  "padding_side": "left"}
        if any(images):
            if not all(images):
                raise ValueError("a batch mixes rows with and without images; evaluate the "
                                 "blind control separately")
            kwargs["images"] = images
        inputs = processor(**kwargs).to(model.device)
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        answers += tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:],
                                          skip_special_tokens=True)
    return answers


def score(rows: Sequence[Mapping[str, Any]], answers: Sequence[str], config: TrlConfig
          ) -> dict[str, Any]:
    """Per-task metrics of ``answers`` to TRL ``rows`` (see the module docstring)."""
    funcs, weights = reward_functions(config)
    columns = {k: [r.get(k) for r in rows] for k in ("task", *REWARD_COLUMNS)}
    table = {f.__name__: f(list(answers), **columns) for f in funcs}
    totals = [sum(w * v for w, v in zip(weights, vals, strict=True) if v is not None)
              for vals in zip(*table.values(), strict=True)]
    out: dict[str, Any] = {"n": len(rows), "reward": _mean(totals)}
    point = [i for i, r in enumerate(rows) if r["task"] == "pointing"]
    if point:
        distances = [_distance(rows[i], answers[i], config) for i in point]
        named = [d for d in distances if d is not None]
        out["pointing"] = {
            "n": len(point), "hit_rate": _mean([table["point_in_mask"][i] for i in point]),
            "format_rate": _mean([table["point_format"][i] for i in point]),
            "no_point_rate": 1 - len(named) / len(point),
            "mean_distance_px": _mean([d[0] for d in named]),
            "mean_distance_frac": _mean([d[1] for d in named]),
            "by_bucket": _grouped([{"bucket": size_bucket(r) if r["task"] == "pointing"
                                   else None} for r in rows], point, table["point_in_mask"],
                                  "bucket")}
    choice = [i for i, r in enumerate(rows) if r["task"] == "video_qa"]
    if choice:
        correct = table["choice_correct"]
        out["video_qa"] = {
            "n": len(choice), "accuracy": _mean([correct[i] for i in choice]),
            "format_rate": _mean([table["answer_format"][i] for i in choice]),
            "by_kind": _grouped(rows, choice, correct, "kind"),
            "by_bucket": _grouped(rows, choice, correct, "bucket")}
    return out


def evaluate(model_path: str, chain_rows: Sequence[Mapping[str, Any]], config: TrlConfig, *,
             blind: bool = False, model_and_processor=None, batch_size: int = 8
             ) -> dict[str, Any]:
    """Score ``model_path`` on chain rows (as :func:`~training.trl_backend.data.read_rows`
    gives them), with their media or, ``blind``, without."""
    if config.family == "alm":
        from training.trl_backend.audio_eval import evaluate_audio

        return evaluate_audio(model_and_processor or load_model(model_path), chain_rows,
                              config, blind=blind, batch_size=batch_size)
    model, processor = model_and_processor or load_model(model_path)
    rows, skipped = trl_rows(chain_rows, blind=blind, max_frames=config.max_frames,
                             point_format=config.point_format, point_scale=config.point_scale,
                             answer_style=config.answer_style)
    kinds = {r.get("example_id"): r.get("kind") for r in chain_rows}
    rows = [{**r, "kind": kinds.get(r["example_id"])} for r in rows]
    answers = generate(model, processor, rows, max_new_tokens=config.max_completion_length,
                       batch_size=batch_size)
    return {**score(rows, answers, config), "blind": blind, "skipped": len(skipped),
            "answers": answers}


def evaluate_with_blind(model_path: str, chain_rows: Sequence[Mapping[str, Any]],
                        config: TrlConfig, **kwargs: Any) -> dict[str, Any]:
    """``{"media": ..., "blind": ...}``: the same rows with and without their media."""
    loaded = kwargs.pop("model_and_processor", None) or load_model(model_path)
    return {name: evaluate(model_path, chain_rows, config, blind=name == "blind",
                           model_and_processor=loaded, **kwargs)
            for name in ("media", "blind")}


# --------------------------------------------------------------------------- helpers


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    return sum(kept) / len(kept) if kept else None


def _grouped(rows, indices, scores, key) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for i in indices:
        if scores[i] is not None:
            groups[str(rows[i].get(key))].append(scores[i])
    return {name: {"n": len(v), "accuracy": sum(v) / len(v)} for name, v in sorted(groups.items())}


def _distance(row: Mapping[str, Any], answer: str, config: TrlConfig
              ) -> tuple[float, float] | None:
    """(px, fraction of the diagonal) from the answer's first point to the nearest pixel of
    any of the row's masks; None when the answer names no point."""
    parsed = parse_points(answer)
    if not parsed.points:
        return None
    masks = [decode_rle(m).astype(bool) for m in row["masks"]]
    height, width = masks[0].shape
    size = row.get("image_size") or (width, height)
    scale = "percent" if parsed.format == "molmo" else config.point_scale
    (x, y), = to_original(parsed.points[:1], scale=scale, image_size=size)
    rows_, cols = np.nonzero(np.logical_or.reduce(masks))
    if rows_.size == 0:
        return None
    dx = np.maximum(np.maximum(cols - x, x - cols - 1), 0)  # to the pixel's square [c, c+1)
    dy = np.maximum(np.maximum(rows_ - y, y - rows_ - 1), 0)
    d = float(np.sqrt(np.min(dx ** 2 + dy ** 2)))
    return d, d / math.hypot(width, height)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    both = "--blind-too" in args
    args = [a for a in args if a != "--blind-too"]
    if len(args) not in (2, 3):
        print("usage: python -m training.trl_backend.evaluate MODEL DATA.jsonl [CONFIG.json] "
              "[--blind-too]", file=sys.stderr)
        return 2
    rows = read_rows(args[1])
    family = "alm" if rows and task_of(rows[0]) == "audio_qa" else "vlm"
    config = (TrlConfig.from_json(args[2]) if len(args) == 3 else
              TrlConfig(family=family, objective="grpo", model=args[0], data=args[1],
                        output_dir="."))
    result = (evaluate_with_blind(args[0], rows, config) if both
              else evaluate(args[0], rows, config, blind=config.blind))
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
