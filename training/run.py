"""Entry point of a training run; a JSON config is its only argument.

The config's ``backend`` chooses the trainer: ``whisper`` (the default: SFT, DPO, MPO, GRPO or
MWER of a Whisper model, ``training/config.py``) or ``trl`` (TRL's trainers for a VLM or an
audio LM, ``training/trl_backend/config.py``, run by :mod:`training.trl_backend.run`).

Run it with::

    torchrun --nproc-per-node 1 -m training.run path/to/config.json

or, single process, ``python -m training.run path/to/config.json``. With ``WORLD_SIZE > 1``
(``--nproc-per-node N``) it initialises ``torch.distributed`` (nccl on CUDA, gloo on CPU) and
trains with DDP; otherwise it is one plain process. The config fields are documented in
``training/config.py``. A run resumes from ``output_dir`` if that holds a checkpoint.

Under Dagster Pipes (``DAGSTER_PIPES_CONTEXT`` set by the launching asset) progress goes to the
Dagster log and the end reports an asset materialization with the final metrics and checkpoint
path; otherwise progress and the result are printed as JSON lines. A bad config exits with code 2
and a message naming the field.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from training.config import ConfigError, TrainConfig
from training.runtime.guard import die_with_parent
from training.runtime.pipes_report import fail, open_reporter, record_error
from training.whisper.data import DataError


def _init_distributed() -> bool:
    """Start the process group when torchrun asked for more than one process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    torch.distributed.init_process_group(backend=backend)
    return True


def backend_of(path: str) -> str:
    """The config file's ``backend`` ("whisper" when it names none or cannot be read: the
    Whisper config's own reading then says what is wrong with it)."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return "whisper"
    return raw.get("backend", "whisper") if isinstance(raw, dict) else "whisper"


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except Exception as exc:  # the launcher shows this line instead of "exit code 1"
        record_error(f"{type(exc).__name__}: {exc}")
        raise


def _main(argv: list[str]) -> int:
    if len(argv) != 1:
        fail("usage: python -m training.run CONFIG.json")
    if backend_of(argv[0]) == "trl":
        from training.trl_backend.run import main as trl_main

        return trl_main(argv)
    try:
        config = TrainConfig.from_json(argv[0])
    except ConfigError as exc:
        fail(f"{argv[0]}: {exc}")
    from training.whisper.loop import (  # heavy imports after the config is good
        TrainingStopped,
        train,
    )

    distributed = _init_distributed()
    rank = torch.distributed.get_rank() if distributed else 0
    try:
        with open_reporter(enabled=rank == 0) as report:
            report.message(f"training {config.objective} from {config.model} "
                           f"into {config.output_dir}")
            try:
                result = train(config, log=report.log)
            except (DataError, TrainingStopped) as exc:
                fail(str(exc))
            if result.stopped:
                report.message(f"entropy watch: {result.stopped}; keeping checkpoint "
                               f"{result.checkpoint}")
            report.materialize({
                **{k: v for k, v in result.metrics.items() if isinstance(v, int | float)},
                "checkpoint": str(result.checkpoint.resolve()),
                "output_dir": str(result.output_dir.resolve()),
                "objective": config.objective,
                "resumed_from_step": result.resumed_from,
                "stopped_early": bool(result.stopped),
                "stop_reason": result.stopped or "",
            })
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    die_with_parent()  # torchrun (or the guard) gone: stop training, leave nothing behind
    sys.exit(main())
