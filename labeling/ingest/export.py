"""Clips out, in the formats other speech tools read: NeMo JSONL, Lhotse cuts, HF datasets.

Pure functions of clip rows as `audio_clips` holds them (`clip_id`,
`source_path`, `text`, `tags` as JSON or a dict, `duration_s`); which clips
go out (e.g. only verified ones) is the caller's choice. A segment clip
(`rec.wav#t=3.5,7.25`, see `labeling.ingest.spans`) goes out as what each
format calls a segment: a NeMo line with `offset` and `duration`, a Lhotse
cut at its start in the recording; the HF dataset, which holds audio itself,
gets the span's samples as a WAV (mono, at the file's rate). Whole files go
out as they are (their bytes, in the HF dataset). Each written file reads back
with this package's readers (`labeling.ingest.formats`) into the same clips.

Example:
    >>> import json, pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> clips = [{"clip_id": "c1", "source_path": "/d/rec.wav#t=3.5,7.25", "text": "hi",
    ...           "tags": '{"spk": "s1"}', "duration_s": 3.75}]
    >>> json.loads(to_nemo(clips, d / "out.jsonl").read_text())
    {'audio_filepath': '/d/rec.wav', 'duration': 3.75, 'text': 'hi', 'offset': 3.5, 'spk': 's1'}
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from labeling.ingest.spans import split_span

Clip = Mapping[str, Any]
NEMO_KEYS = ("audio_filepath", "duration", "text", "offset")


def clip_span(clip: Clip) -> tuple[str, float | None, float]:
    """(file, start or None for a whole file, duration in seconds) of a clip row."""
    path, start, end = split_span(clip["source_path"])
    duration = float(clip["duration_s"]) if end is None else end - (start or 0.0)
    return path, start, duration


def clip_tags(clip: Clip) -> dict[str, Any]:
    tags = clip.get("tags") or {}
    return json.loads(tags) if isinstance(tags, str) else dict(tags)


def to_nemo(clips: Iterable[Clip], path: str | Path) -> Path:
    """A NeMo manifest of `clips` at `path` (gzipped when it ends in `.gz`): one line per clip,
    `audio_filepath` absolute, `offset` for a segment, the tags as keys."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as out:
        for clip in clips:
            file, start, duration = clip_span(clip)
            line: dict[str, Any] = {"audio_filepath": file, "duration": round(duration, 3)}
            if clip.get("text") is not None:
                line["text"] = clip["text"]
            if start is not None:
                line["offset"] = start
            line |= {k: v for k, v in clip_tags(clip).items() if k not in NEMO_KEYS}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return path


def to_lhotse_cuts(clips: Iterable[Clip], path: str | Path) -> Path:
    """A Lhotse CutSet of `clips` at `path` (`.jsonl.gz` or `.jsonl`): per clip a cut of its
    file's recording, with one supervision (the text; speaker and language from the tags,
    the other scalar tags as `custom`) covering the cut; cut and supervision ids are the
    clip's id."""
    from lhotse import CutSet, MonoCut, MultiCut, SupervisionSegment

    recordings: dict[str, Any] = {}
    cuts = []
    for clip in clips:
        file, start, duration = clip_span(clip)
        if file not in recordings:
            recordings[file] = _recording(file)
        rec = recordings[file]
        tags = clip_tags(clip)
        sup = SupervisionSegment(
            id=clip["clip_id"], recording_id=rec.id, start=0.0, duration=duration, channel=0,
            text=clip.get("text"), speaker=_str(tags.pop("speaker", None)),
            language=_str(tags.pop("language", None)),
            custom={k: v for k, v in tags.items() if isinstance(v, str | int | float | bool)})
        kind, channel = (MonoCut, 0) if rec.num_channels == 1 else (MultiCut, rec.channel_ids)
        cuts.append(kind(id=clip["clip_id"], start=start or 0.0, duration=duration,
                         channel=channel, recording=rec, supervisions=[sup]))
    CutSet.from_cuts(cuts).to_file(path)
    return Path(path)


def to_hf_dataset(clips: Iterable[Clip], path: str | Path) -> Path:
    """A `datasets.Dataset` of `clips` saved to disk at `path`: columns `audio` (an `Audio`
    feature holding the file's bytes, or a WAV of a segment's span), `text`, `clip_id`,
    `duration_s` and `tags` (JSON). Holds the audio in memory until saved."""
    import datasets

    columns: dict[str, list[Any]] = {k: [] for k in ("audio", "text", "clip_id", "duration_s",
                                                     "tags")}
    for clip in clips:
        file, start, duration = clip_span(clip)
        columns["audio"].append(_audio_value(clip, file, start))
        columns["text"].append(clip.get("text"))
        columns["clip_id"].append(clip["clip_id"])
        columns["duration_s"].append(duration)
        columns["tags"].append(json.dumps(clip_tags(clip), sort_keys=True, default=str))
    # Built as a plain {bytes, path} struct, then cast: datasets encodes through an `Audio`
    # feature only with torchcodec, and a cast only relabels the column.
    features = datasets.Features({
        "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
        "text": datasets.Value("string"), "clip_id": datasets.Value("string"),
        "duration_s": datasets.Value("float64"), "tags": datasets.Value("string")})
    dataset = datasets.Dataset.from_dict(columns, features=features)
    dataset.cast_column("audio", datasets.Audio()).save_to_disk(str(path))
    return Path(path)


def _audio_value(clip: Clip, file: str, start: float | None) -> dict[str, Any]:
    """`{bytes, path}` for the Audio column: the file's bytes, or a WAV of the span."""
    if start is None:
        return {"bytes": Path(file).read_bytes(), "path": Path(file).name}
    import soundfile as sf

    from labeling.ingest.audio import load_audio

    rate = _file_info(file)[0]
    samples = load_audio(clip["source_path"], target_sr=rate)[0]
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return {"bytes": buffer.getvalue(), "path": f"{clip['clip_id']}.wav"}


def _recording(file: str) -> Any:
    """The Lhotse Recording of a whole file (its id: the file's stem and a hash of its path)."""
    from lhotse import AudioSource, Recording

    rate, frames, channels = _file_info(file)
    rec_id = f"{Path(file).stem}-{hashlib.sha1(file.encode()).hexdigest()[:8]}"
    return Recording(id=rec_id, sources=[AudioSource("file", list(range(channels)), file)],
                     sampling_rate=rate, num_samples=frames, duration=frames / rate)


def _file_info(file: str) -> tuple[int, int, int]:
    """(sample rate, frames, channels) of a whole file: from its header, else by decoding."""
    import soundfile as sf

    from labeling.ingest.audio import load_audio

    try:
        info = sf.info(file)
        return info.samplerate, info.frames, info.channels
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError):
        probe = load_audio(file)[1]
        return probe.sample_rate, round(probe.duration_s * probe.sample_rate), probe.channels


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
