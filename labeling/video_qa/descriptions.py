"""What happens in each part of a video, in words: before the cut (the context) and after it
(the truth), given by a person or the manifest, or written by the ``vlm`` role.

Sources (policy):

* per video and part, the first of: **human** (written or corrected in Label Studio),
  **manifest** (the manifest line's ``description`` key for the context and
  ``truth_description`` for the truth, kept by ingestion as tags), **model** (the VLM shown
  the part's frames; ``source = "model:<id>"``). The model runs only for parts with no given
  description;
* a given description must be non-blank text, else it is quarantined (``bad_description``)
  and the part falls back to the next source;
* a manifest may say at which share of the video its descriptions were cut
  (``description_cut``); one that differs from the segments' cut describes other frames:
  both its descriptions are quarantined (``description_cut_mismatch``) and not used;
* the VLM is shown at most ``max_frames`` of the part's frames, evenly spaced, first and
  last included, as one list of images; a blank answer is quarantined
  (``empty_description``), as is a model call that fails on the part alone
  (``model_error``).

Example (a stub VLM; the first video's manifest describes both parts):
    >>> class Stub:
    ...     name = "stub-vlm"
    ...     def generate_with_images(self, visuals, prompts, *, max_new_tokens=64,
    ...                              temperature=0.0):
    ...         return [f"{len(frames)} frames" for frames in visuals]
    >>> videos = [{"video_id": "v1", "source_path": "/d/a.mp4", "tags": {
    ...     "description": "A ball rolls.", "truth_description": "It stops."}},
    ...           {"video_id": "v2", "source_path": "/d/b.mp4", "tags": {}}]
    >>> segments = {v: {"cut": 0.7, "context_paths": ["f0", "f1", "f2"], "truth_paths": ["f3"]}
    ...             for v in ("v1", "v2")}
    >>> rows, bad = description_rows(Stub(), videos, segments, load=lambda path: path)
    >>> [(r["video_id"], r["part"], r["description"], r["source"]) for r in rows]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('v1', 'context', 'A ball rolls.', 'manifest'), ('v1', 'truth', 'It stops.', 'manifest'),
     ('v2', 'context', '3 frames', 'model:stub-vlm'), ('v2', 'truth', '1 frames', 'model:stub-vlm')]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from models.loading import batched

Row = dict[str, Any]
PARTS = ("context", "truth")
MANIFEST_KEYS = {"context": "description", "truth": "truth_description"}
"""The manifest keys (tags) holding each part's description."""
GIVEN = ("human", "manifest")
PROMPTS = {
    "context": "These are frames of a video, in order. Describe what happens in them: which "
               "objects there are, where they are and how they move. Answer in two or three "
               "sentences.",
    "truth": "These frames are the end of a video, in order. Describe what happens in them: "
             "which objects there are, where they are and how they move. Answer in two or "
             "three sentences.",
}
MODEL_ERRORS = (ValueError, RuntimeError, IndexError)
"""What a failing model call raises (a too-long prompt, a tensor shape): the batch is then
retried one part at a time, and a part that fails alone is quarantined."""


@dataclass(frozen=True)
class DescribeSettings:
    """How the VLM is asked."""

    max_frames: int = 8
    """The most frames of a part shown to the VLM (evenly spaced)."""
    max_new_tokens: int = 96
    batch_size: int = 4
    """Parts per VLM call."""


def evenly(items: Sequence[Any], k: int) -> list[Any]:
    """At most ``k`` of ``items``, evenly spaced, the first and the last included.

    >>> evenly(list(range(10)), 4), evenly([1, 2], 4), evenly(list(range(5)), 1)
    ([0, 3, 6, 9], [1, 2], [0])
    """
    n = len(items)
    if n <= k:
        return list(items)
    if k == 1:
        return [items[0]]
    return [items[round(i * (n - 1) / (k - 1))] for i in range(k)]


def given_descriptions(
    video: Mapping[str, Any], human: Mapping[str, str] | None, cut: float,
) -> tuple[dict[str, tuple[str, str]], list[Row]]:
    """{part: (description, source)} from the human and manifest sources, and a quarantine
    row per given description that cannot be used.

    >>> given_descriptions({"source_path": "/d/a.mp4", "tags": {
    ...     "description": "A ball rolls.", "truth_description": "  ", "description_cut": 0.5}},
    ...     None, 0.7)[1][0]["reason"]
    'description_cut_mismatch'
    """
    tags = video.get("tags") or {}
    found: dict[str, tuple[str, str]] = {}
    problems: list[Row] = []
    manifest = {part: tags[key] for part, key in MANIFEST_KEYS.items() if key in tags}
    said_cut = tags.get("description_cut")
    if manifest and said_cut is not None and not _same_cut(said_cut, cut):
        problems.append(_problem(video, "description_cut_mismatch", (
            f"the manifest's descriptions are of a cut at {said_cut!r}; the segments are cut "
            f"at {cut:g}: not used (describe at that cut, or cut the segments at it)")))
        manifest = {}
    for source, given in (("human", human or {}), ("manifest", manifest)):
        for part, text in given.items():
            if part in found:
                continue
            if isinstance(text, str) and text.strip():
                found[part] = (" ".join(text.split()), source)
            else:
                problems.append(_problem(video, "bad_description", (
                    f"{source} {part} description is {_short(text)}; expected non-blank text "
                    f"(the {MANIFEST_KEYS[part]!r} key)")))
    return found, problems


