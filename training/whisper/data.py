"""Training examples for the Whisper trainer: JSONL rows, log-mel features, deterministic batches.

Two row shapes (one JSON object a line):

- preference pairs (dpo/mpo), as ``training.data.preference_data.export_pairs`` writes them:
  ``prompt, chosen, rejected, audio, clip_id, pair_id, source``, and in a loop's training set
  ``reference`` (the clip's verified transcript, for ``sft_target="reference"``);
- SFT rows: ``audio`` and ``text`` (``id`` optional).

Each distinct audio file is decoded once and turned into Whisper's 30 s log-mel features, kept in
memory (80 x 3000 float32, ~1 MB a clip: fine for a few thousand clips). Texts are tokenised once,
exactly as scoring does (:func:`training.whisper.logps.target_ids`).

The order is a pure function of (seed, micro-batch index): epoch ``e`` visits
``permutation(seed, e)`` and the stream of epochs is cut into batches, so a resumed run only needs
its step count to see the same batches as an uninterrupted one.

Example:
    >>> batch_rows(5, 2, seed=0, index=0), batch_rows(5, 2, seed=0, index=2)  # 2: epochs 0 and 1
    ([2, 4], [1, 1])
    >>> sorted(batch_rows(5, 5, seed=7, index=3))  # one whole epoch: every row once
    [0, 1, 2, 3, 4]
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from labeling.ingest.audio import load_audio

Targets = Callable[[str], list[int]]


class DataError(ValueError):
    """A training data file or row that cannot be used; the message names file and line."""


@dataclass(frozen=True)
class Example:
    """One training row: a clip and its tokenised chosen (SFT: target) and rejected texts."""

    key: str
    clip: int
    chosen: list[int]
    rejected: list[int] | None
    text: str = ""
    """The reference transcript as written (SFT rows; what RL rewards compare against)."""
    tags: dict = field(default_factory=dict)
    """The row's other keys (keywords, language, accent...) for rewards and group weights."""
    reference: list[int] | None = None
    """Pairs rows: the clip's verified transcript, tokenised, when the row carries one."""


@dataclass
class Batch:
    """A micro-batch: unique clips' features, and per example its clip row within them."""

    keys: list[str]
    features: torch.Tensor
    clips: list[int]
    chosen: list[list[int]]
    rejected: list[list[int]] | None
    texts: list[str] = field(default_factory=list)
    tags: list[dict] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    """Duration of each unique clip (rows of `features`)."""
    clip_ids: list[int] = field(default_factory=list)
    """Each unique clip's index in the run's data (rows of `features`): its encoder-cache key."""
    references: list[list[int] | None] = field(default_factory=list)
    """Pairs: each example's tokenised reference transcript (None where the row had none)."""


@dataclass
class TrainData:
    """All examples of a run, with the features of every distinct clip they refer to."""

    examples: list[Example]
    features: torch.Tensor
    audio_paths: list[str]
    durations: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.examples)

    def batch(self, rows: list[int]) -> Batch:
        """The examples at `rows` as one batch (clips deduplicated)."""
        examples = [self.examples[r] for r in rows]
        unique = sorted({e.clip for e in examples})
        local = {clip: i for i, clip in enumerate(unique)}
        paired = examples[0].rejected is not None
        return Batch(
            keys=[e.key for e in examples],
            features=self.features[unique],
            clips=[local[e.clip] for e in examples],
            chosen=[e.chosen for e in examples],
            rejected=[e.rejected for e in examples] if paired else None,  # type: ignore[misc]
            texts=[e.text for e in examples],
            tags=[e.tags for e in examples],
            seconds=[self.durations[c] for c in unique] if self.durations else [],
            clip_ids=unique,
            references=[e.reference for e in examples],
        )


def read_rows(path: str | Path, paired: bool) -> list[dict]:
    """JSONL rows with the fields the objective needs; DataError names the line otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: data file does not exist")
    need = ("audio", "chosen", "rejected") if paired else ("audio", "text")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: not valid JSON ({exc})") from None
        missing = [k for k in need if not isinstance(row.get(k), str)]
        if missing:
            kind = "a pairs row" if paired else "an SFT row"
            raise DataError(f"{path}:{number}: {kind} needs string fields {missing}")
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def load_train_data(
    path: str | Path, *, paired: bool, targets: Targets, feature_extractor
) -> TrainData:
    """Rows of `path` tokenised with `targets` and their clips' log-mel features."""
    path = Path(path)
    rows = read_rows(path, paired)
    clip_of: dict[str, int] = {}
    examples = []
    for number, row in enumerate(rows):
        audio = _resolve(row["audio"], path.parent)
        clip = clip_of.setdefault(audio, len(clip_of))
        if paired:
            key = str(row.get("pair_id") or f"row{number}")
            reference = row.get("reference")
            reference = targets(reference) if isinstance(reference, str) and reference.strip() \
                else None
            examples.append(Example(key, clip, targets(row["chosen"]), targets(row["rejected"]),
                                    reference=reference))
        else:
            key = str(row.get("id") or f"row{number}")
            tags = {k: v for k, v in row.items() if k not in ("audio", "text", "id")}
            examples.append(Example(key, clip, targets(row["text"]), None, row["text"], tags))
    keys = [e.key for e in examples]
    if len(set(keys)) != len(keys):
        raise DataError(f"{path}: pair_id/id values are not unique")
    paths = list(clip_of)
    features, durations = log_mel_features(paths, feature_extractor)
    return TrainData(examples, features, paths, durations)


def _resolve(audio: str, base: Path) -> str:
    candidate = Path(audio).expanduser()
    if not candidate.is_absolute() and not candidate.exists():
        candidate = base / candidate
    return str(candidate)


def log_mel_features(
    paths: list[str], feature_extractor, chunk: int = 32
) -> tuple[torch.Tensor, list[float]]:
    """[clips, mels, frames] 30 s-padded log-mel features of each file (decoded once), and
    each file's duration in seconds."""
    parts, durations = [], []
    for start in range(0, len(paths), chunk):
        audios = [load_audio(p)[0] for p in paths[start : start + chunk]]
        durations += [len(a) / 16_000 for a in audios]
        parts.append(
            feature_extractor(audios, sampling_rate=16_000, return_tensors="pt").input_features
        )
    return torch.cat(parts), durations


def batch_rows(n: int, batch_size: int, *, seed: int, index: int) -> list[int]:
    """Rows of micro-batch `index` in the endless stream of seeded per-epoch permutations."""
    start = index * batch_size
    rows = []
    for position in range(start, start + batch_size):
        epoch, offset = divmod(position, n)
        rows.append(int(_permutation(n, seed, epoch)[offset]))
    return rows


@lru_cache(maxsize=8)
def _permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)
