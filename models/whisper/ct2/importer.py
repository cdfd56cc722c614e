"""Import a CTranslate2 / faster-whisper Whisper model as a transformers model.

The only real Whisper weights reachable offline ship in CTranslate2 format
(see `models.bundled`), but training needs a `WhisperForConditionalGeneration`.
The import reads CTranslate2's `model.bin` with a small reader of its own
(no CTranslate2 runtime needed: :mod:`models.whisper.ct2.reader`), reverses the
name mapping of `ctranslate2/converters/transformers.py` (`WhisperLoader`:
:mod:`models.whisper.ct2.weights`), rebuilds the tokenizer and configs
(:mod:`models.whisper.ct2.configs`), and, here, writes a directory that
`from_pretrained` loads offline: safetensors weights, `config.json`,
`generation_config.json`, the tokenizer, the feature extractor, and a
provenance file `rlfoundry_import.json`. Everything is checked in memory before
anything is written.

Example:
    >>> from models.bundled import bundled_whisper_dir
    >>> from models.whisper.ct2.importer import import_ct2_whisper
    >>> path = import_ct2_whisper(bundled_whisper_dir(), "/tmp/whisper-tiny.en")  # doctest: +SKIP
    >>> WhisperForConditionalGeneration.from_pretrained(path)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizerFast,
)

from models.whisper.ct2.configs import (
    check_vocabulary,
    generation_config,
    hf_config,
    load_tokenizer,
    read_ct2_config,
    special_tokens,
)
from models.whisper.ct2.reader import CT2ImportError, CT2Model, float_tensors, read_ct2_model
from models.whisper.ct2.weights import WhisperDims, check_spec, hf_state_dict, whisper_dims

PROVENANCE_FILE = "rlfoundry_import.json"


def build_model(
    config: WhisperConfig, state: dict[str, np.ndarray], dtype: torch.dtype
) -> WhisperForConditionalGeneration:
    """The HF model holding exactly `state`; fails if any parameter is missing or extra."""
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)).to(dtype) for k, v in state.items()}
    result = model.load_state_dict(tensors, strict=False, assign=True)
    expected_missing = {"proj_out.weight"} if config.tie_word_embeddings else set()
    if set(result.missing_keys) != expected_missing or result.unexpected_keys:
        raise CT2ImportError(
            "the mapped weights do not fit WhisperForConditionalGeneration: missing "
            f"{sorted(set(result.missing_keys) - expected_missing)}, unexpected "
            f"{sorted(result.unexpected_keys)}"
        )
    if config.tie_word_embeddings:
        model.proj_out.weight = model.model.decoder.embed_tokens.weight
    return model.eval()


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def provenance(src: Path, model: CT2Model, dtype: torch.dtype) -> dict[str, Any]:
    """What was imported, from where and when: written next to the weights."""
    return {
        "source": str(src.resolve()),
        "source_model_bin_sha256": sha256_file(model.path),
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "importer": "models.whisper.ct2.importer.import_ct2_whisper",
        "ct2_binary_version": model.binary_version,
        "ct2_spec": f"{model.spec_name} revision {model.spec_revision}",
        "source_dtypes": sorted(
            {t for n, t in model.stored_dtypes.items() if model.variables[n].ndim > 0}
        ),
        "dtype": str(dtype).removeprefix("torch."),
    }


def _check_dest(dest: Path, overwrite: bool) -> None:
    """Refuse to replace a non-empty destination unless asked to."""
    if dest.exists() and not overwrite and (not dest.is_dir() or any(dest.iterdir())):
        raise FileExistsError(f"{dest} already exists and is not empty; pass overwrite=True")


def _publish(tmp: Path, dest: Path) -> None:
    """Move the finished temp directory to `dest` by rename, replacing what was there."""
    if dest.is_dir() and not any(dest.iterdir()):
        dest.rmdir()
    if not dest.exists():
        tmp.rename(dest)
        return
    old = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.old")
    dest.rename(old)
    try:
        tmp.rename(dest)
    except BaseException:
        old.rename(dest)  # put the previous model back
        raise
    if old.is_dir():
        shutil.rmtree(old)
    else:
        old.unlink()


@dataclass(frozen=True)
class ImportPlan:
    """Everything an import writes, computed and checked in memory before any file is touched."""

    model: CT2Model
    dims: WhisperDims
    hf_model: WhisperForConditionalGeneration
    tokenizer: WhisperTokenizerFast


def plan_import(src: Path, dtype: torch.dtype) -> ImportPlan:
    """Read and check the CT2 directory and build the HF model in memory."""
    model = read_ct2_model(src / "model.bin")
    check_spec(model)
    tensors = float_tensors(model)
    dims = whisper_dims(model, tensors)
    state, tied = hf_state_dict(model, tensors, dims)
    ct2_config = read_ct2_config(src)
    tokenizer = load_tokenizer(src, dims.vocab_size)
    check_vocabulary(src, tokenizer)
    ids = special_tokens(tokenizer)
    hf_model = build_model(hf_config(dims, ids, ct2_config, tied), state, dtype)
    hf_model.generation_config = generation_config(dims, ids, ct2_config, tokenizer)
    return ImportPlan(model, dims, hf_model, tokenizer)


def _write(plan: ImportPlan, src: Path, out: Path, dtype: torch.dtype) -> None:
    """Write the model, processor and provenance into the (temporary) directory `out`."""
    plan.hf_model.save_pretrained(out)
    features = WhisperFeatureExtractor(feature_size=plan.dims.n_mels)
    WhisperProcessor(feature_extractor=features, tokenizer=plan.tokenizer).save_pretrained(out)
    record = provenance(src, plan.model, dtype)
    (out / PROVENANCE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def import_ct2_whisper(
    src: str | Path,
    dest: str | Path,
    *,
    dtype: torch.dtype = torch.float32,
    overwrite: bool = False,
) -> Path:
    """Convert a CTranslate2 / faster-whisper Whisper directory into a transformers one.

    `dest` then loads offline with `WhisperForConditionalGeneration.from_pretrained`
    and `WhisperProcessor.from_pretrained`. Everything is read and checked before
    anything is written; the output is built in a temp directory next to `dest` and
    renamed into place, so a failed import leaves nothing behind.

    Args:
        src: directory with `model.bin`, `tokenizer.json` and (optionally) CT2's
            `config.json` and vocabulary file.
        dest: directory to create (an existing empty directory is fine).
        dtype: floating dtype of the written weights (fp16 sources widen exactly to fp32).
        overwrite: replace `dest` if it exists and is not empty.

    Raises:
        FileNotFoundError: `model.bin` or `tokenizer.json` is missing.
        CT2ImportError: the model is truncated, not Whisper, of an unsupported binary
            version or quantization, or its tokenizer does not match it.
        FileExistsError: `dest` is not empty and `overwrite` is False.
    """
    src, dest = Path(src), Path(dest)
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype, got {dtype}")
    _check_dest(dest, overwrite)
    plan = plan_import(src, dtype)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.mkdir()
        _write(plan, src, tmp, dtype)
        _publish(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
