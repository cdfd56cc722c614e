"""The chains' dataset rows as TRL rows: conversational prompts, ``images``, reward columns.

Two chains feed the ``vlm`` family, each exporting JSONL rows that are already TRL-shaped:

* ``pointing_dataset`` (:func:`labeling.image.pointing.trl_row`): ``prompt`` ("Point at X."),
  ``images`` (one file), ``masks`` (COCO RLE), ``image_size``, ``points`` (verified points);
* ``video_qa_dataset`` (:func:`labeling.video_qa.dataset.dataset_row`): ``prompt`` (question,
  lettered options, hint), ``images`` (the context frames), ``answer`` (the letter),
  ``options``, ``answer_type``, ``problem_type``, ``bucket``.

:func:`trl_row` turns either into one row of a single schema, so both tasks can share a run:
``prompt``, ``images`` (file paths, at most ``max_frames`` evenly spaced; absent in the
blind control), ``completion`` (the gold answer in the chain's answer format, as one
assistant turn: SFT's target), ``task`` and the reward columns (``masks``, ``image_size``,
``answer``, ``options``, ``answer_type``, ``problem_type``, ``answer_style``; ``None`` where a
column belongs to the other task, which the rewards read as "does not apply").
:func:`to_dataset` makes a ``datasets.Dataset`` whose ``images`` load as RGB PIL images from
their paths on access, which is what TRL's trainers hand to the processor.

Example:
    >>> row = {"example_id": "e1", "images": ["/d/a.png"], "phrase": "cup",
    ...        "prompt": [{"role": "user", "content": "Point at cup."}],
    ...        "masks": [{"size": [4, 6], "counts": "9220003"}], "image_size": [6, 4],
    ...        "points": [[[2.5, 1.5]]]}
    >>> out = trl_row(row, point_format="tuple", point_scale="percent")
    >>> out["task"], out["images"], out["completion"][0]["content"]
    ('pointing', ['/d/a.png'], '(41.7, 37.5)')
    >>> "images" in trl_row(row, blind=True)
    False
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

Row = dict[str, Any]
TASKS = ("pointing", "video_qa", "audio_qa")
REWARD_COLUMNS = ("masks", "image_size", "answer", "options", "answer_type", "problem_type",
                  "answer_style")
_DIVISOR = {"norm1000": 1000.0, "percent": 100.0}


class DataError(ValueError):
    """A dataset row that cannot be used; the message names the file, the row and the fix."""


# --------------------------------------------------------------------------- reading


def read_rows(paths: str | Sequence[str | Path]) -> list[Row]:
    """The rows of one or several JSONL files (a ``,``-joined string or a list), each with
    its media paths (``images``, ``audio``) resolved against its file's folder; ``_source``
    says where it came from."""
    if isinstance(paths, str):
        paths = [p for p in paths.split(",") if p.strip()]
    rows: list[Row] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise DataError(f"{path}: no such file; point `data` at the chain's exported JSONL "
                            "(pointing.jsonl, video_qa.jsonl)")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path} row {number}: not JSON ({exc}); re-export the "
                                "dataset") from None
            if row.get("images"):
                row["images"] = [str(_resolve(path.parent, p)) for p in row["images"]]
                _check_media(path, number, "image", row["images"])
            if row.get("audio"):
                row["audio"] = str(_resolve(path.parent, row["audio"]))
                _check_media(path, number, "audio", [row["audio"]])
            rows.append({**row, "_source": f"{path} row {number}"})
    return rows


def _check_media(path: Path, number: int, kind: str, media: Sequence[str]) -> None:
    missing = [p for p in media if "://" not in p and not Path(p).is_file()]
    if missing:
        raise DataError(f"{path} row {number}: {kind} {missing[0]} does not exist "
                        "(relative paths are read from the JSONL's folder); "
                        "re-export the dataset or restore the media")


def _resolve(folder: Path, media: str) -> Path:
    p = Path(media)
    return p if p.is_absolute() or "://" in media else folder / p


def task_of(row: Mapping[str, Any]) -> str:
    """``pointing`` (a row with masks), ``audio_qa`` (an answer about a clip: an ``audio``
    column, even empty in a blind export) or ``video_qa`` (another row with an answer)."""
    if row.get("task") in TASKS:
        return row["task"]
    if row.get("masks") is not None:
        return "pointing"
    if row.get("answer") is not None:
        return "audio_qa" if "audio" in row else "video_qa"
    raise DataError(f"{_where(row)}: neither a pointing row (masks) nor a question "
                    "(answer); is this a dataset of the image, video or audio chain?")


def _where(row: Mapping[str, Any]) -> str:
    return str(row.get("_source") or f"row {row.get('example_id', '?')}")


# --------------------------------------------------------------------------- gold answers


def _num(value: float) -> str:
    """A coordinate as text: one decimal, without a trailing ``.0``."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def point_answer(points: Sequence[Sequence[float]], *, phrase: str, image_size: Sequence[float],
                 point_format: str = "json", point_scale: str = "norm1000") -> str:
    """The answer naming ``points`` (original pixels) as a model of that format writes it,
    which :func:`training.rewards.pointing.parse_points` reads back.

    >>> point_answer([(50, 25)], phrase="cup", image_size=(200, 100))
    '[{"point_2d": [250, 250], "label": "cup"}]'
    >>> point_answer([(50, 25), (150, 75)], phrase="cups", image_size=(200, 100),
    ...              point_format="molmo")
    '<points x1="25" y1="25" x2="75" y2="75" alt="cups">cups</points>'
    """
    width, height = (float(v) for v in image_size)
    scale = "percent" if point_format == "molmo" else point_scale
    if scale == "pixels":
        scaled = [(x, y) for x, y in points]
    else:
        div = _DIVISOR[scale]
        scaled = [(x / width * div, y / height * div) for x, y in points]
    if point_format == "json":
        items = [{"point_2d": [round(x) if scale != "percent" else float(_num(x)),
                               round(y) if scale != "percent" else float(_num(y))],
                  "label": phrase} for x, y in scaled]
        return json.dumps(items)
    if point_format == "tuple":
        return " ".join(f"({_num(x)}, {_num(y)})" for x, y in scaled)
    if len(scaled) == 1:
        (x, y), = scaled
        return f'<point x="{_num(x)}" y="{_num(y)}" alt="{phrase}">{phrase}</point>'
    coords = " ".join(f'x{i}="{_num(x)}" y{i}="{_num(y)}"' for i, (x, y) in enumerate(scaled, 1))
    return f'<points {coords} alt="{phrase}">{phrase}</points>'


