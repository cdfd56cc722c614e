"""Human pairwise preferences ("which transcript is better?") through Label Studio.

The round trip:

1. :func:`make_tasks` turns transcript pairs into Label Studio tasks, to import
   into a project whose labeling config is :data:`PAIRWISE_CONFIG_XML`.
2. Annotators click the better transcript. Label Studio's ``Pairwise`` control
   stores one result per annotation, ``{"from_name": "pw", "to_name": ...,
   "type": "pairwise", "value": {"selected": "left" | "right"}}``; ``left`` is
   the first object of ``toName`` (``a``), ``right`` the second (``b``).
   Clicking the selected side again unselects it, which removes the result.
3. :func:`read_pairwise_export` reads the project's JSON export (one
   :class:`HumanPreference` per task and non-cancelled annotation that made a
   choice) and :func:`aggregate` / :func:`summarize` merge the annotators of
   each pair into one :class:`AggregatedPreference` with its agreement.

Decisions:

* Sides are swapped for about half the pairs (a deterministic hash of the
  pair id), so the model's favourite is not always on the left and position
  bias averages out. Everything downstream uses the texts, never the side.
* A pair is identified by ``pair_id``; by default it is derived from the clip
  id and the two texts, independently of their order (:func:`pair_key`).
* One vote per annotator and pair: if the same annotator labelled the same
  pair twice (two tasks with one pair id), their last annotation in the
  export counts.
* Agreement is the share of a pair's annotators who voted with the majority
  (2 of 3 -> 0.667). A pair with one annotator has agreement 1.0 by
  definition; filter on ``n_annotators`` to require overlap. An even split
  (1-1, 2-2) is no preference: the pair is left out and counted in
  :attr:`PreferenceSummary.tied_pair_ids`.
* Reading is all-or-nothing: the whole export is validated first and any
  problem raises :class:`LabelStudioExportError` listing every problem with
  its task index and id; no partial result is returned. Cancelled (skipped)
  annotations and annotations without a pairwise choice are not errors: they
  carry no preference and are left out.

Pure code: JSON only, no Label Studio SDK and no network.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "PAIRWISE_CONFIG_XML",
    "AggregatedPreference",
    "HumanPreference",
    "LabelStudioExportError",
    "PreferenceSummary",
    "aggregate",
    "make_tasks",
    "pair_key",
    "read_pairwise_export",
    "summarize",
]

#: Labeling config of the "which transcript is better" project (Label Studio's
#: Pairwise template with the clip's audio above the two transcripts).
PAIRWISE_CONFIG_XML = """\
<View>
  <Audio name="audio" value="$audio"/>
  <Header value="Which transcript is better?"/>
  <Pairwise name="pw" toName="a,b"/>
  <Text name="a" value="$a"/>
  <Text name="b" value="$b"/>
</View>
"""

_SIDES = ("left", "right")
_MAX_LISTED = 20  # problems spelled out in one error message


class LabelStudioExportError(ValueError):
    """A Label Studio export that cannot be read; ``problems`` lists each one."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems[:_MAX_LISTED])
        more = len(problems) - _MAX_LISTED
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(
            f"{path}: not a valid Label Studio pairwise export "
            f"({len(problems)} problem(s)); fix or re-export it, nothing was read:\n"
            f"{listed}{tail}"
        )


@dataclass(frozen=True)
class HumanPreference:
    """One annotator's choice on one task."""

    task_id: int | None
    clip_id: str | None
    pair_id: str
    audio: str | None
    chosen: str
    rejected: str
    annotator: str
    """``completed_by``: the user's email when the export has it, else the user id."""
    side: Literal["left", "right"]
    """Where the chosen text was shown (for position-bias checks)."""
    lead_time: float | None = None


@dataclass(frozen=True)
class AggregatedPreference:
    """The majority choice of a pair's annotators."""

    clip_id: str | None
    pair_id: str
    audio: str | None
    chosen: str
    rejected: str
    n_annotators: int
    n_agree: int
    """Annotators who chose ``chosen``."""
    annotators: tuple[str, ...]

    @property
    def agreement(self) -> float:
        """Share of annotators agreeing with the majority (1.0 for a single annotator)."""
        return self.n_agree / self.n_annotators


@dataclass(frozen=True)
class PreferenceSummary:
    """Aggregated preferences plus the pairs left out because the vote was split."""

    preferences: list[AggregatedPreference]
    tied_pair_ids: list[str]
    n_votes: int
    """Votes counted (one per annotator and pair)."""


# --------------------------------------------------------------------------- tasks


def pair_key(clip_id: Any, a: str, b: str) -> str:
    """A pair id from the clip and the two texts, the same whichever text comes first.

    >>> pair_key("clip-1", "hello", "yellow") == pair_key("clip-1", "yellow", "hello")
    True
    """
    digest = hashlib.sha256("\0".join(sorted((a, b))).encode()).hexdigest()[:12]
    return f"{clip_id}:{digest}"


