"""Two `rlfoundry ingest` at once, as two users (or a sensor and a user) start them: the
content hashes they share end up in exactly one batch (the one that committed first), the
other records them as `duplicate` quarantine rows; two first runs on a brand-new
DAGSTER_HOME both succeed."""

import multiprocessing
import os
import threading

import pytest

from labeling.testing import write_manifest, write_tone
from resources.warehouse import Warehouse

SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter: a CLI process of its own


def _cli_child(env: dict, args: list[str], barrier) -> None:
    """One `rlfoundry ...` process. The children meet at `barrier` twice: just before
    opening the Dagster instance (first runs create its storage together), and once each
    has started decoding its files (both have then looked up the hashes other batches hold
    before either publishes its partition: the race two real ingests run into)."""
    os.environ.update(env)
    import labeling.ingest.rows as rows
    import pipelines.cli as cli

    instance, hash_file, waited = cli._instance, rows.sha256_file, []

    def _instance():
        _wait(barrier)
        return instance()

    def sha256_file(path, *a, **kw):
        if not waited:
            waited.append(True)
            _wait(barrier)
        return hash_file(path, *a, **kw)

    cli._instance, rows.sha256_file = _instance, sha256_file
    cli.main(args, standalone_mode=False)


def _wait(barrier) -> None:
    try:
        barrier.wait(timeout=60)
    except threading.BrokenBarrierError:
        pass


def _run_together(env: dict, commands: list[list[str]]) -> list[int]:
    barrier = SPAWN.Barrier(len(commands))
    procs = [SPAWN.Process(target=_cli_child, args=(env, [str(a) for a in cmd], barrier))
             for cmd in commands]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    return [p.exitcode for p in procs]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """A brand-new home (no DAGSTER_HOME yet); two first `rlfoundry ingest` at once of
    manifests sharing 20 of their 30 files: a train batch and an eval batch."""
    tmp_path = tmp_path_factory.mktemp("concurrent")
    home = tmp_path / "home"
    env = {"RLFOUNDRY_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           "HF_HUB_OFFLINE": "1"}
    media = tmp_path / "media"
    media.mkdir()
    files = [write_tone(media / f"{i}.wav", seconds=0.2, seed=i, freq=200 + 10 * i)
             for i in range(40)]
    train = write_manifest(media / "train.jsonl",
                           [{"audio_filepath": f.name, "text": "x"} for f in files[:30]])
    dev = write_manifest(media / "dev.jsonl",
                         [{"audio_filepath": f.name, "text": "x"} for f in files[10:]])
    codes = _run_together(env, [["ingest", train, "--batch", "train"],
                                ["ingest", dev, "--batch", "dev", "--role", "eval"]])
    return codes, Warehouse(root=str(home / "warehouse")), files


def test_two_first_runs_on_a_new_dagster_home_both_succeed(ingested):
    codes, wh, _ = ingested
    assert codes == [0, 0]  # no `table ... already exists` from the second
    assert {b for (b,) in wh.fetch("SELECT DISTINCT batch FROM audio_clips")} == {"train",
                                                                                  "dev"}


def test_overlapping_ingests_at_once_store_each_clip_in_one_batch_only(ingested):
    _, wh, files = ingested
    shared = wh.fetch("SELECT clip_id FROM audio_clips GROUP BY 1 HAVING count(*) > 1")
    assert shared == []  # no eval clip leaks into training
    stored = dict(wh.fetch("SELECT source_path, batch FROM audio_clips"))
    assert set(stored) == {str(f.resolve()) for f in files}  # every file kept once
    dupes = wh.fetch("SELECT source_path, batch FROM quarantine WHERE reason = 'duplicate'")
    assert len(dupes) == 20  # each shared file: a `duplicate` row in the batch that lost it
    assert all(stored[path] != batch for path, batch in dupes)
    assert wh.fetch("SELECT count(*) FROM quarantine WHERE reason <> 'duplicate'") == [(0,)]
    # the batch that committed first kept every shared clip, the other none
    overlap = {str(f.resolve()) for f in files[10:30]}
    assert len({stored[p] for p in overlap}) == 1
