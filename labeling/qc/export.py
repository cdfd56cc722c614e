"""Reading Label Studio's JSON export of the pairwise project into :class:`HumanPreference`s.

Reading is all-or-nothing: the whole export is validated first and any
problem raises :class:`LabelStudioExportError` listing every problem with its
task index and id; no partial result is returned. Cancelled (skipped)
annotations and annotations without a pairwise choice are not errors: they
carry no preference and are left out.

Tolerant of both result shapes: ``to_name`` naming the Pairwise tag itself
(``"pw"``, what Label Studio writes) or the two objects in display order
(``"a,b"`` / ``["b", "a"]``, what some hand-made or older exports hold).

The export comes from a file (:func:`read_pairwise_export`) or straight from
the API (:func:`parse_pairwise_export`, e.g. ``LabelStudio.export_tasks``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labeling.qc.pairwise import HumanPreference, pair_key

__all__ = ["LabelStudioExportError", "parse_pairwise_export", "read_pairwise_export"]

_SIDES = ("left", "right")
_MAX_LISTED = 20  # problems spelled out in one error message


class LabelStudioExportError(ValueError):
    """A Label Studio export that cannot be read; ``problems`` lists each one.

    Each QC task has its subclass, which names its kind of export (``kind``).
    """

    kind = "pairwise"

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems[:_MAX_LISTED])
        more = len(problems) - _MAX_LISTED
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(
            f"{path}: not a valid Label Studio {self.kind} export "
            f"({len(problems)} problem(s)); fix or re-export it, nothing was read:\n"
            f"{listed}{tail}"
        )


def read_pairwise_export(path: str | Path) -> list[HumanPreference]:
    """Preferences from a Label Studio JSON export (``[{id, data, annotations}, ...]``).

    One :class:`HumanPreference` per task and annotation that is not
    cancelled and has a pairwise choice, in export order. Raises
    :class:`LabelStudioExportError` (naming the file, and each bad task by
    index and id) if anything in the export is malformed.
    """
    try:
        tasks = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelStudioExportError(path, [f"cannot be read ({exc})"]) from exc
    except json.JSONDecodeError as exc:
        raise LabelStudioExportError(
            path, [f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"]
        ) from exc
    return parse_pairwise_export(tasks, path)


def parse_pairwise_export(tasks: Any, source: str | Path = "export") -> list[HumanPreference]:
    """Like :func:`read_pairwise_export`, for an export already decoded from JSON; errors
    name `source` (a file, or the URL the export came from)."""
    if not isinstance(tasks, list):
        raise LabelStudioExportError(
            source, [f"top level is a JSON {type(tasks).__name__}, expected a list of tasks "
                     "(export the project as JSON, not JSON_MIN or CSV)"]
        )
    problems: list[str] = []
    prefs: list[HumanPreference] = []
    for i, task in enumerate(tasks):
        prefs += _task_preferences(i, task, problems)
    if problems:
        raise LabelStudioExportError(source, problems)
    return prefs


def _where(i: int, task: Any) -> str:
    task_id = task.get("id") if isinstance(task, dict) else None
    return f"task #{i} (id={task_id})"


def _task_preferences(i: int, task: Any, problems: list[str]) -> list[HumanPreference]:
    where = _where(i, task)
    if not isinstance(task, dict):
        problems.append(f"{where}: is a {type(task).__name__}, expected an object")
        return []
    data = task.get("data")
    if not isinstance(data, dict):
        problems.append(f"{where}: has no 'data' object")
        return []
    bad = [k for k in ("a", "b") if not isinstance(data.get(k), str)]
    if bad:
        problems.append(f"{where}: data.{' and data.'.join(bad)} missing or not a string")
        return []
    annotations = task.get("annotations") or []
    if not isinstance(annotations, list):
        problems.append(f"{where}: 'annotations' is not a list")
        return []
    out = []
    for j, ann in enumerate(annotations):
        side, annotator, lead_time = _annotation_choice(f"{where}, annotation #{j}", ann, problems)
        if side is not None:
            out.append(_preference(task, data, side, annotator, lead_time))
    return out


def _annotation_choice(
    where: str, ann: Any, problems: list[str]
) -> tuple[str | None, str, float | None]:
    """(side, annotator, lead_time); side is None when there is no valid choice."""
    none: tuple[None, str, None] = (None, "", None)
    checked = annotation(where, ann, problems)
    if checked is None:
        return none
    where, annotator, result = checked
    pairwise = [r for r in result if isinstance(r, dict) and r.get("type") == "pairwise"]
    if len(pairwise) > 1:
        problems.append(f"{where}: {len(pairwise)} pairwise results, expected one")
        return none
    if not pairwise:
        return none
    value = pairwise[0].get("value")
    selected = value.get("selected") if isinstance(value, dict) else None
    if selected not in _SIDES:
        problems.append(f"{where}: pairwise result has unknown selected value {selected!r} "
                        "(expected 'left' or 'right')")
        return none
    lead_time = ann.get("lead_time")
    lead = float(lead_time) if isinstance(lead_time, int | float) else None
    return (_side_object(pairwise[0], selected), annotator or "", lead)


def annotation(where: str, ann: Any, problems: list[str]
               ) -> tuple[str, str | None, list] | None:
    """An exported annotation's (where, annotator, result list), with what is wrong added to
    `problems`; None when it has no usable result (cancelled, malformed). The annotator is
    None when `completed_by` is malformed (a problem is recorded, the result still read)."""
    if not isinstance(ann, dict):
        problems.append(f"{where}: is a {type(ann).__name__}, expected an object")
        return None
    if ann.get("was_cancelled"):
        return None
    where = f"{where} (id={ann.get('id')})"
    annotator = _annotator(ann.get("completed_by"))
    if annotator is None:
        problems.append(f"{where}: 'completed_by' must be a user id or {{id, email}}, "
                        f"got {ann.get('completed_by')!r}")
    result = ann.get("result")
    if not isinstance(result, list):
        problems.append(f"{where}: 'result' is not a list")
        return None
    return where, annotator, result


def _annotator(completed_by: Any) -> str | None:
    if isinstance(completed_by, bool):
        return None
    if isinstance(completed_by, int | str) and str(completed_by):
        return str(completed_by)
    if isinstance(completed_by, dict):
        who = completed_by.get("email") or completed_by.get("id")
        return None if who is None or isinstance(who, bool) else str(who)
    return None


def _side_object(result: dict, selected: str) -> str:
    """Which data field ('a' or 'b') the selected side shows.

    Label Studio writes the Pairwise tag's own name in ``to_name`` (``"pw"``):
    left is then the first object of the tag's ``toName="a,b"``, i.e. ``a``.
    A ``to_name`` listing both objects (``"b,a"``) gives their display order.

    >>> _side_object({"to_name": "pw"}, "right"), _side_object({"to_name": "b,a"}, "right")
    ('b', 'a')
    """
    to_name = result.get("to_name")
    names = to_name.split(",") if isinstance(to_name, str) else to_name
    if isinstance(names, list) and sorted(map(str, names)) == ["a", "b"]:
        return str(names[_SIDES.index(selected)])
    return "a" if selected == "left" else "b"


def _preference(
    task: dict, data: dict, field: str, annotator: str, lead_time: float | None
) -> HumanPreference:
    other = "b" if field == "a" else "a"
    clip_id = data.get("clip_id")
    clip_id = None if clip_id is None else str(clip_id)
    task_id = task.get("id")
    return HumanPreference(
        task_id=task_id if isinstance(task_id, int) else None,
        clip_id=clip_id,
        pair_id=str(data.get("pair_id") or pair_key(clip_id, data["a"], data["b"])),
        audio=data.get("audio"),
        chosen=data[field],
        rejected=data[other],
        annotator=annotator,
        side="left" if field == "a" else "right",
        lead_time=lead_time,
    )


