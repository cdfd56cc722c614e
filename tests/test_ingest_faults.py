"""Faults, as a user meets them: an `rlfoundry ingest` killed (SIGKILL) mid-batch and run
again ends with the warehouse a clean run gives, no temp file anywhere, and the killed run
failed (not STARTED forever) with a message saying why; a live writer's temp file is never
swept, and readers never see temp files."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from labeling.testing import write_manifest, write_tone
from resources.processes import this_process
from resources.warehouse import Warehouse, sweep_temp_files, temp_name

FILES = 1500  # small WAVs: decoding them takes a few tenths of a second


def _env(home: Path) -> dict:
    return {**os.environ, "RLFOUNDRY_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
            "HF_HUB_OFFLINE": "1"}


def _ingest(home: Path, manifest: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", "ingest", str(manifest),
                             "--batch", "calls"], env=_env(home), stdout=log.open("w"),
                            stderr=subprocess.STDOUT)


def _kill_while_decoding(proc: subprocess.Popen, home: Path, log: Path) -> list[Path]:
    """SIGKILL `proc` once its audio_clips temp file exists (it is decoding the batch);
    returns the temp files the kill left. SIGSTOP first, so the check that the partition
    is not published yet holds at the kill."""
    folder = home / "warehouse" / "audio_clips"
    deadline = time.monotonic() + 120
    while not (folder.is_dir() and any(p.name.startswith(".calls.") for p in folder.iterdir())):
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no audio_clips temp file within 120 s"
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        assert not (folder / "calls.parquet").exists(), "killed too late: ingest had finished"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    return [p for p in home.rglob("*") if ".tmp" in p.name]


def _instance(home: Path):
    from dagster import DagsterInstance

    return DagsterInstance.from_config(str(home / "dagster"))


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    """The same batch ingested twice over: in one home cleanly, in another killed while
    decoding and then ingested again. Its manifest also has a missing file, an undecodable
    one and a duplicate, so quarantine has rows to compare."""
    tmp = tmp_path_factory.mktemp("faults")
    media = tmp / "media"
    media.mkdir()
    files = [write_tone(media / f"{i}.wav", seconds=0.05, seed=i, freq=200 + i % 600)
             for i in range(FILES)]
    (media / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
    manifest = write_manifest(media / "calls.jsonl", [
        *({"audio_filepath": f.name, "text": f"clip {i}"} for i, f in enumerate(files)),
        {"audio_filepath": "missing.wav", "text": "gone"},
        {"audio_filepath": "broken.wav", "text": "broken"},
        {"audio_filepath": files[0].name, "text": "again"}])
    clean, faulty = tmp / "clean", tmp / "faulty"
    reference = _ingest(clean, manifest, tmp / "clean.log")  # alongside the killed one
    killed = _ingest(faulty, manifest, tmp / "killed.log")
    leftovers = _kill_while_decoding(killed, faulty, tmp / "killed.log")
    with _instance(faulty) as instance:
        stuck = [(r.run_id, r.status.value) for r in instance.get_runs()]
    rerun = subprocess.run([sys.executable, "-m", "pipelines.cli", "ingest", str(manifest),
                            "--batch", "calls"], env=_env(faulty), capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert reference.wait(timeout=300) == 0, (tmp / "clean.log").read_text()[-3000:]
    return {"clean": clean, "faulty": faulty, "killed_pid": killed.pid,
            "leftovers": leftovers, "stuck": stuck}


def _rows(home: Path, query: str) -> list[tuple]:
    return sorted(Warehouse(root=str(home / "warehouse")).fetch(query))


def test_the_kill_landed_mid_batch(faults):
    """The scenario itself: the kill left a temp file and a STARTED run behind."""
    assert any(p.parent.name == "audio_clips" for p in faults["leftovers"])
    assert [status for _, status in faults["stuck"]] == ["STARTED"]


def test_ingest_again_after_a_kill_gives_the_warehouse_of_a_clean_run(faults):
    clips = "SELECT * EXCLUDE (ingested_at) FROM audio_clips"
    quarantine = "SELECT * EXCLUDE (quarantined_at) FROM quarantine"
    batches = "SELECT * EXCLUDE (registered_at) FROM batches"
    for query in (clips, quarantine, batches):
        assert _rows(faults["faulty"], query) == _rows(faults["clean"], query), query
    assert len(_rows(faults["clean"], clips)) == FILES
    assert _rows(faults["clean"], "SELECT reason FROM quarantine") == [
        ("duplicate_text_differs",), ("missing",), ("undecodable",)]


def test_no_temp_file_remains_anywhere_under_the_home(faults):
    assert [p for p in faults["faulty"].rglob("*") if ".tmp" in p.name] == []


def test_the_killed_run_is_failed_and_says_its_process_ended(faults):
    from dagster import DagsterEventType, DagsterRunStatus

    (killed_id, _), = faults["stuck"]
    with _instance(faults["faulty"]) as instance:
        run = instance.get_run_by_id(killed_id)
        assert run.status == DagsterRunStatus.FAILURE
        failure = instance.all_logs(killed_id, of_type=DagsterEventType.RUN_FAILURE)
        statuses = sorted(r.status.value for r in instance.get_runs())
    assert statuses == ["FAILURE", "SUCCESS"]  # the run again succeeded
    message = failure[-1].dagster_event.message
    assert f"rlfoundry process (pid {faults['killed_pid']} on " in message
    assert "ended without finishing this run (killed?)" in message


LIVE_WRITER = textwrap.dedent("""
    import sys
    from resources.warehouse import Warehouse
    wh = Warehouse(root=sys.argv[1])
    with wh.partition_writer("quarantine", "live", shard="audio_clips") as writer:
        writer.write([{"source_path": "a.wav", "reason": "missing", "asset": "audio_clips",
                       "quarantined_at": "2026-01-01T00:00:00Z"}])
        print("writing", flush=True)
        sys.stdin.readline()  # hold the temp file until told to commit
