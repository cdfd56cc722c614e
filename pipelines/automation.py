"""The nightly self-improving round and the inbox sensor (all off until switched on).

A night is one round: `nightly_retrain` (02:00 UTC, or `$RLFOUNDRY_NIGHTLY_CRON`) starts a
`speech_data` run for every train batch (re-ingest, N-best from the promoted model, pairs with
hard negatives, rewards, curriculum), each tagged with the tick; `loop_after_nightly_relabel`
starts `speech_loop` once every run of that tick has succeeded, so the loop trains on the new
round's labels, with the run config in `$RLFOUNDRY_LOOP_CONFIG` (the JSON file that
`rlfoundry run --config` takes) when it is set. The night's loop is the loop partition
named by the family and the tick (``asr-20261123-020000``), so a manual `rlfoundry run` at
the same time is another partition and never touches its candidate.

The vlm and alm families retrain the same night (`nightly_vlm_loop`, `nightly_alm_loop`): a
loop of the family (``vlm-20261123-020000``) on every train batch whose chain dataset exists,
judged against the family's champion on every eval batch that has one; skipped while the
family has no train or no eval dataset. Their datasets are made by the chains' jobs (and their
QC pulls), which run when batches arrive, not nightly.
"""

import json
import os
from datetime import datetime
from pathlib import Path

from dagster import (
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    RunStatusSensorContext,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_status_sensor,
    schedule,
    sensor,
)

import sql
from assets.speech.spec import SPEECH
from pipelines.inbox import inbox_dir, scan_inbox, settle_seconds
from pipelines.jobs import alm_loop_job, ingest_job, speech_data_job, speech_loop_job, vlm_loop_job
from pipelines.partitions import LOOPS, batches, loop_key
from resources.warehouse import Warehouse

NIGHTLY_TAG = "rlfoundry/nightly"
NIGHTLY_CRON = os.environ.get("RLFOUNDRY_NIGHTLY_CRON") or "0 2 * * *"


def nightly_loop_config() -> dict:
    """The nightly loop's run config: `$RLFOUNDRY_LOOP_CONFIG`'s, or {} (the defaults).

    Batches are left to the training set's defaults (every train batch against every eval
    batch), as registered when the round starts.
    """
    from pipelines.loop_cli import loop_run_config

    name = os.environ.get("RLFOUNDRY_LOOP_CONFIG")
    if not name:
        return {}
    path = Path(name)
    try:
        base = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"RLFOUNDRY_LOOP_CONFIG={name}: not a readable JSON run config "
                         f"({err})") from err
    ops = base.get("ops", {}) if isinstance(base, dict) else None
    if not isinstance(ops, dict):
        raise ValueError(f"RLFOUNDRY_LOOP_CONFIG={name}: expected {{\"ops\": {{...}}}}")
    objective = (ops.get("whisper_preference_model", {}).get("config", {})
                 .get("objective", "dpo"))
    return loop_run_config(base, [], [], objective)


@schedule(job=speech_data_job, cron_schedule=NIGHTLY_CRON, execution_timezone="UTC",
          default_status=DefaultScheduleStatus.STOPPED,
          description=f"{NIGHTLY_CRON} (UTC cron; $RLFOUNDRY_NIGHTLY_CRON): relabel every "
          "train batch with the promoted model; the speech loop follows when all of them "
          "succeeded (loop_after_nightly_relabel).")
def nightly_retrain(context: ScheduleEvaluationContext, warehouse: Warehouse):
    tick = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M")
    train = warehouse.batches_holding(SPEECH.media_table, "train")
    if not train:
        return SkipReason("no train batches with audio clips")
    return [RunRequest(run_key=f"{tick}:{batch}", partition_key=batch,
                       tags={NIGHTLY_TAG: tick}) for batch in train]


@run_status_sensor(run_status=DagsterRunStatus.SUCCESS, monitored_jobs=[speech_data_job],
                   request_job=speech_loop_job, default_status=DefaultSensorStatus.STOPPED,
                   description="Starts the night's speech_loop when every relabel run of the "
                   "same nightly tick has succeeded.")
def loop_after_nightly_relabel(context: RunStatusSensorContext):
    tick = context.dagster_run.tags.get(NIGHTLY_TAG)
    if not tick:
        return SkipReason("not a nightly relabel run")
    runs = context.instance.get_runs(filters=RunsFilter(job_name=speech_data_job.name,
                                                        tags={NIGHTLY_TAG: tick}))
    waiting = [r.run_id[:8] for r in runs if r.status != DagsterRunStatus.SUCCESS]
    if waiting:
        return SkipReason(f"nightly {tick}: relabel runs not (yet) successful: {waiting}")
    loop = loop_key(SPEECH.family, datetime.fromisoformat(tick))
    context.instance.add_dynamic_partitions(LOOPS, [loop])
    return RunRequest(run_key=f"loop:{tick}", partition_key=loop, tags={NIGHTLY_TAG: tick},
                      run_config=nightly_loop_config())


