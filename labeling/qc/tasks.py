"""Label Studio tasks for pairwise QC: a batch's mined pairs, the model's pick as a prediction.

Each task shows the clip's audio and the two transcripts (sides swapped for
about half the pairs, see :func:`labeling.qc.pairwise.make_tasks`), with the
model's preferred transcript pre-selected as a prediction, so an annotator
confirms or corrects it. Besides the texts, a task carries

* ``data.batch`` and ``data.pair_id``: what the pull keeps and re-pushing a
  batch skips (a task is never imported twice);
* ``data.second_review``: routed to a second annotator (:mod:`labeling.qc.review`);
* ``meta.model_choice``: ``"a"`` or ``"b"``, the field the model preferred
  (Label Studio's plain export lists predictions by id only, so the pull reads
  the model's pick from here).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from labeling.qc.pairwise import make_tasks, pair_key
from labeling.qc.review import SECOND_REVIEW_FIELD, second_review

#: One model version for every task, so Label Studio shows all of them pre-annotated.
MODEL_VERSION = "rlfoundry-mined-pairs"
MODEL_CHOICE = "model_choice"


def pairwise_result(selected: str) -> dict:
    """A Pairwise result as Label Studio's UI writes it (``to_name`` = the tag's name)."""
    return {"from_name": "pw", "to_name": "pw", "type": "pairwise",
            "value": {"selected": selected}}


def qc_tasks(
    pairs: Iterable[Mapping[str, Any]],
    *,
    batch: str,
    media_url: Callable[[str], str | None] | None = None,
    share: float = 0.2,
    seed: int = 0,
) -> list[dict]:
    """Import-ready tasks for preference-pair rows (``pair_id``, ``clip_id``, ``audio``,
    ``chosen``, ``rejected``; ``margin`` becomes the prediction's score).

    `media_url` turns a clip's path into the URL Label Studio serves it at
    (None keeps the path).

    >>> (t,) = qc_tasks([{"pair_id": "p1", "clip_id": "c1", "audio": "/a/c1.wav",
    ...                   "chosen": "the cat", "rejected": "the cap", "margin": 0.5}],
    ...                 batch="b1", share=1.0)
    >>> t["data"]["batch"], t["data"]["second_review"], t["meta"]
    ('b1', True, {'model_choice': 'a'})
    >>> t["predictions"][0]["result"][0]["value"], t["data"]["a"]
    ({'selected': 'left'}, 'the cat')
    """
    tasks = []
    for pair in pairs:
        audio = str(pair["audio"])
        url = media_url(audio) if media_url else None
        (task,) = make_tasks([{"clip_id": pair["clip_id"], "audio": url or audio,
                               "a": pair["chosen"], "b": pair["rejected"],
                               "pair_id": pair["pair_id"]}])
        data = task["data"]
        field = "a" if data["a"] == pair["chosen"] else "b"
        data["batch"] = batch
        data[SECOND_REVIEW_FIELD] = second_review(data["pair_id"], share, seed)
        prediction: dict[str, Any] = {"model_version": MODEL_VERSION,
                                      "result": [pairwise_result(_SIDE[field])]}
        if pair.get("margin") is not None:
            prediction["score"] = float(pair["margin"])
        task["predictions"] = [prediction]
        task["meta"] = {MODEL_CHOICE: field}
        tasks.append(task)
    return tasks


_SIDE = {"a": "left", "b": "right"}


def task_pair_id(data: Mapping[str, Any]) -> str:
    """A task's pair id: ``data.pair_id``, else derived from its clip and texts."""
    return str(data.get("pair_id") or pair_key(data.get("clip_id"), data["a"], data["b"]))


def batch_tasks(export: Iterable[Any], batch: str) -> list[dict]:
    """The exported tasks pushed for `batch` (``data.batch``)."""
    return [t for t in export if isinstance(t, dict) and isinstance(t.get("data"), dict)
            and t["data"].get("batch") == batch]


def storage_dirs(paths: Iterable[str], root: str | Path) -> list[Path]:
    """Directories to serve `paths` from: the fewest local-files storages Label Studio accepts.

    A storage must lie strictly inside the server's document `root`: one for
    the paths' common directory when it does, else one per parent directory.
    Paths outside `root` get none (they cannot be served).

    >>> storage_dirs(["/m/x/1.wav", "/m/y/2.wav", "/elsewhere/3.wav"], "/m")
    [PosixPath('/m/x'), PosixPath('/m/y')]
    >>> storage_dirs(["/m/x/1.wav", "/m/x/y/2.wav"], "/")
    [PosixPath('/m/x')]
    """
    root = Path(root).absolute()
    parents = sorted({Path(p).absolute().parent for p in paths})
    inside = [d for d in parents if root in d.parents]
    if not inside:
        return []
    common = Path(os.path.commonpath([str(d) for d in inside]))
    return [common] if root in common.parents else inside
