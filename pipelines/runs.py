"""Runs the `rlfoundry` CLI executes in its own process, and what a killed one leaves behind.

The CLI executes jobs in-process (`execute_in_process`): if that process dies (SIGKILL,
an out-of-memory kill, a closed SSH session), nothing tells Dagster, and the run would
stay STARTED in the UI forever. So each CLI run carries tags naming its process
(`cli_tags`), and whenever the CLI opens the instance, `fail_orphaned_runs` marks the
runs whose process is gone as failed, saying so. Only runs tagged by a process of this
machine (same boot and pid namespace, see `resources.processes`) are checked. Runs the UI
or the daemon launched are Dagster's to watch: its code server fails a run whose worker
process died, and run monitoring (on in the dagster.yaml the CLI writes, and in
deploy/dagster-k8s.yaml) fails runs that never start. Dagster's monitoring cannot see a
CLI run: no run launcher started it, so there is no worker to check.

`recover_after_crash` does that and sweeps the temp files killed writers left in the
warehouse (`Warehouse.sweep_temp_files`), once per process.
"""

from __future__ import annotations

import uuid

from resources.processes import is_running, this_process

PID_TAG = "rlfoundry/pid"
HOST_TAG = "rlfoundry/host"
MACHINE_TAG = "rlfoundry/machine"
STARTED_TAG = "rlfoundry/process_start"
# the run's own id: a re-execution from the UI copies the tags above, not this match
RUN_TAG = "rlfoundry/cli_run"

_recovered: set[str] = set()


def cli_tags(run_id: str) -> dict[str, str]:
    """Tags for the run `run_id` this process executes in-process."""
    me = this_process()
    return {PID_TAG: str(me.pid), HOST_TAG: me.host, MACHINE_TAG: me.machine,
            STARTED_TAG: me.started or "", RUN_TAG: run_id}


def new_run_id() -> str:
    return str(uuid.uuid4())


def orphan_message(tags) -> str:
    return (f"the rlfoundry process (pid {tags.get(PID_TAG)} on {tags.get(HOST_TAG)}) ended "
            "without finishing this run (killed?)")


def fail_orphaned_runs(instance) -> list[str]:
    """Mark the unfinished CLI runs of this machine whose process is gone as failed
    (CANCELING ones as canceled); returns their run ids.

    One query: the unfinished runs tagged with this machine's id.
    """
    from dagster import DagsterRunStatus, RunsFilter

    unfinished = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
                  DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
    me = this_process()
    ended = []
    for run in instance.get_runs(filters=RunsFilter(statuses=unfinished,
                                                    tags={MACHINE_TAG: me.machine})):
        tags = run.tags
        if tags.get(RUN_TAG) != run.run_id or not tags.get(PID_TAG, "").isdigit():
            continue  # not executed by a CLI process under these tags (a re-execution)
        if is_running(int(tags[PID_TAG]), tags[MACHINE_TAG],
                      tags.get(STARTED_TAG, "")) is not False:
            continue  # still running, or unknown: never fail a live run
        if run.status == DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, orphan_message(tags))
        else:
            instance.report_run_failed(run, orphan_message(tags))
        ended.append(run.run_id)
    return ended


def recover_after_crash(instance) -> None:
    """Once per process and Dagster home: fail the runs killed CLI processes left
    STARTED, and sweep the temp files killed writers left in the warehouse."""
    from resources.warehouse import Warehouse

    home = str(getattr(instance, "root_directory", None) or id(instance))
    if home in _recovered:
        return
    _recovered.add(home)
    fail_orphaned_runs(instance)
    try:  # best effort: an unreachable warehouse is reported by the run that uses it
        Warehouse().sweep_temp_files()
    except (OSError, ValueError, ImportError):
        pass
