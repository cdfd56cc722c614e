"""Box-prompted segmentation (the `segmenter` role) with SAM.

`SamModel` + `SamProcessor` from transformers (no torchvision: SAM's
"segment everything" mode needs it, box prompts do not). The image embedding,
SAM's expensive part, is computed once per image and shared by all its boxes;
boxes are decoded in chunks. Of SAM's three candidate masks per box the one
with the highest predicted IoU is kept, and only that one is upscaled to the
image's size.

Example (tiny random weights: the masks are meaningless):
    >>> import tempfile
    >>> from PIL import Image
    >>> from models.tiny import build_tiny_sam
    >>> sam = SamSegmenter.from_pretrained(str(build_tiny_sam(tempfile.mkdtemp())))
    >>> [m.mask.shape for m in sam.segment(Image.new("RGB", (120, 80)), [(10, 10, 50, 40)])]
    [(80, 120)]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import AutoProcessor, SamModel

from models.loading import as_rgb, load_pretrained
from models.roles import Box, Mask

DEFAULT_SEGMENTER = "facebook/sam-vit-base"


class SamSegmenter:
    """Masks for boxes in an image, each mask the image's size."""

    def __init__(self, model, processor, *, name: str, boxes_per_pass: int = 64):
        self.model = model.eval()
        self.processor = processor
        self.name = name
        self.boxes_per_pass = boxes_per_pass

    @classmethod
    def from_pretrained(
        cls, path_or_id: str = DEFAULT_SEGMENTER, *, device: str | None = None,
        dtype: torch.dtype | None = None, boxes_per_pass: int = 64,
    ) -> SamSegmenter:
        """Load from a folder or a hub id (float32 unless `dtype` says otherwise)."""
        model, processor = load_pretrained(
            SamModel, AutoProcessor, path_or_id, device, dtype)
        return cls(model, processor, name=str(path_or_id), boxes_per_pass=boxes_per_pass)

    @torch.inference_mode()
    def segment(self, image, boxes: Sequence[Box]) -> list[Mask]:
        """One mask per box (x0, y0, x1, y1 in the image's pixels), in input order."""
        boxes = [tuple(float(v) for v in box) for box in boxes]
        if not boxes:
            return []
        rgb = as_rgb(image)
        inputs = self.processor(
            images=rgb, input_boxes=[[list(b) for b in boxes]], return_tensors="pt"
        )
        pixels = inputs["pixel_values"].to(self.model.device, dtype=self.model.dtype)
        embedding = self.model.get_image_embeddings(pixels)  # once for all boxes
        prompts = inputs["input_boxes"].to(self.model.device, dtype=self.model.dtype)
        masks: list[Mask] = []
        for start in range(0, len(boxes), self.boxes_per_pass):
            stop = start + self.boxes_per_pass
            masks += self._decode(embedding, prompts[:, start:stop], inputs, boxes[start:stop])
        return masks

    def _decode(self, embedding, prompts, inputs, boxes: list[Box]) -> list[Mask]:
        out = self.model(image_embeddings=embedding, input_boxes=prompts, multimask_output=True)
        iou = out.iou_scores[0].float()  # (boxes, candidates)
        best = iou.argmax(dim=-1)
        rows = torch.arange(len(boxes), device=best.device)
        low_res = out.pred_masks[0][rows, best].unsqueeze(1).float()  # (boxes, 1, h, w)
        full = self.processor.post_process_masks(
            [low_res.cpu()], inputs["original_sizes"], inputs["reshaped_input_sizes"]
        )[0][:, 0]
        return [
            Mask(mask=full[i].numpy(), iou=float(iou[i, best[i]]), box=boxes[i])
            for i in range(len(boxes))
        ]
