"""The inbox: new manifests become train or eval batches, none of them lost."""

import os

import pytest

from pipelines.inbox import SETTLE_ENV, batch_name, scan_inbox, settle_seconds
from resources.warehouse import PARTITION_RE


def _touch(path, mtime):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"audio_filepath": "a.wav", "text": "hi"}\n')
    os.utime(path, (mtime, mtime))
    return path


def _ready(inbox, **kw):
    return [(m.path.relative_to(inbox).as_posix(), m.batch, m.role)
            for m in scan_inbox(inbox, settle_s=0, **kw).ready]


def test_top_level_and_train_folder_are_train_eval_folder_is_eval(tmp_path):
    _touch(tmp_path / "calls 2026-11.jsonl", 1)
    _touch(tmp_path / "train" / "accents.jsonl", 2)
    _touch(tmp_path / "eval" / "dev.jsonl", 3)
    _touch(tmp_path / "notes.txt", 4)
    _touch(tmp_path / ".copying.jsonl", 5)
    assert _ready(tmp_path) == [("calls 2026-11.jsonl", "calls-2026-11", "train"),
                                ("train/accents.jsonl", "accents", "train"),
                                ("eval/dev.jsonl", "dev", "eval")]


def test_name_clashes_get_a_stable_hashed_name_and_registered_files_keep_theirs(tmp_path):
    _touch(tmp_path / "a b.jsonl", 1)
    _touch(tmp_path / "a-b.jsonl", 2)
    _touch(tmp_path / "train" / "a-b.jsonl", 3)
    first = _ready(tmp_path)
    names = [batch for _, batch, _ in first]
    assert names[0] == "a-b" and len(set(names)) == 3
    assert all(n.startswith("a-b-") and PARTITION_RE.match(n) for n in names[1:])
    assert _ready(tmp_path) == first  # the same files get the same names every time
    # once `a-b.jsonl` is registered as `a-b`, it keeps that name, and `a b.jsonl` moves over
    registered = {"a-b": str((tmp_path / "a-b.jsonl").resolve())}
    again = {p: b for p, b, _ in _ready(tmp_path, sources=registered)}
    assert again["a-b.jsonl"] == "a-b" and again["a b.jsonl"].startswith("a-b-")
    assert again["train/a-b.jsonl"] == names[2]  # a hashed name depends on its path only
    assert len(set(again.values())) == 3


def test_a_batch_registered_from_elsewhere_does_not_hide_a_manifest(tmp_path):
    _touch(tmp_path / "eval" / "dev.jsonl", 1)
    ((path, batch, role),) = _ready(tmp_path, sources={"dev": "/data/other/dev.jsonl"})
    assert path == "eval/dev.jsonl" and role == "eval" and batch.startswith("dev-")


def test_requested_manifests_are_skipped_until_they_change(tmp_path):
    m = _touch(tmp_path / "calls.jsonl", 1)
    (found,) = scan_inbox(tmp_path, settle_s=0).ready
    assert scan_inbox(tmp_path, settle_s=0, requested={str(m): found.version}).ready == []
    _touch(m, 2)  # rewritten: a new version, asked for again under a new run key
    (changed,) = scan_inbox(tmp_path, settle_s=0, requested={str(m): found.version}).ready
    assert changed.batch == "calls" and changed.run_key != found.run_key


def test_a_manifest_still_changing_waits_for_the_settle_window(tmp_path, monkeypatch):
    m = _touch(tmp_path / "calls.jsonl", 1000)
    scan = scan_inbox(tmp_path, settle_s=30, now=1010)
    assert scan.ready == [] and scan.settling == [m]
    assert [x.batch for x in scan_inbox(tmp_path, settle_s=30, now=1031).ready] == ["calls"]
    monkeypatch.delenv(SETTLE_ENV, raising=False)
    assert settle_seconds() == 30
    monkeypatch.setenv(SETTLE_ENV, "0")
    assert settle_seconds() == 0
    monkeypatch.setenv(SETTLE_ENV, "soon")
    with pytest.raises(ValueError, match=SETTLE_ENV):
        settle_seconds()