""")


def test_a_live_writers_temp_file_is_never_swept_and_never_read(tmp_path):
    """Another process is mid-write in a folder that this one writes into and sweeps: its
    temp file stays, readers see only committed partitions, and it commits afterwards."""
    root = tmp_path / "warehouse"
    wh = Warehouse(root=str(root))
    folder = root / "quarantine" / "audio_clips"
    writer = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(root)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
        (live,) = [p for p in folder.iterdir() if ".tmp" in p.name]
        # a complete Parquet file under a temp name: not a partition either
        wh.write_quarantine("audio_clips", "done", [{"source_path": "b.wav",
                                                     "reason": "missing"}])
        finished = folder / temp_name("copy.parquet")
        finished.write_bytes((folder / "done.parquet").read_bytes())
        assert wh.write_quarantine("audio_clips", "other", [{"source_path": "c.wav",
                                                             "reason": "missing"}]) == 1
        assert wh.sweep_temp_files() == []
        assert live.exists() and finished.exists()
        assert wh.fetch("SELECT batch, source_path FROM quarantine ORDER BY 1") == [
            ("done", "b.wav"), ("other", "c.wav")]
        writer.communicate("commit\n", timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == 0
    assert not live.exists()
    assert wh.count("quarantine", "live") == 1


def _dead_process() -> tuple[int, str]:
    """The pid and start time of a process that has exited (and been reaped)."""
    from resources.processes import process_start

    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.readline()"],
                             stdin=subprocess.PIPE)
    started = process_start(child.pid) or "x"
    child.communicate(b"\n")
    return child.pid, started


def _named(folder: Path, pid: int, started: str, machine: str) -> Path:
    """A temp file named as process `pid` of `machine` would name it."""
    me = this_process()
    name = temp_name("b.parquet").replace(f".{me.pid}-{me.started or 'x'}.",
                                          f".{pid}-{started}.")
    path = folder / name.replace(f"-{me.machine}.tmp", f"-{machine}.tmp")
    path.write_bytes(b"PAR1")
    return path


def test_the_sweep_deletes_only_temp_files_whose_writer_is_gone(tmp_path):
    me = this_process()
    dead_pid, dead_started = _dead_process()
    mine = _named(tmp_path, me.pid, me.started or "x", me.machine)
    dead = _named(tmp_path, dead_pid, dead_started, me.machine)
    dead_claimed = dead.with_name(dead.name + ".claimed")  # drop_claimed's rewrite of it
    dead_claimed.write_bytes(b"PAR1")
    reused = _named(tmp_path, me.pid, "1", me.machine)  # my pid, another start: pid reuse
    elsewhere = _named(tmp_path, 1, "1", "0123456789")  # another machine, written just now
    old_elsewhere = _named(tmp_path, 2, "1", "0123456789")
    legacy = tmp_path / f".b.parquet.{'a' * 32}.tmp"  # from before temp names had the pid
    old_legacy = tmp_path / f".output.{'b' * 32}.tmp"
    unrelated = tmp_path / ".tmp-step-00000001"  # not a warehouse temp file
    for path in (legacy, old_legacy, unrelated):
        path.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 24 * 3600
    for path in (old_elsewhere, old_legacy, unrelated):
        os.utime(path, (two_days_ago, two_days_ago))
    assert sorted(sweep_temp_files(tmp_path)) == sorted(
        [dead, dead_claimed, reused, old_elsewhere, old_legacy])
    assert all(p.exists() for p in (mine, elsewhere, legacy, unrelated))


def test_temp_names_never_match_the_parquet_glob_readers_use():
    name = temp_name("calls.parquet")
    assert name.startswith(".calls.parquet.") and name.endswith(".tmp")
    assert not Path(name).match("*.parquet")


def test_only_runs_whose_cli_process_is_gone_are_failed():
    """A live CLI run, a UI-launched run (no tags) and a re-execution that copied a dead
    CLI run's tags stay as they are; the dead CLI process's run is failed."""
    from dagster import DagsterInstance, DagsterRunStatus, job, op

    from pipelines.runs import PID_TAG, STARTED_TAG, cli_tags, fail_orphaned_runs, new_run_id

    @op
    def noop():
        pass

    @job
    def work():
        noop()

    dead_pid, dead_started = _dead_process()
    with DagsterInstance.ephemeral() as instance:
        def started(tags=None, run_id=None):
            return instance.create_run_for_job(work, run_id=run_id, tags=tags,
                                               status=DagsterRunStatus.STARTED).run_id

        live_id = new_run_id()
        live = started(cli_tags(live_id), live_id)
        dead_id = new_run_id()
        dead_tags = {**cli_tags(dead_id), PID_TAG: str(dead_pid), STARTED_TAG: dead_started}
        dead = started(dead_tags, dead_id)
        ui = started()
        copied = started(dead_tags)  # a re-execution from the UI, with the parent's tags
        assert fail_orphaned_runs(instance) == [dead]
        status = {r: instance.get_run_by_id(r).status for r in (live, dead, ui, copied)}
        assert fail_orphaned_runs(instance) == []  # a failed run is not failed again
    assert status == {live: DagsterRunStatus.STARTED, dead: DagsterRunStatus.FAILURE,
                      ui: DagsterRunStatus.STARTED, copied: DagsterRunStatus.STARTED}
