"""The inbox sensor registers new manifests as batches and asks for their runs."""

import pytest
from dagster import DagsterInstance, build_sensor_context

from labeling.testing import write_manifest, write_tone
from pipelines.automation import inbox_manifests


def test_new_manifests_become_batches_with_runs_once(tmp_path, warehouse, monkeypatch):
    inbox = tmp_path / "inbox"
    monkeypatch.setenv("RLFOUNDRY_INBOX", str(inbox))
    (inbox / "eval").mkdir(parents=True)
    write_tone(inbox / "a.wav", seconds=0.5)
    write_manifest(inbox / "calls.jsonl", [{"audio_filepath": "a.wav", "text": "hi"}])
    write_manifest(inbox / "eval" / "dev.jsonl", [{"audio_filepath": "../a.wav", "text": "hi"}])
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, resources={"warehouse": warehouse})
        result = inbox_manifests(context)
        runs = {(r.job_name, r.partition_key) for r in result.run_requests}
        assert runs == {("speech_data", "calls"), ("ingest", "dev")}
        (request,) = result.dynamic_partitions_requests
        assert sorted(request.partition_keys) == ["calls", "dev"]
        assert warehouse.batches_by_role() == {"train": ["calls"], "eval": ["dev"]}
        again = inbox_manifests(build_sensor_context(instance=instance,
                                                     resources={"warehouse": warehouse}))
        assert "no new manifests" in again.skip_message


def test_nightly_round_relabels_every_train_batch_then_starts_the_loop(
        tmp_path, monkeypatch, tiny_whisper_dir):
    from datetime import UTC, datetime

    from dagster import build_run_status_sensor_context, build_schedule_context

    from pipelines.automation import NIGHTLY_TAG, loop_after_nightly_relabel, nightly_retrain
    from pipelines.definitions import defs
    from pipelines.partitions import BATCHES
    from resources.warehouse import Warehouse

    monkeypatch.setenv("RLFOUNDRY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RLFOUNDRY_BASELINE_ASR", str(tiny_whisper_dir))
    warehouse = Warehouse()
    media = tmp_path / "media"
    media.mkdir()
    write_tone(media / "a.wav", seconds=0.5, seed=1)
    write_tone(media / "d.wav", seconds=0.5, seed=2, freq=700)
    warehouse.register_batch("calls", write_manifest(media / "calls.jsonl", [
        {"audio_filepath": "a.wav", "text": "hello there"}]))
    warehouse.register_batch("dev", write_manifest(media / "dev.jsonl", [
        {"audio_filepath": "d.wav", "text": "good night"}]), role="eval")
    warehouse.register_batch("pics", media)  # a train batch without audio (images)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, ["calls", "dev", "pics"])
        assert defs.resolve_job_def("ingest").execute_in_process(
            partition_key="calls", instance=instance).success
        tick = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
        requests = nightly_retrain(build_schedule_context(
            instance=instance, scheduled_execution_time=tick,
            resources={"warehouse": warehouse}))
        assert [(r.partition_key, r.tags[NIGHTLY_TAG]) for r in requests] == [
            ("calls", "2026-11-23T02:00")]  # eval batches and batches without audio are not
        result = defs.resolve_job_def("speech_data").execute_in_process(
            partition_key="calls", instance=instance, tags=requests[0].tags,
            run_config={"ops": {"asr_hypotheses": {"config": {"num_beams": 2,
                                                               "num_samples": 1}}}})
        assert result.success
        (success,) = [e for e in result.all_events if e.event_type_value == "PIPELINE_SUCCESS"]
        follow = loop_after_nightly_relabel(build_run_status_sensor_context(
            sensor_name="loop_after_nightly_relabel", dagster_event=success,
            dagster_instance=instance, dagster_run=result.dagster_run))
        assert follow.run_key == "loop:2026-11-23T02:00"
        assert follow.partition_key == "asr-20261123-020000"
        assert instance.has_dynamic_partition("loops", "asr-20261123-020000")


def test_the_nightly_loop_takes_its_run_config_from_the_environment(tmp_path, monkeypatch):
    from pipelines.automation import nightly_loop_config

    monkeypatch.delenv("RLFOUNDRY_LOOP_CONFIG", raising=False)
    assert nightly_loop_config() == {}  # the assets' defaults
    monkeypatch.setenv("RLFOUNDRY_LOOP_CONFIG", "data/sample/demo_loop.json")
    ops = nightly_loop_config()["ops"]
    assert ops["whisper_sft_model"]["config"]["max_steps"] == 70
    assert ops["whisper_preference_model"]["config"]["objective"] == "dpo"
    assert "whisper_rl_model" not in ops and ops["speech_training_set"] == {"config": {}}
    bad = tmp_path / "loop.json"
    bad.write_text("{not json")
    monkeypatch.setenv("RLFOUNDRY_LOOP_CONFIG", str(bad))
    with pytest.raises(ValueError, match="RLFOUNDRY_LOOP_CONFIG=.*loop.json: not a readable"):
        nightly_loop_config()
    bad.write_text('{"ops": [1]}')
    with pytest.raises(ValueError, match='expected {"ops"'):
        nightly_loop_config()
