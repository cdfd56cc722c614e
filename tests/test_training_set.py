"""The training set snapshot and the batch selection rules."""

import json

import pytest

from training.data.training_set import TrainingSetError, check_selection, write_snapshot


def test_selection_needs_registered_disjoint_train_and_eval_batches():
    check_selection(["a"], ["dev"], ["a", "dev"])
    with pytest.raises(TrainingSetError, match="No train batches"):
        check_selection([], ["dev"], ["dev"])
    with pytest.raises(TrainingSetError, match="--role eval"):
        check_selection(["a"], [], ["a"])
    with pytest.raises(TrainingSetError, match="not registered: x"):
        check_selection(["a", "x"], ["dev"], ["a", "dev"])
    with pytest.raises(TrainingSetError, match="both trained and evaluated on: a"):
        check_selection(["a"], ["a", "dev"], ["a", "dev"])


def test_snapshot_writes_trainer_rows_and_counts_per_batch(tmp_path):
    sft = [{"batch": "a", "clip_id": "c1", "audio": "/x/1.wav", "text": "hello"},
           {"batch": "b", "clip_id": "c2", "audio": "/x/2.wav", "text": "bye"}]
    pairs = [{"batch": "a", "prompt": "p", "chosen": "hello", "rejected": "hollow",
              "audio": "/x/1.wav", "clip_id": "c1", "pair_id": "p1", "source": "model"}]
    snap = write_snapshot(tmp_path, train_batches=["a", "b"], eval_batches=["dev"], sft=sft,
                          pairs=pairs, eval_clips=[])
    assert snap["per_batch"]["sft"] == {"a": 1, "b": 1} and snap["per_batch"]["pairs"] == {"a": 1}
    rows = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert rows[0] == {"audio": "/x/1.wav", "text": "hello", "id": "c1", "batch": "a"}
    assert json.loads((tmp_path / "snapshot.json").read_text())["train_batches"] == ["a", "b"]
