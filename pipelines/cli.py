"""The `rlfoundry` command line: the same runs a user starts from the Dagster UI.

    rlfoundry ingest data/sample/audio/dev.jsonl --batch sample-dev
    rlfoundry batches
    rlfoundry quarantine sample-dev --reason missing
    rlfoundry export sample-dev --format nemo --out exports/sample-dev
    rlfoundry job speech_eval --batch sample-dev
    rlfoundry run --train sample-train --eval sample-dev
    rlfoundry evaluate --model bundled:whisper-tiny.en --manifest dev.jsonl --group-by accent
    rlfoundry models import-ct2 path/to/faster-whisper-dir out/whisper-hf

Runs go to the Dagster instance in `$DAGSTER_HOME` (default
`$RLFOUNDRY_HOME/dagster`), so they show in `dagster dev` started with the same home.
Output is short by default and complete with `rlfoundry --verbose ...` (`pipelines.output`);
an error is one line, with its traceback under `rlfoundry --debug ...`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from labeling.ingest.formats import FORMATS
from pipelines.cli_parts import CliGroup, JobCommand, check_names, one_line, start_model
from pipelines.export_cli import EXPORT_FORMATS
from resources.home import file_lock, rlfoundry_home

SOURCE_FORMATS = list(FORMATS)


def _instance():
    """The Dagster instance in $DAGSTER_HOME, created on first use.

    Creation (dagster.yaml, then the SQLite storages' tables) happens under an exclusive
    `flock` on `$DAGSTER_HOME/.rlfoundry-instance.lock`, with each storage touched once
    inside it: two first runs at once on a new home would otherwise both create the same
    tables, and the second would fail with `table ... already exists`. Once per process,
    also under the lock, the runs of killed CLI processes are marked failed and the
    warehouse's abandoned temp files deleted (`pipelines.runs.recover_after_crash`).
    """
    from dagster import AssetKey, DagsterInstance

    from pipelines.runs import recover_after_crash

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(rlfoundry_home() / "dagster")))
    with file_lock(home / ".rlfoundry-instance.lock"):
        config = home / "dagster.yaml"
        for stale in home.glob(".dagster.yaml.*.tmp"):  # a writer killed under this lock
            stale.unlink(missing_ok=True)
        if not config.exists():  # SQLite storage in this folder; no usage statistics sent
            tmp = home / f".dagster.yaml.{os.getpid()}.tmp"
            # run monitoring: `dagster dev`'s daemon fails UI-launched runs that never start
            tmp.write_text("telemetry:\n  enabled: false\nrun_monitoring:\n  enabled: true\n")
            os.replace(tmp, config)
        instance = DagsterInstance.get()
        # storages are built lazily: build (and so create the tables of) each one now
        instance.get_runs(limit=1)
        instance.get_latest_materialization_event(AssetKey("_"))
        instance.all_instigator_state()
        recover_after_crash(instance)
    return instance


def _run_job(job_name: str, partition: str | None, run_config: dict | None = None,
             assets: list | None = None, summary: bool = True, told: tuple[str, ...] = ()):
    """Execute a job of the Definitions (for one batch or loop partition, or unpartitioned)
    and print what it produced (one line per asset, but for the assets in `told`, whose
    outcome the caller prints, and the checks that did not pass; everything with
    --verbose; with `summary=False` nothing: the caller reports); returns the run's result.
    `assets` limits the run to those asset keys of the job (a resumed loop)."""
    from dagster import DagsterInvalidConfigError

    from pipelines.definitions import defs
    from pipelines.output import console_run_config, for_console, settings
    from pipelines.partitions import BATCHES
    from pipelines.report import print_checks, print_materializations
    from pipelines.runs import cli_tags, new_run_id

    names = sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__"))
    if job_name not in names:
        raise click.ClickException(f"No job {job_name!r}; jobs: {', '.join(names)}.")
    instance = _instance()
    job_def = defs.resolve_job_def(job_name)
    kind = job_def.partitions_def.name if job_def.partitions_def is not None else None
    if kind is None and partition is not None:
        raise click.ClickException(f"Job {job_name!r} is not partitioned: drop --batch.")
    if kind == BATCHES and partition is None:
        raise click.ClickException(f"Job {job_name!r} runs per batch: pass --batch NAME.")
    if kind is not None and partition is None:  # a loop job without a loop: a new loop
        raise click.ClickException(f"Job {job_name!r} runs per loop: pass --loop KEY, or "
                                   "--loop new.")
    if kind is not None and not instance.has_dynamic_partition(kind, partition):
        if kind == BATCHES:
            raise click.ClickException(f"Batch {partition!r} is not registered; register it "
                                       f"with `rlfoundry ingest PATH --batch {partition}`.")
        raise click.ClickException(f"No loop {partition!r}: pass --loop new to start one.")
    run_id = new_run_id()  # tagged with this process: a kill is noticed (pipelines.runs)
    verbose = settings().verbose
    try:
        result = for_console(job_def, verbose).execute_in_process(
            partition_key=partition, instance=instance,
            run_config={**(run_config or {}), **console_run_config(verbose)},
            raise_on_error=False, asset_selection=assets, run_id=run_id,
            tags=cli_tags(run_id),
        )
    except DagsterInvalidConfigError as exc:
        raise click.ClickException(one_line(str(exc))) from exc
    if summary:
        print_materializations(result, verbose, told)
        print_checks(result, verbose)
    if not result.success:
        scope = f" for {'batch' if kind == BATCHES else 'loop'} {partition!r}" if kind else ""
        if settings().debug:
            click.echo(_failure_traces(result), err=True)
        raise click.ClickException(f"Run {result.run_id} of job {job_name!r}{scope} failed: "
                                   f"{_first_error(result)}")
    return result


def _step_errors(result):
    for event in result.all_events:
        if event.is_step_failure:
            yield event.step_failure_data.error


def _first_error(result) -> str:
    """The first step failure's message, which says what to do (on one line)."""
    for error in _step_errors(result):
        while error.cause is not None:
            error = error.cause
        return one_line(error.message)
    return "see the Dagster UI for the run's logs."


def _failure_traces(result) -> str:
    """Every step failure with its stack and causes (for --debug)."""
    return "\n".join(error.to_string() for error in _step_errors(result))


@click.group(cls=CliGroup)
@click.version_option(package_name="rlfoundry", prog_name="rlfoundry")
@click.option("-v", "--verbose", is_flag=True, help="Print everything: Dagster's DEBUG log, "
              "every metadata entry and check, libraries' progress bars and warnings.")
@click.option("--debug", is_flag=True, help="Show the traceback of an error (and of a failed "
              "step) instead of its one line.")
@click.pass_context
def main(ctx: click.Context, verbose: bool, debug: bool) -> None:
    """rlfoundry: raw media to verified training data and better models."""
    from pipelines.output import Settings, quiet_libraries

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ctx.obj = Settings(verbose=verbose, debug=debug)
    if not verbose:
        quiet_libraries()


@main.command()
@click.argument("path")
@click.option("--batch", required=True, help="Partition name, e.g. 2026-11-21 or accents-v2.")
@click.option("--allowed-root", "allowed_roots", multiple=True, type=click.Path(path_type=Path),
              help="Folder that manifest paths may point into (repeatable; default: the "
              "manifest's or folder's own).")
@click.option("--role", type=click.Choice(["train", "eval", "guard"]),
              help="eval: a held-out batch the loop evaluates on and never trains on; guard: "
              "a held-out batch a candidate must not get worse on (e.g. real, clean speech). "
              "Default: train for a new batch; a batch ingested again keeps its role.")
@click.option("--replace", is_flag=True, help="Re-ingest an existing batch from another "
              "source or with another role: its rows are replaced and its labels become "
              "stale (the loop relabels them).")
@click.option("--format", "source_format", type=click.Choice(SOURCE_FORMATS),
              help="How to read PATH (default: detected from what it holds): a NeMo JSONL "
              "manifest (.jsonl, .jsonl.gz), a media folder, a Hugging Face audiofolder or "
              "save_to_disk dataset (hf-dataset; also a hub dataset id as PATH, e.g. "
              "someone/speech or someone/speech:test, read from the local datasets cache), "
              "Lhotse cuts or recordings + supervisions, a Kaldi data dir, or LibriSpeech's "
              "*.trans.txt layout.")
@click.option("--text-key", help="The key (or column) holding the transcript, for nemo, "
              "audiofolder and hf-dataset sources. Default: text, or else the one of "
              "transcript, transcription, sentence, normalized_text present.")
@click.option("--segment", type=click.Choice(["off", "vad"]), default="off", show_default=True,
              help="vad: cut audio longer than a clip may be (30 s) into speech segments "
              "found by silero-vad, each a clip without a transcript; off: such audio is "
              "quarantined as too_long. Segments the source lists (offset/duration) are "
              "used as they are either way.")
def ingest(path: str, batch: str, allowed_roots: tuple[Path, ...], role: str | None,
           replace: bool, source_format: str | None, text_key: str | None,
           segment: str) -> None:
    """Register PATH (a manifest, a folder, or a Hugging Face dataset id) as batch partition
    BATCH and ingest it.

    Ingesting an existing batch again from the same source (new files, edited
    transcripts) refreshes it; another source or role needs --replace."""
    from labeling.ingest.formats import check as check_source
    from labeling.ingest.formats import source_of
    from pipelines.batches import registration
    from pipelines.partitions import BATCHES
    from resources.warehouse import Warehouse, check_partition_name

    try:
        path = source_of(path, source_format)
    except FileNotFoundError as exc:  # as click says it of a missing path
        raise click.BadParameter(str(exc), param_hint="'PATH'") from None
    try:
        check_partition_name(batch)
        check_source(path, source_format, text_key)
        warehouse = Warehouse()
        role, notice = registration(warehouse, batch, path, role, replace)
        if notice:
            click.echo(notice)
        warehouse.register_batch(batch, path, allowed_roots, role=role, format=source_format,
                                 text_key=text_key, segment=segment)
    except (OSError, ValueError) as exc:  # a bad name, an unwritable warehouse
        raise click.ClickException(str(exc)) from None
    instance = _instance()
    if not instance.has_dynamic_partition(BATCHES, batch):
        instance.add_dynamic_partitions(BATCHES, [batch])
    from pipelines.ingest_report import print_report

    print_report(warehouse, batch, role, _run_job("ingest", batch, summary=False))


@main.command(cls=JobCommand)
@click.argument("job_name")
@click.option("--batch", help="The batch partition to run for (batch jobs).")
@click.option("--loop", help="The loop partition to run for (loop jobs, listed below): a "
              "loop key, or 'new' to start a loop.")
@click.option("--config", "config_file",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Run config as JSON (the same shape as the UI's launchpad).")
def job(job_name: str, batch: str | None, loop: str | None, config_file: Path | None) -> None:
    """Run JOB_NAME: a batch job (ingest, speech_data, ...) for one batch, or a loop job."""
    from pipelines.loop_cli import FAMILY, read_run_config
    from pipelines.partitions import new_loop

    if batch and loop:
        raise click.ClickException("Pass --batch (batch jobs) or --loop (loop jobs), not both.")
    check_names([batch] if batch else [])
    run_config = read_run_config(config_file) if config_file else None
    if loop == "new":
        loop = new_loop(_instance(), FAMILY)
        click.echo(f"loop {loop}")
    _run_job(job_name, batch or loop, run_config)


@main.command()
@click.option("--train", "train", default="", help="Comma-separated train batches; empty = "
              "every batch registered with role train.")
@click.option("--eval", "eval_", default="", help="Comma-separated held-out eval batches; "
              "empty = every batch registered with role eval.")
@click.option("--guard", "guard", default="", help="Comma-separated guard batches: held-out "
              "speech a candidate must not get worse on; empty = every batch registered "
              "with role guard.")
@click.option("--objective", type=click.Choice(["dpo", "mpo", "grpo", "mwer"]), default="dpo",
              show_default=True, help="dpo/mpo: speech_loop (SFT, then the preference "
              "objective); grpo/mwer: speech_rl_loop (online RL from an earlier model).")
@click.option("--from", "start_from", metavar="MODEL",
              help="grpo/mwer: the model to start from: preference (the latest DPO/MPO "
              "model; the default), sft, promoted, a registry model id (`rlfoundry models "
              "list`) or a model folder.")
@click.option("--config", "config_file",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="speech_loop run config as JSON (the launchpad's shape); --train, --eval and "
              "--objective override its batches and objective.")
@click.option("--relabel", is_flag=True, help="Label every train batch again, even those "
              "that already have preference pairs.")
@click.option("--resume", "resume", metavar="LOOP", help="Resume loop LOOP (printed when it "
              "started): its unfinished assets run again with its config; training resumes "
              "from the last checkpoint.")
@click.option("--task", type=click.Choice(["speech", "image", "video", "vision", "audio-qa"]),
              default="speech", show_default=True, help="speech: Whisper (speech_loop / "
              "speech_rl_loop); image, video or vision (both): the vlm_loop on the pointing "
              "and/or video question datasets; audio-qa: the alm_loop on the audio questions "
              "datasets (SFT, then DPO/MPO where verdicts give pairs and GRPO, through TRL).")
def run(train: str, eval_: str, guard: str, objective: str, start_from: str | None,
        config_file: Path | None, relabel: bool, resume: str | None, task: str) -> None:
    """Run a loop: label the batches that need it, then train, evaluate, promote."""
    from pipelines.loop_cli import resume_loop, run_loop

    if task != "speech" and not resume:
        from pipelines.task_loop_cli import run_task_loop

        speech_only = {"--guard": guard, "--from": start_from,
                       "--objective": click.get_current_context().get_parameter_source(
                           "objective") not in (None, click.core.ParameterSource.DEFAULT)}
        clash = [flag for flag, value in speech_only.items() if value]
        if clash:
            raise click.ClickException(f"{', '.join(clash)} apply to --task speech; the "
                                       f"{task} loop trains SFT, DPO/MPO and GRPO.")
        return run_task_loop(task, _split(train), _split(eval_), config_file, relabel,
                             _instance, _run_job)

    if resume:
        given = {"--train": train, "--eval": eval_, "--guard": guard, "--from": start_from,
                 "--config": config_file, "--relabel": relabel,
                 "--objective": click.get_current_context().get_parameter_source("objective")
                 not in (None, click.core.ParameterSource.DEFAULT)}
        clash = [flag for flag, value in given.items() if value]
        if clash:
            raise click.ClickException(
                f"--resume {resume} reruns the loop with the batches and config it started "
                f"with: drop {', '.join(clash)} (or start a new loop without --resume).")
        return resume_loop(resume, _instance, _run_job)
    check_names(_split(train) + _split(eval_) + _split(guard))
    if start_from and objective not in ("grpo", "mwer"):
        raise click.ClickException("--from applies to --objective grpo or mwer.")
    if start_from:
        start_from = start_model(start_from)
    run_loop(_split(train), _split(eval_), objective, config_file, relabel, _instance, _run_job,
             start_from, _split(guard))


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@main.command()
def batches() -> None:
    """Every batch: role, what it holds (audio clips, images, videos), how many carry a
    transcript or caption, quarantined and duplicate rows, when ingested, and its source."""
    from pipelines.batches_cli import list_batches
    from resources.warehouse import Warehouse

    click.echo(list_batches(Warehouse()))


@main.command()
@click.argument("batch", required=False)
@click.option("--reason", "reasons", multiple=True, help="Only rows with this reason, e.g. "
              "missing, undecodable, duplicate, too_long (repeatable).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1),
              help="Show at most this many rows.")
def quarantine(batch: str | None, reasons: tuple[str, ...], limit: int) -> None:
    """What ingestion and labeling refused in BATCH (default: every batch): each row's
    asset, reason, file and line, and what to do."""
    from pipelines.batches_cli import quarantine_report
    from resources.warehouse import Warehouse

    click.echo(quarantine_report(Warehouse(), batch, list(reasons), limit))


@main.command()
@click.argument("batch")
@click.option("--format", "out_format", required=True, type=click.Choice(EXPORT_FORMATS),
              help="nemo: a NeMo JSONL manifest (OUT/BATCH.jsonl; a segment as offset and "
              "duration); lhotse: a Lhotse CutSet (OUT/BATCH_cuts.jsonl.gz); hf-dataset: a "
              "datasets dataset saved to disk in OUT, holding the audio.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="A new (or empty) folder to write to; nothing is overwritten.")
@click.option("--split", "splits", multiple=True, help="Only clips with this `split` tag "
              "(repeatable).")
def export(batch: str, out_format: str, out: Path, splits: tuple[str, ...]) -> None:
    """Write BATCH's clips that have a transcript (the verified data the loop trains and
    evaluates on) as NeMo, Lhotse or a Hugging Face dataset; `rlfoundry ingest` reads back
    the path it prints."""
    from pipelines.export_cli import export_batch
    from resources.warehouse import Warehouse

    click.echo(export_batch(Warehouse(), batch, out_format, out, list(splits)))


@main.command()
@click.option("--model", default="bundled:whisper-tiny.en", show_default=True,
              help="'promoted' (the speech champion), a registry model id (`rlfoundry models "
              "list`), a transformers or CTranslate2 folder, a hub id, or "
              "bundled:whisper-tiny.en.")
@click.option("--manifest", required=True, type=click.Path(exists=True, path_type=Path),
              help="A NeMo-style JSONL manifest (audio_filepath, text, tags) or a folder, "
              "as `rlfoundry ingest` reads them.")
@click.option("--group-by", default="", help="Comma-separated tags, e.g. accent,snr_db.")
@click.option("--split", "splits", multiple=True, help="Only lines with this `split` tag.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Write the report here.")
@click.option("--batch-size", default=8, show_default=True,
              help="Clips per forward pass (lower it if memory runs out).")
@click.option("--format", "source_format", type=click.Choice(SOURCE_FORMATS),
              help="How to read --manifest (default: detected), as for `rlfoundry ingest`.")
@click.option("--text-key", help="The key (or column) holding the transcript, as for "
              "`rlfoundry ingest`.")
@click.option("--allowed-root", "allowed_roots", multiple=True, type=click.Path(path_type=Path),
              help="Folder that the manifest's audio paths may point into (repeatable; default: "
              "the manifest's own folder), e.g. / for a NeMo manifest of absolute paths.")
def evaluate(model: str, manifest: Path, group_by: str, splits: tuple[str, ...],
             json_out: Path | None, batch_size: int, source_format: str | None,
             text_key: str | None, allowed_roots: tuple[Path, ...]) -> None:
    """WER and CER of MODEL on a manifest, overall and per group."""
    from pipelines.evaluate_cli import run_evaluation

    run_evaluation(model, manifest, [g for g in group_by.split(",") if g], list(splits),
                   json_out, batch_size, source_format=source_format, text_key=text_key,
                   allowed_roots=list(allowed_roots))


@main.group()
def models() -> None:
    """The model registry; model import and conversion."""


@models.command("list")
def list_models() -> None:
    """Every trained checkpoint: round, objective, starting model, dev WER, promotion."""
    from pipelines.models_cli import registry_table
    from resources.registry import ModelRegistry

    click.echo(registry_table(ModelRegistry().all_models()))


@models.command("import-ct2")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("dest", type=click.Path(path_type=Path))
def import_ct2(src: Path, dest: Path) -> None:
    """Convert a CTranslate2 / faster-whisper Whisper folder SRC into a transformers folder DEST."""
    from models.whisper.ct2.importer import import_ct2_whisper

    try:
        out = import_ct2_whisper(src, dest)
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Imported {src} -> {out}")


if __name__ == "__main__":
    sys.exit(main())
