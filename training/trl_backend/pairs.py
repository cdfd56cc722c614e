"""Preference pairs of the TRL families: a chain row's verified answer against a wrong one.

DPO and MPO (``objective: dpo | mpo``) train on pairs. :func:`build_pairs` finds them in the
chains' dataset rows, by ``pairs_from``:

* ``"human"``: only where people's verdicts give a pair.
  - A pointing row, with each point people said *no* to for its (image, phrase) in the image
    QC (``rejected_points``). Chosen: the verified points; rejected: the same answer with the
    rejected point in place of the nearest verified one. When people said no to one of the
    verified points themselves, the row is contested and gives no pair.
  - A question people accepted (its row's ``qc`` is ``"accepted"``: the question makes sense
    and the marked answer is right). Chosen: the right option; rejected: a distractor.
* ``"verified"``: the above, and the chains' own verification where no person looked. Every
  multiple-choice question (video and audio; their answers are computed, the distractors
  known wrong) gives its right option against a distractor, and every pointing row its
  points mirrored through the image centre, when every mirrored point lands outside every
  mask (checked with the point-in-mask reward).

A pair row is the chain row plus ``rejected`` (``{"points": [[x, y], ...]}`` in the
original image's pixels, or ``{"letter": "C"}``) and ``pair_source``; the answers are
written in the run's formats only when it trains (:func:`preference_row`), so one pairs file
serves any ``point_format`` or ``answer_style``.

Example:
    >>> q = {"example_id": "q1", "task": "video_qa", "answer": "B", "answer_type": "choice",
    ...      "options": ["It rolls.", "It stops.", "It spins.", "It jumps."], "qc": "accepted",
    ...      "prompt": [{"role": "user", "content": "What happens next?"}]}
    >>> pairs, skipped = build_pairs([q, {**q, "example_id": "q2", "qc": "unreviewed"}])
    >>> [(p["example_id"], p["rejected"], p["pair_source"]) for p in pairs], skipped
    ([('q1', {'letter': 'A'}, 'human_accepted_question')], {'no_human_verdict': 1})
    >>> row = preference_row(pairs[0], answer_style="plain")
    >>> row["chosen"], row["rejected"]
    ([{'role': 'assistant', 'content': 'B'}], [{'role': 'assistant', 'content': 'A'}])
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from training.trl_backend.data import (
    DataError,
    answer_style_of,
    choice_answer,
    conversational_prompt,
    gold_answer,
    image_size_of,
    point_answer,
    task_of,
)

PairsFrom = Literal["human", "verified"]
LETTERS = "ABCDEFGH"
Point = tuple[float, float]


def build_pairs(rows: Iterable[Mapping[str, Any]], *, pairs_from: PairsFrom = "human",
                rejected_points: Mapping[tuple[str, str], Sequence[Sequence[float]]]
                | None = None, max_per_row: int = 1, seed: int = 0
                ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(pair rows, {reason: count} of the rows that gave none); see the module docstring.

    ``rejected_points`` maps (image_id, phrase) to the points people said no to; at most
    ``max_per_row`` pairs come from one row (its distractors or rejected points drawn by
    ``seed`` and the row's id)."""
    if pairs_from not in ("human", "verified"):
        raise ValueError(f"pairs_from must be 'human' or 'verified', got {pairs_from!r}")
    if max_per_row < 1:
        raise ValueError(f"max_per_row must be >= 1, got {max_per_row}")
    pairs: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for row in rows:
        draw = random.Random(f"{seed}:{row.get('example_id')}")
        if task_of(row) == "pointing":
            found, why = _pointing(row, pairs_from, rejected_points or {}, max_per_row, draw)
        else:
            found, why = _question(row, pairs_from, max_per_row, draw)
        pairs += [{**row, "rejected": rejected, "pair_source": source}
                  for rejected, source in found]
        if not found:
            skipped[why] += 1
    return pairs, dict(skipped)


