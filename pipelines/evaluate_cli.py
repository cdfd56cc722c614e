"""`rlfoundry evaluate`: a manifest in, a WER/CER table (and JSON) out."""

from __future__ import annotations

from pathlib import Path

import click

from labeling.ingest.audio import load_audio_16k
from labeling.ingest.manifest import read_source
from models.bundled import resolve_model
from models.whisper.asr import WhisperASR
from resources.home import rlfoundry_home
from training.eval.evaluate import evaluate_clips, write_report
from training.eval.report import format_table


def manifest_clips(manifest: Path, splits: list[str]) -> list[dict]:
    """The manifest's labeled audio lines (optionally some splits), as clip dicts."""
    entries, issues = read_source(manifest)
    for issue in issues:
        click.echo(f"skipped: {issue.detail}", err=True)
    return [
        {"source_path": str(e.path), "text": e.text, "tags": e.tags}
        for e in entries
        if e.kind == "audio" and e.text and (not splits or str(e.tags.get("split")) in splits)
    ]


def run_evaluation(model: str, manifest: Path, group_by: list[str], splits: list[str],
                   json_out: Path | None, batch_size: int) -> None:
    clips = manifest_clips(manifest, splits)
    if not clips:
        raise click.ClickException(f"{manifest} has no labeled audio lines"
                                   f"{' in splits ' + ','.join(splits) if splits else ''}.")
    asr = WhisperASR.from_pretrained(resolve_model(model, rlfoundry_home() / "models"))

    def progress(done: int, total: int) -> None:
        click.echo(f"\r{done}/{total} clips", nl=done == total, err=True)

    result = evaluate_clips(asr, clips, load_audio_16k, group_by,
                            batch_size=batch_size, progress=progress)
    for clip, exc in result.failures:
        click.echo(f"failed: {clip['source_path']}: {exc}", err=True)
    click.echo(f"model: {model}\nmanifest: {manifest}")
    click.echo(format_table(result.report))
    if json_out:
        click.echo(f"report: {write_report(result, model, json_out)}")
