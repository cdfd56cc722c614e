"""The command line as a user drives it: ingest, label, evaluate, on a tiny random Whisper."""

import json
import re

import pytest
from click.testing import CliRunner

from labeling.testing import write_manifest, write_tone
from pipelines.cli import main
from resources.warehouse import Warehouse


@pytest.fixture
def manifest(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    records = []
    for i, (accent, split) in enumerate([("us", "dev"), ("gb", "dev"), ("gb", "train")]):
        write_tone(media / f"{i}.wav", seconds=1.0 + i / 2, seed=i, freq=300 + 100 * i)
        records.append({"audio_filepath": f"{i}.wav", "text": f"clip number {i}",
                        "accent": accent, "split": split})
    records.append({"audio_filepath": "missing.wav", "text": "gone"})
    return write_manifest(media / "manifest.jsonl", records)


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_ingest_then_label_then_evaluate_a_batch(home, manifest, tiny_whisper_dir, tmp_path):
    out = invoke("ingest", manifest, "--batch", "b1")
    assert "batch b1 (train): 3 audio clips; 0 duplicates, 1 quarantined" in out
    assert re.search(r"quarantined: missing 1; e\.g\. line 4: .*missing\.wav", out)
    assert "every row: rlfoundry quarantine b1" in out
    label_config, eval_config = tmp_path / "label.json", tmp_path / "eval.json"
    label_config.write_text(json.dumps({"ops": {"asr_hypotheses": {"config": {
        "model": str(tiny_whisper_dir), "num_beams": 2, "num_samples": 1}}}}))
    eval_config.write_text(json.dumps({"ops": {"asr_baseline_eval": {"config": {
        "model": str(tiny_whisper_dir), "splits": ["dev"], "group_by": ["accent"]}}}}))
    out = invoke("job", "speech_labeling", "--batch", "b1", "--config", label_config)
    assert "asr_hypotheses [b1]: clips=3, hypotheses=12," in out  # one line per asset
    assert "DEBUG" not in out and "STEP_START" not in out
    out = invoke("--verbose", "job", "speech_eval", "--batch", "b1", "--config", eval_config)
    assert "utterances: 2" in out and "| accent" in out  # every entry, tables too
    assert "STEP_START" in out  # and Dagster's DEBUG events

    warehouse = Warehouse(root=str(home / "warehouse"))
    kinds = warehouse.fetch("SELECT kind, count(*) FROM asr_hypotheses GROUP BY 1 ORDER BY 1")
    assert kinds == [("beam", 6), ("greedy", 3), ("sample", 3)]
    report = warehouse.report_dir("asr_baseline_eval", "b1") / "report.json"
    assert json.loads(report.read_text())["overall"]["n"] == 2


def test_evaluate_prints_a_grouped_table_and_writes_json(home, manifest, tiny_whisper_dir,
                                                         tmp_path):
    out_json = tmp_path / "eval.json"
    out = invoke("evaluate", "--model", tiny_whisper_dir, "--manifest", manifest,
                 "--group-by", "accent", "--split", "dev", "--json", out_json)
    assert "accent" in out and "gb" in out and "us" in out
    report = json.loads(out_json.read_text())
    assert report["overall"]["n"] == 2
    assert {u["reference"] for u in report["utterances"]} == {"clip number 0", "clip number 1"}


def test_evaluate_reads_a_nemo_manifest_of_absolute_paths_with_allowed_root(
        home, tiny_whisper_dir, tmp_path):
    """NeMo manifests usually name their audio by absolute path, elsewhere on disk."""
    audio, lists = tmp_path / "corpus" / "wav", tmp_path / "lists"
    audio.mkdir(parents=True)
    lists.mkdir()
    write_tone(audio / "a.wav", seconds=1.0, seed=1)
    listing = write_manifest(lists / "test.jsonl", [
        {"audio_filepath": str(audio / "a.wav"), "text": "one clip"}])
    refused = CliRunner().invoke(main, ["evaluate", "--model", str(tiny_whisper_dir),
                                        "--manifest", str(listing)])
    assert refused.exit_code != 0
    assert "--allowed-root DIR" in refused.output and "Traceback" not in refused.output
    out = invoke("evaluate", "--model", tiny_whisper_dir, "--manifest", listing,
                 "--allowed-root", tmp_path / "corpus")
    assert "overall" in out and "1/1 clips" in out


def test_one_clip_longer_than_whisper_takes_is_transcribed_in_pieces(home, tiny_whisper_dir,
                                                                    tmp_path):
    media = tmp_path / "long"
    media.mkdir()
    write_tone(media / "short.wav", seconds=1.0, seed=1)
    write_tone(media / "long.wav", seconds=45.0, seed=2)
    listing = write_manifest(media / "m.jsonl", [
        {"audio_filepath": "short.wav", "text": "a short one"},
        {"audio_filepath": "long.wav", "text": "a long one"}])
    out_json = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["evaluate", "--model", str(tiny_whisper_dir),
                                       "--manifest", str(listing), "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    # a tone holds no speech: fixed 30 s windows (tests/test_long_audio.py cuts at pauses)
    assert "long-form: 1 recording(s) over 30 s transcribed in 2 pieces" in result.output
    report = json.loads(out_json.read_text())
    assert report["overall"]["n"] == 2 and report["failed_clips"] == []
    (long,) = [u for u in report["utterances"] if u["clip_id"].endswith("long.wav")]
    assert long["chunks"] == 2


def test_a_job_for_an_unregistered_batch_fails_with_how_to_register(home):
    result = CliRunner().invoke(main, ["job", "ingest", "--batch", "nope"])
    assert result.exit_code != 0
    assert "rlfoundry ingest PATH --batch nope" in result.output


def test_a_wrong_run_config_is_a_clear_error(home, manifest, tmp_path):
    invoke("ingest", manifest, "--batch", "b")
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"ops": {"asr_hypotheses": {"config": {"beams": 3}}}}))
    result = CliRunner().invoke(main, ["job", "speech_labeling", "--batch", "b", "--config",
                                       str(config)])
    assert result.exit_code != 0 and "beams" in result.output


