"""Human pairwise preferences through Label Studio (moved to :mod:`labeling.qc`).

Kept so existing imports work: the pairwise config, tasks and aggregation live
in :mod:`labeling.qc.pairwise`, export reading in :mod:`labeling.qc.export`.

>>> from labeling.label_studio import read_pairwise_export, summarize
>>> read_pairwise_export.__module__, summarize.__module__
('labeling.qc.export', 'labeling.qc.pairwise')
"""

from labeling.qc.export import (
    LabelStudioExportError,
    parse_pairwise_export,
    read_pairwise_export,
)
from labeling.qc.pairwise import (
    PAIRWISE_CONFIG_XML,
    AggregatedPreference,
    HumanPreference,
    PreferenceSummary,
    aggregate,
    make_tasks,
    pair_key,
    summarize,
    votes_by_pair,
)

__all__ = [
    "PAIRWISE_CONFIG_XML",
    "AggregatedPreference",
    "HumanPreference",
    "LabelStudioExportError",
    "PreferenceSummary",
    "aggregate",
    "make_tasks",
    "pair_key",
    "parse_pairwise_export",
    "read_pairwise_export",
    "summarize",
    "votes_by_pair",
]
