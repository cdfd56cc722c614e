"""The nightly retraining schedule and the inbox sensor (both off until switched on)."""

from dagster import (
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from pipelines.inbox import inbox_dir, new_manifests
from pipelines.jobs import ingest_job, speech_data_job, speech_loop_job
from pipelines.partitions import batches
from resources.warehouse import Warehouse

nightly_retrain = ScheduleDefinition(
    name="nightly_retrain", job=speech_loop_job, cron_schedule="0 2 * * *",
    execution_timezone="UTC", default_status=DefaultScheduleStatus.STOPPED,
    description="02:00 UTC: the speech loop on every train batch against every eval batch "
    "(the training set's defaults), promoting the candidate only if it is not worse.",
)


@sensor(jobs=[speech_data_job, ingest_job], minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.STOPPED)
def inbox_manifests(context: SensorEvaluationContext, warehouse: Warehouse):
    """Register each new manifest in the inbox as a batch and label it (eval: ingest only)."""
    inbox = inbox_dir()
    registered = {b for bs in warehouse.batches_by_role().values() for b in bs}
    found = new_manifests(inbox, registered)
    if not found:
        return SkipReason(f"no new manifests in {inbox}")
    requests = []
    for m in found:
        warehouse.register_batch(m.batch, m.path, role=m.role)
        job = speech_data_job if m.role == "train" else ingest_job
        context.log.info(f"registered {m.path} as {m.role} batch {m.batch!r}; running {job.name}")
        requests.append(RunRequest(run_key=f"{m.batch}:{m.path.stat().st_mtime_ns}",
                                   job_name=job.name, partition_key=m.batch))
    return SensorResult(run_requests=requests,
                        dynamic_partitions_requests=[batches.build_add_request(
                            [m.batch for m in found])])