def answer_style_of(prompt_text: str, answer_style: str = "auto") -> str:
    """The style a multiple-choice answer should take: ``answer_style``, or with ``"auto"``
    the one the prompt asks for (the chains' reasoning format asks for ``<think>`` and
    ``<answer>`` tags; the bare hint for the letter).

    >>> answer_style_of("... Think it through inside <think> </think> tags first, then give "
    ...                 "only the final answer inside <answer> </answer> tags ...")
    'think'
    >>> answer_style_of("Answer with the letter of the correct option.")
    'plain'
    >>> answer_style_of("Answer with the letter of the correct option.", "tagged")
    'tagged'
    """
    if answer_style != "auto":
        return answer_style
    if "<answer>" in prompt_text:
        return "think" if "<think>" in prompt_text else "tagged"
    return "plain"


def choice_answer(letter: str, answer_style: str = "plain", option: str = "") -> str:
    """A multiple-choice answer in a style of :func:`answer_style_of`; ``think`` states the
    chosen option's text as its (minimal) reasoning.

    >>> choice_answer("B"), choice_answer("B", "tagged")
    ('B', '<answer>B</answer>')
    >>> choice_answer("B", "think", "It jumps.")
    '<think>It jumps.</think><answer>B</answer>'
    """
    if answer_style == "think":
        return f"<think>{option}</think><answer>{letter}</answer>"
    return f"<answer>{letter}</answer>" if answer_style == "tagged" else letter


def gold_answer(row: Mapping[str, Any], *, point_format: str = "json",
                point_scale: str = "norm1000", answer_style: str = "auto") -> str:
    """SFT's target for one chain row: one verified point per instance, or the right letter."""
    if task_of(row) == "pointing":
        points = [instance[0] for instance in row.get("points") or [] if instance]
        if not points or len(points) != len(row["masks"]):
            raise DataError(f"{_where(row)}: a pointing row needs one verified point per mask "
                            f"({len(row['masks'])} masks, points {row.get('points')!r:.80})")
        size = image_size_of(row)
        return point_answer(points, phrase=str(row.get("phrase") or ""), image_size=size,
                            point_format=point_format, point_scale=point_scale)
    letter = str(row["answer"]).strip().upper()
    options = list(row.get("options") or [])
    index = "ABCD".find(letter) if len(letter) == 1 else -1
    option = options[index] if 0 <= index < len(options) else str(row.get("answer_text") or "")
    return choice_answer(letter, answer_style_of(_prompt_text(row), answer_style), option)


