"""Human pairwise preferences ("which transcript is better?"): tasks out, majority votes in.

The round trip:

1. :func:`make_tasks` turns transcript pairs into Label Studio tasks, to import
   into a project whose labeling config is :data:`PAIRWISE_CONFIG_XML`.
2. Annotators click the better transcript. Label Studio's ``Pairwise`` control
   stores one result per annotation, ``{"from_name": "pw", "to_name": "pw",
   "type": "pairwise", "value": {"selected": "left" | "right"}}`` (``to_name``
   is the Pairwise tag's own name); ``left`` is the first object of the tag's
   ``toName`` (``a``), ``right`` the second (``b``). Clicking the selected side
   again unselects it, which removes the result.
3. :func:`labeling.qc.export.read_pairwise_export` reads the project's JSON
   export (one :class:`HumanPreference` per task and non-cancelled annotation
   that made a choice) and :func:`aggregate` / :func:`summarize` merge the
   annotators of each pair into one :class:`AggregatedPreference`.

Decisions:

* Sides are swapped for about half the pairs (a deterministic hash of the
  pair id), so the model's favourite is not always on the left and position
  bias averages out. Everything downstream uses the texts, never the side.
* A pair is identified by ``pair_id``; by default it is derived from the clip
  id and the two texts, independently of their order (:func:`pair_key`).
* One vote per annotator and pair: if the same annotator labelled the same
  pair twice (two tasks with one pair id), their last annotation in the
  export counts (:func:`votes_by_pair`).
* Agreement is the share of a pair's annotators who voted with the majority
  (2 of 3 -> 0.667). A pair with one annotator has agreement 1.0 by
  definition; filter on ``n_annotators`` to require overlap. An even split
  (1-1, 2-2) is no preference: the pair is left out and counted in
  :attr:`PreferenceSummary.tied_pair_ids`. Agreement *between annotators*
  over a project (percent, Cohen's kappa) is :mod:`labeling.qc.agreement`.

Pure code: JSON only, no Label Studio SDK and no network.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "PAIRWISE_CONFIG_XML",
    "AggregatedPreference",
    "HumanPreference",
    "PreferenceSummary",
    "aggregate",
    "make_tasks",
    "pair_key",
    "summarize",
    "votes_by_pair",
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


# --------------------------------------------------------------------------- aggregation


def votes_by_pair(prefs: Iterable[HumanPreference]) -> dict[str, dict[str, HumanPreference]]:
    """``{pair_id: {annotator: vote}}`` in order of first appearance; an annotator's last vote
    on a pair wins. ``ValueError`` if one pair id is used for two different pairs of texts.

    >>> v = [HumanPreference(1, "c", "p", None, "x", "y", "ann", "left"),
    ...      HumanPreference(2, "c", "p", None, "y", "x", "ann", "right")]
    >>> votes_by_pair(v)["p"]["ann"].chosen
    'y'
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
    return by_pair


def summarize(prefs: Iterable[HumanPreference]) -> PreferenceSummary:
    """Majority preference per pair, in order of first appearance; split votes set aside.

    ``ValueError`` if one pair id is used for two different pairs of texts.
    """
    out, ties, n_votes = [], [], 0
    for pair_id, votes in votes_by_pair(prefs).items():
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
