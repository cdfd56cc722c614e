"""What the pipeline asks of a model, one small protocol per role.

Each role is what an asset calls, nothing more: a captioner captions, a
detector finds phrases in images, a segmenter turns boxes into masks, and so
on. `resources.model_hub.ModelHub.load(role, name)` returns an object that
satisfies its role's protocol; any other object with the same methods (a stub
in a test, a remote service) can stand in for it. The protocols are
`runtime_checkable`, which checks that the methods exist, not their
signatures.

Inputs are plain: images are PIL images (or H x W x 3 uint8 arrays), audio is
mono float32 at the given sample rate. Every method takes a batch and returns
one result per input, in input order.

Example:
    >>> class EchoLLM:
    ...     name = "echo"
    ...     def generate(self, prompts, *, max_new_tokens=64, temperature=0.0):
    ...         return [str(p) for p in prompts]
    >>> isinstance(EchoLLM(), TextLLM), isinstance(EchoLLM(), Captioner)
    (True, False)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from models.whisper.nbest import Hypothesis

    ImageLike = PILImage | np.ndarray

Box = tuple[float, float, float, float]
"""(x0, y0, x1, y1) in pixels of the original image, x to the right, y down."""

Message = dict[str, Any]
"""A chat message: {"role": "user", "content": "..."}."""

Family = Literal["asr", "vlm", "alm"]
"""The model families a loop trains and the registry keeps apart: speech recognition,
vision-language and audio-language models."""
FAMILIES: tuple[str, ...] = get_args(Family)

ROLES = (
    "asr", "captioner", "detector", "segmenter", "vlm", "text_llm", "audio_lm", "region_detector",
)
"""The role names `ModelHub.load` accepts."""


@dataclass(frozen=True)
class Detection:
    """One phrase found in an image by an open-vocabulary detector.

    Example:
        >>> d = Detection(box=(4.0, 8.0, 20.0, 30.0), score=0.71, phrase="red square")
        >>> d.width, d.height
        (16.0, 22.0)
    """

    box: Box
    """(x0, y0, x1, y1) in original image pixels, clipped to the image."""
    score: float
    """Box confidence in [0, 1]."""
    phrase: str
    """The caller's phrase (as given) this box matches best."""

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@dataclass(frozen=True, eq=False)
class Mask:
    """A segmentation mask for one prompt box.

    Example:
        >>> m = Mask(mask=np.ones((48, 64), dtype=bool), iou=0.9, box=(0.0, 0.0, 64.0, 48.0))
        >>> m.mask.shape, m.area
        ((48, 64), 3072)
    """

    mask: np.ndarray
    """Boolean, height x width of the original image."""
    iou: float
    """The model's own estimate of the mask's IoU with the object."""
    box: Box
    """The prompt box it was made from."""

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass(frozen=True)
class Region:
    """A labelled stretch of a clip.

    Example:
        >>> r = Region(start_s=0.5, end_s=1.75, label="speech", score=0.93)
        >>> r.duration_s
        1.25
    """

    start_s: float
    end_s: float
    label: str
    """What the stretch holds, e.g. "speech"."""
    score: float
    """Confidence in [0, 1] (for silero-vad: mean speech probability over the region)."""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@runtime_checkable
class ASR(Protocol):
    """Speech to text (`models.whisper.asr.WhisperASR`)."""

    name: str
    sample_rate: int

    def transcribe(
        self, audios: Sequence[np.ndarray], *, batch_size: int = ...,
        progress: Callable[[int, int], None] | None = ...,
    ) -> list[str]:
        """One greedy transcript per clip."""
        ...

    def nbest(self, audios: Sequence[np.ndarray], **options: Any) -> list[list[Hypothesis]]:
        """Scored candidate transcripts per clip (beams, samples)."""
        ...


@runtime_checkable
class Captioner(Protocol):
    """Image to a short description."""

    name: str

    def caption(
        self, images: Sequence[ImageLike], *, prompt: str | None = ..., max_new_tokens: int = ...,
    ) -> list[str]:
        """One caption per image; `prompt` starts the caption where the model supports it."""
        ...


@runtime_checkable
class Detector(Protocol):
    """Open-vocabulary object detection: finds given phrases in images."""

    name: str

    def detect(
        self, images: Sequence[ImageLike], phrases: Sequence[Sequence[str]], *,
        box_threshold: float = ..., text_threshold: float = ...,
    ) -> list[list[Detection]]:
        """Per image, the boxes matching one of that image's phrases, best first."""
        ...


@runtime_checkable
class Segmenter(Protocol):
    """Box-prompted segmentation."""

    name: str

    def segment(self, image: ImageLike, boxes: Sequence[Box]) -> list[Mask]:
        """One mask per box, each the size of `image`."""
        ...


@runtime_checkable
class VLM(Protocol):
    """Text generation from images (a video is a list of frames) and a prompt."""

    name: str

    def generate_with_images(
        self, visuals: Sequence[ImageLike | Sequence[ImageLike]], prompts: Sequence[str], *,
        max_new_tokens: int = ..., temperature: float = ...,
    ) -> list[str]:
        """One answer per (image or frames, prompt) pair."""
        ...


@runtime_checkable
class TextLLM(Protocol):
    """Text generation from a prompt or a chat."""

    name: str

    def generate(
        self, prompts: Sequence[str | list[Message]], *, max_new_tokens: int = ...,
        temperature: float = ...,
    ) -> list[str]:
        """One completion per prompt (a string is one user turn)."""
        ...


@runtime_checkable
class AudioLM(Protocol):
    """Text generation from a clip and a prompt."""

    name: str

    def generate_with_audio(
        self, audios: Sequence[np.ndarray], prompts: Sequence[str], *, sample_rate: int = ...,
        max_new_tokens: int = ..., temperature: float = ...,
    ) -> list[str]:
        """One answer per (clip, prompt) pair."""
        ...


@runtime_checkable
class RegionDetector(Protocol):
    """Finds labelled stretches (speech, music, ...) in clips."""

    name: str

    def regions(
        self, audios: Sequence[np.ndarray], *, sample_rate: int = ...
    ) -> list[list[Region]]:
        """Per clip, its regions in time order."""
        ...