def image_size_of(row: Mapping[str, Any]) -> tuple[float, float]:
    """(width, height) of a pointing row's image: its ``image_size``, else its first mask's.

    >>> image_size_of({"masks": [{"size": [100, 200], "counts": ""}]})
    (200.0, 100.0)
    """
    width, height = row.get("image_size") or row["masks"][0]["size"][::-1]
    return float(width), float(height)


def _prompt_text(row: Mapping[str, Any]) -> str:
    return " ".join(str(m.get("content", "")) for m in row.get("prompt") or []
                    if isinstance(m, Mapping))


# --------------------------------------------------------------------------- TRL rows


def evenly(items: Sequence[Any], k: int) -> list[Any]:
    """At most ``k`` items, evenly spaced, first and last kept.

    >>> evenly(list(range(10)), 4), evenly([1, 2], 4)
    ([0, 3, 6, 9], [1, 2])
    """
    if len(items) <= k:
        return list(items)
    if k == 1:
        return [items[0]]
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


def conversational_prompt(row: Mapping[str, Any]) -> list[dict[str, str]]:
    """The row's ``prompt`` as plain messages, or a DataError naming the row when it is not a
    conversation ending with the user's turn."""
    prompt = row.get("prompt")
    if not (isinstance(prompt, list) and prompt and isinstance(prompt[-1], Mapping)
            and prompt[-1].get("role") == "user"):
        raise DataError(f"{_where(row)}: `prompt` must be conversational (a list of messages "
                        f"ending with the user's), got {prompt!r:.80}")
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in prompt]


def trl_row(row: Mapping[str, Any], *, blind: bool = False, max_frames: int = 8,
            point_format: str = "json", point_scale: str = "norm1000",
            answer_style: str = "auto") -> Row:
    """One chain row as a TRL row of the shared schema (see the module docstring)."""
    task = task_of(row)
    if task == "audio_qa":
        raise DataError(f"{_where(row)}: an audio question; audio rows train the 'alm' family "
                        "(set family: alm)")
    prompt = conversational_prompt(row)
    images = list(row.get("images") or [])
    if not images and not blind:
        raise DataError(f"{_where(row)}: no `images`; the row cannot be shown to a VLM "
                        "(train with blind=true for a text-only control)")
    out: Row = {
        "example_id": str(row.get("example_id") or ""), "task": task,
        "prompt": prompt,
        "completion": [{"role": "assistant", "content": gold_answer(
            row, point_format=point_format, point_scale=point_scale,
            answer_style=answer_style)}],
        "bucket": row.get("bucket"),
        "masks": None, "image_size": None, "answer": None, "options": None,
        "answer_type": None, "problem_type": None, "answer_style": None,
    }
    if task == "pointing":
        out["masks"] = [{"size": [int(s) for s in m["size"]], "counts": str(m["counts"])}
                        for m in row["masks"]]
        out["image_size"] = [int(v) for v in row["image_size"]] if row.get("image_size") \
            else None
    else:
        out.update(answer=str(row["answer"]), options=[str(o) for o in row.get("options") or []],
                   answer_type=row.get("answer_type", "choice"),
                   problem_type=row.get("problem_type", "multiple choice"),
                   answer_style=answer_style_of(_prompt_text(row), answer_style))
    if not blind:
        out["images"] = evenly(images, max_frames) if task == "video_qa" else images
    return out


def trl_rows(rows: Iterable[Mapping[str, Any]], **options: Any) -> tuple[list[Row], list[Row]]:
    """(TRL rows, skipped): video questions in the open form are skipped (no verifiable
    reward for them yet), with their reason."""
    kept, skipped = [], []
    for row in rows:
        if task_of(row) == "video_qa" and row.get("answer_type", "choice") != "choice":
            skipped.append({"example_id": row.get("example_id"), "reason": "open_form"})
            continue
        kept.append(trl_row(row, **options))
    return kept, skipped


def to_dataset(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None):
    """A ``datasets.Dataset`` of TRL rows whose ``images`` decode to RGB PIL images from their
    paths on access (nothing is loaded up front); ``columns`` keeps only those."""
    from datasets import Dataset, Image, List

    if not rows:
        raise DataError("no rows to train on: the dataset is empty (or every row was skipped)")
    names = list(columns or rows[0].keys())
    data = Dataset.from_dict({name: [row.get(name) for row in rows] for name in names})
    if "images" in names:
        data = data.cast_column("images", List(Image(mode="RGB")))
    return data


def load_images(paths: Sequence[str]):
    """RGB PIL images of ``paths`` (for evaluation, outside ``datasets``)."""
    from PIL import Image

    out = []
    for path in paths:
        with Image.open(path) as image:
            out.append(image.convert("RGB"))
    return out
