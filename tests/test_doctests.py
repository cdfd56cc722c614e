"""The usage examples in docstrings are run, so they stay true."""

import doctest
import importlib

import pytest

MODULES = [
    "sql", "resources.warehouse", "labeling.manifest", "labeling.ingest", "labeling.testing",
    "models.testing", "models.batching", "training.metrics", "training.pairs",
    "labeling.label_studio", "training.rewards",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0
