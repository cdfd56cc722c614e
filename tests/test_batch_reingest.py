"""Ingesting a batch name again: same source refreshes, another source or role needs
--replace, and labels of a batch whose clips changed are stale."""

import json

from click.testing import CliRunner

from assets.label_sets import clip_set, stale_labels
from labeling.testing import write_manifest, write_tone
from pipelines.cli import main
from resources.warehouse import Warehouse

LABELS = ("asr_hypotheses", "preference_pairs")


def _manifest(folder, name, texts, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i, text in enumerate(texts):
        write_tone(folder / f"{name}{i}.wav", seconds=0.6, seed=seed + i, freq=300 + 50 * i)
        records.append({"audio_filepath": f"{name}{i}.wav", "text": text})
    return write_manifest(folder / f"{name}.jsonl", records)


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_reingesting_keeps_the_role_and_refuses_another_source_without_replace(home, tmp_path):
    first = _manifest(tmp_path / "m", "a", ["one", "two"])
    other = _manifest(tmp_path / "m", "b", ["three"], seed=10)
    assert _run("ingest", first, "--batch", "dev", "--role", "eval").exit_code == 0
    again = _run("ingest", first, "--batch", "dev")  # no --role: stays eval
    assert again.exit_code == 0, again.output
    assert "batch dev exists (2 audio_clips, role eval)" in again.output
    warehouse = Warehouse()
    assert warehouse.batches_by_role() == {"train": [], "eval": ["dev"], "guard": []}

    refused = _run("ingest", other, "--batch", "dev")
    assert refused.exit_code == 1
    assert "source" in refused.output and "--replace" in refused.output
    assert warehouse.count("audio_clips", "dev") == 2  # nothing replaced
    assert warehouse.batch_source("dev")["source"] == str(first)
    refused = _run("ingest", first, "--batch", "dev", "--role", "train")
    assert refused.exit_code == 1 and "role eval → train" in refused.output

    replaced = _run("ingest", other, "--batch", "dev", "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert "replacing batch dev (2 audio_clips)" in replaced.output
    assert warehouse.count("audio_clips", "dev") == 1
    assert warehouse.batches_by_role()["eval"] == ["dev"]


def test_labels_of_a_batch_whose_clips_changed_are_stale(home, tmp_path):
    manifest = _manifest(tmp_path / "m", "a", ["one", "two"])
    assert _run("ingest", manifest, "--batch", "t").exit_code == 0
    warehouse = Warehouse()
    before = clip_set(warehouse, "audio_clips", "t")
    (clip,) = warehouse.fetch("SELECT clip_id FROM audio_clips WHERE text = 'one'")
    warehouse.write_partition("asr_hypotheses", "t", [{
        "clip_id": clip[0], "model": "m", "kind": "greedy", "rank": 0, "seed": 0, "text": "on",
        "avg_logprob": -1.0, "num_tokens": 1, "clip_set": before,
        "created_at": "2026-11-30T00:00:00+00:00"}])
    assert stale_labels(warehouse, "audio_clips", LABELS, ["t"]) == {}
    assert _run("ingest", manifest, "--batch", "t").exit_code == 0  # same content: still valid
    assert stale_labels(warehouse, "audio_clips", LABELS, ["t"]) == {}

    lines = manifest.read_text().splitlines()
    edited = json.loads(lines[1]) | {"text": "too"}  # a corrected transcript
    manifest.write_text(lines[0] + "\n" + json.dumps(edited) + "\n")
    assert _run("ingest", manifest, "--batch", "t").exit_code == 0
    assert clip_set(warehouse, "audio_clips", "t") != before
    assert stale_labels(warehouse, "audio_clips", LABELS, ["t"]) == {"t": ["asr_hypotheses"]}
