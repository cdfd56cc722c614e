import os
import uuid

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from resources.warehouse import Warehouse  # noqa: E402


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on one thread, for a module that asks for it (`pytestmark =
    pytest.mark.usefixtures("one_torch_thread")`): beside other torch processes on a 2-core
    machine two OpenMP threads spin (an SFT step of the tiny LLaVA took 1.5 s on two threads,
    0.08 s on one; the video QC module 90 s at load 3.5, 8 s on one)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh $RLFOUNDRY_HOME (and $DAGSTER_HOME in it) for a CLI run."""
    monkeypatch.setenv("RLFOUNDRY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    return tmp_path / "home"


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


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    """One real Label Studio for the session (a fresh database takes ~65 s to start); each
    test works in projects of its own. Skipped only when its venv is missing outside CI."""
    from pipelines import labelstudio_server as server

    if server.executable() is None:
        reason = (f"no Label Studio venv at {server.venv_dir()}: build it with "
                  "`make labelstudio-setup` (`make test` does)")
        if IN_CI:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("labelstudio")
    settings = server.Settings(
        port=server.free_port(), data_dir=root / "data", username="qc-admin@rlfoundry.test",
        password="qc-admin-pw", token="rlfoundry-test-token", document_root=root / "docroot")
    (root / "docroot").mkdir()
    with server.running(settings, timeout_s=300) as srv:
        yield srv
