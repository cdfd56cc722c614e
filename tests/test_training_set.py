"""The training set snapshot and the batch selection rules."""

import json

import pytest

from resources import model_registry
from training.training_set import TrainingSetError, check_selection, write_snapshot


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


def test_registry_update_rejects_unknown_columns_and_unknown_models(warehouse):
    model_registry.record(warehouse, family="asr", model_id="dpo-1", stage="dpo",
                          checkpoint="/c",
                          base_model="/b", train_batches=["a"], config={}, run_id="r")
    with pytest.raises(KeyError, match="no columns"):
        model_registry.update(warehouse, "dpo-1", wer=0.1)
    with pytest.raises(LookupError, match="known: \\['dpo-1'\\]"):
        model_registry.get(warehouse, "sft-9")
    row = model_registry.update(warehouse, "dpo-1", eval_wer=0.25)
    assert row["eval_wer"] == 0.25 and not row["promoted"] and row["promoted_at"] is None
