"""The model registry: one warehouse row per trained checkpoint, and which one is promoted.

Rows live in the `model_registry` table, one Parquet partition per model id, so
recording or updating a model rewrites exactly its own file (atomically). The
incumbent -- the model a new candidate must beat and the one that labels new
data -- is the most recently promoted row, or the model hub's baseline before
any promotion.

Example:
    >>> import tempfile
    >>> from resources.warehouse import Warehouse
    >>> wh = Warehouse(root=tempfile.mkdtemp())
    >>> _ = record(wh, family="asr", model_id="sft-1", stage="sft", checkpoint="/m/sft-1",
    ...            base_model="/m/base", train_batches=["b1"], config={"lr": 1e-5}, run_id="r1")
    >>> current_promoted(wh, "asr") is None
    True
    >>> update(wh, "sft-1", promoted=True)["promoted"]
    True
    >>> current_promoted(wh, "asr")["model_id"], current_promoted(wh, "vlm")
    ('sft-1', None)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from resources.warehouse import Warehouse

TABLE = "model_registry"


def record(
    warehouse: Warehouse, *, family: str, model_id: str, stage: str, checkpoint: str,
    base_model: str, train_batches: Sequence[str], config: Mapping[str, Any], run_id: str,
    train_metrics: Mapping[str, Any] | None = None, eval_batches: Sequence[str] = (),
    loop: str | None = None,
) -> dict[str, Any]:
    """Add (or replace) the row of a freshly trained checkpoint; not promoted."""
    row = {
        "round": current_round(warehouse, family), "family": family, "loop": loop,
        "model_id": model_id, "stage": stage, "checkpoint": checkpoint, "base_model": base_model,
        "train_batches": list(train_batches), "eval_batches": list(eval_batches),
        "config": json.dumps(dict(config), sort_keys=True, default=str),
        "train_metrics": json.dumps(dict(train_metrics or {}), sort_keys=True, default=str),
        "promoted": False, "run_id": run_id, "created_at": datetime.now(UTC),
    }
    warehouse.write_partition(TABLE, model_id, [row])
    return get(warehouse, model_id)


def get(warehouse: Warehouse, model_id: str) -> dict[str, Any]:
    """The registry row of `model_id`, or a LookupError naming the known ones."""
    rows = warehouse.fetch_dicts(f"SELECT * FROM {TABLE} WHERE model_id = $m", {"m": model_id})
    if not rows:
        known = [r[0] for r in warehouse.fetch(f"SELECT model_id FROM {TABLE} ORDER BY 1")]
        raise LookupError(f"No model {model_id!r} in the registry; known: {known or 'none'}.")
    return rows[0]


def update(warehouse: Warehouse, model_id: str, **fields: Any) -> dict[str, Any]:
    """Set some fields of one row (e.g. eval scores, promoted); returns the new row."""
    row = get(warehouse, model_id)
    unknown = set(fields) - set(row)
    if unknown:
        raise KeyError(f"model_registry has no columns {sorted(unknown)}")
    row.update(fields)
    if fields.get("promoted") and not row.get("promoted_at"):
        row["promoted_at"] = datetime.now(UTC)
    row.pop("batch", None)
    warehouse.write_partition(TABLE, model_id, [row])
    return get(warehouse, model_id)


def current_promoted(warehouse: Warehouse, family: str) -> dict[str, Any] | None:
    """The family's most recently promoted model's row, or None before any promotion."""
    rows = warehouse.fetch_dicts(
        f"SELECT * FROM {TABLE} WHERE promoted AND family = $f "
        "ORDER BY promoted_at DESC, model_id LIMIT 1", {"f": family})
    return rows[0] if rows else None


def current_round(warehouse: Warehouse, family: str) -> int:
    """The family's self-improving round now under way: 1 + its promotions so far.

    Labels made by the model promoted in round r, and the models trained on them, belong
    to round r + 1.
    """
    return 1 + warehouse.fetch(f"SELECT count(*) FROM {TABLE} WHERE promoted AND family = $f",
                               {"f": family})[0][0]


def newest(warehouse: Warehouse, family: str, stages: Sequence[str]) -> dict[str, Any] | None:
    """The family's most recently trained model of one of `stages`, or None."""
    rows = warehouse.fetch_dicts(
        f"SELECT * FROM {TABLE} WHERE family = $f AND list_contains($s, stage) "
        "ORDER BY created_at DESC LIMIT 1", {"f": family, "s": list(stages)})
    return rows[0] if rows else None


def all_models(warehouse: Warehouse) -> list[dict[str, Any]]:
    """Every registry row, newest first."""
    return warehouse.fetch_dicts(f"SELECT * FROM {TABLE} ORDER BY created_at DESC")
