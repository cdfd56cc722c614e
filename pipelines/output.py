"""What the `rlfoundry` CLI prints: short by default, everything with `--verbose`.

By default a run shows its assets' own log lines (progress with rate and ETA, training
steps, warnings) as ``HH:MM:SS asset: message``, then one summary line per materialized
asset and the asset checks that did not pass (`pipelines.report`). Dagster's DEBUG events
(step started, output yielded, ...), libraries' progress bars, their advisory log lines
and preview warnings stay out. Nothing is lost: every event is in the run's event log, so
the Dagster UI shows it all. `--verbose` puts back Dagster's own console logger at DEBUG
and leaves the libraries as they are.

The run config names the console logger the way Dagster's default one is configured
(`loggers.console.config.log_level`), so a run re-executed from the UI, where the default
logger takes that config, stays valid.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass

from dagster import Field, logger

# Set before transformers / huggingface_hub / datasets / mlflow are imported (here, and in
# the training processes, which inherit the environment); a user's own setting wins.
QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' "Loading weights", "Writing shards"
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",  # "Saving the dataset"
    "TRANSFORMERS_VERBOSITY": "error",  # advisory lines ("attention mask is not set", ...)
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "MLFLOW_LOGGING_LEVEL": "WARNING",  # "Creating initial MLflow database tables..."
}
PIPES_PREFIX = "[pipes] "  # Pipes' own INFO lines ("external process opened dagster pipes")
# the engine's line for steps it skips after a failure, which the CLI reports once at the end
ENGINE_FOLLOW_ON = "Dependencies for step "


@dataclass(frozen=True)
class Settings:
    """The global flags of `rlfoundry`: `--verbose` (all of Dagster's log at DEBUG, library
    output untouched) and `--debug` (tracebacks for errors)."""

    verbose: bool = False
    debug: bool = False


def settings() -> Settings:
    """The flags of the `rlfoundry` command being run (defaults outside one)."""
    import click

    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj if isinstance(obj, Settings) else Settings()


def quiet_libraries() -> None:
    """Silence what libraries print on their own, at the source: their progress bars and
    advisory log lines (through their own switches, which the training processes inherit
    from the environment), and Dagster's preview/beta warnings about APIs this project
    chose to use. Real warnings (WARNING and up from our code, errors) are untouched."""
    ours = {name for name in QUIET_ENV if name not in os.environ}
    for name in ours:
        os.environ[name] = QUIET_ENV[name]
    from dagster import BetaWarning, PreviewWarning

    warnings.filterwarnings("ignore", category=PreviewWarning)
    warnings.filterwarnings("ignore", category=BetaWarning)
    # libraries imported already read their environment too early: tell them directly
    if "MLFLOW_LOGGING_LEVEL" in ours:
        logging.getLogger("mlflow").setLevel(logging.WARNING)
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        if "TRANSFORMERS_VERBOSITY" in ours:
            hf_logging.set_verbosity_error()
        if "HF_HUB_DISABLE_PROGRESS_BARS" in ours:
            hf_logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules and "HF_HUB_DISABLE_PROGRESS_BARS" in ours:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "datasets" in sys.modules and "HF_DATASETS_DISABLE_PROGRESS_BARS" in ours:
        from datasets.utils import disable_progress_bars as disable_dataset_bars

        disable_dataset_bars()


class ShortFormatter(logging.Formatter):
    """A Dagster log record as ``HH:MM:SS step: message`` (the message only, no run id)."""

    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None) or {}
        message = meta.get("orig_message") or record.getMessage()
        step = meta.get("step_key")
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = "" if record.levelno <= logging.INFO else f"{record.levelname}: "
        return f"{stamp} {step + ': ' if step else ''}{level}{message}"


class UserLinesOnly(logging.Filter):
    """Keep the lines assets log themselves; drop Dagster's own events and the engine's
    "Dependencies for step ... Not executing" (the run's outcome and its first error are
    printed once it ends) and Pipes' INFO chatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, "dagster_meta", None) or {}
        if meta.get("dagster_event") is not None:
            return False
        message = str(meta.get("orig_message") or record.getMessage())
        if message.startswith(ENGINE_FOLLOW_ON):
            return False
        return not (record.levelno <= logging.INFO and message.startswith(PIPES_PREFIX))


@logger(
    {
        "log_level": Field(str, is_required=False, default_value="INFO",
                           description="The logger's threshold."),
        "name": Field(str, is_required=False, default_value="dagster",
                      description="The name of the logger."),
    },
    description="The rlfoundry CLI's console logger: assets' own lines, short.",
)
def short_console_logger(init_context) -> logging.Logger:
    config = init_context.logger_config
    log = logging.Logger(config["name"], level=config["log_level"].upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ShortFormatter())
    handler.addFilter(UserLinesOnly())
    log.addHandler(handler)
    return log


def console_run_config(verbose: bool) -> dict:
    """The run config section choosing the console logger's level."""
    return {"loggers": {"console": {"config": {"log_level": "DEBUG" if verbose else "INFO"}}}}


def for_console(job_def, verbose: bool):
    """`job_def` with the short console logger (Dagster's own with `verbose`)."""
    return job_def if verbose else job_def.with_logger_defs({"console": short_console_logger})
