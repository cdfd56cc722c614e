"""Image captioning (the `captioner` role): BLIP and other image-to-text models.

Loaded with `AutoModelForImageTextToText` + `AutoProcessor`, so any captioner
whose processor takes `images` (and optionally `text`) and whose `generate`
returns caption tokens works; the default is BLIP base. Images are batched;
BLIP's output starts with the prompt when one is given, as BLIP does.

Example (tiny random weights: the text is meaningless):
    >>> import tempfile
    >>> from PIL import Image
    >>> from models.tiny import build_tiny_blip
    >>> captioner = BlipCaptioner.from_pretrained(str(build_tiny_blip(tempfile.mkdtemp())))
    >>> captions = captioner.caption([Image.new("RGB", (40, 30)), Image.new("RGB", (20, 50))])
    >>> len(captions), all(isinstance(c, str) for c in captions)
    (2, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from models.loading import as_rgb, batched, load_pretrained

DEFAULT_CAPTIONER = "Salesforce/blip-image-captioning-base"


class BlipCaptioner:
    """Captions images with a Hugging Face image-to-text model (BLIP by default)."""

    def __init__(self, model, processor, *, name: str, batch_size: int = 16):
        self.model = model.eval()
        self.processor = processor
        self.name = name
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(
        cls, path_or_id: str = DEFAULT_CAPTIONER, *, device: str | None = None,
        dtype: torch.dtype | None = None, batch_size: int = 16,
    ) -> BlipCaptioner:
        """Load from a folder or a hub id (the local cache only under HF_HUB_OFFLINE=1)."""
        model, processor = load_pretrained(
            AutoModelForImageTextToText, AutoProcessor, path_or_id, device, dtype, torch.float16)
        return cls(model, processor, name=str(path_or_id), batch_size=batch_size)

    @torch.inference_mode()
    def caption(
        self, images: Sequence, *, prompt: str | None = None, max_new_tokens: int = 30,
    ) -> list[str]:
        """One caption per image, in input order; `prompt` (e.g. "a photo of") starts each."""
        captions: list[str] = []
        for batch in batched(list(images), self.batch_size):
            rgb = [as_rgb(image) for image in batch]
            text = {"text": [prompt] * len(rgb)} if prompt else {}
            inputs = self.processor(images=rgb, return_tensors="pt", **text).to(
                self.model.device, dtype=self.model.dtype
            )
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
            texts = self.processor.batch_decode(out, skip_special_tokens=True)
            captions += [text.strip() for text in texts]
        return captions
