"""Vision-language generation (the `vlm` role) with LLaVA-style models.

`AutoModelForImageTextToText` + `AutoProcessor` with the processor's chat
template; the default, LLaVA-Interleave Qwen 0.5B, takes several images per
turn, so a video is passed as a list of frames. (Qwen2-VL / SmolVLM
processors do not construct without torchvision here; LLaVA and Idefics3 ones
do.) Prompts are left-padded and batched; only the new tokens are decoded.

Example (tiny random weights: the text is meaningless):
    >>> import tempfile
    >>> from PIL import Image
    >>> from models.tiny import build_tiny_llava
    >>> vlm = LlavaVLM.from_pretrained(str(build_tiny_llava(tempfile.mkdtemp())))
    >>> frames = [Image.new("RGB", (32, 24)), Image.new("RGB", (32, 24))]
    >>> answers = vlm.generate_with_images([Image.new("RGB", (40, 30)), frames],
    ...                                    ["What is this?", "What happens?"], max_new_tokens=4)
    >>> len(answers), all(isinstance(a, str) for a in answers)
    (2, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from models.loading import (
    as_rgb,
    batched,
    check_pairs,
    generation_options,
    load_pretrained,
    new_text,
)

DEFAULT_VLM = "llava-hf/llava-interleave-qwen-0.5b-hf"


class LlavaVLM:
    """Answers prompts about images or frame sequences."""

    def __init__(self, model, processor, *, name: str, batch_size: int = 4):
        self.model = model.eval()
        self.processor = processor
        self.processor.tokenizer.padding_side = "left"
        self.name = name
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(
        cls, path_or_id: str = DEFAULT_VLM, *, device: str | None = None,
        dtype: torch.dtype | None = None, batch_size: int = 4,
    ) -> LlavaVLM:
        """Load from a folder or a hub id (bfloat16 on GPU)."""
        model, processor = load_pretrained(
            AutoModelForImageTextToText, AutoProcessor, path_or_id, device, dtype, torch.bfloat16)
        return cls(model, processor, name=str(path_or_id), batch_size=batch_size)

    def generate_with_images(
        self, visuals: Sequence, prompts: Sequence[str], *, max_new_tokens: int = 64,
        temperature: float = 0.0,
    ) -> list[str]:
        """One answer per (image or list of frames, prompt), in input order."""
        check_pairs(visuals, prompts, "generate_with_images")
        options = generation_options(
            max_new_tokens, temperature, self.processor.tokenizer.pad_token_id
        )
        answers: list[str] = []
        for batch in batched(list(zip(visuals, prompts, strict=True)), self.batch_size):
            answers += self._generate(batch, options)
        return answers

    @torch.inference_mode()
    def _generate(self, batch, options: dict) -> list[str]:
        images, texts = [], []
        for visual, prompt in batch:
            frames = [as_rgb(f) for f in (visual if isinstance(visual, list | tuple) else [visual])]
            content = [{"type": "image"} for _ in frames] + [{"type": "text", "text": prompt}]
            texts.append(self.processor.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
            ))
            images.append(frames)
        inputs = self.processor(images=images, text=texts, return_tensors="pt", padding=True)
        inputs = inputs.to(self.model.device, dtype=self.model.dtype)
        out = self.model.generate(**inputs, **options)
        return new_text(self.processor, out, inputs["input_ids"].shape[1])