def _question(row: Mapping[str, Any], pairs_from: str, count: int, draw: random.Random
              ) -> tuple[list[tuple[dict, str]], str]:
    if row.get("answer_type", "choice") != "choice":
        return [], "not_multiple_choice"
    human = row.get("qc") == "accepted"
    if pairs_from == "human" and not human:
        return [], "no_human_verdict"
    options = list(row.get("options") or [])
    gold = str(row["answer"]).strip().upper()
    others = [LETTERS[i] for i in range(min(len(options), len(LETTERS))) if LETTERS[i] != gold]
    if not others:
        return [], "no_distractor"
    source = "human_accepted_question" if human else "verified_distractor"
    return [({"letter": letter}, source)
            for letter in sorted(draw.sample(others, min(count, len(others))))], ""


def _pointing(row: Mapping[str, Any], pairs_from: str,
              rejected_points: Mapping[tuple[str, str], Sequence[Sequence[float]]], count: int,
              draw: random.Random) -> tuple[list[tuple[dict, str]], str]:
    gold = _gold_points(row)
    said_no = [(float(x), float(y)) for x, y in
               rejected_points.get((str(row.get("image_id")), str(row.get("phrase"))), [])]
    if set(said_no) & set(gold):
        return [], "contested_by_people"
    if said_no:
        chosen = sorted(draw.sample(said_no, min(count, len(said_no))))
        return [({"points": _swap_nearest(gold, p)}, "human_rejected_point")
                for p in chosen], ""
    if pairs_from == "human":
        return [], "no_human_verdict"
    mirrored = _mirrored(row, gold)
    if mirrored is None:
        return [], "mirror_inside_a_mask"
    return [({"points": mirrored}, "verified_mirror_point")], ""


def _gold_points(row: Mapping[str, Any]) -> list[Point]:
    points = [(float(inst[0][0]), float(inst[0][1])) for inst in row.get("points") or [] if inst]
    if not points:
        raise DataError(f"row {row.get('example_id', '?')}: a pointing row without verified "
                        "points")
    return points


def _swap_nearest(gold: list[Point], wrong: Point) -> list[list[float]]:
    """The verified points with the one nearest ``wrong`` replaced by it.

    >>> _swap_nearest([(10.0, 10.0), (90.0, 90.0)], (80.0, 70.0))
    [[10.0, 10.0], [80.0, 70.0]]
    """
    near = min(range(len(gold)),
               key=lambda i: (gold[i][0] - wrong[0]) ** 2 + (gold[i][1] - wrong[1]) ** 2)
    return [list(wrong) if i == near else list(p) for i, p in enumerate(gold)]


def _mirrored(row: Mapping[str, Any], gold: list[Point]) -> list[list[float]] | None:
    """The verified points mirrored through the image centre, or None when any lands inside
    any of the row's masks (it would not be wrong)."""
    from models.vision.rle import decode_rle
    from training.rewards.pointing import point_f1

    width, height = image_size_of(row)
    mirrored = [(width - x, height - y) for x, y in gold]
    masks = [decode_rle(m) for m in row["masks"]]
    return None if point_f1(mirrored, masks) > 0 else [list(p) for p in mirrored]


def preference_row(pair: Mapping[str, Any], *, point_format: str = "json",
                   point_scale: str = "norm1000", answer_style: str = "auto") -> dict[str, Any]:
    """The conversational ``prompt`` / ``chosen`` / ``rejected`` of a pair row (its media
    columns are the caller's), the answers in the run's formats."""
    rejected = pair.get("rejected")
    if not isinstance(rejected, Mapping) or not ({"points", "letter"} & set(rejected)):
        raise DataError(f"row {pair.get('example_id', '?')}: not a preference pair (no "
                        "`rejected` answer); build pairs with training.trl_backend.pairs")
    chosen = gold_answer(pair, point_format=point_format, point_scale=point_scale,
                         answer_style=answer_style)
    if "points" in rejected:
        wrong = point_answer(rejected["points"], phrase=str(pair.get("phrase") or ""),
                             image_size=image_size_of(pair), point_format=point_format,
                             point_scale=point_scale)
    else:
        letter = str(rejected["letter"])
        options = list(pair.get("options") or [])
        index = LETTERS.find(letter)
        option = options[index] if 0 <= index < len(options) else ""
        style = answer_style_of(" ".join(str(m.get("content", "")) for m in pair["prompt"]),
                                answer_style)
        wrong = choice_answer(letter, style, option)
    return {"example_id": str(pair.get("example_id") or ""), "task": task_of(pair),
            "prompt": conversational_prompt(pair),
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": wrong}]}
