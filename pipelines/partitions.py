"""Partitions: one dynamic partition per ingestion batch, and one per loop run.

A **batch** is one ingested manifest or folder; every labeling asset is partitioned by it.
A **loop** is one run of the training loop of one model family (training set, SFT,
preference or RL model, evaluation, promotion); its key is the family and the time it
started, e.g. ``asr-20261130-020000``. Every loop asset reads only its own loop
partition's outputs, so two loops (a nightly and a manual one) never touch each other's
candidate, and re-running a loop's partition resumes its training.

Example:
    >>> from datetime import datetime
    >>> loop_key("asr", datetime(2026, 11, 30, 2, 0))
    'asr-20261130-020000'
    >>> family_of("asr-20261130-020000")
    'asr'
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from dagster import DynamicPartitionsDefinition

from models.roles import FAMILIES

BATCHES = "batches"
LOOPS = "loops"
batches = DynamicPartitionsDefinition(name=BATCHES)
loops = DynamicPartitionsDefinition(name=LOOPS)


def loop_key(family: str, started: datetime | None = None) -> str:
    """The key of a loop of `family` started at `started` (now, UTC, by default)."""
    if family not in FAMILIES:
        raise ValueError(f"Unknown model family {family!r}; one of {', '.join(FAMILIES)}.")
    return f"{family}-{(started or datetime.now(UTC)):%Y%m%d-%H%M%S}"


def family_of(loop: str) -> str:
    """The model family a loop key belongs to (its first part)."""
    family = loop.split("-", 1)[0]
    if family not in FAMILIES:
        raise ValueError(f"Loop {loop!r} names no model family; loop keys start with one of "
                         f"{', '.join(FAMILIES)} (e.g. 'asr-20261130-020000').")
    return family


def new_loop(instance, family: str) -> str:
    """Register a fresh loop partition of `family`, started now, and return its key.

    A short random suffix keeps two loops started in the same second (two shells, or a
    manual run beside the nightly one) apart: ``asr-20261130-101502-3fa2``.
    """
    key = f"{loop_key(family)}-{secrets.token_hex(2)}"
    instance.add_dynamic_partitions(LOOPS, [key])
    return key
