"""Open-vocabulary detection (the `detector` role) with Grounding DINO.

`GroundingDinoForObjectDetection` + `GroundingDinoProcessor` from transformers
(no torchvision, no `groundingdino-py`). Each image has its own phrases; they
are joined into Grounding DINO's prompt ("a cat. a dog.") and images are
batched with their prompts padded.

Boxes and scores come from the processor's
`post_process_grounded_object_detection` (boxes scaled to each image's
original size). The phrase of a box is the caller's phrase whose tokens the box
matches best (max token probability over the phrase's span of the prompt), not
the processor's decoded token string: a box whose best phrase scores below
`text_threshold` is dropped. No non-maximum suppression is applied.

Example (tiny random weights: the boxes are meaningless):
    >>> import tempfile
    >>> from PIL import Image
    >>> from models.tiny import build_tiny_grounding_dino
    >>> detector = GroundingDinoDetector.from_pretrained(
    ...     str(build_tiny_grounding_dino(tempfile.mkdtemp())))
    >>> [found] = detector.detect([Image.new("RGB", (120, 80))], [["red square"]],
    ...                          box_threshold=0.0, text_threshold=0.0)
    >>> all(0 <= d.box[0] <= d.box[2] <= 120 and d.phrase == "red square" for d in found)
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import AutoProcessor, GroundingDinoForObjectDetection

from models.loading import as_rgb, batched, image_hw, load_pretrained
from models.roles import Detection

DEFAULT_DETECTOR = "IDEA-Research/grounding-dino-tiny"


class GroundingDinoDetector:
    """Finds the given phrases in images; boxes in original pixels."""

    def __init__(self, model, processor, *, name: str, batch_size: int = 4):
        self.model = model.eval()
        self.processor = processor
        self.name = name
        self.batch_size = batch_size
        self._dot_id = processor.tokenizer.convert_tokens_to_ids(".")

    @classmethod
    def from_pretrained(
        cls, path_or_id: str = DEFAULT_DETECTOR, *, device: str | None = None,
        dtype: torch.dtype | None = None, batch_size: int = 4,
    ) -> GroundingDinoDetector:
        """Load from a folder or a hub id (float32 unless `dtype` says otherwise)."""
        model, processor = load_pretrained(
            GroundingDinoForObjectDetection, AutoProcessor, path_or_id, device, dtype)
        return cls(model, processor, name=str(path_or_id), batch_size=batch_size)

    def detect(
        self, images: Sequence, phrases: Sequence[Sequence[str]], *,
        box_threshold: float = 0.35, text_threshold: float = 0.25,
    ) -> list[list[Detection]]:
        """Per image, the boxes matching one of its phrases, best score first.

        An image with no phrases gets no boxes (and no model call). 0.35 / 0.25
        are Grounding DINO's published defaults.
        """
        if len(images) != len(phrases):
            raise ValueError(f"detect: {len(images)} images but {len(phrases)} phrase lists")
        found: list[list[Detection]] = [[] for _ in images]
        todo = [i for i, image_phrases in enumerate(phrases) if image_phrases]
        for batch in batched(todo, self.batch_size):
            pairs = [(images[i], phrases[i]) for i in batch]
            for i, detections in zip(
                batch, self._detect_batch(pairs, box_threshold, text_threshold), strict=True
            ):
                found[i] = detections
        return found

    @torch.inference_mode()
    def _detect_batch(self, batch, box_threshold: float, text_threshold: float):
        rgb = [as_rgb(image) for image, _ in batch]
        prompts = [prompt_text(p) for _, p in batch]
        inputs = self.processor(images=rgb, text=prompts, return_tensors="pt", padding=True)
        inputs = inputs.to(self.model.device, dtype=self.model.dtype)
        outputs = self.model(**inputs)
        sizes = [image_hw(image) for image in rgb]
        results = self.processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=box_threshold, text_threshold=text_threshold,
            target_sizes=sizes,
        )
        probs = torch.sigmoid(outputs.logits)  # in the model's dtype, as the post-processing
        found = []
        for row, (_, phrases) in enumerate(batch):
            keep = probs[row].max(dim=-1).values > box_threshold  # the rows it kept
            spans = phrase_spans(inputs["input_ids"][row].tolist(), self._dot_id, len(phrases))
            found.append(_matched(
                results[row], probs[row][keep], spans, list(phrases), text_threshold, sizes[row]
            ))
        return found


def prompt_text(phrases: Sequence[str]) -> str:
    """Grounding DINO's prompt for a list of phrases: lower case, each ended by a dot.

    Example:
        >>> prompt_text(["A cat", " dog "])
        'a cat. dog.'
    """
    cleaned = [p.strip().lower() for p in phrases]
    if not cleaned or any(not p or "." in p for p in cleaned):
        raise ValueError(f"phrases must be non-empty and hold no '.', got {list(phrases)}")
    return ". ".join(cleaned) + "."


def phrase_spans(input_ids: list[int], dot_id: int, count: int) -> list[list[int]]:
    """Token positions of each phrase: the runs between [CLS], the dots and [SEP].

    Example (101 = [CLS], 1012 = ".", 102 = [SEP], 0 = padding):
        >>> phrase_spans([101, 7, 8, 1012, 9, 1012, 102, 0], dot_id=1012, count=2)
        [[1, 2], [4]]
    """
    spans: list[list[int]] = [[]]
    for pos, token in enumerate(input_ids[1:], start=1):
        if token == dot_id:
            spans.append([])
        else:
            spans[-1].append(pos)
    spans = spans[:count]
    if len(spans) != count or any(not span for span in spans):
        raise ValueError(f"the prompt does not split into {count} phrases (was it truncated?)")
    return spans


def _matched(result, probs, spans, phrases, text_threshold: float, size: tuple[int, int]):
    h, w = size
    detections = []
    for box, score, token_probs in zip(result["boxes"], result["scores"], probs, strict=True):
        phrase_scores = [float(token_probs[span].max()) for span in spans]
        best = max(range(len(spans)), key=phrase_scores.__getitem__)
        if phrase_scores[best] < text_threshold:
            continue
        x0, y0, x1, y1 = (float(v) for v in box)
        clipped = (_clip(x0, w), _clip(y0, h), _clip(x1, w), _clip(y1, h))
        detections.append(Detection(box=clipped, score=float(score), phrase=phrases[best]))
    return sorted(detections, key=lambda d: -d.score)


def _clip(value: float, limit: int) -> float:
    return min(max(value, 0.0), float(limit))
