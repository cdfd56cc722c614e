"""Small pieces every model family shares: device, dtype, images, generation.

Example:
    >>> pick_device("cpu"), pick_dtype("cpu", None)
    ('cpu', torch.float32)
    >>> from PIL import Image
    >>> as_rgb(Image.new("L", (8, 4))).mode, image_hw(Image.new("RGB", (8, 4)))
    ('RGB', (4, 8))
    >>> batched([1, 2, 3, 4, 5], 2)
    [[1, 2], [3, 4], [5]]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

_T = TypeVar("_T")


def pick_device(device: str | None) -> str:
    """`device`, else CUDA when present, else CPU."""
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(device: str, dtype: torch.dtype | None, gpu: torch.dtype = torch.float32):
    """`dtype`, else float32 on CPU and `gpu` on CUDA (bfloat16 for language models)."""
    if dtype is not None:
        return dtype
    return torch.float32 if device == "cpu" else gpu


def is_local(path_or_id: str) -> bool:
    """A folder on disk (loaded with `local_files_only`) rather than a hub id."""
    return Path(path_or_id).is_dir()


def load_pretrained(model_class, preprocessor_class, path_or_id: str, device: str | None,
                    dtype: torch.dtype | None, gpu: torch.dtype = torch.float32):
    """(model on its device, its processor or tokenizer) from a folder or a hub id: a folder
    loads with `local_files_only`; dtype per `pick_dtype` (`gpu` on CUDA)."""
    device = pick_device(device)
    local = is_local(path_or_id)
    model = model_class.from_pretrained(
        path_or_id, dtype=pick_dtype(device, dtype, gpu), local_files_only=local
    ).to(device)
    return model, preprocessor_class.from_pretrained(path_or_id, local_files_only=local)


def as_rgb(image) -> Any:
    """A PIL RGB image from a PIL image of any mode or an H x W (x C) uint8 array."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    return image if image.mode == "RGB" else image.convert("RGB")


def image_hw(image) -> tuple[int, int]:
    """(height, width) of a PIL image or an array."""
    if isinstance(image, np.ndarray):
        return int(image.shape[0]), int(image.shape[1])
    return image.size[1], image.size[0]


def batched(items: Sequence[_T], size: int) -> list[list[_T]]:
    """Consecutive chunks of at most `size` items, in order."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def check_pairs(first: Sequence, second: Sequence, what: str) -> None:
    """Refuse batches whose two input lists differ in length."""
    if len(first) != len(second):
        raise ValueError(f"{what}: got {len(first)} inputs but {len(second)} prompts")


def generation_options(max_new_tokens: int, temperature: float, pad_token_id: int | None) -> dict:
    """`generate` keywords: greedy at temperature 0, else pure temperature sampling."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    options: dict = {"max_new_tokens": max_new_tokens, "pad_token_id": pad_token_id}
    if temperature > 0:
        options.update(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
    else:
        options.update(do_sample=False, temperature=None, top_k=None, top_p=None)
    return options


def new_text(processor, generated: torch.Tensor, prompt_len: int) -> list[str]:
    """Decode what `generate` added after a left-padded prompt of `prompt_len` tokens."""
    return [t.strip() for t in processor.batch_decode(
        generated[:, prompt_len:], skip_special_tokens=True
    )]
