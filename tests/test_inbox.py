"""The inbox: new manifests become train or eval batches, each exactly once."""

import os

from pipelines.inbox import batch_name, new_manifests


def _touch(path, mtime):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"audio_filepath": "a.wav", "text": "hi"}\n')
    os.utime(path, (mtime, mtime))
    return path


def test_top_level_and_train_folder_are_train_eval_folder_is_eval(tmp_path):
    _touch(tmp_path / "calls 2026-11.jsonl", 1)
    _touch(tmp_path / "train" / "accents.jsonl", 2)
    _touch(tmp_path / "eval" / "dev.jsonl", 3)
    _touch(tmp_path / "notes.txt", 4)
    found = new_manifests(tmp_path, known=set())
    assert [(m.batch, m.role) for m in found] == [
        ("calls-2026-11", "train"), ("accents", "train"), ("dev", "eval")]


def test_registered_batches_and_name_clashes_are_skipped(tmp_path):
    _touch(tmp_path / "accents.jsonl", 1)
    _touch(tmp_path / "train" / "accents.jsonl", 2)  # same batch name, newer: ignored
    _touch(tmp_path / "eval" / "dev.jsonl", 3)
    found = new_manifests(tmp_path, known={"dev"})
    assert [(m.path.parent.name, m.batch) for m in found] == [(tmp_path.name, "accents")]


def test_missing_inbox_is_empty_and_names_are_valid_partition_keys(tmp_path):
    assert new_manifests(tmp_path / "nope", known=set()) == []
    assert batch_name("/x/..weird name!!.jsonl") == "weird-name"
    assert batch_name("/x/---.jsonl") == "batch"
