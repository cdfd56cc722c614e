"""Printing a run's materializations in the terminal, as the UI would show them."""

from __future__ import annotations

import click
from dagster import MarkdownMetadataValue


def print_materializations(result) -> None:
    """Each asset's numbers and markdown tables (images are left to the UI)."""
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        click.echo(f"\n== {mat.asset_key.to_user_string()} [{mat.partition}]")
        for key, value in mat.metadata.items():
            raw = getattr(value, "value", value)
            if isinstance(value, MarkdownMetadataValue):
                if "data:image" not in str(raw):
                    click.echo(f"{key}:\n{raw}")
            else:
                click.echo(f"{key}: {raw}")


def print_checks(result) -> None:
    """One line per asset check evaluated in the run: passed or failed, severity, why."""
    for event in result.all_events:
        if event.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        check = event.event_specific_data
        verdict = "passed" if check.passed else f"FAILED ({check.severity.value})"
        where = f" [{check.partition}]" if check.partition else ""
        detail = check.description or ", ".join(
            f"{k}={getattr(v, 'value', v)}" for k, v in check.metadata.items())
        click.echo(f"check {check.asset_key.to_user_string()}.{check.check_name}{where}: "
                   f"{verdict}{' - ' + detail if detail else ''}")