def make_tasks(pairs: Iterable[Mapping[str, Any]], *, swap_sides: bool = True) -> list[dict]:
    """Label Studio import tasks, one per pair, for :data:`PAIRWISE_CONFIG_XML`.

    Each pair maps ``clip_id``, ``audio`` (a path or URL Label Studio can
    serve), ``a`` and ``b`` (the two transcripts) and optionally ``pair_id``
    (default :func:`pair_key`). With ``swap_sides`` about half the pairs show
    ``b`` on the left, chosen by a hash of the pair id (deterministic).
    ``ValueError`` names the pair when a field is missing or the texts are equal.

    >>> make_tasks([{"clip_id": "c1", "audio": "/a/c1.wav", "a": "hi", "b": "high",
    ...              "pair_id": "p1"}], swap_sides=False)
    [{'data': {'audio': '/a/c1.wav', 'a': 'hi', 'b': 'high', 'clip_id': 'c1', 'pair_id': 'p1'}}]
    """
    tasks = []
    for i, pair in enumerate(pairs):
        missing = [k for k in ("clip_id", "audio", "a", "b") if pair.get(k) is None]
        if missing:
            raise ValueError(f"pair #{i}: missing {', '.join(missing)}")
        a, b = str(pair["a"]), str(pair["b"])
        if a == b:
            raise ValueError(f"pair #{i} (clip {pair['clip_id']}): both texts are {a!r}")
        pid = str(pair.get("pair_id") or pair_key(pair["clip_id"], a, b))
        if swap_sides and hashlib.sha256(pid.encode()).digest()[0] % 2:
            a, b = b, a
        data = {"audio": str(pair["audio"]), "a": a, "b": b, "clip_id": pair["clip_id"],
                "pair_id": pid}
        tasks.append({"data": data})
    return tasks


# --------------------------------------------------------------------------- export


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
    if not isinstance(tasks, list):
        raise LabelStudioExportError(
            path, [f"top level is a JSON {type(tasks).__name__}, expected a list of tasks "
                   "(export the project as JSON, not JSON_MIN or CSV)"]
        )
    problems: list[str] = []
    prefs: list[HumanPreference] = []
    for i, task in enumerate(tasks):
        prefs += _task_preferences(i, task, problems)
    if problems:
        raise LabelStudioExportError(path, problems)
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
    if not isinstance(ann, dict):
        problems.append(f"{where}: is a {type(ann).__name__}, expected an object")
        return none
    if ann.get("was_cancelled"):
        return none
    where = f"{where} (id={ann.get('id')})"
    annotator = _annotator(ann.get("completed_by"))
    if annotator is None:
        problems.append(f"{where}: 'completed_by' must be a user id or {{id, email}}, "
                        f"got {ann.get('completed_by')!r}")
    result = ann.get("result")
    if not isinstance(result, list):
        problems.append(f"{where}: 'result' is not a list")
        return none
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
    """Which data field ('a' or 'b') the selected side shows, from the result's to_name."""
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


# --------------------------------------------------------------------------- aggregation


def summarize(prefs: Iterable[HumanPreference]) -> PreferenceSummary:
    """Majority preference per pair, in order of first appearance; split votes set aside.

    ``ValueError`` if one pair id is used for two different pairs of texts.
    """
    by_pair: dict[str, dict[str, HumanPreference]] = {}
    for p in prefs:
        votes = by_pair.setdefault(p.pair_id, {})
        first = next(iter(votes.values()), p)
        if {p.chosen, p.rejected} != {first.chosen, first.rejected}:
            raise ValueError(f"pair_id {p.pair_id!r} names two different pairs of texts "
                             f"(task {first.task_id} and task {p.task_id})")
        votes.pop(p.annotator, None)  # last vote of an annotator wins
        votes[p.annotator] = p
    out, ties, n_votes = [], [], 0
    for pair_id, votes in by_pair.items():
        n_votes += len(votes)
        agg = _majority(list(votes.values()))
        if agg is None:
            ties.append(pair_id)
        else:
            out.append(agg)
    return PreferenceSummary(preferences=out, tied_pair_ids=ties, n_votes=n_votes)


def aggregate(prefs: Iterable[HumanPreference]) -> list[AggregatedPreference]:
    """The pairs with a majority; see :func:`summarize` for the split ones."""
    return summarize(prefs).preferences


def _majority(votes: list[HumanPreference]) -> AggregatedPreference | None:
    counts = Counter(v.chosen for v in votes)
    (top, n_top), *rest = counts.most_common()
    if rest and rest[0][1] == n_top:
        return None
    winner = next(v for v in votes if v.chosen == top)
    return AggregatedPreference(
        clip_id=winner.clip_id,
        pair_id=winner.pair_id,
        audio=winner.audio,
        chosen=winner.chosen,
        rejected=winner.rejected,
        n_annotators=len(votes),
        n_agree=n_top,
        annotators=tuple(v.annotator for v in votes),
    )
