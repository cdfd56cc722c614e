"""`rlfoundry batches` and `rlfoundry quarantine`: what the warehouse holds, per batch.

`batches` lists every registered batch (role, what it holds, how much of it carries a text,
what was quarantined, where it came from, when it was ingested); `quarantine` shows the
rows ingestion and labeling refused, with their reason and what to do, for one batch or all.
"""

from __future__ import annotations

import click

import sql
from resources.warehouse import Warehouse, check_partition_name
from training.eval.text_table import aligned

BATCH_COLUMNS = ("batch", "role", "kind", "items", "labeled", "quarantined", "duplicates",
                 "ingested", "source")
KINDS = (("clips", "audio"), ("images", "images"), ("videos", "videos"))


def batches_table(rows: list[dict]) -> str:
    """Registered batches as a plain-text table (rows of `queries/batch_overview`).

    >>> from datetime import datetime
    >>> print(batches_table([{"batch": "dev", "role": "eval", "clips": 60, "images": 0,
    ...     "videos": 0, "labeled": 58, "quarantined": 1, "duplicates": 0,
    ...     "ingested_at": datetime(2026, 11, 30, 9, 5), "source": "/d/dev.jsonl"}]))
    batch  role  kind   items  labeled  quarantined  duplicates  ingested          source
    -----  ----  -----  -----  -------  -----------  ----------  ----------------  ------------
    dev    eval  audio     60       58            1           0  2026-11-30 09:05  /d/dev.jsonl
    """
    if not rows:
        return "No batches yet: `rlfoundry ingest PATH --batch NAME` registers one."
    lines = []
    for r in rows:
        kinds = [name for column, name in KINDS if r[column]]
        when = r.get("ingested_at")
        lines.append([
            r["batch"], r["role"], "+".join(kinds) or "empty",
            str(sum(r[column] for column, _ in KINDS)), str(r["labeled"]),
            str(r["quarantined"]), str(r["duplicates"]),
            f"{when:%Y-%m-%d %H:%M}" if hasattr(when, "strftime") else "-", r["source"]])
    text, rule = aligned([list(BATCH_COLUMNS), *lines], right={3, 4, 5, 6})
    return "\n".join([text[0], rule, *text[1:]])


def list_batches(warehouse: Warehouse) -> str:
    return batches_table(warehouse.fetch_dicts(sql.load("queries/batch_overview"),
                                               {"batch": None}))


def quarantine_report(warehouse: Warehouse, batch: str | None, reasons: list[str],
                      limit: int) -> str:
    """The quarantine rows of `batch` (or every batch), `reasons` only if given, at most
    `limit`: a count by reason, then one line per row (batch, asset, reason, file and line,
    detail). ClickException for a bad or unknown batch name."""
    if batch is not None:
        check_batch(warehouse, batch)
    params = {"batch": batch, "reasons": reasons}
    rows = warehouse.fetch_dicts(sql.load("queries/quarantine_rows"), {**params, "limit": limit})
    counts = warehouse.fetch(sql.load("queries/quarantine_counts"), params)
    scope = f"batch {batch}" if batch else "every batch"
    only = f" with reason {', '.join(reasons)}" if reasons else ""
    if not rows:
        return f"No quarantine rows in {scope}{only}."
    total = sum(n for _, n in counts)
    head = (f"{total} quarantine row{'s' if total != 1 else ''} in {scope}{only}: "
            + ", ".join(f"{reason} {n}" for reason, n in counts))
    lines = [[r["batch"], r["asset"], r["reason"], _where(r), _clean(r["detail"])]
             for r in rows]
    text, rule = aligned([["batch", "asset", "reason", "file", "detail"], *lines], right=())
    tail = ([f"(the first {len(rows)}; --limit {total} shows all)"] if total > len(rows)
            else [])
    return "\n".join([head, "", text[0], rule, *text[1:], *tail])


def check_batch(warehouse: Warehouse, batch: str) -> None:
    """ClickException for a batch name that cannot be one, or that no batch has."""
    try:
        check_partition_name(batch)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    known = [r[0] for r in warehouse.fetch(sql.load("queries/batches_by_role"))]
    if batch not in known:
        raise click.ClickException(f"No batch {batch!r}; batches: {', '.join(known) or 'none'} "
                                   "(`rlfoundry batches` lists them).")


def _where(row: dict) -> str:
    path = row["source_path"] or "-"
    return f"{path}:{row['line']}" if row["line"] is not None else path


def _clean(text: str | None) -> str:
    return " ".join(str(text or "").split())
