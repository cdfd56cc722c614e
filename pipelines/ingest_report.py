"""What `rlfoundry ingest` tells once a batch is ingested: what landed, what did not, and why.

    batch calls (train): 140 audio clips (12 without a transcript); 3 duplicates, 2 quarantined
      quarantined: missing 1, undecodable 1; e.g. /data/x.wav (line 4): file not found ...
      every row: rlfoundry quarantine calls

Counts come from the ingest assets' metadata for this run; the batch's transcripts and the
quarantine reasons from the warehouse. A batch where nothing usable landed (no clip, image
or video kept) is an error, one line saying why.

Only clips that should have a transcript are called untranscribed (with a hint about
`--text-key`): an audio-questions scene (labeled by its `regions`) needs none, and the
speech segments `--segment vad` cut are unlabeled by design (counted as such).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sql
from pipelines.batches import MEDIA_TABLES
from resources.warehouse import Warehouse

NOUNS = {"audio_clips": ("audio clip", "audio clips"), "images": ("image", "images"),
         "videos": ("video", "videos")}
TOP_REASONS = 3


@dataclass
class IngestCounts:
    """What the ingest assets of one run recorded (their metadata)."""

    ingested: dict[str, int] = field(default_factory=dict)  # media table -> rows kept
    duplicates: int = 0
    skipped: int = 0  # files a folder batch did not read (not media)
    quarantined: int = 0  # refused, duplicates and skipped files apart

    @classmethod
    def from_run(cls, result) -> IngestCounts:
        counts = cls()
        for event in result.get_asset_materialization_events():
            mat = event.event_specific_data.materialization
            table = mat.asset_key.to_user_string()
            if table not in MEDIA_TABLES:
                continue
            meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
            counts.ingested[table] = int(meta.get("ingested") or 0)
            counts.duplicates += int(meta.get("duplicates") or 0)
            counts.skipped += int(meta.get("skipped") or 0)
            counts.quarantined += int(meta.get("quarantined") or 0)
        return counts

    @property
    def usable(self) -> int:
        return sum(self.ingested.values())


def report_lines(warehouse: Warehouse, batch: str, role: str, counts: IngestCounts) -> list[str]:
    """The report: one line of counts; then, when there are any, the top quarantine reasons
    and where to see every row, and a note on the clips that lack a transcript they should
    have (module docstring)."""
    held = [_count(n, *NOUNS[t]) for t, n in counts.ingested.items() if n]
    (row,) = warehouse.fetch_dicts(sql.load("queries/batch_overview"), {"batch": batch}) or [{}]
    kinds = untranscribed_kinds(warehouse, batch) if counts.ingested.get("audio_clips") else {}
    untranscribed, segments = kinds.get("other", 0), kinds.get("segment", 0)
    what = []
    if segments:
        what.append(f"{_count(segments, 'speech segment', 'speech segments')} cut by "
                    "--segment vad")
    if untranscribed:
        what.append(f"{untranscribed} without a transcript")
    if what and held:
        held[0] += f" ({'; '.join(what)})"
    line = (f"batch {batch} ({role}): {', '.join(held) or 'nothing ingested'}; "
            f"{_count(counts.duplicates, 'duplicate', 'duplicates')}, "
            f"{counts.quarantined} quarantined")
    if counts.skipped:
        line += f", {_count(counts.skipped, 'file', 'files')} skipped (not media)"
    lines = [line]
    if counts.quarantined:
        lines.append(f"  quarantined: {top_reasons(warehouse, batch)}")
    if counts.quarantined or counts.duplicates:
        lines.append(f"  every row: rlfoundry quarantine {batch}")
    if untranscribed:
        lines.append(f"  {untranscribed} of {row.get('clips')} clips have no transcript: the "
                     "speech loop labels and trains on transcribed clips only (is the "
                     "transcript under another key? --text-key names it)")
    return lines


def untranscribed_kinds(warehouse: Warehouse, batch: str) -> dict[str, int]:
    """The batch's clips without a transcript by kind: `regions` (scenes), `segment` (cut by
    voice activity), `other` (missing a transcript); see `queries/untranscribed_clips`."""
    vad = warehouse.batch_source(batch).get("segment") == "vad"
    return dict(warehouse.fetch(sql.load("queries/untranscribed_clips"),
                                {"batch": batch, "vad": vad}))


def nothing_usable(warehouse: Warehouse, batch: str, counts: IngestCounts) -> str | None:
    """The error when no clip, image or video landed (None when some did): what happened to
    the entries instead, and what to do."""
    if counts.usable:
        return None
    what = []
    if counts.duplicates:
        example = warehouse.fetch_dicts(sql.load("queries/quarantine_rows"), {
            "batch": batch, "reasons": ["duplicate"], "limit": 1})
        detail = f" (e.g. {example[0]['detail']})" if example else ""
        what.append(f"{_count(counts.duplicates, 'duplicate', 'duplicates')}{detail}")
    if counts.quarantined:
        what.append(f"{counts.quarantined} quarantined ({top_reasons(warehouse, batch, False)})")
    if counts.skipped:
        what.append(f"{_count(counts.skipped, 'file', 'files')} skipped (not media)")
    source = warehouse.batch_source(batch)["source"]
    if not what:
        return (f"Nothing usable landed in batch {batch!r}: {source} has no audio, image or "
                "video entries. Point ingest at a manifest, a dataset or a folder of media "
                "(`rlfoundry ingest --help` lists the formats).")
    return (f"Nothing usable landed in batch {batch!r} from {source}: {'; '.join(what)}. "
            f"See `rlfoundry quarantine {batch}`, fix the source, and ingest again.")


def top_reasons(warehouse: Warehouse, batch: str, example: bool = True) -> str:
    """`missing 2, undecodable 1` (the most frequent first; 'and N more reasons' past three),
    with the first row of the most frequent as an example."""
    rows = warehouse.fetch_dicts(sql.load("queries/quarantine_reasons"),
                                 {"batch": batch, "assets": list(MEDIA_TABLES)})
    text = ", ".join(f"{r['reason']} {r['n']}" for r in rows[:TOP_REASONS])
    if len(rows) > TOP_REASONS:
        text += f" and {len(rows) - TOP_REASONS} more reasons"
    if example and rows:
        text += f"; e.g. {_example(rows[0]['example'])}"
    return text or "see the quarantine table"


def _example(row: dict) -> str:
    """`<file> (line n): <detail>`, the file left out when the detail names it."""
    path, line, detail = row["source_path"] or "", row["line"], row["detail"] or ""
    where = "" if path and path in detail else path
    if line is not None:
        where = f"{where} (line {line})" if where else f"line {line}"
    return _short(f"{where}: {detail}" if where else detail)


def _short(text: str, width: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def print_report(warehouse: Warehouse, batch: str, role: str, result) -> None:
    """Print the report of the ingest run `result`, then its checks that did not pass
    (every entry and check with --verbose); ClickException (exit code 1) when nothing
    usable landed."""
    import click

    from pipelines.output import settings
    from pipelines.report import print_checks, print_materializations

    verbose = settings().verbose
    if verbose:
        print_materializations(result, verbose)
    counts = IngestCounts.from_run(result)
    error = nothing_usable(warehouse, batch, counts)
    if error:
        raise click.ClickException(error)
    for line in report_lines(warehouse, batch, role, counts):
        click.echo(line)
    print_checks(result, verbose)
