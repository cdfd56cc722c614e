"""The deployment files in deploy/ stay valid for the pinned Dagster and accelerate (their own
config readers, offline); the dagster-k8s, dagster-postgres and dagster-celery parts are checked
where those packages are installed (`python deploy/validate.py` says which ran)."""

import importlib.util
import os
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


@pytest.fixture(scope="module")
def validate():
    spec = importlib.util.spec_from_file_location("deploy_validate", DEPLOY / "validate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _env(monkeypatch, validate):
    for key, value in validate.ENV.items():
        monkeypatch.setenv(key, os.environ.get(key, value))


def test_every_yaml_file_parses(validate):
    assert validate.parse_all().startswith(f"{len(list(DEPLOY.glob('*.yaml')))} YAML files")


def test_the_kubernetes_dagster_yaml_passes_dagsters_instance_schema(validate):
    lines = validate.k8s_instance()
    assert lines[0] == "dagster-k8s.yaml: Dagster instance schema ok"
    assert any("QueuedRunCoordinator config is valid" in line for line in lines)


def test_the_fsdp_config_passes_accelerates_reader(validate):
    assert "FSDP v2" in validate.accelerate_fsdp()


def test_the_celery_executor_config_is_valid_where_dagster_celery_is_installed(validate):
    pytest.importorskip("dagster_celery")
    assert "is valid" in validate.celery_executor()
