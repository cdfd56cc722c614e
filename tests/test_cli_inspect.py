"""What `rlfoundry ingest` reports, `rlfoundry batches` and `rlfoundry quarantine`, and the
rules for a batch name used again, as a user meets them through the CLI."""

import re

import click
import pytest
from click.testing import CliRunner

from labeling.testing import write_manifest, write_tone
from pipelines.cli import main


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(*args) -> str:
    result = cli(*args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def calls(tmp_path):
    """Three clips (one without a transcript), a missing file and one file listed twice."""
    media = tmp_path / "calls"
    media.mkdir()
    for i in range(3):
        write_tone(media / f"{i}.wav", seconds=0.5, seed=i, freq=300 + 100 * i)
    return write_manifest(media / "calls.jsonl", [
        {"audio_filepath": "0.wav", "text": "hello there"},
        {"audio_filepath": "1.wav", "text": "good morning"},
        {"audio_filepath": "2.wav"},
        {"audio_filepath": "gone.wav", "text": "lost"},
        {"audio_filepath": "0.wav", "text": "hello there"}])


def test_ingest_reports_kept_unlabeled_duplicates_and_quarantined_with_reasons(home, calls):
    out = ok("ingest", calls, "--batch", "calls")
    lines = out.strip().splitlines()
    assert "batch calls (train): 3 audio clips (1 without a transcript); 1 duplicate, " \
           "1 quarantined" in lines
    assert re.search(r"^  quarantined: missing 1; e\.g\. line 4: .*gone\.wav: no such file",
                     out, re.M)
    assert "  every row: rlfoundry quarantine calls" in lines
    assert any(line.startswith("  1 of 3 clips have no transcript") for line in lines)
    assert "DEBUG" not in out and "audio_clips [calls]" not in out  # the report, not metadata


def test_audio_question_scenes_need_no_transcript_so_the_report_asks_for_none(home):
    """Scenes are labeled by their sound regions (the audio questions chain): no
    `without a transcript`, no --text-key hint."""
    from pathlib import Path

    scenes = Path(__file__).parents[1] / "data" / "sample" / "audio_qa" / "scenes.jsonl"
    out = ok("ingest", scenes, "--batch", "scenes")
    assert out.strip().splitlines()[-1] == \
        "batch scenes (train): 6 audio clips; 0 duplicates, 0 quarantined"
    assert "transcript" not in out and "--text-key" not in out


def test_batches_lists_every_batch_with_what_it_holds(home, calls, tmp_path):
    assert "No batches yet" in ok("batches")
    ok("ingest", calls, "--batch", "calls")
    write_tone(tmp_path / "dev.wav", seconds=0.4, seed=9, freq=700)
    dev = write_manifest(tmp_path / "dev.jsonl", [{"audio_filepath": "dev.wav", "text": "x"}])
    ok("ingest", dev, "--batch", "dev", "--role", "eval")
    lines = ok("batches").splitlines()
    assert lines[0].split() == ["batch", "role", "kind", "items", "labeled", "quarantined",
                                "duplicates", "ingested", "source"]
    calls_row, dev_row = lines[2].split(), lines[3].split()
    assert calls_row[:7] == ["calls", "train", "audio", "3", "2", "1", "1"]
    assert calls_row[-1] == str(calls.resolve())
    assert dev_row[:7] == ["dev", "eval", "audio", "1", "1", "0", "0"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", dev_row[7])  # ingested when


def test_quarantine_shows_rows_with_reason_and_detail_filtered_and_limited(home, calls):
    ok("ingest", calls, "--batch", "calls")
    out = ok("quarantine", "calls")
    assert out.startswith("2 quarantine rows in batch calls: duplicate 1, missing 1\n")
    missing = next(line for line in out.splitlines() if line.startswith("calls ")
                   and " missing " in line)
    assert missing.split()[:3] == ["calls", "audio_clips", "missing"]
    assert "gone.wav:4" in missing and "no such file; check the path" in missing
    out = ok("quarantine", "--reason", "missing")  # every batch, one reason
    assert out.startswith("1 quarantine row in every batch with reason missing: missing 1")
    assert "duplicate" not in out.split("\n", 1)[1]
    out = ok("quarantine", "calls", "--limit", "1")
    assert len([line for line in out.splitlines() if line.startswith("calls ")]) == 1
    assert out.strip().endswith("(the first 1; --limit 2 shows all)")
    assert ok("quarantine", "calls", "--reason", "too_long").strip() == \
        "No quarantine rows in batch calls with reason too_long."


def test_nothing_usable_is_an_error_saying_why(home, tmp_path):
    media = tmp_path / "m"
    media.mkdir()
    listing = write_manifest(media / "m.jsonl", [{"audio_filepath": "a.wav", "text": "a"},
                                                 {"audio_filepath": "b.wav", "text": "b"}])
    result = cli("ingest", listing, "--batch", "empty")
    assert result.exit_code == 1, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("Error: Nothing usable landed in batch 'empty' from ")
    assert "2 quarantined (missing 2)" in line and "rlfoundry quarantine empty" in line
    # the batch holds nothing: another source may take its name without --replace
    write_tone(media / "a.wav", seconds=0.4, seed=3)
    fixed = write_manifest(media / "fixed.jsonl", [{"audio_filepath": "a.wav", "text": "a"}])
    out = ok("ingest", fixed, "--batch", "empty", "--role", "eval")
    assert f"batch empty holds no rows yet: now source {listing} → {fixed}; role train → " \
           "eval" in out
    assert "batch empty (eval): 1 audio clip;" in out


def test_a_source_already_ingested_under_another_name_warns_and_lands_nothing(home, calls):
    ok("ingest", calls, "--batch", "calls")
    result = cli("ingest", calls, "--batch", "again")
    assert result.output.startswith(f"WARNING: {calls} is already ingested as batch calls; "
                                    "its files stay there and are duplicates in again\n")
    assert result.exit_code == 1
    assert re.search(r"Error: Nothing usable landed in batch 'again' .*: 4 duplicates \(e\.g\. "
                     r"same sha256 .* in batch 'calls'\); 1 quarantined \(missing 1\)",
                     result.output)


def test_a_batch_name_reused_for_another_source_or_role_needs_replace(home, calls, tmp_path):
    ok("ingest", calls, "--batch", "calls")
    write_tone(tmp_path / "other.wav", seconds=0.4, seed=7, freq=800)
    other = write_manifest(tmp_path / "other.jsonl", [{"audio_filepath": "other.wav",
                                                       "text": "other"}])
    for args in (["ingest", other, "--batch", "calls"],
                 ["ingest", calls, "--batch", "calls", "--role", "eval"]):
        result = cli(*args)
        assert result.exit_code == 1
        line = result.output.strip().splitlines()[-1]
        assert line.startswith("Error: Batch 'calls' exists (3 audio_clips, source ")
        assert "Pass --replace to do that, or pick a new batch name." in line
    out = ok("ingest", other, "--batch", "calls", "--replace")
    assert out.startswith(f"WARNING: replacing batch calls (3 audio_clips): source "
                          f"{calls} → {other}; its labels become stale")
    assert "batch calls (train): 1 audio clip;" in out


def test_job_help_lists_every_job_on_one_line():
    from pipelines.definitions import defs

    out = ok("job", "--help")
    assert "Batch jobs (--batch NAME):" in out and "Loop jobs (--loop KEY, or --loop new):" in out
    lines = out.splitlines()
    for job in defs.resolve_all_job_defs():
        if not job.name.startswith("__"):
            (line,) = [x for x in lines if x.split()[:1] == [job.name]]
            assert len(line) <= 80 and len(line.split()) > 2  # a name and a description


def _commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


def test_every_option_of_every_command_has_help():
    missing = [(" ".join(path), param.name)
               for path, command in [((), main), *_commands(main)]
               for param in command.params
               if isinstance(param, click.Option) and not param.help]
    assert missing == []
