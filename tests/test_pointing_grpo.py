"""TRL's GRPOTrainer trains a VLM on the image chain's pointing dataset with the pointing rewards.

A smoke run, on CPU: a tiny random LLaVA (`models.tiny.build_tiny_llava`: CLIP tower, tiny
Qwen2, its processor and tokenizer built offline) takes two GRPO steps on a dataset written by
`labeling.image.pointing` (the code the `pointing_dataset` asset runs) from synthetic pictures
whose masks are known, scored by `point_in_mask` and `point_format` from the reward registry.
The random policy's answers name no point, so rewards are 0 and the advantages vanish: the
test proves the wiring (conversational prompts, the `images` column through the LLaVA
processor, the mask columns reaching the rewards, the loss and reward logs), not learning.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest
from PIL import Image, ImageDraw

from labeling.image.masks import encode_rle
from labeling.image.pointing import (
    VerifiedRegion,
    export_pointing,
    group_examples,
    pointing_coco,
    trl_row,
)
from training.rewards import REWARDS

trl = pytest.importorskip("trl")

SHAPES = {  # picture -> (phrase, box) of each shape; two squares make a two-instance example
    "a": [("red square", (4, 4, 14, 14)), ("blue circle", (20, 8, 30, 18))],
    "b": [("red square", (2, 12, 10, 20)), ("red square", (18, 2, 28, 12))],
}
SIZE = (32, 24)


def pointing_dataset(folder):
    """Pictures of squares and circles, each shape's mask known, through group_examples,
    trl_row and export_pointing, as the `pointing_dataset` asset writes them."""
    from datasets import load_from_disk

    regions, images = [], {}
    for name, shapes in SHAPES.items():
        picture, path = Image.new("RGB", SIZE, "white"), folder / f"{name}.png"
        draw = ImageDraw.Draw(picture)
        for region, (phrase, (x0, y0, x1, y1)) in enumerate(shapes):
            mask = np.zeros(SIZE[::-1], bool)
            mask[y0:y1, x0:x1] = True  # the square's pixels; a circle's box is close enough
            (draw.rectangle if "square" in phrase else draw.ellipse)(
                (x0, y0, x1 - 1, y1 - 1), fill="red" if "red" in phrase else "blue")
            centre = ((x0 + x1) / 2, (y0 + y1) / 2)
            regions.append(VerifiedRegion(name, phrase, region, encode_rle(mask), 0.9, (centre,)))
        picture.save(path)
        images[name] = {"source_path": str(path), "width": SIZE[0], "height": SIZE[1]}
    examples, refused = group_examples(regions)
    assert not refused
    rows = [trl_row(e, image=images[e["image_id"]]["source_path"],
                    image_file=images[e["image_id"]]["source_path"], width=SIZE[0],
                    height=SIZE[1], provenance={"caption_source": "manifest",
                                                "weights": "random-tiny"})
            for e in examples]
    paths = export_pointing(rows, pointing_coco(examples, images), folder / "out")
    return load_from_disk(str(paths["dataset"]))


def recording(fn, calls):
    """`fn` (a registry reward), recording the keyword columns TRL passes it; same name."""
    @functools.wraps(fn)
    def reward(completions, **columns):
        scores = fn(completions, **columns)
        calls.append({"completions": completions, "scores": scores, **columns})
        return scores
    return reward


def test_grpo_trains_a_tiny_llava_on_the_pointing_dataset(tmp_path):
    from transformers import AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    from models.tiny import build_tiny_llava

    data = pointing_dataset(tmp_path)
    assert len(data) == 3  # a: red square, blue circle; b: red square (two instances)
    assert data[0]["prompt"] == [{"role": "user", "content": "Point at red square."}]
    model_dir = build_tiny_llava(tmp_path / "llava")
    calls = {"point_in_mask": [], "point_format": []}
    rewards = [recording(REWARDS[name], calls[name]) for name in calls]
    with warnings.catch_warnings():  # transformers' and TRL's own deprecation notices
        warnings.simplefilter("ignore", FutureWarning)
        args = GRPOConfig(
            output_dir=str(tmp_path / "run"), use_cpu=True, bf16=False, report_to="none",
            per_device_train_batch_size=4, num_generations=2, max_completion_length=8,
            max_steps=2, logging_steps=1, save_strategy="no", learning_rate=1e-3, beta=0.0,
            seed=0, dataloader_num_workers=0,
        )
    trainer = GRPOTrainer(model=str(model_dir), reward_funcs=rewards, args=args,
                          train_dataset=data,
                          processing_class=AutoProcessor.from_pretrained(model_dir))
    pixels = []  # the policy's forward passes that got pixel values: the images went through
    trainer.model.register_forward_pre_hook(
        lambda _m, _a, kwargs: pixels.append(tuple(kwargs["pixel_values"].shape))
        if kwargs.get("pixel_values") is not None else None, with_kwargs=True)
    result = trainer.train()

    assert trainer.state.global_step == 2 and math.isfinite(result.training_loss)
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2
    for entry in logs:
        assert math.isfinite(entry["loss"])
        for name in calls:
            assert 0.0 <= entry[f"rewards/{name}/mean"] <= 1.0
    assert pixels and all(shape == (4, 3, 16, 16) for shape in pixels)  # one image a completion
    # each reward saw every completion with its row's own masks and image size
    for name, seen in calls.items():
        assert seen, name
        for call in seen:
            assert len(call["completions"]) == len(call["masks"]) == len(call["image_size"]) == 4
            assert all(size == list(SIZE) for size in call["image_size"])
            assert all(0.0 <= s <= 1.0 for s in call["scores"])
    # the columns TRL handed over score the dataset's own verified points as hits
    call = calls["point_in_mask"][0]
    answers = [" ".join(f"({x}, {y})" for x, y in (pts[0] for pts in row_points))
               for row_points in call["points"]]
    assert REWARDS["point_in_mask"](answers, masks=call["masks"],
                                    image_size=call["image_size"]) == [1.0] * 4
