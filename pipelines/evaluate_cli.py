"""`rlfoundry evaluate`: a manifest in, a WER/CER table (and JSON) out."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import click

from labeling.ingest.audio import load_audio_16k
from labeling.ingest.manifest import read_source
from labeling.ingest.rows import audio_clip
from labeling.ingest.segment import LongFormSplitter
from models.bundled import resolve_model
from models.whisper.asr import WhisperASR
from models.whisper.inputs import MAX_SECONDS
from resources.home import rlfoundry_home
from training.eval.evaluate import evaluate_clips, write_report
from training.eval.report import format_table


def manifest_clips(manifest: Path, splits: list[str], source_format: str | None = None,
                   text_key: str | None = None, allowed_roots: list[Path] | None = None
                   ) -> list[dict]:
    """The source's labeled audio entries (optionally some splits), as clip dicts; a segment
    of a recording is its span (`labeling.ingest.rows.audio_clip`). Audio paths must lie
    under `allowed_roots` (default: the manifest's folder)."""
    try:
        entries, issues = read_source(manifest, allowed_roots or None, format=source_format,
                                      text_key=text_key)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for issue in issues:
        click.echo(f"skipped: {issue.detail}", err=True)
    outside = sum(issue.reason == "outside_allowed_roots" for issue in issues)
    if outside:
        click.echo(f"{outside} line(s) point outside the allowed folders: pass "
                   "--allowed-root DIR (e.g. --allowed-root / for absolute paths) to read "
                   "them.", err=True)
    for note, count in Counter(e.note for e in entries if e.note).items():
        click.echo(f"note: {note} ({count} entries)", err=True)
    return [
        {"source_path": audio_clip(e), "text": e.text, "tags": e.tags}
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
                   json_out: Path | None, batch_size: int, source_format: str | None = None,
                   text_key: str | None = None, allowed_roots: list[Path] | None = None
                   ) -> None:
    clips = manifest_clips(manifest, splits, source_format, text_key, allowed_roots)
    if not clips:
        raise click.ClickException(f"{manifest} has no labeled audio lines"
                                   f"{' in splits ' + ','.join(splits) if splits else ''}.")
    check_groups(clips, group_by)
    asr = WhisperASR.from_pretrained(model_path(model))

    from assets.common import pace

    started = time.monotonic()

    def progress(done: int, total: int) -> None:  # one line, rewritten in place
        rate = pace(done, total, time.monotonic() - started, done)
        click.echo(f"\r{done}/{total} clips{rate}   ", nl=done == total, err=True)

    from resources.model_hub import ModelHub

    split = LongFormSplitter(lambda: ModelHub().load("region_detector"), max_s=MAX_SECONDS)
    result = evaluate_clips(asr, clips, load_audio_16k, group_by,
                            batch_size=batch_size, progress=progress, split=split)
    if split.recordings:
        click.echo(f"long-form: {split.recordings} recording(s) over {MAX_SECONDS:g} s "
                   f"transcribed in {split.pieces} pieces cut at pauses ({split.detector_name}), "
                   "joined and scored against the whole reference", err=True)
    for clip, exc in result.failures:
        path, message = clip["source_path"], str(exc).splitlines()[0] if str(exc) else repr(exc)
        click.echo(f"failed: {message if message.startswith(path) else f'{path}: {message}'}",
                   err=True)
    click.echo(f"model: {model}\nmanifest: {manifest}")
    click.echo(format_table(result.report))
    if json_out:
        click.echo(f"report: {write_report(result, model, json_out)}")
