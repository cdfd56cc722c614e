"""The usage examples in docstrings are run, so they stay true."""

import doctest
import importlib

import pytest

MODULES = [
    "sql", "resources.warehouse", "resources.processes", "assets.label_sets",
    "labeling.ingest.manifest", "labeling.ingest.rows",
    "labeling.testing", "models.testing", "models.batching", "training.eval.metrics",
    "training.eval.report", "training.data.pairs", "labeling.label_studio", "labeling.qc.pairwise",
    "labeling.qc.export", "labeling.qc.review", "labeling.qc.agreement", "labeling.qc.tasks",
    "labeling.qc.verdicts", "resources.label_studio", "training.rewards",
    "training.rewards.components", "training.rewards.text", "training.rewards.language",
    "training.rewards.phonemes", "training.rewards.weighting", "training.rewards.composite",
    "training.rewards.pointing",
    "training.objectives.grpo", "training.objectives.advantages", "training.objectives.mwer",
    "training.monitors", "training.curriculum", "training.eval.promotion",
    "training.data.training_set", "training.data.preference_data", "resources.training_runs",
    "pipelines.partitions", "assets.speech.loop_config", "pipelines.inbox", "training.tasks",
    "pipelines.export_cli", "assets.loop.preference",
    "training.eval.gate", "training.eval.selection",
    "training.config", "training.whisper.data", "training.runtime.curves", "pipelines.models_cli",
    "training.eval.cache", "training.eval.text_table", "models.roles", "models.loading",
    "models.tiny", "models.vision.captioner", "models.vision.grounding_dino", "models.vision.sam",
    "models.vlm", "models.text_llm", "models.audio_lm", "models.regions", "resources.model_hub",
    "models.vision.rle", "models.output",
    "labeling.image.phrases", "labeling.image.masks", "labeling.image.coco",
    "labeling.image.points", "labeling.image.verify", "labeling.image.nms",
    "labeling.image.pixels", "labeling.image.overlay", "labeling.image.pointing",
    "labeling.image.chain",
    "labeling.questions.templates", "labeling.questions.guards", "labeling.questions.choices",
    "labeling.questions.validate", "labeling.audio_qa.regions", "labeling.audio_qa.durations",
    "labeling.audio_qa.questions", "training.rewards.answers",
    "labeling.audio_qa.chain", "labeling.audio_qa.dataset", "labeling.audio_qa.buckets",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0
