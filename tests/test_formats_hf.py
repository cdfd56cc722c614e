"""Hugging Face sources: `audiofolder` (metadata.csv / metadata.jsonl) and datasets saved to
disk with an `Audio` column (read without decoding through torchcodec).

Every sample is written by the test (tiny WAVs with soundfile).
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value

from labeling.ingest.formats import detect_format
from labeling.ingest.formats.common import Refused
from labeling.ingest.formats.hf_dataset import MEDIA_DIR, _audio_file
from labeling.ingest.manifest import read_source
from labeling.ingest.media import sha256_file
from labeling.ingest.rows import AudioLimits, ingest_audio
from labeling.testing import write_tone


def ingest(source, **kwargs):
    entries, issues = read_source(source, **kwargs)
    return ingest_audio(entries, AudioLimits()), issues


def wav_bytes(seconds: float, rate: int = 16000, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(seed)
    sf.write(buffer, 0.1 * rng.standard_normal(int(seconds * rate)), rate, format="WAV")
    return buffer.getvalue()


# --- audiofolder ---------------------------------------------------------------------------


@pytest.fixture
def audiofolder(tmp_path):
    d = tmp_path / "af"
    for split, names in (("train", ["a", "b"]), ("test", ["c"])):
        (d / split).mkdir(parents=True)
        for i, name in enumerate(names):
            write_tone(d / split / f"{name}.wav", seconds=1.0 + i, seed=ord(name))
    (d / "train" / "metadata.csv").write_text(
        "file_name,transcription,accent\na.wav,hello there,gb\nb.wav,\"good, morning\",\n")
    (d / "test" / "metadata.jsonl").write_text(
        json.dumps({"file_name": "c.wav", "transcription": "bye", "snr_db": 10}) + "\n")
    write_tone(d / "train" / "extra.wav", seed=9)  # listed nowhere
    return d


def test_an_audiofolder_ingests_with_its_transcription_column_and_splits(audiofolder):
    assert detect_format(audiofolder) == "audiofolder"
    result, issues = ingest(audiofolder)
    rows = {r["text"]: (r["source_path"].rsplit("/", 2)[-2:], json.loads(r["tags"]),
                        round(r["duration_s"], 2)) for r in result.rows}
    assert rows == {
        "hello there": (["train", "a.wav"], {"accent": "gb", "split": "train"}, 1.0),
        "good, morning": (["train", "b.wav"], {"split": "train"}, 2.0),
        "bye": (["test", "c.wav"], {"snr_db": 10, "split": "test"}, 1.0)}
    assert sum(result.notes.values()) == 3  # the transcript came from `transcription`
    assert [(i.reason, i.source_path.rsplit("/", 1)[1]) for i in issues] == [
        ("skipped", "extra.wav")]


def test_an_audiofolder_without_file_name_or_with_a_missing_file_says_so(tmp_path):
    d = tmp_path / "af"
    d.mkdir()
    write_tone(d / "a.wav")
    (d / "metadata.csv").write_text("path,text\na.wav,hi\n")
    _, issues = ingest(d)
    assert [i.reason for i in issues] == ["missing_column", "skipped"]
    assert "has no `file_name` column (its columns: path, text)" in issues[0].detail
    (d / "metadata.csv").write_text("file_name,text\na.wav,hi\ngone.wav,lost\n")
    result, issues = ingest(d)
    assert [r["text"] for r in result.rows] == ["hi"] and issues == []
    assert [(q["line"], q["reason"]) for q in result.quarantined] == [(3, "missing")]
    _, issues = ingest(d, text_key="sentence")
    assert issues[0].reason == "missing_column" and "`sentence`" in issues[0].detail


# --- datasets saved to disk ------------------------------------------------------------------


def test_a_saved_dataset_ingests_embedded_audio_and_every_split(tmp_path):
    # As `load_dataset` + `save_to_disk` leave it: the bytes embedded, an Audio column (built
    # as a struct and cast: encoding through Audio needs torchcodec, which is not here).
    features = Features({"audio": {"bytes": Value("binary"), "path": Value("string")},
                         "sentence": Value("string"),
                         "gender": ClassLabel(names=["female", "male"]),
                         "votes": [Value("int32")]})
    split = {"audio": [{"bytes": wav_bytes(1.0), "path": "x.wav"},
                       {"bytes": wav_bytes(2.0, seed=1), "path": None}],
             "sentence": ["one two", "three"], "gender": [0, 1], "votes": [[1], [2, 3]]}
    DatasetDict({"train": Dataset.from_dict(split, features=features),
                 "test": Dataset.from_dict({k: v[:1] for k, v in split.items()},
                                           features=features)}).cast_column(
        "audio", Audio()).save_to_disk(tmp_path / "ds")
    assert detect_format(tmp_path / "ds") == "hf-dataset"
    result, issues = ingest(tmp_path / "ds")
    assert issues == []
    got = [(r["text"], json.loads(r["tags"]), round(r["duration_s"], 2)) for r in result.rows]
    assert got == [("one two", {"gender": "female", "split": "train"}, 1.0),
                   ("three", {"gender": "male", "split": "train"}, 2.0)]
    assert [q["reason"] for q in result.quarantined] == ["duplicate"]  # the test split's copy
    first = result.rows[0]["source_path"]
    assert f"/{MEDIA_DIR}/" in first and first.endswith(".wav")
    assert result.rows[0]["clip_id"] == sha256_file(first)  # media bytes, kept as they were
    (note, count), = result.notes.items()
    assert count == 3 and "sentence" in note and "not scalars): votes" in note


def test_a_saved_dataset_row_without_audio_is_an_issue_and_a_path_stays_where_it_is(
        tmp_path):
    features = Features({"audio": {"bytes": Value("binary"), "path": Value("string")},
                         "text": Value("string")})
    Dataset.from_dict({"audio": [{"bytes": wav_bytes(1.0), "path": "a.wav"}, None],
                       "text": ["kept", "no audio"]}, features=features).cast_column(
        "audio", Audio()).save_to_disk(tmp_path / "ds")
    entries, issues = read_source(tmp_path / "ds")
    assert [e.text for e in entries] == ["kept"]
    assert [(i.line, i.reason) for i in issues] == [(2, "no_media_path")]
    # save_to_disk embeds every local file; a row holding only a path (e.g. a dataset
    # written by other tools) is read where it is, inside the allowed roots
    write_tone(tmp_path / "far.wav")
    row = {"bytes": None, "path": str(tmp_path / "far.wav")}
    assert _audio_file(row, tmp_path / "ds", [tmp_path]) == tmp_path / "far.wav"
    with pytest.raises(Refused, match="outside the allowed roots"):
        _audio_file(row, tmp_path / "ds", [tmp_path / "ds"])


def test_a_saved_dataset_without_audio_or_unreadable_says_so(tmp_path):
    Dataset.from_dict({"path": ["a.wav"], "text": ["x"]}).save_to_disk(tmp_path / "ds")
    _, issues = ingest(tmp_path / "ds")
    assert [i.reason for i in issues] == ["missing_column"]
    assert "has no Audio column" in issues[0].detail
    assert "path (Value), text (Value)" in issues[0].detail
    (tmp_path / "ds" / "state.json").write_text("{not json")
    _, issues = ingest(tmp_path / "ds", format="hf-dataset")
    assert [i.reason for i in issues] == ["unreadable_dataset"]


# --- datasets named by their hub id, from the local cache -------------------------------------


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """A local `datasets` cache holding hub dataset `someone/voices` (splits train and test),
    as a download leaves it; `load_dataset` reads it offline (HF_HUB_OFFLINE=1, conftest)."""
    import datasets

    from labeling.testing import write_hf_cache

    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)  # read at import
    monkeypatch.setenv("RLFOUNDRY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))

    def split(texts, seed):
        return Dataset.from_dict({
            "audio": [{"bytes": wav_bytes(1.0 + i / 2, seed=seed + i), "path": f"{i}.wav"}
                      for i in range(len(texts))],
            "sentence": texts}).cast_column("audio", Audio())

    write_hf_cache(cache, "someone/voices", {"train": split(["one", "two"], 0),
                                             "test": split(["three"], 10)})
    return cache


def test_a_dataset_named_by_id_ingests_from_the_local_cache(hf_cache, tmp_path):
    from labeling.ingest.formats import check, source_of

    source = source_of("someone/voices", "hf-dataset")
    assert source == "hf://datasets/someone/voices" and check(source) == "hf-dataset"
    result, issues = ingest(source)
    assert issues == []
    assert [(r["text"], json.loads(r["tags"])["split"]) for r in result.rows] == [
        ("one", "train"), ("two", "train"), ("three", "test")]
    media = tmp_path / "home" / "hf-datasets" / "someone___voices"
    assert all(r["source_path"].startswith(f"{media}/") for r in result.rows)
    assert result.rows[0]["clip_id"] == sha256_file(result.rows[0]["source_path"])
    # one split, and one slice of it, as `datasets` names them
    result, _ = ingest("hf://datasets/someone/voices:train[1:]")
    assert [(r["text"], json.loads(r["tags"])["split"]) for r in result.rows] == [
        ("two", "train")]


def test_a_dataset_id_not_in_the_cache_or_no_such_split_is_one_line(hf_cache):
    from labeling.ingest.formats import check, source_of

    with pytest.raises(ValueError) as missing:
        check(source_of("someone/elsewhere", "hf-dataset"))
    assert str(missing.value) == (
        f"Hugging Face dataset 'someone/elsewhere' is not in the local cache at {hf_cache} "
        "(HF_DATASETS_CACHE); on a machine with the hub `HF_HUB_OFFLINE=0 rlfoundry ingest "
        "...` downloads it, or pass a folder written by `save_to_disk`.")
    # a registered batch whose dataset left the cache: ingest quarantines it, saying why
    entries, issues = read_source("hf://datasets/someone/elsewhere")
    assert entries == [] and [i.reason for i in issues] == ["unreadable_dataset"]
    assert issues[0].detail == str(missing.value)
    with pytest.raises(ValueError, match=r"Unknown split \"dev\"\. Should be one of "
                       r"\['train', 'test'\]"):
        check("hf://datasets/someone/voices:dev")
    with pytest.raises(ValueError, match="read as hf-dataset, not nemo"):
        check("hf://datasets/someone/voices", "nemo")
    with pytest.raises(FileNotFoundError, match="does not exist; a Hugging Face dataset id\\? "
                       "add --format hf-dataset"):
        source_of("someone/voices")  # no such path, and no --format: not guessed


def test_ingest_a_dataset_by_name_through_the_cli(hf_cache):
    from click.testing import CliRunner

    from pipelines.cli import main
    from resources.warehouse import Warehouse

    def cli(*args):
        return CliRunner().invoke(main, list(args))

    out = cli("ingest", "someone/voices:test", "--format", "hf-dataset", "--batch", "v-test",
              "--role", "eval")
    assert out.exit_code == 0, out.output
    assert "batch v-test (eval): 1 audio clip; 0 duplicates, 0 quarantined" in out.output
    registered = Warehouse().batch_source("v-test")
    assert (registered["source"], registered["source_kind"]) == (
        "hf://datasets/someone/voices:test", "dataset")
    out = cli("ingest", "hf://datasets/someone/voices:train", "--batch", "v-train")
    assert out.exit_code == 0, out.output
    assert "batch v-train (train): 2 audio clips;" in out.output
    out = cli("ingest", "someone/elsewhere", "--format", "hf-dataset", "--batch", "x")
    assert out.exit_code == 1
    assert out.output.strip().splitlines() == [
        f"Error: Hugging Face dataset 'someone/elsewhere' is not in the local cache at "
        f"{hf_cache} (HF_DATASETS_CACHE); on a machine with the hub `HF_HUB_OFFLINE=0 "
        "rlfoundry ingest ...` downloads it, or pass a folder written by `save_to_disk`."]
    out = cli("ingest", "someone/elsewhere", "--batch", "x")
    assert out.exit_code == 2 and "does not exist; a Hugging Face dataset id?" in out.output