def _family_nightly(job, spec_name: str):
    @schedule(name=f"nightly_{job.name}", job=job, cron_schedule=NIGHTLY_CRON,
              execution_timezone="UTC", default_status=DefaultScheduleStatus.STOPPED,
              description=f"{NIGHTLY_CRON} (UTC cron; $RLFOUNDRY_NIGHTLY_CRON): one {job.name} "
              "round on every train batch with a dataset, against the family's champion.")
    def _nightly(context: ScheduleEvaluationContext, warehouse: Warehouse):
        from assets.loop.specs import SPECS
        from assets.loop.training_set import batches_with_datasets

        spec = next(s for s in SPECS if s.name == spec_name)
        tasks = list(spec.datasets)
        roles = {role: batches_with_datasets(warehouse, spec, role, tasks)
                 for role in ("train", "eval")}
        missing = [role for role, found in roles.items() if not found]
        if missing:
            return SkipReason(f"no {' or '.join(missing)} batch with a {'/'.join(tasks)} "
                              "dataset")
        tick = context.scheduled_execution_time
        loop = loop_key(spec.family, tick)
        context.instance.add_dynamic_partitions(LOOPS, [loop])
        return RunRequest(run_key=f"loop:{tick:%Y-%m-%dT%H:%M}", partition_key=loop,
                          tags={NIGHTLY_TAG: f"{tick:%Y-%m-%dT%H:%M}"})

    return _nightly


nightly_vlm_loop = _family_nightly(vlm_loop_job, "vision")
nightly_alm_loop = _family_nightly(alm_loop_job, "audio_qa")


@sensor(jobs=[speech_data_job, ingest_job], minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.STOPPED)
def inbox_manifests(context: SensorEvaluationContext, warehouse: Warehouse):
    """Register each new (or changed) settled manifest in the inbox as a batch and label it
    (eval: ingest only).

    A manifest counts as done only once its run was requested: the cursor holds the version
    (size, mtime) of each manifest whose run request left this sensor, and is saved only
    with the tick's result, so a tick that fails half-way (after registering a batch) asks
    again next tick. Registering is idempotent (a batch already registered from the same
    file is not re-registered), and the run key (batch, mtime) is the one Dagster dedupes
    on, so asking again never starts a second run. One manifest that cannot be registered
    is reported (log, and the skip reason when nothing else runs) and retried; it never
    stops the others. See `pipelines.inbox` for names and the settle window.
    """
    inbox = inbox_dir()
    requested = _inbox_cursor(context.cursor)
    sources = {str(row["batch"]): str(row["source"]) for row in warehouse.fetch_dicts(
        sql.load("queries/batches_by_role"))}
    scan = scan_inbox(inbox, requested=requested, sources=sources)
    problems = list(scan.problems)
    done = {path: version for path, version in requested.items() if path in scan.present}
    requests, added = [], []
    for m in scan.ready:
        job = speech_data_job if m.role == "train" else ingest_job
        try:
            if sources.get(m.batch) != str(m.path.resolve()):
                warehouse.register_batch(m.batch, m.path, role=m.role)
        except Exception as err:  # noqa: BLE001 (reported, retried next tick)
            problems.append(f"{m.path}: could not register batch {m.batch!r} ({err}); "
                            "retried next tick")
            continue
        context.log.info(f"{m.path} is {m.role} batch {m.batch!r}; running {job.name}")
        requests.append(RunRequest(run_key=m.run_key, job_name=job.name,
                                   partition_key=m.batch))
        added.append(m.batch)
        done[str(m.path)] = m.version
    for problem in problems:
        context.log.warning(problem)
    cursor = json.dumps({"requested": done}, sort_keys=True)
    if not requests:
        notes = [f"no new manifests in {inbox}"]
        if scan.settling:
            notes.append(f"still changing (picked up once unchanged for {settle_seconds():g} "
                         f"s): {', '.join(str(p) for p in scan.settling)}")
        notes += problems
        return SensorResult(skip_reason=SkipReason("; ".join(notes)), cursor=cursor)
    return SensorResult(run_requests=requests, cursor=cursor,
                        dynamic_partitions_requests=[batches.build_add_request(added)])


def _inbox_cursor(cursor: str | None) -> dict[str, str]:
    """The manifests whose run was requested (path → version), from the sensor's cursor;
    an empty or unreadable cursor is none (Dagster's run-key dedupe keeps that safe)."""
    try:
        data = json.loads(cursor or "{}")
    except json.JSONDecodeError:
        return {}
    done = data.get("requested") if isinstance(data, dict) else None
    if not isinstance(done, dict):
        return {}
    return {str(path): str(version) for path, version in done.items()}
