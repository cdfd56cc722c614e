"""Image probing for ingestion: does the file decode completely, and what is it?"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from PIL import Image

from labeling.ingest.media import MediaError, Reason, StrPath, check_file


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


def probe_image(path: StrPath) -> ImageInfo:
    """Check that the image decodes completely and return its size, format and mode.

    `verify()` checks structure (PNG CRCs) without decoding pixels and leaves
    the image unusable, so the file is opened again and fully `load()`ed: only
    a full decode finds a JPEG cut short. Relies on Pillow's default
    `ImageFile.LOAD_TRUNCATED_IMAGES = False`; if some other code sets it True,
    truncated files load padded with grey and pass.

    Raises MediaError: missing, not_a_file, unreadable, empty_file, undecodable,
    truncated, too_large (Pillow's decompression-bomb limit).
    """
    check_file(path)
    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            im.load()
            return ImageInfo(width=im.width, height=im.height, format=str(im.format),
                             mode=im.mode)
    except Image.DecompressionBombError as err:
        raise MediaError("too_large", path, str(err)) from None
    except _PIL_ERRORS as err:
        reason: Reason = "truncated" if "truncat" in str(err).lower() else "undecodable"
        raise MediaError(reason, path, f"Pillow: {err}") from None
