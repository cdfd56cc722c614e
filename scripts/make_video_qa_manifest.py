"""Write ``data/sample/videos/video_qa.jsonl``: the sample videos with what happens before and
after their 70 % cut, measured from their pixels, as the video questions chain's manifest.

Exact command (from the repository root, after ``scripts/make_sample_data.py``)::

    .venv/bin/python scripts/make_video_qa_manifest.py

Each line names a video (``video_filepath``) and gives two descriptions the chain uses in
place of a VLM's (source ``manifest``): ``description`` (frames before the cut) and
``truth_description`` (frames at or after it), plus ``description_cut`` (0.7) and the shapes.

How the descriptions are measured (no model): each shape of ``annotations.jsonl`` is found in
every decoded frame by its colour (pixels within 60 of its palette colour, summed over the
channels), its position is the centroid; frames where it is mostly hidden (fewer than 60 % of
its usual pixels) are skipped. A step of at least 1 px along an axis gives the direction
along it; a direction that flips is a bounce off that edge (right, left, bottom, top; two
axes flipping within one frame: a corner). A step belongs to the part its later frame is in,
so a bounce at the cut opens the truth ("bounces off the top edge and moves ...").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import av
import numpy as np

PALETTE = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
           "yellow": (240, 210, 40), "orange": (245, 140, 30), "purple": (140, 60, 180)}
CUT_TENTHS = 7
COLOUR_DISTANCE = 60
MIN_STEP_PX = 0.5
EDGES = {(0, 1, -1): "right", (0, -1, 1): "left", (1, 1, -1): "bottom", (1, -1, 1): "top"}


def track(frames: list[np.ndarray], colour: str) -> list[tuple[float, float] | None]:
    """The shape's centroid per frame (None where it is mostly hidden)."""
    target = np.array(PALETTE[colour])
    found = []
    for frame in frames:
        ys, xs = np.nonzero(np.abs(frame.astype(int) - target).sum(-1) < COLOUR_DISTANCE)
        found.append((len(xs), (float(xs.mean()), float(ys.mean())) if len(xs) else None))
    usual = float(np.median([n for n, _ in found]))
    return [c if n >= 0.6 * usual else None for n, c in found]


def steps(track_: list) -> list[tuple[int, tuple[int, int]]]:
    """(index of the later frame, (sign x, sign y)) per step between two seen frames."""
    seen = [(i, c) for i, c in enumerate(track_) if c is not None]
    out = []
    for (_, a), (j, b) in zip(seen, seen[1:], strict=False):
        signs = tuple(0 if abs(b[k] - a[k]) < MIN_STEP_PX else int(np.sign(b[k] - a[k]))
                      for k in (0, 1))
        out.append((j, signs))
    return out


def heading(signs: tuple[int, int]) -> str:
    """'down and to the left', 'up', ..."""
    horizontal = {1: "to the right", -1: "to the left", 0: ""}[signs[0]]
    vertical = {1: "down", -1: "up", 0: ""}[signs[1]]
    if vertical and horizontal:
        return f"{vertical} and {horizontal}"
    return vertical or horizontal.removeprefix("to the ") or "nowhere"


def carry(held: tuple[int, int] | None, signs: tuple[int, int]) -> tuple[int, int]:
    """The direction after a step: an axis that did not move keeps its last sign."""
    return tuple(s if s else (held or (0, 0))[k] for k, s in enumerate(signs))


def describe(name: str, steps_: list, start: int, end: int, first_part: bool) -> str:
    """One sentence on the steps whose later frame lies in [start, end)."""
    before = None  # the direction held when this part starts
    for j, signs in steps_:
        if j < start:
            before = carry(before, signs)
    held, phrases, bounced = before, [], False
    for _, signs in (s for s in steps_ if start <= s[0] < end):
        now = carry(held, signs)
        edges = [EDGES[(k, held[k], now[k])] for k in (0, 1)
                 if held and held[k] and now[k] and held[k] != now[k]]
        if edges:
            where = (f"the {edges[1]}-{edges[0]} corner" if len(edges) == 2
                     else f"the {edges[0]} edge")
            phrases.append(f"bounces off {where} and moves {heading(now)}")
            bounced = True
        elif not bounced:  # the first heading (an axis that stood still may start moving)
            verb = "keeps moving" if not first_part and now == before else "moves"
            phrases[:1] = [f"{verb} {heading(now)}"]
        held = now
    return f"The {name} " + (", then ".join(phrases) if phrases else "does not move") + "."


def describe_video(path: Path, objects: list[dict]) -> tuple[str, str, int, int]:
    """(description before the cut, after it, cut frame, frames)."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    cut = (CUT_TENTHS * len(frames) + 9) // 10  # first frame at or after 70 % (constant fps)
    before, after = [], []
    for obj in objects:
        name = f"{obj['colour']} {obj['label']}"
        moves = steps(track(frames, obj["colour"]))
        before.append(describe(name, moves, 0, cut, first_part=True))
        after.append(describe(name, moves, cut, len(frames), first_part=False))
    return " ".join(before), " ".join(after), cut, len(frames)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=Path, default=Path("data/sample/videos"))
    args = parser.parse_args(argv)
    lines = []
    for line in (args.videos / "annotations.jsonl").read_text().splitlines():
        note = json.loads(line)
        before, after, cut, n = describe_video(args.videos / note["video"], note["objects"])
        lines.append({"video_filepath": note["video"], "description": before,
                      "truth_description": after, "description_cut": CUT_TENTHS / 10,
                      "objects": note["objects"]})
        print(f"{note['video']}: cut at frame {cut} of {n}\n  before: {before}\n  after:  {after}")
    out = args.videos / "video_qa.jsonl"
    out.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
