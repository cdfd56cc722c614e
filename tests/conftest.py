import os
import uuid

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from resources.warehouse import Warehouse  # noqa: E402


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    return Warehouse(root=str(tmp_path / "warehouse"))


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory) -> str:
    """One SQLite MLflow store for the session (a new one migrates for ~2-3 s)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def registry(mlflow_store):
    """A model registry of its own per test: a unique prefix in the shared store."""
    from resources.registry import ModelRegistry

    return ModelRegistry(tracking_uri=mlflow_store, name_prefix=f"t{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory):
    from models.testing import build_tiny_whisper

    return build_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper"))
