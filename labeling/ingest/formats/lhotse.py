"""Lhotse manifests: cuts, or recordings + supervisions, `.jsonl` or `.jsonl.gz`.

Each line is turned into Lhotse's own object (`lhotse.serialization.deserialize_item`),
so what Lhotse accepts is what is read; a line it refuses is `bad_manifest_line`.

* Cuts (`MonoCut`, `MultiCut`): each supervision is a segment clip of the cut's
  recording at the cut's start plus the supervision's (clipped to the cut), with the
  supervision's text; a cut without supervisions is one unlabeled clip of its span.
  A `MixedCut` (several recordings, or padding) has no one file to point into:
  `unsupported_cut`.
* Recordings + supervisions: given either file, the other is the file of the same
  name with `recordings` and `supervisions` swapped (Lhotse recipes write
  `<corpus>_recordings_<part>.jsonl.gz` beside `<corpus>_supervisions_<part>.jsonl.gz`);
  a folder is read pair by pair, cuts files too. Each supervision is a segment clip
  of its recording; a recording no supervision names is one unlabeled clip.

A recording must be one audio file (`type: file`; relative paths are taken from
the manifest's folder) without transforms: URLs, shell commands, in-memory audio,
one file per channel and speed/volume transforms are `unsupported_source`.
Speaker, language, gender and the ids are tags; so are scalar `custom` fields.

Example (a recording and a supervision written with Lhotse itself):
    >>> import pathlib, tempfile, numpy as np, soundfile as sf
    >>> from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet
    >>> d = pathlib.Path(tempfile.mkdtemp()); sf.write(d / "r.wav", np.zeros(32000), 16000)
    >>> RecordingSet.from_recordings([Recording.from_file(d / "r.wav", "r")]).to_file(
    ...     d / "x_recordings_dev.jsonl.gz")
    >>> SupervisionSet.from_segments([SupervisionSegment("s1", "r", 0.5, 1.0, text="hi")]
    ...     ).to_file(d / "x_supervisions_dev.jsonl.gz")
    >>> [(e.text, e.offset, e.duration) for e in read(d, [d])]
    [('hi', 0.5, 1.0)]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from labeling.ingest.formats import lhotse_manifests
from labeling.ingest.formats.common import Refused, clean_transcript, jsonl_records, media_path
from labeling.ingest.manifest import STRIPPED_TAG, SourceEntry, SourceIssue

PAIR = ("recordings", "supervisions")


def read(source: Path, roots: Sequence[Path], text_key: str | None = None,
         ) -> Iterator[SourceEntry | SourceIssue]:
    """Every cut, or every supervision and unsupervised recording, of a file or folder."""
    files = lhotse_manifests(source) if source.is_dir() else [source]
    done: set[Path] = set()
    for path in files:
        if path in done:
            continue
        partner = partner_of(path)
        if partner is not None:
            done.add(partner)
            recordings, supervisions = sorted([path, partner], key=lambda p: PAIR[0] not in p.name)
            yield from _read_pair(recordings, supervisions, roots)
        else:
            yield from _read_alone(path, roots)


def partner_of(path: Path) -> Path | None:
    """The other file of a recordings + supervisions pair beside `path` (its name with
    `recordings` and `supervisions` swapped), if there is one."""
    partner = next((path.with_name(path.name.replace(a, b, 1)) for a, b in (PAIR, PAIR[::-1])
                    if a in path.name), None)
    return partner if partner is not None and partner.is_file() else None


def _objects(path: Path) -> Iterator[tuple[int, Any]]:
    """(line, Lhotse object or SourceIssue) per line of a manifest."""
    from lhotse.serialization import deserialize_item

    for number, record in jsonl_records(path):
        if not isinstance(record, Refused):
            try:
                yield number, deserialize_item(record)
                continue
            except Exception as err:  # noqa: BLE001 - the library's boundary: bad data
                record = Refused("bad_manifest_line", f"Lhotse cannot read it "
                                 f"({type(err).__name__}: {err}).")
        yield number, SourceIssue("audio", str(path), record.reason,
                                  f"{path}:{number}: {record.detail}", number)


def _read_alone(path: Path, roots: Sequence[Path]) -> Iterator[SourceEntry | SourceIssue]:
    """A cuts file, or a recordings or supervisions file without its partner."""
    from lhotse import Recording, SupervisionSegment
    from lhotse.cut import MonoCut, MultiCut

    for number, obj in _objects(path):
        try:
            if isinstance(obj, SourceIssue):
                yield obj
            elif isinstance(obj, MonoCut | MultiCut):
                yield from _cut_entries(obj, path, number, roots)
            elif isinstance(obj, Recording):
                yield _entry(obj, None, 0.0, None, path, number, roots)
            elif isinstance(obj, SupervisionSegment):
                yield SourceIssue("audio", str(path), "missing_recordings", f"{path}: lists "
                                  "supervisions, but no recordings manifest is beside it (the "
                                  "same name with `recordings` for `supervisions`), so none "
                                  "was read; put it there, or ingest cuts.")
                return
            else:
                raise Refused("unsupported_cut", f"a {type(obj).__name__}: mixes or pads "
                              "recordings, so no one file holds it; ingest its source cuts.")
        except Refused as refused:
            yield SourceIssue("audio", str(path), refused.reason,
                              f"{path}:{number}: {refused.detail}", number)


def _cut_entries(cut: Any, path: Path, number: int, roots: Sequence[Path],
                 ) -> Iterator[SourceEntry | SourceIssue]:
    if cut.recording is None:
        raise Refused("unsupported_cut", f"cut {cut.id} has no recording (features only).")
    tags = {"cut_id": cut.id, **_scalars(cut.custom)}
    if not cut.supervisions:
        yield _entry(cut.recording, None, cut.start, cut.duration, path, number, roots, tags)
    for sup in cut.supervisions:
        start, end = max(sup.start, 0.0), min(sup.end, cut.duration)
        if end <= start:
            yield SourceIssue("audio", str(path), "bad_segment", f"{path}:{number}: "
                              f"supervision {sup.id} lies outside its cut {cut.id}.", number)
            continue
        try:
            yield _entry(cut.recording, sup, cut.start + start, end - start, path, number,
                         roots, tags)
        except Refused as refused:
            yield SourceIssue("audio", str(path), refused.reason,
                              f"{path}:{number}: {refused.detail}", number)


def _read_pair(recordings: Path, supervisions: Path, roots: Sequence[Path],
               ) -> Iterator[SourceEntry | SourceIssue]:
    """Each supervision as a segment of its recording, then each recording none names."""
    by_id: dict[str, tuple[int, Any]] = {}
    for number, obj in _objects(recordings):
        if isinstance(obj, SourceIssue):
            yield obj
        else:
            by_id[obj.id] = (number, obj)
    named: set[str] = set()
    for number, sup in _objects(supervisions):
        try:
            if isinstance(sup, SourceIssue):
                yield sup
                continue
            if sup.recording_id not in by_id:
                raise Refused("unknown_recording", f"supervision {sup.id} names recording "
                              f"{sup.recording_id!r}, which {recordings.name} does not list.")
            named.add(sup.recording_id)
            yield _entry(by_id[sup.recording_id][1], sup, sup.start, sup.duration,
                         recordings, number, roots)
        except Refused as refused:
            yield SourceIssue("audio", str(supervisions), refused.reason,
                              f"{supervisions}:{number}: {refused.detail}", number)
    for rec_id, (number, rec) in by_id.items():
        if rec_id not in named:
            try:
                yield _entry(rec, None, 0.0, None, recordings, number, roots)
            except Refused as refused:
                yield SourceIssue("audio", str(recordings), refused.reason,
                                  f"{recordings}:{number}: {refused.detail}", number)


def _entry(recording: Any, sup: Any, offset: float, duration: float | None, manifest: Path,
           number: int, roots: Sequence[Path], tags: dict[str, Any] | None = None,
           ) -> SourceEntry:
    """A clip of `recording` from `offset` for `duration` s (None: all), labeled by `sup`."""
    path = _recording_file(recording, manifest, roots)
    tags = {**(tags or {}), "recording_id": recording.id}
    text, stripped = None, 0
    if sup is not None:
        text, stripped = clean_transcript(sup.text, "text")
        tags |= {"supervision_id": sup.id, **_scalars(sup.custom)}
        tags |= {k: v for k in ("speaker", "language", "gender")
                 if (v := getattr(sup, k, None)) is not None}
    if stripped:
        tags[STRIPPED_TAG] = stripped
    return SourceEntry("audio", path, text, duration, tags, number,
                       offset if offset or duration is not None else None)


def _recording_file(recording: Any, manifest: Path, roots: Sequence[Path]) -> Path:
    """The one audio file a recording is; Refused("unsupported_source") for anything else."""
    sources = recording.sources
    if len(sources) != 1:
        raise Refused("unsupported_source", f"recording {recording.id} has {len(sources)} "
                      "audio sources (one file per channel); mix them into one file.")
    if sources[0].type != "file":
        raise Refused("unsupported_source", f"recording {recording.id}'s audio is a "
                      f"{sources[0].type!r} source, not a file; write it to a file and list it.")
    if recording.transforms:
        raise Refused("unsupported_source", f"recording {recording.id} has transforms (speed, "
                      "volume, resampling) the file alone does not hold; apply them first.")
    return media_path(sources[0].source, manifest.parent, roots)


def _scalars(custom: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (custom or {}).items()
            if isinstance(v, str | int | float | bool) and v is not None}
