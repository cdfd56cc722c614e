"""Printing a run's materializations and checks in the terminal.

By default each materialized asset is one line of its headline numbers (counts, scores,
short names) and only the checks that did not pass are listed; `--verbose` prints every
metadata entry and markdown table, and every check, as the UI shows them.
"""

from __future__ import annotations

import math

import click
from dagster import MarkdownMetadataValue

SHORT_TEXT = 40  # longer text (a reason, a config) is left to the UI and --verbose


def print_materializations(result, verbose: bool = False, told: tuple[str, ...] = ()) -> None:
    """Each asset's metadata: one summary line per asset (none for the assets in `told`,
    whose outcome the caller prints), or everything with `verbose` (images are left to the
    UI)."""
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        name = f"{mat.asset_key.to_user_string()} [{mat.partition}]"
        if not verbose:
            line = "" if mat.asset_key.to_user_string() in told else summary(mat.metadata)
            if line:
                click.echo(f"{name}: {line}")
            continue
        click.echo(f"\n== {name}")
        for key, value in mat.metadata.items():
            raw = getattr(value, "value", value)
            if isinstance(value, MarkdownMetadataValue):
                if "data:image" not in str(raw):
                    click.echo(f"{key}:\n{raw}")
            else:
                click.echo(f"{key}: {raw}")


def summary(metadata) -> str:
    """The headline entries of an asset's metadata as `key=value, ...`: numbers (floats to
    4 significant digits), true flags and short text that is not a path, leaving out
    namespaced details (`loss/sft`, `rewards/chosen`); '' when every number is 0 and there is
    nothing else (e.g. the images of an audio batch).

    >>> from dagster import MetadataValue
    >>> summary({"clips": 140, "wer": 0.475234, "model": MetadataValue.text("/m/x"),
    ...          "backend": "ct2", "stopped_early": False, "table": MetadataValue.md("|a|"),
    ...          "loss/sft": 0.3})
    'clips=140, wer=0.4752, backend=ct2'
    >>> summary({"ingested": 0, "duplicates": 0})
    ''
    """
    parts, nonzero = [], False
    for key, value in metadata.items():
        raw = getattr(value, "value", value)
        if (isinstance(value, MarkdownMetadataValue) or raw is None or raw is False
                or "/" in key):
            continue
        if isinstance(raw, bool):
            parts.append(f"{key}=yes")
            nonzero = True
        elif isinstance(raw, int | float):
            parts.append(f"{key}={_number(raw)}")
            nonzero = nonzero or raw != 0
        elif isinstance(raw, str) and raw and len(raw) <= SHORT_TEXT and "/" not in raw:
            parts.append(f"{key}={raw}")
            nonzero = True
    return ", ".join(parts) if nonzero else ""


def _number(value: float) -> str:
    if isinstance(value, int) or not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def print_checks(result, verbose: bool = False) -> None:
    """One line per asset check evaluated in the run: passed or failed, severity, why (by
    default only those that did not pass)."""
    for event in result.all_events:
        if event.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        check = event.event_specific_data
        if check.passed and not verbose:
            continue
        verdict = "passed" if check.passed else f"FAILED ({check.severity.value})"
        where = f" [{check.partition}]" if check.partition else ""
        detail = check.description or ", ".join(
            f"{k}={getattr(v, 'value', v)}" for k, v in check.metadata.items())
        click.echo(f"check {check.asset_key.to_user_string()}.{check.check_name}{where}: "
                   f"{verdict}{' - ' + detail if detail else ''}")
