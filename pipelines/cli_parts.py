"""Pieces of the `rlfoundry` command line that are not commands: the group that turns an
unexpected error into one line (its traceback only with --debug), the `job` command whose
help lists the jobs, and the checks of batch and model names the commands share."""

from __future__ import annotations

from pathlib import Path

import click


def one_line(text: str) -> str:
    """An error message on one line (Dagster's config errors span many)."""
    return " ".join(str(text).split())


class CliGroup(click.Group):
    """The `rlfoundry` group: an unexpected error is one line and exit code 1, its traceback
    only with --debug (a ClickException already is one line)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            from pipelines.output import Settings

            if isinstance(ctx.obj, Settings) and ctx.obj.debug:
                raise
            raise click.ClickException(f"{type(exc).__name__}: {one_line(exc)} (run with "
                                       "--debug for the traceback)") from exc


class JobCommand(click.Command):
    """`rlfoundry job`: its help lists the Definitions' jobs, one line each, batch jobs and
    loop jobs apart (loaded only when help is asked for: they take seconds to import)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from pipelines.definitions import defs
        from pipelines.partitions import BATCHES

        groups: dict[str, list] = {}
        for job_def in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
            if not job_def.name.startswith("__"):
                kind = job_def.partitions_def.name if job_def.partitions_def else None
                title = {None: "Jobs", BATCHES: "Batch jobs (--batch NAME)"}.get(
                    kind, "Loop jobs (--loop KEY, or --loop new)")
                groups.setdefault(title, []).append(job_def)
        name_width = max(len(j.name) for jobs in groups.values() for j in jobs)
        for title, jobs in sorted(groups.items()):  # batch jobs, then jobs, then loop jobs
            with formatter.section(title):
                width = max(formatter.width - formatter.current_indent - name_width - 2, 20)
                for job_def in jobs:
                    formatter.write(f"{'':>{formatter.current_indent}}{job_def.name:<{name_width}}"
                                    f"  {_fit(job_def.description or '', width)}\n")
        super().format_epilog(ctx, formatter)


def _fit(text: str, width: int) -> str:
    """`text` on one line of at most `width` characters: its first sentence, cut at a word."""
    text = " ".join(text.split())
    text = text.split(". ")[0].rstrip(".")
    if len(text) <= width:
        return text
    return text[:width - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def start_model(name: str) -> str:
    """`--from`: a stage name as it is, a registry model id as its checkpoint, a folder as
    its absolute path; ClickException naming the choices otherwise."""
    from pipelines.loop_cli import FAMILY
    from resources.registry import ModelRegistry

    if name in ("preference", "sft", "promoted"):
        return name
    checkpoint = ModelRegistry().checkpoint_of(name, FAMILY)
    if checkpoint:
        return checkpoint
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve())
    raise click.ClickException(f"--from {name}: not preference, sft, promoted, a registry "
                               "model id (`rlfoundry models list`) or a model folder.")


def check_names(batches: list[str]) -> None:
    """ClickException for the first batch name that cannot be one (what names may hold)."""
    from resources.warehouse import check_partition_name

    for name in batches:
        try:
            check_partition_name(name)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