def test_run_labels_trains_evaluates_and_promotes_a_users_batches(
        home, manifest, tiny_whisper_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("RLFOUNDRY_BASELINE_ASR", str(tiny_whisper_dir))
    dev = write_manifest(tmp_path / "media" / "dev.jsonl", [
        {"audio_filepath": "0.wav", "text": "clip number zero", "accent": "us"}])
    invoke("ingest", manifest, "--batch", "calls")
    # the same audio under another batch is a duplicate; give eval its own file
    write_tone(tmp_path / "media" / "0.wav", seconds=0.8, seed=42, freq=900)
    out = invoke("ingest", dev, "--batch", "held-out", "--role", "eval")
    assert "batch held-out (eval): 1 audio clip;" in out
    config = tmp_path / "loop.json"
    config.write_text(json.dumps({"ops": {
        "whisper_sft_model": {"config": {"max_steps": 1, "batch_size": 2, "warmup_steps": 0}},
        "whisper_preference_model": {"config": {"max_steps": 1, "batch_size": 2}},
        "asr_eval": {"config": {"group_by": ["accent"], "max_wer_increase": 100.0,
                                "candidate": "preference"}}}}))
    out = invoke("--verbose", "run", "--train", "calls", "--eval", "held-out", "--config",
                 config)
    assert "### labeling train batch calls (speech_data)" in out
    assert "PROMOTED dpo-" in out and "baseline WER" in out
    assert re.search(r"check asr_eval.asr_eval_candidate_not_worse \[asr-\d{8}-\d{6}-[0-9a-f]{4}\]"
                     r": passed - candidate WER", out)
    warehouse = Warehouse(root=str(home / "warehouse"))
    from resources.registry import ModelRegistry

    stages = sorted((m["stage"], m["champion"]) for m in ModelRegistry().all_models("asr"))
    assert stages == [("dpo", True), ("sft", False)]
    # the promoted model, or any registered one, evaluates by name on one's own data
    champion = ModelRegistry().champion("asr")
    out = invoke("evaluate", "--model", "promoted", "--manifest", dev)
    assert "overall" in out and "model: promoted" in out
    sft_id = next(m["model_id"] for m in ModelRegistry().all_models("asr") if m["stage"] == "sft")
    assert "overall" in invoke("evaluate", "--model", sft_id, "--manifest", dev)
    assert champion["checkpoint"]
    assert warehouse.batches_by_role() == {"train": ["calls"], "eval": ["held-out"], "guard": []}
    # a labeled batch is not labeled again unless asked
    from dagster import DagsterInstance

    from pipelines.loop_cli import batches_to_label
    with DagsterInstance.get() as instance:
        assert batches_to_label(instance, warehouse, ["calls"], relabel=False) == []
        assert batches_to_label(instance, warehouse, ["calls"], relabel=True) == ["calls"]
    # a candidate the gate refuses is a result, not a crash: exit code 3, the table printed
    ops = json.loads(config.read_text())["ops"]
    ops["asr_eval"]["config"]["max_wer_increase"] = -10.0  # demand an impossible gain
    config.write_text(json.dumps({"ops": ops}))
    result = CliRunner().invoke(main, ["run", "--train", "calls", "--eval", "held-out",
                                       "--config", str(config)])
    assert result.exit_code == 3, result.output
    assert "NOT PROMOTED dpo-" in result.output
    assert re.search(r"worse than incumbent|short of the gain demanded", result.output)
    assert "promoted dpo-" in result.output  # the table's incumbent column
    # by default: the table and the verdict once, the verdict last, no `Error:` after it
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("NOT PROMOTED dpo-") and "Error" not in result.output
    assert sum(line.startswith("overall  all") for line in lines) == 1
    assert "DEBUG" not in result.output and "Writing model shards" not in result.output
    assert re.search(r"^\d\d:\d\d:\d\d whisper_sft_model: step 1/1  loss ", result.output,
                     re.MULTILINE)  # training progress as a line, not a JSON dict
    # a transcript corrected and the batch ingested again: its labels are stale, relabeled
    manifest.write_text(manifest.read_text().replace("clip number 2", "clip number two"))
    out = invoke("ingest", manifest, "--batch", "calls")
    assert re.search(r"batch calls exists \(\d audio_clips, role train\)", out)
    with DagsterInstance.get() as instance:
        assert batches_to_label(instance, warehouse, ["calls"], relabel=False) == ["calls"]


def test_run_refuses_unregistered_batches_and_job_checks_partitioning(home, manifest):
    result = CliRunner().invoke(main, ["run", "--train", "nope", "--eval", "dev"])
    assert result.exit_code != 0 and "Batches not registered: nope, dev" in result.output
    invoke("ingest", manifest, "--batch", "b1")
    result = CliRunner().invoke(main, ["job", "speech_loop"])
    assert result.exit_code != 0 and "runs per loop: pass --loop KEY" in result.output
    result = CliRunner().invoke(main, ["job", "speech_loop", "--loop", "asr-nope"])
    assert result.exit_code != 0 and "No loop 'asr-nope'" in result.output
    result = CliRunner().invoke(main, ["job", "ingest", "--batch", "b1", "--loop", "new"])
    assert result.exit_code != 0 and "not both" in result.output
    result = CliRunner().invoke(main, ["job", "speech_data"])
    assert result.exit_code != 0 and "runs per batch: pass --batch" in result.output


def test_models_list_shows_lineage_and_promotion(home):
    from resources.registry import ModelRegistry

    assert "No trained models yet" in invoke("models", "list")
    registry = ModelRegistry()
    registry.record("asr", model_id="sft-a", stage="sft", checkpoint="/m/sft-a",
                    base_model="/hub/tiny", train_batches=["b"], config={})
    registry.record("asr", model_id="grpo-b", stage="grpo", checkpoint="/m/grpo-b",
                    base_model="/m/sft-a", train_batches=["b"], config={})
    registry.update("grpo-b", eval_wer=0.25, incumbent="baseline", incumbent_wer=0.5)
    registry.promote("asr", "grpo-b")
    lines = invoke("models", "list").splitlines()
    sft, grpo = lines[2].split(), lines[3].split()
    assert sft[:6] == ["asr", "1", "1", "sft-a", "sft", "baseline"] and sft[-1] == "-"
    assert grpo[:6] == ["asr", "2", "1", "grpo-b", "grpo", "sft-a"]
    assert grpo[7:10] == ["25.0", "baseline", "50.0"] and grpo[10] == "champion"


def refused(*args) -> str:
    """Run the CLI expecting a refusal: a non-zero exit with a one-line `Error: ...` (a
    ClickException), never a traceback; returns that line."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert lines and lines[-1].startswith("Error: "), result.output
    return lines[-1]


@pytest.mark.parametrize("name", ["_bad", "a b", "../x"])
def test_an_invalid_batch_name_is_a_one_line_error_with_a_hint(home, manifest, name):
    line = refused("ingest", manifest, "--batch", name)
    assert f"Invalid batch name {name!r}" in line and "letters, digits" in line


BAD_CONFIGS = {
    "syntax": ('{"ops": {\n  "x": }\n}', "is not valid JSON: Expecting value at line 2, column 8"),
    "not_an_object": ("[1, 2]", "the top level is a JSON array, not an object"),
    "ops_a_list": ('{"ops": [1]}', '"ops" is a JSON array, not an object of op names'),
    "op_a_number": ('{"ops": {"asr_eval": 1}}', '"ops.asr_eval" is a JSON number'),
    "config_a_string": ('{"ops": {"asr_eval": {"config": "x"}}}',
                        '"ops.asr_eval.config" is a JSON string'),
}


@pytest.mark.parametrize("command", [["job", "speech_labeling", "--batch", "b"],
                                     ["run", "--train", "b", "--eval", "d"]])
@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_a_malformed_config_file_is_a_one_line_error_naming_the_file(home, tmp_path, command,
                                                                      case):
    text, message = BAD_CONFIGS[case]
    config = tmp_path / "bad config.json"
    config.write_text(text)
    line = refused(*command, "--config", config)
    assert f"Run config {config}" in line and message in line
    assert '{"ops": {"OP_NAME": {"config": {...}}}}' in line  # what it should look like


def test_a_full_disk_while_registering_a_batch_names_the_file(home, manifest, monkeypatch):
    import errno

    import pyarrow.parquet as pq

    def full(self, table, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    line = refused("ingest", manifest, "--batch", "b1")
    path = home / "warehouse" / "batches" / "b1.parquet"
    assert line == f"Error: [Errno {errno.ENOSPC}] writing {path}: No space left on device"


def test_evaluate_says_what_is_wrong_in_one_line(home, manifest, tmp_path, tiny_whisper_dir):
    """A folder without a model, no promoted model yet, an unknown tag: errors, not tracebacks."""
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [(["--model", str(empty)], "is a folder without a model"),
             (["--model", "promoted"], "No promoted speech model yet"),
             (["--model", str(tiny_whisper_dir), "--group-by", "accent,nosuchtag"],
              "--group-by nosuchtag: no line of the manifest has that tag; its tags: accent, "
              "split")]
    for args, message in cases:
        result = CliRunner().invoke(main, ["evaluate", "--manifest", str(manifest), *args])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert message in result.output and "Traceback" not in result.output, result.output


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("rlfoundry, version ")
