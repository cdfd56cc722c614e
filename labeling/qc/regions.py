"""Label Studio tasks for human QC of the audio questions chain's sound regions.

One task per **clip**: people mark every sound of it (drag over the waveform, pick a class),
because a clip's human regions replace all its other regions and must be complete
(:mod:`labeling.audio_qa.chain`). A task shows

* the clip's audio (served through a local-files storage, like the speech clips) with an
  ``Audio`` tag and a ``Labels`` tag whose labels are the classes (:data:`CLASSES` by
  default; the QC asset offers the chain's whole vocabulary, since a human annotation is
  taken as complete over it, plus ``silence`` and ``other``);
* the regions of the clip's best non-human source (the manifest's, else the detector's:
  :func:`preannotation_source`) pre-drawn as a prediction, each as Label Studio's UI writes
  an audio region: ``{"start", "end", "channel", "labels"}`` in seconds with
  ``original_length``. Regions of a class the labeling config lacks are left out of it (a
  prediction naming an unknown label is not shown).

Besides what is shown, ``data`` carries ``clip_id``, ``source_path`` (where the clip lies:
what quarantine rows name), ``duration_s`` (regions past it are refused on pull),
``preannotation_source``, ``batch`` (what the pull keeps and a re-push skips) and
``second_review`` (:mod:`labeling.qc.review`, keyed by the clip id).

Example:
    >>> from labeling.audio_qa.regions import SoundRegion
    >>> clip = {"clip_id": "c1", "source_path": "/m/c1.ogg", "duration_s": 12.0}
    >>> given = {"c1": [SoundRegion("speech", 1.0, 3.5, "manifest"),
    ...                 SoundRegion("dog", 2.0, 4.0, "manifest")]}
    >>> (task,) = region_tasks([clip], given, batch="b1", share=1.0)
    >>> task["data"]["preannotation_source"], task["data"]["second_review"]
    ('manifest', True)
    >>> [r["value"] for r in task["predictions"][0]["result"]]
    [{'start': 1.0, 'end': 3.5, 'channel': 0, 'labels': ['speech']}]
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from labeling.audio_qa.chain import used_source
from labeling.audio_qa.regions import Labelled, SoundRegion
from labeling.qc.review import SECOND_REVIEW_FIELD, second_review

#: One model version for every task, so Label Studio shows all of them pre-annotated.
MODEL_VERSION = "rlfoundry-sound-regions"
#: Names of the labeling config's tags (the results' ``from_name``/``to_name``).
AUDIO, LABELS = "audio", "label"
#: The classes offered when none are given: the audio chain's sounds, then two that are not.
CLASSES = ("speech", "music", "noise", "silence", "other")
#: Classes people may mark that are not sounds: kept for agreement, never handed to the chain
#: (a question about the longest "sound" must not answer "silence").
NOT_SOUNDS = ("silence",)
#: Region colours, in the order of the classes (repeats past the end).
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#d62728", "#7f7f7f")


def regions_config_xml(classes: Sequence[str] = CLASSES) -> str:
    """The labeling config: instructions, one label per class (hotkeys 1-9), the audio.

    >>> xml = regions_config_xml(["speech", "dog bark"])
    >>> '<Label value="dog bark" background="#ff7f0e" hotkey="2"/>' in xml
    True
    >>> config_classes(xml)
    ['speech', 'dog bark']
    """
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"region QC needs distinct classes, got {list(classes)!r}")
    labels = "\n".join(
        f"    <Label value={quoteattr(c)} background=\"{COLOURS[i % len(COLOURS)]}\""
        + (f' hotkey="{i + 1}"' if i < 9 else "") + "/>" for i, c in enumerate(classes))
    return (
        "<View>\n"
        '  <Header value="Mark every sound you hear: drag over the waveform, then pick its '
        'class. Correct, delete or add to the pre-drawn regions; leave nothing unmarked."/>\n'
        f'  <Labels name="{LABELS}" toName="{AUDIO}" choice="single" zoom="true">\n'
        f"{labels}\n"
        "  </Labels>\n"
        f'  <Audio name="{AUDIO}" value="$audio" zoom="true" hotkey="space"/>\n'
        "</View>\n"
    )


def config_classes(label_config: str) -> list[str]:
    """The classes of a region-QC labeling config (what annotators were offered), in order;
    empty when it has no ``Labels`` tag named :data:`LABELS`."""
    root = ET.fromstring(label_config)
    for tag in root.iter("Labels"):
        if tag.get("name") == LABELS:
            return [label.get("value", "") for label in tag.iter("Label")]
    return []


def region_result(region: Labelled, duration_s: float, region_id: str) -> dict:
    """A region as Label Studio's UI writes an audio ``Labels`` region (seconds)."""
    return {"id": region_id, "from_name": LABELS, "to_name": AUDIO, "type": "labels",
            "origin": "prediction", "original_length": float(duration_s),
            "value": {"start": float(region.start_s), "end": float(region.end_s), "channel": 0,
                      "labels": [region.label]}}


