"""Label Studio tasks for human QC of the image chain's verified points ("is the point on X?").

One task per **verified point**, not per (image, phrase): a yes/no answer is
only unambiguous about one location, and the dataset can then drop exactly
the points people refused (:mod:`labeling.qc.point_verdicts`). A task shows

* the image (served through a local-files storage, like the speech clips),
  with the prompt the dataset will use (``Point at <phrase>.``) and the
  question ``Is the point on <phrase>?`` above it;
* the point as a ``KeyPointLabels`` prediction (``x``/``y`` in percent of the
  original size, with ``original_width``/``original_height``), coloured to
  contrast with what lies under it: the mean colour of the image under the
  mask (tinted by the mask's overlay when it is shown), matched against a
  fixed palette (:func:`contrasting_colour`); the palette's colours are the
  labels of the ``KeyPointLabels`` tag, the only way Label Studio colours a
  region per task;
* optionally the mask as a ``BrushLabels`` prediction (Label Studio's own
  brush RLE, :func:`brush_rle`), so the annotator sees what the chain took
  for the phrase;
* a ``Choices`` yes/no, **not** pre-selected (a pre-selected "yes" invites
  rubber-stamping) and required.

Besides what is shown, ``data`` carries the point's identity (``point_id``,
``image_id``, ``region``, ``point``, ``phrase``, ``x``, ``y``), ``batch`` (what
the pull keeps and a re-push skips) and ``second_review``
(:mod:`labeling.qc.review`, keyed by ``point_id``).

Example:
    >>> import numpy as np
    >>> from PIL import Image
    >>> pixels = np.zeros((4, 6, 3), dtype=np.uint8); pixels[1:3, 2:5] = (20, 160, 40)
    >>> row = {"image_id": "im1", "region": 0, "point": 0, "phrase": "green box",
    ...        "x": 3.5, "y": 1.5, "width": 6, "height": 4, "source_path": "/m/im1.png",
    ...        "mask_counts": "9220003"}  # rows 1-2, columns 2-4
    >>> (task,) = point_tasks([row], batch="b1", share=1.0,
    ...                       load=lambda path: Image.fromarray(pixels))
    >>> task["data"]["question"], task["data"]["point_colour"], task["data"]["second_review"]
    ('Is the point on green box?', 'blue', True)
    >>> point, mask = task["predictions"][0]["result"]
    >>> point["value"], point["original_width"], mask["value"]["brushlabels"]
    ({'x': 58.333..., 'y': 37.5, 'width': 1.0, 'keypointlabels': ['blue']}, 6, ['mask'])
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from labeling.image.pointing import pointing_prompt
from labeling.qc.review import SECOND_REVIEW_FIELD, second_review

#: One model version for every task, so Label Studio shows all of them pre-annotated.
MODEL_VERSION = "rlfoundry-verified-points"
#: Names of the labeling config's tags (the results' ``from_name``/``to_name``).
IMAGE, POINT, MASK, CHOICES = "image", "point", "mask", "on_phrase"
ANSWERS = ("yes", "no")

#: Point colours, the ``KeyPointLabels`` labels; the first is the fallback.
PALETTE: dict[str, tuple[int, int, int]] = {
    "magenta": (255, 0, 255), "cyan": (0, 255, 255), "yellow": (255, 255, 0),
    "lime": (0, 255, 0), "red": (255, 0, 0), "blue": (0, 0, 255),
    "white": (255, 255, 255), "black": (0, 0, 0),
}
DEFAULT_COLOUR = "magenta"
#: The mask's overlay colour, and how much of it Label Studio's brush layer blends in
#: (an estimate: the point's colour is chosen against the blend when the mask is shown).
MASK_COLOUR, MASK_ALPHA = (255, 140, 0), 0.5
#: A keypoint's drawn size, percent of the image width (Label Studio's ``value.width``).
POINT_WIDTH = 1.0
#: Formats every browser shows; any other image is shown through an RGB PNG copy.
BROWSER_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP"})


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02X}{:02X}{:02X}".format(*rgb)


def point_config_xml(show_mask: bool = True) -> str:
    """The labeling config: prompt and question, the image, the point (one label per palette
    colour), the mask (optional) and the yes/no choice.

    >>> xml = point_config_xml()
    >>> '<Label value="cyan" background="#00FFFF"/>' in xml, '<BrushLabels' in xml
    (True, True)
    >>> '<BrushLabels' in point_config_xml(show_mask=False)
    False
    """
    labels = "\n".join(f'    <Label value="{name}" background="{_hex(rgb)}"/>'
                       for name, rgb in PALETTE.items())
    mask = (f'  <BrushLabels name="{MASK}" toName="{IMAGE}">\n'
            f'    <Label value="mask" background="{_hex(MASK_COLOUR)}"/>\n'
            "  </BrushLabels>\n") if show_mask else ""
    return (
        "<View>\n"
        '  <Header value="$prompt"/>\n'
        '  <Header value="$question" size="4"/>\n'
        f'  <Choices name="{CHOICES}" toName="{IMAGE}" choice="single-radio" required="true" '
        'showInline="true">\n'
        '    <Choice value="yes" hotkey="y"/>\n'
        '    <Choice value="no" hotkey="n"/>\n'
        "  </Choices>\n"
        f'  <Image name="{IMAGE}" value="$image" zoom="true" zoomControl="true"/>\n'
        f'  <KeyPointLabels name="{POINT}" toName="{IMAGE}" strokeWidth="3" opacity="1">\n'
        f"{labels}\n"
        "  </KeyPointLabels>\n"
        f"{mask}"
        "</View>\n"
    )


def point_question(phrase: str) -> str:
    """The yes/no question of a task.

    >>> point_question("red cup")
    'Is the point on red cup?'
    """
    return f"Is the point on {phrase}?"


def point_id(image_id: str, phrase: str, x: float, y: float) -> str:
    """A stable id of "this location in this image, for this phrase": what a verdict is about
    (independent of region and point numbers, which a re-run of the chain may change).

    >>> point_id("im1", "cup", 2.5, 1.5) == point_id("im1", "cup", 2.50001, 1.5)
    True
    >>> len(point_id("im1", "cup", 2.5, 1.5))
    16
    """
    key = f"{image_id}\x1f{phrase}\x1f{float(x):.3f}\x1f{float(y):.3f}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- colour


def mean_colour(pixels: np.ndarray, mask: np.ndarray) -> tuple[int, int, int] | None:
    """The mean RGB of `pixels` (height x width x 3) under `mask`; None for an empty mask or
    one of another size.

    >>> px = np.zeros((2, 2, 3), dtype=np.uint8); px[0] = (200, 40, 0)
    >>> mean_colour(px, np.array([[1, 1], [0, 0]], dtype=bool))
    (200, 40, 0)
    >>> mean_colour(px, np.zeros((3, 3), dtype=bool)) is None
    True
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != pixels.shape[:2] or not mask.any():
        return None
    mean = pixels[mask].reshape(-1, 3).mean(axis=0)
    return (int(round(mean[0])), int(round(mean[1])), int(round(mean[2])))


