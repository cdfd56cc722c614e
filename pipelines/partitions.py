"""Partitions: one dynamic partition per ingestion batch (a manifest or a folder)."""

from dagster import DynamicPartitionsDefinition

BATCHES = "batches"
batches = DynamicPartitionsDefinition(name=BATCHES)
