"""A picture of one example, for a person checking verification: image, mask, box, point.

The mask is tinted (green when the point verified, red when not), the
detector's box outlined, each point drawn as a ringed dot, and the phrase
written in the corner. Plain Pillow; large images are shrunk to `max_side`
so the PNG stays small enough to embed in Dagster metadata.

Example:
    >>> import numpy as np
    >>> mask = np.zeros((40, 60), dtype=bool); mask[10:30, 20:50] = True
    >>> picture = overlay(Image.new("RGB", (60, 40)), mask, (20, 10, 50, 30), [(35.5, 20.5)],
    ...                   "red cup", passed=True)
    >>> picture.size, picture.getpixel((45, 25))
    ((60, 40), (18, 90, 36))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from labeling.image.pixels import to_rgb
from models.roles import Box

PASS_TINT = (40, 200, 80)
FAIL_TINT = (230, 50, 50)


def overlay(
    image: Image.Image, mask: np.ndarray, box: Box, points: Sequence[tuple[float, float]],
    label: str, *, passed: bool = True, max_side: int = 384, alpha: float = 0.45,
) -> Image.Image:
    """`image` with `mask` tinted, `box` outlined and `points` marked, at most `max_side` px."""
    base = np.asarray(to_rgb(image), dtype=np.float32)
    tint = np.array(PASS_TINT if passed else FAIL_TINT, dtype=np.float32)
    inside = np.asarray(mask, dtype=bool)
    base[inside] = (1 - alpha) * base[inside] + alpha * tint
    picture = Image.fromarray(base.round().astype(np.uint8), "RGB")
    width, height = picture.size
    ratio = min(1.0, max_side / max(width, height))
    if ratio < 1.0:
        picture = picture.resize((max(1, round(width * ratio)), max(1, round(height * ratio))))
    draw = ImageDraw.Draw(picture)
    x0, y0, x1, y1 = (float(v) * ratio for v in box)
    draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=(255, 200, 0))
    radius = max(2.0, max(picture.size) / 80)
    for x, y in points:
        cx, cy = x * ratio, y * ratio
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius),
                     fill=(255, 255, 255), outline=(0, 0, 0))
    draw.text((2, 2), label, fill=(255, 255, 255), stroke_width=1, stroke_fill=(0, 0, 0))
    return picture
