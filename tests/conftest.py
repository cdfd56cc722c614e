import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from resources.warehouse import Warehouse  # noqa: E402


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    return Warehouse(root=str(tmp_path / "warehouse"))


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory):
    from models.testing import build_tiny_whisper

    return build_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper"))
