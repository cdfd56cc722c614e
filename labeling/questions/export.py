"""A question dataset on disk: ``<name>.jsonl`` and a ``datasets`` folder ``<name>_dataset/``.

Both question chains (audio, video) write their TRL rows this way, each file atomically (a temp
name, then a rename), with the chain's ``datasets.Features`` fixing the column types.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def export_rows(rows: Sequence[Mapping[str, Any]], out_dir: str | Path, name: str,
                features) -> dict[str, Path]:
    """Write `rows` (the `features` columns only) as ``<name>.jsonl`` and ``<name>_dataset/``
    into `out_dir`; returns both paths."""
    from datasets import Dataset

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = [{column: row.get(column) for column in features} for row in rows]
    jsonl, tmp = out_dir / f"{name}.jsonl", out_dir / f".{name}.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                   encoding="utf-8")
    os.replace(tmp, jsonl)
    dataset_dir, staging = out_dir / f"{name}_dataset", out_dir / f".{name}_dataset.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    Dataset.from_dict({column: [r[column] for r in records] for column in features},
                      features=features).save_to_disk(str(staging))
    shutil.rmtree(dataset_dir, ignore_errors=True)
    os.replace(staging, dataset_dir)
    return {"jsonl": jsonl, "dataset": dataset_dir}
