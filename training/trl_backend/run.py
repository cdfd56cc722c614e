"""Entry point of a TRL run (SFT or GRPO of a VLM or an audio LM); a JSON config is its only
argument.

Run it with::

    torchrun --nproc-per-node 1 -m training.trl_backend.run path/to/config.json

or, single process, ``python -m training.trl_backend.run path/to/config.json``; with
``--nproc-per-node N`` the Trainer runs DDP (nccl on CUDA, gloo on CPU), and with
``accelerate launch --config_file fsdp.yaml -m training.trl_backend.run CONFIG`` FSDP. The
config fields are documented in ``training/trl_backend/config.py``. A run resumes from
``output_dir`` if that holds a complete checkpoint.

Under Dagster Pipes (``DAGSTER_PIPES_CONTEXT`` set by the launching asset) progress goes to the
Dagster log and the end reports an asset materialization with the final metrics and checkpoint
path, as ``training/run.py`` does for Whisper; otherwise progress and the result are printed as
JSON lines. A bad config exits with code 2 and a message naming the field.
"""

from __future__ import annotations

import os
import sys

from training.config import ConfigError
from training.runtime.guard import die_with_parent
from training.runtime.pipes_report import fail, open_reporter, record_error
from training.trl_backend.config import TrlConfig
from training.trl_backend.data import DataError

#: what torchrun sets for its workers; with one worker accelerate reads them as a distributed
#: run and wraps the model in DDP (on CPU: a find_unused_parameters traversal every step and
#: two warnings per run)
TORCHRUN_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                "GROUP_WORLD_SIZE", "ROLE_RANK", "ROLE_WORLD_SIZE", "ROLE_NAME", "MASTER_ADDR",
                "MASTER_PORT", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT",
                "TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_USE_AGENT_STORE")


def not_distributed_alone() -> None:
    """A run of one process (``torchrun --nproc-per-node 1``, the launcher's default) trains
    as a plain process: torchrun's worker variables are dropped.

    >>> os.environ.update(WORLD_SIZE="1", LOCAL_RANK="0"); not_distributed_alone()
    >>> "LOCAL_RANK" in os.environ
    False
    """
    if os.environ.get("WORLD_SIZE") == "1":
        for name in TORCHRUN_ENV:
            os.environ.pop(name, None)


#: TRL's diagnostics kept out of the asset's metadata (they stay in metrics.jsonl)
DETAIL = ("completions/", "clip_ratio/", "logits/", "logps/", "sampling/", "num_tokens",
          "epoch")


def headline(metrics: dict) -> dict:
    """The last step's numbers a person reads on the asset page: loss, rewards, KL, entropy,
    lr, timing (TRL's length, clipping and logit diagnostics stay in metrics.jsonl).

    >>> headline({"loss": 0.5, "completions/min_length": 3, "num_tokens": 90, "kl": 0.1,
    ...           "watch": "ok", "stopped": True})
    {'loss': 0.5, 'kl': 0.1}
    """
    return {k: v for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
            and not k.startswith(DETAIL)}


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except Exception as exc:  # the launcher shows this line instead of "exit code 1"
        record_error(f"{type(exc).__name__}: {exc}")
        raise


def _main(argv: list[str]) -> int:
    if len(argv) != 1:
        fail("usage: python -m training.trl_backend.run CONFIG.json")
    try:
        config = TrlConfig.from_json(argv[0])
    except ConfigError as exc:
        fail(f"{argv[0]}: {exc}")
    not_distributed_alone()
    from training.trl_backend.train import TrainingStopped, train  # heavy: after the config

    rank = int(os.environ.get("RANK", "0"))
    with open_reporter(enabled=rank == 0) as report:
        report.message(f"training {config.family} {config.objective} from {config.model} "
                       f"into {config.output_dir}" + (" (blind: no media)" if config.blind
                                                      else ""))
        try:
            result = train(config, log=report.log)
        except (DataError, TrainingStopped) as exc:
            fail(str(exc))
        if result.stopped:
            report.message(f"entropy watch: {result.stopped}; keeping checkpoint "
                           f"{result.checkpoint}")
        report.materialize({
            **headline(result.metrics),
            "checkpoint": str(result.checkpoint.resolve()),
            "output_dir": str(result.output_dir.resolve()),
            "objective": config.objective,
            "family": config.family,
            "blind": config.blind,
            "resumed_from_step": result.resumed_from,
            "stopped_early": bool(result.stopped),
            "stop_reason": result.stopped or "",
            "skipped_rows": len(result.skipped),
        })
    return 0


if __name__ == "__main__":
    die_with_parent()  # torchrun (or the guard) gone: stop training, leave nothing behind
    sys.exit(main())
