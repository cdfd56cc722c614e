"""Image probing for ingestion: does the file decode completely, and what is it?"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from PIL import Image

from labeling.ingest.media import MediaError, Reason, StrPath, check_file, media_probe

# Largest image decoded (width * height), checked from the header before any pixel is:
# 64 Mpx is 256 MB as RGBA. Pillow's own bomb guard only errors at twice its (larger) limit.
MAX_IMAGE_PIXELS = 64_000_000


@dataclass(frozen=True)
class ImageInfo:
    """Size as stored (EXIF orientation is not applied), Pillow format name and mode."""

    width: int
    height: int
    format: str  # "PNG", "JPEG", "WEBP", "BMP", ...
    mode: str  # "RGB", "RGBA", "L", "P", ...


# What Pillow raises on malformed input, beyond OSError (its "truncated" errors).
_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error,
               Image.DecompressionBombError)


@media_probe
def probe_image(path: StrPath, *, max_pixels: int = MAX_IMAGE_PIXELS) -> ImageInfo:
    """Check that the image decodes completely and return its size, format and mode.

    `verify()` checks structure (PNG CRCs) without decoding pixels and leaves
    the image unusable, so the file is opened again and fully `load()`ed: only
    a full decode finds a JPEG cut short. Relies on Pillow's default
    `ImageFile.LOAD_TRUNCATED_IMAGES = False`; if some other code sets it True,
    truncated files load padded with grey and pass. The header's size is checked
    against `max_pixels` before anything is decoded, so a few hundred bytes that
    declare a 100 000 x 100 000 image cost nothing.

    Raises MediaError: missing, not_a_file, unreadable, empty_file, undecodable,
    truncated, too_large (over `max_pixels`, or Pillow's decompression-bomb
    limit), undecodable also for anything else Pillow raises (see `media_probe`).
    """
    check_file(path)
    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            _check_size(path, im.width, im.height, max_pixels)
            im.load()
            return ImageInfo(width=im.width, height=im.height, format=str(im.format),
                             mode=im.mode)
    except Image.DecompressionBombError as err:
        raise MediaError("too_large", path, str(err)) from None
    except _PIL_ERRORS as err:
        reason: Reason = "truncated" if "truncat" in str(err).lower() else "undecodable"
        raise MediaError(reason, path, f"Pillow: {err}") from None


def _check_size(path: StrPath, width: int, height: int, max_pixels: int) -> None:
    """Reject a declared size that is empty or over `max_pixels`, before decoding pixels."""
    if width <= 0 or height <= 0:
        raise MediaError("undecodable", path, f"header declares a {width}x{height} image")
    if width * height > max_pixels:
        raise MediaError("too_large", path, f"header declares {width}x{height} = "
                         f"{width * height:,} pixels, over the {max_pixels:,} limit")
