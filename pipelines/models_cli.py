"""`rlfoundry models list`: the model registry as a table, oldest first, with lineage.

Each trained checkpoint shows its round, objective, the model it started from (by id;
`baseline` for the hub's), its dev WER and the incumbent's it was measured against, and
whether (and when) it was promoted, so a run of rounds reads top to bottom.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from training.eval.text_table import aligned

COLUMNS = ("family", "ver", "round", "model", "stage", "from", "trained on", "WER %",
           "incumbent",
           "inc. WER %", "promoted")


def registry_table(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of registry rows (any order in; oldest first out).

    >>> rows = [
    ...     {"model_id": "dpo-2", "round": 1, "stage": "dpo", "base_model": "/m/sft-1",
    ...      "checkpoint": "/m/dpo-2", "train_batches": ["a"], "eval_wer": 0.496,
    ...      "incumbent": "baseline", "incumbent_wer": 0.576, "promoted": True,
    ...      "champion": True, "promoted_at": None, "created_at": 2, "family": "asr",
    ...      "version": 2},
    ...     {"model_id": "sft-1", "round": 1, "stage": "sft", "base_model": "/m/base",
    ...      "checkpoint": "/m/sft-1", "train_batches": ["a"], "eval_wer": 0.538,
    ...      "incumbent": "baseline", "incumbent_wer": 0.576, "promoted": False,
    ...      "promoted_at": None, "created_at": 1, "family": "asr", "version": 1}]
    >>> print(registry_table(rows))
    family  ver  round  model  stage  from      trained on  WER %  incumbent  inc. WER %  promoted
    ------  ---  -----  -----  -----  --------  ----------  -----  ---------  ----------  --------
    asr       1      1  sft-1  sft    baseline  a            53.8  baseline         57.6  -
    asr       2      1  dpo-2  dpo    sft-1     a            49.6  baseline         57.6  champion
    """
    if not rows:
        return "No trained models yet: run `rlfoundry run --train BATCH --eval BATCH`."
    rows = sorted(rows, key=lambda r: (r["created_at"], r["model_id"]))
    by_checkpoint = {r["checkpoint"]: r["model_id"] for r in rows}
    lines = [[
        r.get("family", ""), str(r.get("version", "")), str(r.get("round") or ""),
        r["model_id"], r["stage"],
        by_checkpoint.get(r["base_model"], "baseline"),
        ",".join(_batches(r["train_batches"])),
        _pct(r.get("eval_wer")), r.get("incumbent") or "-", _pct(r.get("incumbent_wer")),
        _promoted(r),
    ] for r in rows]
    text, rule = aligned([list(COLUMNS), *lines], right={1, 2, 7, 9})
    return "\n".join([text[0], rule, *text[1:]])


def _batches(value: Any) -> list[str]:
    if isinstance(value, str):
        value = json.loads(value) if value.startswith("[") else [value]
    return [str(b) for b in (value or [])]


def _pct(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.1f}"


def _promoted(row: dict[str, Any]) -> str:
    """'champion' (its family's current alias), 'yes <when>' (promoted before), or '-'."""
    if row.get("champion"):
        return "champion"
    if not row.get("promoted"):
        return "-"
    when = row.get("promoted_at")
    return f"yes {when:%Y-%m-%d %H:%M}" if hasattr(when, "strftime") else "yes"
