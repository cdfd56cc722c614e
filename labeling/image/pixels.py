"""Images as the models see them, and the way back to the original's pixels.

Ingested images come in every mode Pillow reads: grey ("L"), palette, with
alpha, CMYK JPEGs, 16-bit PNGs ("I;16"). :func:`to_rgb` makes any of them an
8-bit RGB image of the same size: 16-bit and 32-bit grey are scaled to 8 bits
(Pillow's own ``convert("RGB")`` clips them, so a 16-bit image turns white),
alpha is composited on white. Sizes are as stored (EXIF orientation is not
applied), as the ``images`` table records them.

A huge image is shrunk for the models (:func:`fit_within`); boxes found on
the small copy are mapped back with :func:`box_to_original`, masks with
:func:`mask_to_original`, so every stored coordinate is in original pixels.

Example:
    >>> import numpy as np
    >>> from PIL import Image
    >>> deep = Image.fromarray(np.full((4, 6), 65535, dtype=np.uint16))
    >>> deep.mode, to_rgb(deep).mode, to_rgb(deep).getpixel((0, 0))
    ('I;16', 'RGB', (255, 255, 255))
    >>> small, scale = fit_within(Image.new("RGB", (4000, 3000)), 1000)
    >>> small.size, scale
    ((1000, 750), (4.0, 4.0))
    >>> box_to_original((10, 10, 250, 200), scale, (4000, 3000))
    (40.0, 40.0, 1000.0, 800.0)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from models.roles import Box

_DEEP_GREY = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB image of the same size from a PIL image of any mode.

    Example:
        >>> to_rgb(Image.new("CMYK", (3, 2), (0, 255, 255, 0))).getpixel((0, 0))
        (255, 0, 0)
        >>> to_rgb(Image.new("RGBA", (3, 2), (0, 0, 0, 0))).getpixel((0, 0))
        (255, 255, 255)
    """
    if image.mode == "RGB":
        return image
    if image.mode in _DEEP_GREY:
        return Image.fromarray(_grey8(np.asarray(image)), "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _grey8(values: np.ndarray) -> np.ndarray:
    """Deep grey values as 8 bits: integers within 16 bits by /257, anything else stretched."""
    values = values.astype(np.float64)
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() >= 0 and finite.max() <= 65535 and np.all(finite % 1 == 0):
        return np.round(np.nan_to_num(values) / 257.0).astype(np.uint8)
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = high - low or 1.0
    return np.round(np.clip((np.nan_to_num(values, nan=low) - low) / span, 0, 1) * 255).astype(
        np.uint8)


def open_rgb(path: str | Path) -> Image.Image:
    """The image file at `path`, fully decoded, as 8-bit RGB (see :func:`to_rgb`)."""
    with Image.open(path) as image:
        image.load()
        return to_rgb(image)


def fit_within(image: Image.Image, max_side: int) -> tuple[Image.Image, tuple[float, float]]:
    """`image` shrunk so its longer side is at most `max_side` (as it is when it fits), and
    the (x, y) factors that map the copy's pixels back to the original's (0 = never shrink)."""
    width, height = image.size
    if max_side <= 0 or max(width, height) <= max_side:
        return image, (1.0, 1.0)
    ratio = max_side / max(width, height)
    size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    return image.resize(size, Image.Resampling.BILINEAR), (width / size[0], height / size[1])


def box_to_original(box: Box, scale: tuple[float, float], size: tuple[int, int]) -> Box:
    """A box on the shrunk copy in original pixels, clipped to the original `size` (w, h)."""
    sx, sy = scale
    width, height = size
    x0, y0, x1, y1 = (float(v) for v in box)
    return (min(max(x0 * sx, 0.0), width), min(max(y0 * sy, 0.0), height),
            min(max(x1 * sx, 0.0), width), min(max(y1 * sy, 0.0), height))


def box_to_copy(box: Box, scale: tuple[float, float]) -> Box:
    """An original-pixel box on the shrunk copy (the inverse of :func:`box_to_original`)."""
    sx, sy = scale
    x0, y0, x1, y1 = (float(v) for v in box)
    return (x0 / sx, y0 / sy, x1 / sx, y1 / sy)


def mask_to_original(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A boolean mask of the shrunk copy at the original `size` (w, h), nearest neighbour.

    Example:
        >>> mask_to_original(np.eye(2, dtype=bool), (4, 4)).astype(int).tolist()[1]
        [1, 1, 0, 0]
    """
    mask = np.asarray(mask, dtype=bool)
    if (mask.shape[1], mask.shape[0]) == tuple(size):
        return mask
    resized = Image.fromarray(mask.astype(np.uint8) * 255, "L").resize(
        tuple(size), Image.Resampling.NEAREST)
    return np.asarray(resized) > 127
