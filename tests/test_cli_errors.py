"""Every user error of the CLI is one line, `Error: ...`, and a non-zero exit code; a
traceback only with `--debug`. Registry ids and `promoted` work wherever a model is named."""

import json

import click
import pytest
from click.testing import CliRunner

from labeling.testing import write_manifest, write_tone
from pipelines.cli import main


@pytest.fixture
def batch(home, tmp_path):
    """Batch `b`: two short clips."""
    media = tmp_path / "media"
    media.mkdir()
    for i in range(2):
        write_tone(media / f"{i}.wav", seconds=0.5, seed=i, freq=300 + 200 * i)
    listing = write_manifest(media / "m.jsonl", [
        {"audio_filepath": f"{i}.wav", "text": f"clip {i}", "split": "dev"} for i in range(2)])
    result = CliRunner().invoke(main, ["ingest", str(listing), "--batch", "b"])
    assert result.exit_code == 0, result.output
    return "b"


def refused(*args, code: int = 1) -> str:
    """Run the CLI expecting a refusal: exit code `code`, no traceback, the last line
    `Error: ...`; returns that line."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert lines and lines[-1].startswith("Error: "), result.output
    return lines[-1]


@pytest.mark.parametrize("args", [["job", "ingest", "--batch", "a b"],
                                  ["run", "--train", "ok,../x", "--eval", "d"],
                                  ["quarantine", "_bad"]])
def test_a_bad_batch_name_is_one_line(home, args):
    line = refused(*args)
    assert "Invalid batch name" in line and "letters, digits" in line


@pytest.mark.parametrize("args, message", [
    (["job", "ingest", "--batch", "nope"], "Error: Batch 'nope' is not registered; register "
                                           "it with `rlfoundry ingest PATH --batch nope`."),
    (["quarantine", "nope"], "Error: No batch 'nope'; batches: none (`rlfoundry batches` "
                             "lists them)."),
])
def test_an_unknown_batch_is_one_line(home, args, message):
    assert refused(*args) == message


def test_an_unknown_job_is_one_line_listing_the_jobs(home):
    line = refused("job", "nosuchjob", "--batch", "b")
    assert line.startswith("Error: No job 'nosuchjob'; jobs: ") and "speech_data" in line


@pytest.mark.parametrize("args", [["ingest", "/no/such/manifest.jsonl", "--batch", "b"],
                                  ["job", "ingest", "--batch", "b", "--config", "/no/such.json"],
                                  ["evaluate", "--manifest", "/no/such/manifest.jsonl"]])
def test_a_missing_file_is_one_line_naming_it(home, args):
    line = refused(*args, code=2)  # click's usage error
    assert "/no/such" in line and "does not exist" in line


@pytest.mark.parametrize("command", [["job", "speech_labeling", "--batch", "b"],
                                     ["run", "--train", "b", "--eval", "d"]])
def test_malformed_config_json_names_the_file_line_and_column(home, tmp_path, command):
    config = tmp_path / "loop.json"
    config.write_text('{"ops": {\n  "asr_eval": {"config": {"x": 1,}}\n}}')
    line = refused(*command, "--config", config)
    assert line.startswith(f"Error: Run config {config} is not valid JSON: ")
    assert "at line 2, column 34" in line


def test_an_unexpected_error_is_one_line_and_its_traceback_comes_with_debug(home,
                                                                             monkeypatch):
    import pipelines.batches_cli

    def broken(warehouse):
        raise RuntimeError("the warehouse\nis on fire")

    monkeypatch.setattr(pipelines.batches_cli, "list_batches", broken)
    assert refused("batches") == ("Error: RuntimeError: the warehouse is on fire (run with "
                                  "--debug for the traceback)")
    result = CliRunner().invoke(main, ["--debug", "batches"])
    assert isinstance(result.exception, RuntimeError)  # raised: the traceback shows


def test_a_failed_step_is_one_line_and_its_trace_comes_with_debug(batch, tmp_path):
    config = tmp_path / "label.json"
    config.write_text(json.dumps({"ops": {"asr_hypotheses": {"config": {
        "model": str(tmp_path / "no-model")}}}}))
    line = refused("job", "speech_labeling", "--batch", batch, "--config", config)
    assert line.startswith("Error: Run ") and "of job 'speech_labeling' for batch 'b' " \
        "failed: FileNotFoundError: Model folder" in line and "no-model does not exist." in line
    result = CliRunner().invoke(main, ["--debug", "job", "speech_labeling", "--batch", batch,
                                       "--config", str(config)])
    assert result.exit_code == 1
    assert 'File "' in result.output and "FileNotFoundError" in result.output  # the stack


def test_promoted_and_registry_ids_name_models_in_run_configs_and_from(batch, tmp_path,
                                                                       tiny_whisper_dir):
    from pipelines.cli_parts import start_model
    from resources.registry import ModelRegistry

    config = tmp_path / "eval.json"

    def evaluate_with(model: str):
        config.write_text(json.dumps({"ops": {"asr_baseline_eval": {"config": {
            "model": model, "group_by": []}}}}))
        return CliRunner().invoke(main, ["job", "speech_eval", "--batch", batch, "--config",
                                         str(config)])

    result = evaluate_with("promoted")
    assert result.exit_code == 1 and "No promoted asr model yet" in result.output
    registry = ModelRegistry()
    registry.record("asr", model_id="sft-test", stage="sft", checkpoint=str(tiny_whisper_dir),
                    base_model="bundled", train_batches=[batch], config={})
    for name in ("sft-test", "promoted"):
        if name == "promoted":
            registry.promote("asr", "sft-test")
        result = evaluate_with(name)
        assert result.exit_code == 0, result.output
        assert "asr_baseline_eval [b]: wer=" in result.output and "utterances=2" in result.output
    assert start_model("sft-test") == str(tiny_whisper_dir)
    assert start_model("promoted") == "promoted"  # the loop resolves its own stage names
    assert start_model(str(tmp_path)) == str(tmp_path.resolve())
    with pytest.raises(click.ClickException, match="--from nosuch: not preference, sft, "
                       "promoted, a registry model id"):
        start_model("nosuch")
