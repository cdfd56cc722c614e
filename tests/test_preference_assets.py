"""Preference pairs and reward shaping from a batch's hypotheses, as the assets write them."""

import json
from datetime import UTC, datetime

import pytest
from dagster import DagsterInstance, materialize

from assets.speech.preferences import preference_pairs, reward_shaping
from pipelines.partitions import BATCHES

NOW = datetime.now(UTC)
CLIPS = {"a" * 64: "the cat sat on the mat", "b" * 64: "good morning everyone", "c" * 64: None}
HYPS = {
    "a" * 64: ["the cat sat on the mat", "the cat sat on a mat", "the cat", ""],
    "b" * 64: ["good morning everyone", "good morning everyone"],
    "c" * 64: ["unlabeled speech"],
}


@pytest.fixture
def batch(warehouse):
    warehouse.write_partition("audio_clips", "b1", [
        {"clip_id": cid, "source_path": f"/audio/{cid[0]}.wav", "sample_rate": 16000,
         "channels": 1, "duration_s": 2.0, "rms_dbfs": -20.0, "peak_dbfs": -3.0, "text": text,
         "tags": "{}", "ingested_at": NOW} for cid, text in CLIPS.items()])
    warehouse.write_partition("asr_hypotheses", "b1", [
        {"clip_id": cid, "model": "m", "kind": "beam", "rank": i, "seed": 0, "text": text,
         "avg_logprob": -0.1 * (i + 1), "num_tokens": 5, "created_at": NOW}
        for cid, texts in HYPS.items() for i, text in enumerate(texts)])
    return "b1"


@pytest.fixture
def run(registry):
    """Materialize assets for a batch with this test's warehouse and registry."""
    def run_(assets, warehouse, batch, config=None):
        _run(assets, warehouse, batch, registry, config)
    return run_


def _run(assets, warehouse, batch, registry, config=None):
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, [batch])
        result = materialize(assets, partition_key=batch, instance=instance,
                             resources={"warehouse": warehouse, "model_registry": registry},
                             run_config=config or {})
    assert result.success


def test_pairs_are_mined_per_clip_and_exported_for_trainers(warehouse, batch, run):
    run([preference_pairs], warehouse, batch)
    rows = warehouse.fetch_dicts("SELECT * FROM preference_pairs ORDER BY margin DESC")
    assert [(r["chosen"], r["rejected"]) for r in rows] == [
        ("the cat sat on the mat", ""), ("the cat sat on the mat", "the cat")]
    assert all(r["source"] == "model" and r["audio"] == "/audio/a.wav" for r in rows)
    out = warehouse.report_dir("preference_pairs", batch)
    exported = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert set(exported[0]) == {"prompt", "chosen", "rejected", "audio", "clip_id", "pair_id",
                                "source"}
    from datasets import load_from_disk

    assert load_from_disk(str(out / "pairs_dataset")).num_rows == 2


def test_human_preferences_from_label_studio_join_the_table(warehouse, batch, tmp_path, run):
    export = tmp_path / "export.json"
    clip = "b" * 64
    export.write_text(json.dumps([{
        "id": 1, "data": {"audio": "/audio/b.wav", "a": "good morning everyone",
                          "b": "good mourning every one", "clip_id": clip, "pair_id": "p1"},
        "annotations": [
            {"completed_by": 1, "result": [{"from_name": "pw", "to_name": ["a", "b"],
                                            "type": "pairwise", "value": {"selected": "left"}}]},
            {"completed_by": 2, "result": [{"from_name": "pw", "to_name": ["a", "b"],
                                            "type": "pairwise", "value": {"selected": "left"}}]},
        ]}]))
    run([preference_pairs], warehouse, batch,
        {"ops": {"preference_pairs": {"config": {"label_studio_export": str(export)}}}})
    (human,) = warehouse.fetch_dicts("SELECT * FROM preference_pairs WHERE source = 'human'")
    assert (human["chosen"], human["rejected"]) == ("good morning everyone",
                                                    "good mourning every one")
    assert human["annotators"] == ["1", "2"] and human["agreement"] == 1.0


def test_a_malformed_label_studio_export_fails_and_writes_nothing(warehouse, batch, tmp_path,
                                                                  registry):
    export = tmp_path / "export.json"
    export.write_text('{"not": "a list"}')
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, [batch])
        result = materialize([preference_pairs], partition_key=batch, instance=instance,
                             resources={"warehouse": warehouse, "model_registry": registry},
                             raise_on_error=False,
                             run_config={"ops": {"preference_pairs": {"config": {
                                 "label_studio_export": str(export)}}}})
    assert not result.success
    assert warehouse.fetch("SELECT count(*) FROM preference_pairs") == [(0,)]


def test_reward_components_per_labeled_hypothesis(warehouse, batch, run):
    run([reward_shaping], warehouse, batch)
    rows = warehouse.fetch_dicts("SELECT * FROM reward_shaping ORDER BY clip_id, rank")
    assert len(rows) == 6  # the unlabeled clip has no rewards
    perfect, _, short, empty = rows[:4]
    assert perfect["accuracy_wer"] == 1.0 and perfect["empty"] == 0.0
    assert short["length_ratio"] == pytest.approx(2 / 6)
    assert empty["empty"] == 1.0 and empty["accuracy_wer"] == 0.0


def test_the_asset_shows_a_sample_of_pairs_with_their_wer(warehouse, batch, registry):
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, [batch])
        result = materialize([preference_pairs], partition_key=batch, instance=instance,
                             resources={"warehouse": warehouse, "model_registry": registry})
    (event,) = result.get_asset_materialization_events()
    sample = event.event_specific_data.materialization.metadata["sample"].value
    lines = sample.splitlines()
    assert lines[0] == "| clip | chosen (WER) | rejected (WER) | source |"
    # one pair per clip (its median margin): here the empty transcript, 100% WER
    assert lines[2:] == [
        "| a.wav | the cat sat on the mat (0%) | ∅ (100%) | model (best_vs_worst) |"]
