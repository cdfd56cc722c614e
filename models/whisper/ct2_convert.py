"""A transformers Whisper checkpoint as a CTranslate2 model: converted once, cached by content.

:func:`converted_whisper` runs CTranslate2's own converter
(``ctranslate2.converters.TransformersConverter``, offline: it only reads the folder) into
``<cache_dir>/<folder name>-<digest>``, where the digest covers the checkpoint's weights,
configs and tokenizer files (:func:`checkpoint_digest`). A second call with the same content
finds the folder and converts nothing; a checkpoint whose weights change gets a new folder.
The conversion is written to a temporary folder and renamed into place, so a crash leaves
nothing half-written, and two processes converting at once both end with one complete copy.

Weights keep the checkpoint's dtype (float32 for the bundled tiny.en and for training
checkpoints); the backend chooses its compute type when it loads them
(:mod:`models.whisper.ct2_nbest`). This is the opposite direction of
:mod:`models.whisper.ct2`, which imports CTranslate2 weights as a transformers model.

Example:
    >>> from models.testing import build_tiny_whisper
    >>> import tempfile
    >>> src = build_tiny_whisper(tempfile.mkdtemp())
    >>> out = converted_whisper(src, tempfile.mkdtemp())
    >>> sorted(p.name for p in out.iterdir())
    ['config.json', 'model.bin', 'rlfoundry_ct2.json', 'vocabulary.json']
    >>> converted_whisper(src, out.parent) == out  # cached: nothing converted
    True
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

PROVENANCE_FILE = "rlfoundry_ct2.json"
_CONTENT_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")
"""Files that can change a conversion: weights, configs, tokenizer. Optimizer and RNG states
(.pt, .pth) of a training checkpoint do not, and are not read."""


def checkpoint_digest(checkpoint: str | Path) -> str:
    """Hex sha256 over the names and bytes of a checkpoint folder's weight, config and tokenizer
    files (top level, sorted by name)."""
    folder = Path(checkpoint)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in _CONTENT_SUFFIXES
                   and p.name != PROVENANCE_FILE)
    if not any(p.suffix in (".safetensors", ".bin") for p in files):
        raise FileNotFoundError(
            f"{folder} holds no weights (*.safetensors or *.bin); pass a transformers Whisper "
            "checkpoint folder")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    return digest.hexdigest()


def local_checkpoint(path_or_id: str | Path) -> Path:
    """The folder of a local checkpoint, or of a hub id's snapshot in the local HF cache."""
    path = Path(path_or_id).expanduser()
    if path.is_dir():
        return path.resolve()
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(path_or_id)))  # honours HF_HUB_OFFLINE


def converted_whisper(
    checkpoint: str | Path, cache_dir: str | Path, *, quantization: str | None = None
) -> Path:
    """The CTranslate2 folder of a transformers Whisper checkpoint, converting it on first use.

    `quantization` (None: the checkpoint's dtype) is applied at conversion time and is part of
    the cache key; leaving it None and choosing a compute type at load time is usually better.
    """
    src = local_checkpoint(checkpoint)
    digest = checkpoint_digest(src)
    key = digest[:16] + (f"-{quantization}" if quantization else "")
    dest = Path(cache_dir) / f"{src.name}-{key}"
    if (dest / PROVENANCE_FILE).is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        _convert(src, digest, tmp, quantization)
        try:
            tmp.rename(dest)
        except OSError:
            if not (dest / PROVENANCE_FILE).is_file():  # not another process's finished copy
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return dest


def _convert(src: Path, digest: str, out: Path, quantization: str | None) -> None:
    """Run CTranslate2's converter into `out`, then record where it came from (written last)."""
    import ctranslate2

    converter = ctranslate2.converters.TransformersConverter(str(src))
    converter.convert(str(out), quantization=quantization, force=True)
    (out / PROVENANCE_FILE).write_text(json.dumps({
        "source": str(src),
        "source_digest": digest,
        "converted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "converter": "ctranslate2.converters.TransformersConverter",
        "ctranslate2": ctranslate2.__version__,
        "quantization": quantization,
    }, indent=2) + "\n", encoding="utf-8")
