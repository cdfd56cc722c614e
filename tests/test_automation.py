"""The inbox sensor registers new manifests as batches and asks for their runs."""

import json
import os
import time

import pytest
from dagster import DagsterInstance, build_sensor_context

from labeling.testing import write_manifest, write_tone
from pipelines import automation
from pipelines.automation import inbox_manifests
from resources.warehouse import Warehouse


def _tick(instance, warehouse, cursor=None):
    return inbox_manifests(build_sensor_context(instance=instance, cursor=cursor,
                                                resources={"warehouse": warehouse}))


def _runs(result):
    return {(r.job_name, r.partition_key) for r in result.run_requests}


@pytest.fixture
def inbox(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    (inbox / "eval").mkdir(parents=True)
    monkeypatch.setenv("RLFOUNDRY_INBOX", str(inbox))
    monkeypatch.setenv("RLFOUNDRY_INBOX_SETTLE_S", "0")
    write_tone(inbox / "a.wav", seconds=0.5)
    return inbox


def _manifest(inbox, name):
    return write_manifest(inbox / name, [{"audio_filepath": "a.wav", "text": "hi"}])


def test_new_manifests_become_batches_with_runs_once(inbox, warehouse):
    _manifest(inbox, "calls.jsonl")
    write_manifest(inbox / "eval" / "dev.jsonl", [{"audio_filepath": "../a.wav", "text": "hi"}])
    with DagsterInstance.ephemeral() as instance:
        result = _tick(instance, warehouse)
        assert _runs(result) == {("speech_data", "calls"), ("ingest", "dev")}
        (request,) = result.dynamic_partitions_requests
        assert sorted(request.partition_keys) == ["calls", "dev"]
        assert warehouse.batches_by_role() == {"train": ["calls"], "eval": ["dev"], "guard": []}
        again = _tick(instance, warehouse, result.cursor)
        assert again.run_requests == [] and "no new manifests" in again.skip_reason.skip_message


def test_a_name_that_is_no_batch_name_stops_no_other_manifest(inbox, warehouse):
    _manifest(inbox, "_calls.jsonl")
    _manifest(inbox, "calls2.jsonl")
    with DagsterInstance.ephemeral() as instance:
        result = _tick(instance, warehouse)
        assert _runs(result) == {("speech_data", "calls"), ("speech_data", "calls2")}
        assert sorted(warehouse.batches_by_role()["train"]) == ["calls", "calls2"]


def test_two_files_with_one_batch_name_both_get_a_batch_and_a_run(inbox, warehouse):
    _manifest(inbox, "a b.jsonl")
    _manifest(inbox, "a-b.jsonl")
    with DagsterInstance.ephemeral() as instance:
        result = _tick(instance, warehouse)
        keys = sorted(r.partition_key for r in result.run_requests)
        assert len(keys) == 2 and keys[0] == "a-b" and keys[1].startswith("a-b-")
        assert sorted(warehouse.batches_by_role()["train"]) == keys
        sources = {warehouse.batch_source(k)["source"] for k in keys}
        assert sources == {str((inbox / n).resolve()) for n in ("a b.jsonl", "a-b.jsonl")}
        assert _tick(instance, warehouse, result.cursor).run_requests == []


def test_a_manifest_still_being_written_waits_until_it_settles(inbox, warehouse, monkeypatch):
    monkeypatch.setenv("RLFOUNDRY_INBOX_SETTLE_S", "30")
    path = _manifest(inbox, "calls.jsonl")  # written just now
    with DagsterInstance.ephemeral() as instance:
        waiting = _tick(instance, warehouse)
        assert waiting.run_requests == [] and warehouse.batches_by_role()["train"] == []
        assert "still changing" in waiting.skip_reason.skip_message
        with path.open("a") as f:  # the writer finishes; the file is left alone for a while
            f.write('{"audio_filepath": "a.wav", "text": "bye"}\n')
        old = time.time() - 60
        os.utime(path, (old, old))
        result = _tick(instance, warehouse, waiting.cursor)
        assert _runs(result) == {("speech_data", "calls")}
        assert result.run_requests[0].run_key == f"calls:{path.stat().st_mtime_ns}"


def test_a_failed_registration_strands_no_manifest(inbox, warehouse, monkeypatch):
    first = _manifest(inbox, "calls.jsonl")
    second = _manifest(inbox, "more.jsonl")
    os.utime(first, (1, 1))  # `calls` is registered first
    register = Warehouse.register_batch

    def flaky(self, batch, source, *args, **kwargs):
        if batch == "more":
            raise OSError("warehouse unavailable")
        return register(self, batch, source, *args, **kwargs)

    with DagsterInstance.ephemeral() as instance:
        monkeypatch.setattr(Warehouse, "register_batch", flaky)
        result = _tick(instance, warehouse)
        assert _runs(result) == {("speech_data", "calls")}
        monkeypatch.setattr(Warehouse, "register_batch", register)
        later = _tick(instance, warehouse, result.cursor)
        assert _runs(later) == {("speech_data", "more")}
        assert str(second) in json.loads(later.cursor)["requested"]


def test_a_tick_that_dies_after_registering_asks_again_next_tick(inbox, warehouse, monkeypatch):
    _manifest(inbox, "calls.jsonl")
    with DagsterInstance.ephemeral() as instance:
        def boom(keys):
            raise RuntimeError("daemon went away")

        with monkeypatch.context() as patch:
            patch.setattr(automation.batches, "build_add_request", boom)
            with pytest.raises(RuntimeError, match="went away"):
                _tick(instance, warehouse)
        assert warehouse.batches_by_role()["train"] == ["calls"]  # registered, no run yet
        result = _tick(instance, warehouse)  # the cursor was not saved: same as before
        assert _runs(result) == {("speech_data", "calls")}
        assert warehouse.batches_by_role()["train"] == ["calls"]


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


def test_the_nightly_vlm_round_starts_a_vlm_loop_only_when_it_has_train_and_eval_datasets(
        tmp_path, monkeypatch):
    from datetime import UTC, datetime

    from dagster import SkipReason, build_schedule_context, instance_for_test

    from pipelines.automation import nightly_alm_loop, nightly_vlm_loop
    from training.trl_backend.synthetic import quadrant_pointing

    monkeypatch.setenv("RLFOUNDRY_HOME", str(tmp_path / "home"))
    warehouse = Warehouse()
    tick = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    with instance_for_test() as instance:  # a schedule's context needs a persistent one
        def run(schedule):  # `with`: the context's own instance is closed after the tick
            with build_schedule_context(instance=instance, scheduled_execution_time=tick,
                                        resources={"warehouse": warehouse}) as context:
                return schedule(context)

        quadrant_pointing(warehouse.report_dir("pointing_dataset", "pics"), n=2)
        warehouse.register_batch("pics", tmp_path)
        skipped = run(nightly_vlm_loop)
        assert isinstance(skipped, SkipReason) and "no eval batch" in skipped.skip_message
        quadrant_pointing(warehouse.report_dir("pointing_dataset", "pics-dev"), n=2, seed=1)
        warehouse.register_batch("pics-dev", tmp_path, role="eval")
        request = run(nightly_vlm_loop)
        assert request.partition_key == "vlm-20261123-020000"
        assert instance.has_dynamic_partition("loops", "vlm-20261123-020000")
        assert isinstance(run(nightly_alm_loop), SkipReason)  # no audio questions dataset
