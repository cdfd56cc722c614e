"""The training launcher: runs `torchrun ... -m training.run CONFIG` out of process, via Pipes.

Training never runs inside the orchestrator's process: the asset writes a
plain JSON config, this resource starts torchrun on it, and the run reports
its log lines and final metrics back through Dagster Pipes. On one GPU node
`nproc_per_node` > 1 gives DDP with the same code; multi-node adds torchrun's
own flags (`--nnodes`, `--rdzv-endpoint`) through `extra_args`.
"""

import json
import os
import sys
from pathlib import Path
from typing import Any

from dagster import (
    ConfigurableResource,
    Failure,
    MetadataValue,
    PipesSubprocessClient,
)
from pydantic import Field

# training.run writes why it died into this file (training/runtime/pipes_report.py reads the
# same name)
ERROR_FILE_ENV = "RLFOUNDRY_ERROR_FILE"
# torchrun flags that choose a rendezvous across nodes: with any of them, no --standalone
MULTI_NODE_FLAGS = {"--nnodes", "--rdzv-backend", "--rdzv-endpoint", "--rdzv-id",
                    "--master-addr", "--master-port", "--node-rank"}


class TrainingLauncher(ConfigurableResource):
    nproc_per_node: int = Field(1, description="Processes (GPUs) per node; 1 on a CPU machine.")
    extra_args: list[str] = Field(default_factory=list, description="More torchrun flags, e.g. "
                                  "['--nnodes', '2', '--rdzv-backend', 'c10d', "
                                  "'--rdzv-endpoint', 'host:29500', '--rdzv-id', 'loop-1'] "
                                  "for multi-node (then no --standalone is added).")

    def command(self, config_path: Path) -> list[str]:
        """The exact torchrun command line for a config file, under the guard that ends it
        when the launching process dies (training/runtime/guard.py).

        `--standalone` (a rendezvous on this node) only when `extra_args` set no rendezvous
        of their own: torchrun ignores `--rdzv-*` flags under `--standalone`, so a multi-node
        run would wait on localhost forever.
        """
        flags = {arg.split("=", 1)[0].replace("_", "-") for arg in self.extra_args}
        standalone = [] if flags & MULTI_NODE_FLAGS else ["--standalone"]
        return [sys.executable, "-m", "training.runtime.guard", "--",
                sys.executable, "-m", "torch.distributed.run", *standalone,
                "--nproc-per-node", str(self.nproc_per_node), *self.extra_args,
                "-m", "training.run", str(config_path)]

    def launch(self, context, config: dict[str, Any]):
        """Write `config` into its output_dir and run it; returns Pipes' completed invocation."""
        out = Path(config["output_dir"])
        out.mkdir(parents=True, exist_ok=True)
        path = out / "train_config.json"
        _refuse_changed_config(path, config)
        path.write_text(json.dumps(config, indent=2))
        cmd = self.command(path)
        context.log.debug("launching: " + " ".join(cmd))  # the exact command, in the run's log
        errors = out / "error.txt"
        errors.unlink(missing_ok=True)
        try:
            return PipesSubprocessClient().run(
                context=context, command=cmd, cwd=str(Path(__file__).resolve().parents[1]),
                env={**os.environ, ERROR_FILE_ENV: str(errors)},
                extras={"max_steps": config.get("max_steps")})  # progress lines: step n/N
        except Exception as exc:  # Pipes raises a private error type: "process failed with code N"
            if not errors.is_file():
                raise
            reason = errors.read_text().strip()
            raise Failure(f"Training failed: {reason}",
                          metadata={"config": MetadataValue.path(str(path)),
                                    "output_dir": MetadataValue.path(str(out))}) from exc


def _refuse_changed_config(path: Path, config: dict[str, Any]) -> None:
    """A folder holding checkpoints resumes; it must not resume under another config."""
    if not (path.parent / "latest.json").is_file() or not path.is_file():
        return
    before = json.loads(path.read_text())
    changed = sorted(k for k in set(before) | set(config) if before.get(k) != config.get(k))
    if changed:
        raise Failure(f"{path.parent} holds checkpoints of a run with another config "
                      f"(changed: {', '.join(changed)}): it would resume under the new one. "
                      "Start a new loop for the new config, or delete that folder to retrain "
                      "this loop from scratch.")