def preannotation_source(sources: Iterable[str]) -> str | None:
    """The source whose regions are pre-drawn: the chain's precedence without ``human``
    (people see what they are asked to check, not their own last answer).

    >>> preannotation_source(["model:silero", "human", "manifest"])
    'manifest'
    >>> preannotation_source(["model:silero"]), preannotation_source(["human"])
    ('model:silero', None)
    """
    return used_source(dict.fromkeys(s for s in sources if s != "human"))


def preannotations(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[SoundRegion]]:
    """Per clip, the regions of its :func:`preannotation_source` from ``sound_regions`` rows
    (``clip_id``, ``label``, ``start_s``, ``end_s``, ``source``, ``score``).

    >>> rows = [{"clip_id": "c", "label": "speech", "start_s": 0.5, "end_s": 1.0,
    ...          "source": s, "score": None} for s in ("model:vad", "manifest", "human")]
    >>> {c: [r.source for r in rs] for c, rs in preannotations(rows).items()}
    {'c': ['manifest']}
    """
    by_clip: dict[str, dict[str, list[SoundRegion]]] = {}
    for r in rows:
        by_clip.setdefault(r["clip_id"], {}).setdefault(r["source"], []).append(SoundRegion(
            r["label"], float(r["start_s"]), float(r["end_s"]), r["source"], r.get("score")))
    out = {}
    for clip_id, sources in by_clip.items():
        best = preannotation_source(sources)
        if best is not None:
            out[clip_id] = sources[best]
    return out


def region_tasks(
    clips: Iterable[Mapping[str, Any]],
    preannotated: Mapping[str, Sequence[SoundRegion]],
    *,
    batch: str,
    classes: Sequence[str] = CLASSES,
    media_url: Callable[[str], str | None] | None = None,
    share: float = 0.2,
    seed: int = 0,
) -> list[dict]:
    """Import-ready tasks for clips (``clip_id``, ``source_path``, ``duration_s``), each with
    the regions `preannotated` gives it (those of a class outside `classes` left out and
    counted in ``data.preannotation_left_out``) as a prediction.

    `media_url` turns a clip's path into the URL Label Studio serves it at (None keeps the
    path).
    """
    known = set(classes)
    tasks = []
    for clip in clips:
        clip_id, path = str(clip["clip_id"]), str(clip["source_path"])
        duration = float(clip["duration_s"])
        given = list(preannotated.get(clip_id, ()))
        shown = sorted((r for r in given if r.label in known), key=lambda r: (r.start_s, r.label))
        task: dict[str, Any] = {"data": {
            "audio": (media_url(path) if media_url else None) or path,
            "clip_id": clip_id, "source_path": path, "duration_s": duration,
            "preannotation_source": given[0].source if given else None,
            "preannotation_left_out": len(given) - len(shown),
            "batch": batch, SECOND_REVIEW_FIELD: second_review(clip_id, share, seed)}}
        if shown:
            scores = [r.score for r in shown if r.score is not None]
            prediction: dict[str, Any] = {
                "model_version": MODEL_VERSION,
                "result": [region_result(r, duration, f"r{i}") for i, r in enumerate(shown)]}
            if scores:
                prediction["score"] = sum(scores) / len(scores)
            task["predictions"] = [prediction]
        tasks.append(task)
    return tasks