def colour_distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """A perceptual distance between two RGB colours (the "redmean" weighting).

    >>> round(colour_distance((0, 0, 0), (255, 255, 255)))
    765
    """
    rbar = (a[0] + b[0]) / 2
    dr, dg, db = (a[0] - b[0]), (a[1] - b[1]), (a[2] - b[2])
    return float(np.sqrt((2 + rbar / 256) * dr * dr + 4 * dg * dg
                         + (2 + (255 - rbar) / 256) * db * db))


def blend(colour: tuple[int, int, int], tint: tuple[int, int, int],
          alpha: float) -> tuple[int, int, int]:
    """`colour` with `tint` laid over it at `alpha`.

    >>> blend((0, 0, 0), (255, 140, 0), 0.5)
    (128, 70, 0)
    """
    return tuple(int(round((1 - alpha) * c + alpha * t)) for c, t in zip(colour, tint, strict=True))


def contrasting_colour(under: tuple[int, int, int] | None) -> str:
    """The palette colour farthest from `under` (the fallback when it is unknown).

    >>> contrasting_colour((200, 30, 30)), contrasting_colour((30, 180, 30))
    ('cyan', 'magenta')
    >>> contrasting_colour((250, 250, 250)), contrasting_colour(None)
    ('black', 'magenta')
    """
    if under is None:
        return DEFAULT_COLOUR
    return max(PALETTE, key=lambda name: colour_distance(PALETTE[name], under))


# --------------------------------------------------------------------------- results


def keypoint_result(x: float, y: float, width: int, height: int, colour: str) -> dict:
    """A point as Label Studio's UI writes a ``KeyPointLabels`` region: percent of the original
    size, with that size."""
    return {"id": POINT, "from_name": POINT, "to_name": IMAGE, "type": "keypointlabels",
            "original_width": int(width), "original_height": int(height), "image_rotation": 0,
            "value": {"x": 100.0 * float(x) / width, "y": 100.0 * float(y) / height,
                      "width": POINT_WIDTH, "keypointlabels": [colour]}}


def brush_result(mask: np.ndarray) -> dict:
    """A mask as a ``BrushLabels`` region (Label Studio's brush RLE)."""
    height, width = mask.shape
    return {"id": MASK, "from_name": MASK, "to_name": IMAGE, "type": "brushlabels",
            "original_width": int(width), "original_height": int(height), "image_rotation": 0,
            "value": {"format": "rle", "rle": brush_rle(mask), "brushlabels": ["mask"]}}


