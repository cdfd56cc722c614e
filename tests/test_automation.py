"""The inbox sensor registers new manifests as batches and asks for their runs."""

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
