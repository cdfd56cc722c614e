"""`rlfoundry export`: a batch's transcribed clips out, as NeMo, Lhotse or a Hugging Face dataset.

    rlfoundry export sample-dev --format nemo --out exports/dev

What goes out is the batch's verified data as the loop uses it: every clip with a
transcript (`queries/eval_clips`, the rows SFT trains on and evaluation scores; for
speech, human QC judges preference pairs, not transcripts), optionally only some `split`
tags. Clips without one (speech segments cut by `--segment vad`, unlabeled media) stay
behind, counted. The files (`labeling.ingest.export`):

* nemo: `OUT/<batch>.jsonl`, audio paths absolute, a segment as `offset`/`duration`;
* lhotse: `OUT/<batch>_cuts.jsonl.gz`, a cut per clip with one supervision;
* hf-dataset: a `datasets` dataset saved to disk in OUT, the audio inside it.

Each reads back with `rlfoundry ingest PATH`, PATH the one printed (the file, or OUT for
a dataset). OUT must be new or empty: the export is
written to a hidden folder beside it and renamed into place once whole, so a failed export
leaves nothing behind.

Example:
    >>> export_file("nemo", "dev"), export_file("hf-dataset", "dev")
    ('dev.jsonl', None)
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click

EXPORT_FORMATS = ("nemo", "lhotse", "hf-dataset")
_FILES = {"nemo": "{batch}.jsonl", "lhotse": "{batch}_cuts.jsonl.gz"}


def export_file(format: str, batch: str) -> str | None:
    """The file an export in `format` writes in OUT (None: OUT itself is the dataset)."""
    name = _FILES.get(format)
    return name.format(batch=batch) if name else None


def export_batch(warehouse, batch: str, format: str, out: Path, splits: list[str]) -> str:
    """Write the batch's transcribed clips to `out` in `format`; the line to print.
    ClickException, one line, for an unknown batch, nothing to export, or an `out` in use."""
    import sql
    from pipelines.batches_cli import check_batch

    check_batch(warehouse, batch)
    out = Path(out).expanduser().absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise click.ClickException(f"--out {out} exists and is not an empty folder: pick a new "
                                   "one (an export never overwrites).")
    clips = warehouse.fetch_dicts(sql.load("queries/eval_clips"),
                                  {"batches": [batch], "splits": splits})
    total = warehouse.count("audio_clips", batch)
    if not clips:
        raise click.ClickException(_nothing_to_export(batch, total, splits))
    written = _write(clips, format, batch, out)
    return (f"exported {len(clips)} of {total} clips of batch {batch} (those with a transcript"
            f"{' in split ' + ', '.join(splits) if splits else ''}) as {format}: {written}")


def _nothing_to_export(batch: str, total: int, splits: list[str]) -> str:
    if not total:
        return f"Batch {batch!r} holds no audio clips: nothing to export."
    where = f" in split {', '.join(splits)}" if splits else ""
    return (f"Batch {batch!r} has no clips with a transcript{where} ({total} audio clips in "
            "all): nothing to export. `rlfoundry batches` shows how many are labeled.")


def _write(clips: list[dict], format: str, batch: str, out: Path) -> Path:
    """Write into a hidden folder beside `out`, then rename it to `out`; the path written."""
    from labeling.ingest import export

    writers = {"nemo": export.to_nemo, "lhotse": export.to_lhotse_cuts,
               "hf-dataset": export.to_hf_dataset}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.export-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    name = export_file(format, batch)
    try:
        if name:
            tmp.mkdir()
            writers[format](clips, tmp / name)
        else:
            writers[format](clips, tmp)
        if out.exists():
            out.rmdir()  # empty (checked above)
        tmp.rename(out)
    except OSError as exc:
        raise click.ClickException(f"Export of batch {batch!r} failed: {exc} (its media must "
                                   "still be where it was ingested from).") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / name if name else out
