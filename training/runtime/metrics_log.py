"""A run's metrics log: ``<output_dir>/metrics.jsonl``, one JSON object per optimizer step.

The trainer appends a row per step (main process only); a resumed run first drops the rows logged
after its checkpoint, so the file always matches the model it resumes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

METRICS_NAME = "metrics.jsonl"


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a run's `metrics.jsonl` (one per logged step)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_metrics(path: Path, record: Mapping[str, Any]) -> None:
    """Append one step's row."""
    with path.open("a") as fh:
        fh.write(json.dumps(record) + "\n")


def truncate_metrics(path: Path, step: int) -> dict[str, Any]:
    """Drop metrics rows after `step` (logged past the last checkpoint); return the last kept."""
    if not path.is_file():
        return {}
    kept = [r for r in read_metrics(path) if r.get("step", 0) <= step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
    os.replace(tmp, path)
    return kept[-1] if kept else {}
