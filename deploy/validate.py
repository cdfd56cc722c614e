"""Check the deployment files in this folder against the libraries that will read them.

    python deploy/validate.py [FOLDER]   # prints one line per check; exit 1 if any failed

Always checked (with the project's own install): every YAML file parses; `dagster-k8s.yaml`
passes Dagster's instance-config schema and its cross-field rules (what `dagster` itself runs
when it loads a dagster.yaml); `accelerate-fsdp.yaml` passes accelerate's config reader and
launch-argument checks. Checked only where the integration packages are installed (skipped,
and said so, otherwise): the run launcher's, run coordinator's and Postgres storage's own
config schemas (dagster-k8s, dagster-postgres) and the Celery executor's (dagster-celery).
Nothing here contacts a cluster, a broker or a database.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent

# values for the `env:` sources in the files, so checking never depends on the shell
ENV = {"DAGSTER_PG_HOST": "postgres", "DAGSTER_PG_USER": "dagster",
       "DAGSTER_PG_PASSWORD": "x", "DAGSTER_CELERY_BROKER_URL": "pyamqp://guest@rabbitmq//"}


class Skipped(Exception):
    """A check that needs a package this environment does not have."""


def parse_all() -> str:
    files = sorted(DEPLOY.glob("*.yaml"))
    for path in files:
        yaml.safe_load(path.read_text())
    return f"{len(files)} YAML files parse"


def _configurable(data, name: str) -> str:
    """Validate a ConfigurableClassData's config against its class's own schema, without
    instantiating it (a K8sRunLauncher would try to reach the cluster)."""
    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.errors import DagsterInvalidConfigError

    try:
        module = importlib.import_module(data.module_name)
    except ModuleNotFoundError as err:
        raise Skipped(f"{name}: {err.name} is not installed") from err
    klass = getattr(module, data.class_name)
    result = process_config(resolve_to_config_type(klass.config_type()), data.config_dict)
    if not result.success:
        raise DagsterInvalidConfigError(f"{name} ({data.module_name}.{data.class_name})",
                                        result.errors, data.config_dict)
    return f"{name}: {data.module_name}.{data.class_name} config is valid"


def k8s_instance() -> list[str]:
    """The instance schema (core Dagster), then each configured class's own schema."""
    from dagster._core.instance.ref import InstanceRef

    ref = InstanceRef.from_dir(str(DEPLOY), config_filename="dagster-k8s.yaml")
    lines = ["dagster-k8s.yaml: Dagster instance schema ok"]
    for name in ("run_launcher", "run_coordinator", "storage"):
        try:
            lines.append(_configurable(getattr(ref, f"{name}_data"), f"dagster-k8s.yaml {name}"))
        except Skipped as why:
            lines.append(f"skipped {why}")
    return lines


def celery_executor() -> str:
    try:
        from dagster_celery.cli import get_validated_config
    except ModuleNotFoundError as err:
        raise Skipped(f"dagster-celery.yaml: {err.name} is not installed") from err
    config = get_validated_config(str(DEPLOY / "dagster-celery.yaml"))
    return f"dagster-celery.yaml: Celery executor config is valid (broker {config['broker']})"


def accelerate_fsdp() -> str:
    try:
        from accelerate.commands.config.config_args import ClusterConfig
        from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    except ModuleNotFoundError as err:
        raise Skipped(f"accelerate-fsdp.yaml: {err.name} is not installed") from err

    path = DEPLOY / "accelerate-fsdp.yaml"
    ClusterConfig.from_yaml_file(str(path))  # refuses unknown top-level keys
    args = launch_command_parser().parse_args(["--config_file", str(path), "train.py"])
    args, *_ = _validate_launch_command(args)
    launch_flags = {a.dest for a in launch_command_parser()._actions}
    unknown = sorted(k for k in yaml.safe_load(path.read_text())["fsdp_config"]
                     if k not in launch_flags)
    if unknown:
        raise ValueError(f"accelerate-fsdp.yaml: fsdp_config keys accelerate does not know: "
                         f"{unknown}")
    return (f"accelerate-fsdp.yaml: {args.num_processes} processes, FSDP v{args.fsdp_version}, "
            f"wrap {args.fsdp_transformer_layer_cls_to_wrap}")


def main() -> int:
    global DEPLOY
    if len(sys.argv) > 1:  # another copy of these files, e.g. an edited one
        DEPLOY = Path(sys.argv[1]).resolve()
    os.environ.update({k: v for k, v in ENV.items() if k not in os.environ})
    checks: list[Callable[[], str | list[str]]] = [parse_all, k8s_instance, celery_executor,
                                                   accelerate_fsdp]
    failed = 0
    for check in checks:
        try:
            found = check()
        except Skipped as why:
            print(f"skipped {why}")
            continue
        except Exception as err:  # noqa: BLE001 - report every failing file, not only the first
            failed += 1
            print(f"FAILED  {type(err).__name__}: {err}")
            continue
        for line in [found] if isinstance(found, str) else found:
            print(line if line.startswith("skipped") else "ok      " + line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