@pytest.mark.parametrize("name, batch", [
    ("/x/..weird name!!.jsonl", "weird-name"), ("/x/---.jsonl", "batch"),
    ("/x/_calls.jsonl", "calls"), ("/x/__.jsonl", "batch"), ("/x/_-_x_.jsonl", "x_"),
    ("/x/été.jsonl", "t"), ("/x/" + "y" * 300 + ".jsonl", "y" * 128)])
def test_names_are_always_valid_partition_keys(name, batch):
    assert batch_name(name) == batch and PARTITION_RE.match(batch)


def test_missing_inbox_is_empty(tmp_path):
    assert scan_inbox(tmp_path / "nope", settle_s=0).ready == []


def _age(path, mtime):
    """Set the mtime of `path` and of everything under it."""
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (mtime, mtime))
    return path


def _write(path, text="", gz=False):
    import gzip

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


RECORDING = '{"id": "r1", "sources": [{"type": "file", "channels": [0], "source": "r1.wav"}], ' \
            '"sampling_rate": 16000, "num_samples": 16000, "duration": 1.0}\n'
SUPERVISION = '{"id": "s1", "recording_id": "r1", "start": 0.0, "duration": 1.0}\n'
NEMO = '{"audio_filepath": "a.wav", "text": "hi"}\n'


def test_every_source_format_the_readers_detect_is_a_batch_but_plain_media_folders(tmp_path):
    _write(tmp_path / "calls.jsonl.gz", NEMO, gz=True)
    _write(tmp_path / "nemo_manifest.json", NEMO)  # NeMo's own name for its manifests
    _write(tmp_path / "settings.json", '{"lr": 1}')  # JSON, not a manifest
    _write(tmp_path / "corpus_recordings_dev.jsonl.gz", RECORDING, gz=True)
    _write(tmp_path / "corpus_supervisions_dev.jsonl.gz", SUPERVISION, gz=True)  # its pair
    _write(tmp_path / "voices" / "metadata.csv", "file_name,transcription\n")  # audiofolder
    _write(tmp_path / "lh" / "cuts.jsonl.gz", "", gz=True)
    _write(tmp_path / "ls" / "84" / "121" / "84-121.trans.txt", "84-121-0000 HI\n")
    _write(tmp_path / "saved" / "dataset_info.json", "{}")
    _write(tmp_path / "saved" / "state.json", "{}")
    _write(tmp_path / "eval" / "kaldi-dev" / "wav.scp", "u1 a.wav\n")
    _write(tmp_path / "media" / "a.wav", "RIFF")  # the audio the manifests name: no batch
    for i, path in enumerate(sorted(tmp_path.iterdir()) + [tmp_path / "eval" / "kaldi-dev"]):
        _age(path, 100 + i)
    assert sorted(_ready(tmp_path)) == [
        ("calls.jsonl.gz", "calls", "train"),
        ("corpus_recordings_dev.jsonl.gz", "corpus_recordings_dev", "train"),
        ("eval/kaldi-dev", "kaldi-dev", "eval"),
        ("lh", "lh", "train"),
        ("ls", "ls", "train"),
        ("nemo_manifest.json", "nemo_manifest", "train"),
        ("saved", "saved", "train"),
        ("voices", "voices", "train")]


def test_a_folder_settles_on_its_newest_file_and_changes_when_its_files_do(tmp_path):
    folder = _age(_write(tmp_path / "voices" / "metadata.csv", "file_name,text\n").parent, 1000)
    (found,) = scan_inbox(tmp_path, settle_s=30, now=1031).ready
    assert found.batch == "voices" and found.path == folder
    requested = {str(folder): found.version}
    _age(_write(folder / "clips" / "a.wav", "RIFF").parent, 1040)  # still copying in
    scan = scan_inbox(tmp_path, requested=requested, settle_s=30, now=1050)
    assert scan.ready == [] and scan.settling == [folder]
    (again,) = scan_inbox(tmp_path, requested=requested, settle_s=30, now=1071).ready
    assert again.version != found.version
    # what ingestion writes into a saved dataset's folder (hidden) is no change
    requested = {str(folder): again.version}
    os.utime(_write(folder / ".rlfoundry-audio" / "x.wav", "RIFF"), (1080, 1080))
    assert scan_inbox(tmp_path, requested=requested, settle_s=30, now=1200).ready == []
