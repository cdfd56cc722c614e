"""Progress and results of a training run: to Dagster through Pipes, or as JSON lines on stdout.

When the run was launched by a Dagster asset with Pipes (``DAGSTER_PIPES_CONTEXT`` is set), log
lines and the final asset materialization go back to the orchestrator; otherwise every event is
printed as one JSON object a line, which is just as easy to read from a terminal or a script.

Example:
    >>> with open_reporter(environ={}) as report:
    ...     report.log({"step": 1, "loss": 0.69})
    {"event": "progress", "step": 1, "loss": 0.69}
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

PIPES_ENV = "DAGSTER_PIPES_CONTEXT"


class Reporter:
    """Prints JSON lines; :class:`PipesReporter` sends the same events to Dagster."""

    def log(self, metrics: Mapping[str, Any]) -> None:
        self._print({"event": "progress", **metrics})

    def message(self, text: str) -> None:
        self._print({"event": "message", "text": text})

    def materialize(self, metadata: Mapping[str, Any]) -> None:
        self._print({"event": "materialization", **metadata})

    @staticmethod
    def _print(record: Mapping[str, Any]) -> None:
        print(json.dumps(record, default=str), flush=True)


class PipesReporter(Reporter):
    """Events as Dagster Pipes log lines and one asset materialization."""

    def __init__(self, context):
        self.context = context

    def log(self, metrics: Mapping[str, Any]) -> None:
        self.context.log.info(json.dumps(dict(metrics), default=str))

    def message(self, text: str) -> None:
        self.context.log.info(text)

    def materialize(self, metadata: Mapping[str, Any]) -> None:
        self.context.report_asset_materialization(metadata=_pipes_metadata(metadata))


def _pipes_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Numbers and strings as they are; anything else as its string."""
    out = {}
    for key, value in metadata.items():
        ok = isinstance(value, int | float | str | bool) or value is None
        out[key] = value if ok else str(value)
    return out


@contextlib.contextmanager
def open_reporter(*, enabled: bool = True,
                  environ: Mapping[str, str] | None = None) -> Iterator[Reporter]:
    """A Pipes reporter under Dagster Pipes, else a JSON-lines one (`enabled=False`: silent)."""
    environ = os.environ if environ is None else environ
    if not enabled:
        yield _Silent()
    elif PIPES_ENV in environ:
        from dagster_pipes import open_dagster_pipes

        with open_dagster_pipes() as context:
            yield PipesReporter(context)
    else:
        yield Reporter()


class _Silent(Reporter):
    """For non-zero ranks: reports nothing."""

    def _print(self, record: Mapping[str, Any]) -> None:  # type: ignore[override]
        del record


ERROR_FILE_ENV = "RLFOUNDRY_ERROR_FILE"


def record_error(message: str) -> None:
    """Leave the reason a run died where its launcher looks (``$RLFOUNDRY_ERROR_FILE``)."""
    path = os.environ.get(ERROR_FILE_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(message.rstrip() + "\n")


def fail(message: str, code: int = 2) -> None:
    """Print `message` to stderr, record it for the launcher, and exit with `code`."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    record_error(message)
    raise SystemExit(code)
