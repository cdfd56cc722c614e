"""The usage examples in the source readers' and exporters' docstrings run and stay true."""

import doctest
import importlib

import pytest

MODULES = [
    "labeling.ingest.spans", "labeling.ingest.formats", "labeling.ingest.formats.common",
    "labeling.ingest.formats.nemo", "labeling.ingest.formats.folder",
    "labeling.ingest.formats.audiofolder", "labeling.ingest.formats.hf_dataset",
    "labeling.ingest.formats.hf_name",
    "labeling.ingest.formats.lhotse", "labeling.ingest.formats.kaldi",
    "labeling.ingest.formats.librispeech", "labeling.ingest.export",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