def missing_parts(
    videos: Sequence[Mapping[str, Any]], segments: Mapping[str, Mapping[str, Any]],
    human: Mapping[str, Mapping[str, str]] | None = None,
) -> list[tuple[str, str]]:
    """``(video id, part)`` of each part with a segment and no usable given description: what
    the VLM must describe (load it only when this is not empty).

    >>> missing_parts([{"video_id": "v", "source_path": "/d/v.mp4",
    ...                 "tags": {"description": "A ball rolls.", "truth_description": ""}}],
    ...               {"v": {"cut": 0.7}})
    [('v', 'truth')]
    """
    out = []
    for video in videos:
        segment = segments.get(video["video_id"])
        if segment is not None:
            given, _ = given_descriptions(video, (human or {}).get(video["video_id"]),
                                          segment["cut"])
            out += [(video["video_id"], part) for part in PARTS if part not in given]
    return out


def description_rows(
    vlm: Any, videos: Sequence[Mapping[str, Any]], segments: Mapping[str, Mapping[str, Any]], *,
    human: Mapping[str, Mapping[str, str]] | None = None,
    settings: DescribeSettings = DescribeSettings(), load: Callable[[str], Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Row], list[Row]]:
    """One row per (video, part) with a description and its source, and the quarantine rows.

    ``videos`` carry ``video_id``, ``source_path`` and ``tags`` (parsed); ``segments`` maps a
    video id to its segment (``cut``, ``context_paths``, ``truth_paths``): a video without
    one is not described. ``vlm`` may be None when every part is given. ``load`` opens a
    frame file (default: PIL, RGB).
    """
    load = load or _open_rgb
    rows: dict[tuple[str, str], Row] = {}
    failures: list[Row] = []
    jobs: list[tuple[Mapping[str, Any], str, list[str]]] = []
    for video in videos:
        segment = segments.get(video["video_id"])
        if segment is None:
            continue
        given, problems = given_descriptions(video, (human or {}).get(video["video_id"]),
                                             segment["cut"])
        failures += problems
        for part in PARTS:
            if part in given:
                text, source = given[part]
                rows[(video["video_id"], part)] = _row(video, part, text, source, None, None)
            else:
                jobs.append((video, part, evenly(segment[f"{part}_paths"], settings.max_frames)))
    if jobs and vlm is None:
        raise ValueError(f"{len(jobs)} video part(s) have no given description and no VLM was "
                         "given to describe them")
    done = 0
    for batch in batched(jobs, settings.batch_size):
        for (video, part, frames), text in zip(batch, _describe(vlm, batch, load, settings),
                                               strict=True):
            if isinstance(text, Exception):
                failures.append(_problem(video, "model_error", f"{part}: {vlm.name} failed: "
                                                               f"{type(text).__name__}: {text}"))
            elif not text.strip():
                failures.append(_problem(video, "empty_description",
                                         f"{part}: {vlm.name} wrote nothing for "
                                         f"{len(frames)} frames"))
            else:
                rows[(video["video_id"], part)] = _row(video, part, " ".join(text.split()),
                                                       f"model:{vlm.name}", vlm.name,
                                                       len(frames))
        done += len(batch)
        if progress is not None:
            progress(done, len(jobs))
    order = {(v["video_id"], p): i for i, (v, p) in enumerate(
        (v, p) for v in videos for p in PARTS)}
    return sorted(rows.values(), key=lambda r: order[(r["video_id"], r["part"])]), failures


def _describe(vlm: Any, batch: list, load: Callable[[str], Any], settings: DescribeSettings
              ) -> list[str | Exception]:
    """The VLM's text per job, retrying one at a time when the batch fails."""
    visuals = [[load(p) for p in frames] for _, _, frames in batch]
    prompts = [PROMPTS[part] for _, part, _ in batch]
    try:
        return vlm.generate_with_images(visuals, prompts, max_new_tokens=settings.max_new_tokens)
    except MODEL_ERRORS as exc:
        if len(batch) == 1:
            return [exc]
    out: list[str | Exception] = []
    for visual, prompt in zip(visuals, prompts, strict=True):
        try:
            out += vlm.generate_with_images([visual], [prompt],
                                            max_new_tokens=settings.max_new_tokens)
        except MODEL_ERRORS as exc:
            out.append(exc)
    return out


def _row(video: Mapping[str, Any], part: str, text: str, source: str, model: str | None,
         frames: int | None) -> Row:
    return {"video_id": video["video_id"], "part": part, "description": text, "source": source,
            "model": model, "frames_shown": frames}


def _problem(video: Mapping[str, Any], reason: str, detail: str) -> Row:
    return {"source_path": video["source_path"], "reason": reason, "detail": detail}


def _same_cut(said: Any, cut: float) -> bool:
    try:
        return abs(float(said) - cut) < 1e-9
    except (TypeError, ValueError):
        return False


def _open_rgb(path: str):
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
