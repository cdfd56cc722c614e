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


def model_path(model: str) -> str:
    """A loadable folder or hub id for `model`: `promoted` (the speech family's champion), a
    registry model id (`dpo-asr-...`), `bundled:...`, a folder, or a hub id; ClickException
    with what to do otherwise."""
    from resources.model_hub import ModelUnavailable, check_available
    from resources.registry import ModelRegistry

    registry = ModelRegistry()
    if model == "promoted":
        champion = registry.champion("asr")
        if champion is None:
            raise click.ClickException("No promoted speech model yet (`rlfoundry models list` "
                                       "shows the registry); pass a model id or a folder.")
        return champion["checkpoint"]
    if not model.startswith((".", "/", "~", "bundled:")) and not Path(model).exists():
        try:
            return registry.get(model)["checkpoint"]
        except LookupError:
            pass  # not a registered model: a hub id
    try:
        path = resolve_model(model, rlfoundry_home() / "models")
        if Path(path).is_dir() and not (Path(path) / "config.json").is_file():
            raise click.ClickException(f"{path} is a folder without a model (no config.json): "
                                       "pass a transformers or CTranslate2 Whisper folder.")
        check_available(path, "asr")
    except (FileNotFoundError, ModelUnavailable) as exc:
        raise click.ClickException(f"{exc} Registered models: `rlfoundry models list`.") from None
    return path


def check_groups(clips: list[dict], group_by: list[str]) -> None:
    """ClickException naming the tags that no clip of the manifest has."""
    present = sorted({key for clip in clips for key in (clip["tags"] or {})})
    missing = [g for g in group_by if g not in present]
    if missing:
        raise click.ClickException(
            f"--group-by {','.join(missing)}: no line of the manifest has "
            f"{'that tag' if len(missing) == 1 else 'those tags'}; its tags: "
            f"{', '.join(present) or 'none'}.")


def run_evaluation(model: str, manifest: Path, group_by: list[str], splits: list[str],
                   json_out: Path | None, batch_size: int) -> None:
    clips = manifest_clips(manifest, splits)
    if not clips:
        raise click.ClickException(f"{manifest} has no labeled audio lines"
                                   f"{' in splits ' + ','.join(splits) if splits else ''}.")
    check_groups(clips, group_by)
    asr = WhisperASR.from_pretrained(model_path(model))

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
