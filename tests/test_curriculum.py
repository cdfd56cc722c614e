"""Curriculum buckets on a fixed table: difficulty ranks and quantile buckets, in SQL."""

import json
from datetime import UTC, datetime

import pytest
from dagster import DagsterInstance, materialize

from assets.speech.curriculum import curriculum_buckets
from pipelines.partitions import BATCHES

NOW = datetime.now(UTC)
# clip, greedy WER, snr tag, duration s, reference
CLIPS = [("a", 0.0, "20", 2.0, "one two"), ("b", 0.1, "clean", 2.0, "one two"),
         ("c", 0.3, "10", 2.0, "one two"), ("d", 0.5, "5", 2.0, "one two"),
         ("e", 0.8, "0", 2.0, "one two"), ("f", 1.2, "0", 2.0, "one two")]


@pytest.fixture
def table(warehouse):
    warehouse.write_partition("audio_clips", "b1", [
        {"clip_id": c, "source_path": f"/x/{c}.wav", "sample_rate": 16000, "channels": 1,
         "duration_s": d, "rms_dbfs": -20.0, "peak_dbfs": -3.0, "text": t,
         "tags": json.dumps({"snr_db": snr}), "ingested_at": NOW}
        for c, _, snr, d, t in CLIPS] + [
        {"clip_id": "unlabeled", "source_path": "/x/u.wav", "sample_rate": 16000, "channels": 1,
         "duration_s": 1.0, "rms_dbfs": -20.0, "peak_dbfs": -3.0, "text": " ", "tags": "{}",
         "ingested_at": NOW}])
    warehouse.write_partition("reward_shaping", "b1", [
        {"clip_id": c, "kind": kind, "rank": 0, "text": "x", "accuracy_wer": 0.0,
         "accuracy_cer": 0.0, "hallucination_ratio": 0.0, "empty": 0.0, "repetition": 0.0,
         "overlong": 0.0, "wer": wer if kind == "greedy" else 9.0, "created_at": NOW}
        for c, wer, *_ in CLIPS for kind in ("greedy", "beam")])
    return warehouse


def _run(warehouse, **config):
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, ["b1"])
        result = materialize([curriculum_buckets], partition_key="b1", instance=instance,
                             resources={"warehouse": warehouse},
                             run_config={"ops": {"curriculum_buckets": {"config": config}}})
    assert result.success
    rows = warehouse.fetch("SELECT clip_id, bucket FROM curriculum_buckets ORDER BY difficulty")
    return rows, result


def test_wer_alone_orders_clips_into_terciles(table):
    rows, result = _run(table, weight_wer=1.0, weight_noise=0.0, weight_duration=0.0,
                        weight_rate=0.0)
    assert rows == [("a", "easy"), ("b", "easy"), ("c", "medium"), ("d", "medium"),
                    ("e", "hard"), ("f", "hard")]  # the blank-transcript clip is left out
    (mat,) = [e.event_specific_data.materialization
              for e in result.get_asset_materialization_events()]
    assert "| hard | 2 | 100.0% |" in mat.metadata["buckets"].value


def test_noise_rank_counts_clean_as_easiest(table):
    rows, _ = _run(table, weight_wer=0.0, weight_noise=1.0, weight_duration=0.0,
                   weight_rate=0.0)
    assert rows[0] == ("b", "easy") and {c for c, b in rows if b == "hard"} == {"e", "f"}


def test_bad_weights_are_refused(table):
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, ["b1"])
        with pytest.raises(ValueError, match="not all 0"):
            materialize([curriculum_buckets], partition_key="b1", instance=instance,
                        resources={"warehouse": table}, run_config={"ops": {
                            "curriculum_buckets": {"config": {
                                "weight_wer": 0.0, "weight_noise": 0.0, "weight_duration": 0.0,
                                "weight_rate": 0.0}}}})


def test_training_curves_show_reward_per_bucket_in_curriculum_order(tmp_path):
    from training.runtime.curves import bucket_series, bucket_summary, curve_panels, plot_curves

    rows = [{"step": s, "loss": 1.0, "reward/mean": 0.5,
             **({"reward/bucket/hard": -0.5 + 0.1 * s} if s > 6 else {}),
             "reward/bucket/easy": 0.2 * s, **({"reward/bucket/medium": 0.1} if s > 3 else {})}
            for s in range(1, 11)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    series = bucket_series(rows)
    assert list(series) == ["easy", "medium", "hard"]
    assert series["hard"][0] == (7, pytest.approx(0.2))  # from the step hard clips joined
    summary = bucket_summary(rows, window=2)
    assert summary["hard"]["first_step"] == 7 and summary["hard"]["steps"] == 4
    assert summary["easy"]["reward_last"] > summary["easy"]["reward_first"]
    with_buckets = plot_curves(tmp_path / "metrics.jsonl", tmp_path / "a.png")
    plain = [{k: v for k, v in r.items() if "bucket" not in k} for r in rows]
    (tmp_path / "plain.jsonl").write_text("".join(json.dumps(r) + "\n" for r in plain))
    without = plot_curves(tmp_path / "plain.jsonl", tmp_path / "b.png")
    assert with_buckets.is_file() and without.is_file()
    assert [k for k, _ in curve_panels(rows)] == ["loss", "reward/mean", "reward/bucket/"]
    assert [k for k, _ in curve_panels(plain)] == ["loss", "reward/mean"]  # one panel fewer
