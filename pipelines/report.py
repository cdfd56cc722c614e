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