def choices_result(answer: str) -> dict:
    """The yes/no answer as the UI writes it (``{"choices": ["yes"]}``)."""
    return {"from_name": CHOICES, "to_name": IMAGE, "type": "choices", "origin": "manual",
            "value": {"choices": [answer]}}


_RLE_SIZES = (3, 4, 8, 16)  # bits of a run's length, by the run's size class


def brush_rle(mask: np.ndarray) -> list[int]:
    """`mask` (height x width, nonzero is in) in Label Studio's brush RLE: the RGBA bytes of the
    mask image (255 inside, 0 outside, row by row), packed as thi.ng's rle-pack does (a 32-bit
    count, the word size, four run-length sizes, then runs of repeated bytes), as bytes.

    >>> brush_rle(np.array([[0, 1]]))  # 4 bytes of 0, then 4 of 255
    [0, 0, 0, 8, 57, 27, 252, 96, 17, 255, 128]
    """
    flat = (np.asarray(mask).reshape(-1) != 0).astype(np.uint8) * 255
    bits = [f"{flat.size * 4:032b}", f"{8 - 1:05b}", *(f"{s - 1:04b}" for s in _RLE_SIZES)]
    if flat.size:
        edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        starts = np.concatenate(([0], edges))
        lengths = np.diff(np.concatenate((starts, [flat.size]))) * 4
        for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
            value = f"{int(flat[start]):08b}"
            while length > 0:
                run = min(length, 2 ** _RLE_SIZES[-1])
                size = next(i for i, s in enumerate(_RLE_SIZES) if run <= 2**s)
                bits.append(f"1{size:02b}{run - 1:0{_RLE_SIZES[size]}b}{value}")
                length -= run
    stream = "".join(bits)
    stream += "0" * (-len(stream) % 8)
    return [int(stream[i:i + 8], 2) for i in range(0, len(stream), 8)]


# --------------------------------------------------------------------------- tasks


def _mask(row: Mapping[str, Any]) -> np.ndarray:
    from labeling.image.masks import decode_rle

    return decode_rle({"size": [int(row["height"]), int(row["width"])],
                       "counts": row["mask_counts"]})


def point_tasks(
    rows: Iterable[Mapping[str, Any]],
    *,
    batch: str,
    media_url: Callable[[str], str | None] | None = None,
    share: float = 0.2,
    seed: int = 0,
    show_mask: bool = True,
    load: Callable[[str], Any] | None = None,
) -> list[dict]:
    """Import-ready tasks for verified points (``image_id``, ``region``, ``point``, ``phrase``,
    ``x``, ``y`` in original pixels, the mask's ``mask_counts``/``width``/``height``, and
    ``source_path``; ``display_path`` when the image is shown through another file).

    `media_url` turns a file's path into the URL Label Studio serves it at (None keeps the
    path); `load` opens an image as PIL RGB (default
    :func:`labeling.image.pixels.open_rgb`), once per image in a row: an image that does not
    open gets the fallback colour.
    """
    if load is None:
        from labeling.image.pixels import open_rgb as load
    tasks: list[dict] = []
    opened: tuple[str | None, np.ndarray | None] = (None, None)
    for row in rows:
        path = str(row["source_path"])
        if opened[0] != path:
            try:
                opened = (path, np.asarray(load(path).convert("RGB")))
            except OSError:
                opened = (path, None)
        mask = _mask(row)
        under = None if opened[1] is None else mean_colour(opened[1], mask)
        if under is not None and show_mask:
            under = blend(under, MASK_COLOUR, MASK_ALPHA)
        colour = contrasting_colour(under)
        shown = str(row.get("display_path") or path)
        pid = point_id(row["image_id"], row["phrase"], row["x"], row["y"])
        width, height = int(row["width"]), int(row["height"])
        result = [keypoint_result(row["x"], row["y"], width, height, colour)]
        if show_mask:
            result.append(brush_result(mask))
        tasks.append({
            "data": {
                "image": (media_url(shown) if media_url else None) or shown,
                "prompt": pointing_prompt(row["phrase"]),
                "question": point_question(row["phrase"]),
                "point_id": pid, "image_id": row["image_id"], "region": int(row["region"]),
                "point": int(row["point"]), "phrase": row["phrase"],
                "x": float(row["x"]), "y": float(row["y"]), "point_colour": colour,
                "batch": batch, SECOND_REVIEW_FIELD: second_review(pid, share, seed),
            },
            "predictions": [{"model_version": MODEL_VERSION, "result": result}],
        })
    return tasks


def browser_safe(image_format: str | None) -> bool:
    """Whether a browser shows an image of this (Pillow) format as it is.

    >>> browser_safe("JPEG"), browser_safe("TIFF"), browser_safe(None)
    (True, False, False)
    """
    return (image_format or "").upper() in BROWSER_FORMATS
