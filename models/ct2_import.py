"""Import a CTranslate2 / faster-whisper Whisper model as a transformers model.

The only real Whisper weights reachable offline ship in CTranslate2 format
(see `models.bundled`), but training needs a `WhisperForConditionalGeneration`.
This module reads CTranslate2's `model.bin` with a small reader of its own
(no CTranslate2 runtime needed), reverses the name mapping of
`ctranslate2/converters/transformers.py` (`WhisperLoader`), and writes a
directory that `from_pretrained` loads offline: safetensors weights,
`config.json`, `generation_config.json`, the tokenizer, the feature extractor,
and a provenance file `rlfoundry_import.json`.

Example:
    >>> from models.bundled import bundled_whisper_dir
    >>> from models.ct2_import import import_ct2_whisper
    >>> path = import_ct2_whisper(bundled_whisper_dir(), "/tmp/whisper-tiny.en")  # doctest: +SKIP
    >>> WhisperForConditionalGeneration.from_pretrained(path)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizerFast,
)

PROVENANCE_FILE = "rlfoundry_import.json"
SUPPORTED_BINARY_VERSIONS = (4, 5, 6)
"""model.bin layouts read here: 4 introduced dtype ids; 5 and 6 keep the same layout."""

WHISPER_SPEC = "WhisperSpec"
MULTILINGUAL_MIN_VOCAB = 51865
"""Whisper's own rule (and CTranslate2's): English-only models have 51864 tokens."""
HEAD_DIM = 64
"""Every released Whisper size uses 64-wide attention heads; used only if num_heads is absent."""
MAX_TOKENIZER_LENGTH = 1024
"""What `openai/whisper-*` tokenizers declare (GPT-2's context); the decoder itself takes 448."""
WHISPER_GELU = 3
"""`ctranslate2.specs.common_spec.Activation.GELU`."""

_CT2_DTYPES: dict[int, str] = {
    0: "float32",
    1: "int8",
    2: "int16",
    3: "int32",
    4: "float16",
    5: "bfloat16",
}
_NUMPY_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "int8": np.dtype("i1"),
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "float16": np.dtype("<f2"),
    "bfloat16": np.dtype("<u2"),  # raw bits; widened to float32 on read
}


class CT2ImportError(ValueError):
    """A CTranslate2 directory that cannot be imported; the message names the file and the fix."""


# --------------------------------------------------------------------------- model.bin reader


@dataclass(frozen=True)
class CT2Model:
    """The parsed content of a CTranslate2 `model.bin`.

    `variables` keeps each array in its stored dtype (bfloat16 already widened to
    float32); `aliases` maps a name to the variable it shares storage with.
    """

    path: Path
    binary_version: int
    spec_name: str
    spec_revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]
    stored_dtypes: dict[str, str]

    def get(self, name: str) -> np.ndarray | None:
        """The array stored under `name` or under the variable it is an alias of."""
        return self.variables.get(self.aliases.get(name, name))

    def names(self) -> set[str]:
        """Every variable name, aliases included."""
        return set(self.variables) | set(self.aliases)


class _Cursor:
    """Little-endian reads over bytes that fail with the file name and offset when data runs out."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = memoryview(data)
        self.path = path
        self.offset = 0

    def take(self, size: int, what: str) -> memoryview:
        """The next `size` bytes; a clear error if the file ends first (a truncated download)."""
        end = self.offset + size
        if end > len(self.data):
            raise CT2ImportError(
                f"{self.path} is truncated: needed {size} bytes for {what} at byte "
                f"{self.offset}, but the file has {len(self.data)} bytes. Re-download or "
                "re-convert the model."
            )
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def unpack(self, fmt: str, what: str) -> int:
        """One integer of struct format `fmt`."""
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        """A CTranslate2 string: u16 length including the trailing NUL, then the bytes."""
        length = self.unpack("H", what)
        raw = bytes(self.take(length, what))
        return raw.rstrip(b"\0").decode("utf-8")


def _read_variable(cur: _Cursor) -> tuple[str, np.ndarray, str]:
    """One variable record: name, array (in its stored dtype) and the stored dtype name."""
    name = cur.string("a variable name")
    rank = cur.unpack("B", f"the rank of {name}")
    shape = tuple(cur.unpack("I", f"the shape of {name}") for _ in range(rank))
    type_id = cur.unpack("B", f"the dtype of {name}")
    if type_id not in _CT2_DTYPES:
        raise CT2ImportError(
            f"{cur.path}: variable {name} has unknown dtype id {type_id}; "
            "this importer knows ids 0-5 (CTranslate2 binary version 6)."
        )
    dtype_name = _CT2_DTYPES[type_id]
    num_bytes = cur.unpack("I", f"the size of {name}")
    np_dtype = _NUMPY_DTYPES[dtype_name]
    expected = int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize
    if num_bytes != expected:
        raise CT2ImportError(
            f"{cur.path}: variable {name} of shape {shape} and dtype {dtype_name} should "
            f"take {expected} bytes but declares {num_bytes}; the file is damaged."
        )
    array = np.frombuffer(cur.take(num_bytes, f"the data of {name}"), dtype=np_dtype)
    array = array.reshape(shape)
    if dtype_name == "bfloat16":
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return name, array, dtype_name


def read_ct2_model(path: str | Path) -> CT2Model:
    """Parse a CTranslate2 `model.bin` (binary versions 4-6) without the CTranslate2 runtime.

    Raises `FileNotFoundError` if the file is missing and `CT2ImportError` if it is
    truncated, damaged or of an unsupported binary version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: a CTranslate2 model directory has one")
    cur = _Cursor(path.read_bytes(), path)
    version = cur.unpack("I", "the binary version")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise CT2ImportError(
            f"{path} has CTranslate2 binary version {version}; this importer reads versions "
            f"{SUPPORTED_BINARY_VERSIONS[0]}-{SUPPORTED_BINARY_VERSIONS[-1]}. Re-convert the "
            "model with a current ctranslate2 (ct2-transformers-converter) or extend "
            "models/ct2_import.py."
        )
    spec_name = cur.string("the spec name")
    spec_revision = cur.unpack("I", "the spec revision")
    variables: dict[str, np.ndarray] = {}
    stored: dict[str, str] = {}
    for _ in range(cur.unpack("I", "the variable count")):
        name, array, dtype_name = _read_variable(cur)
        variables[name] = array
        stored[name] = dtype_name
    aliases: dict[str, str] = {}
    for _ in range(cur.unpack("I", "the alias count")):
        alias = cur.string("an alias name")
        aliases[alias] = cur.string(f"the target of alias {alias}")
    return CT2Model(path, version, spec_name, spec_revision, variables, aliases, stored)


# --------------------------------------------------------------------------- tensors


def _dequantize(model: CT2Model, name: str) -> np.ndarray:
    """Variable `name` as float32, undoing CTranslate2's int8 (per row) or int16 (global) scale."""
    value = model.get(name)
    assert value is not None
    if value.dtype.kind == "f":
        return value.astype(np.float32)
    if model.get(f"{name}_zero") is not None:
        raise CT2ImportError(
            f"{model.path}: {name} is AWQ-quantized (it has {name}_zero); import a float16, "
            "float32 or int8 conversion instead (ct2-transformers-converter --quantization "
            "float16)."
        )
    scale = model.get(f"{name}_scale")
    if scale is None:
        raise CT2ImportError(
            f"{model.path}: {name} is stored as {value.dtype} without {name}_scale, so it "
            "cannot be dequantized; re-convert with --quantization float16 or float32."
        )
    scale = scale.astype(np.float32)
    if scale.ndim == 1:  # int8: one scale per output row (conv weights are scaled per out channel)
        scale = scale.reshape((-1,) + (1,) * (value.ndim - 1))
    return value.astype(np.float32) / scale


def _scalar(model: CT2Model, name: str) -> int | None:
    """An integer attribute stored as a 0-d variable (e.g. `encoder/num_heads`), if present."""
    value = model.get(name)
    return None if value is None else int(value.reshape(()))


def _float_tensors(model: CT2Model) -> dict[str, np.ndarray]:
    """Every weight tensor (rank ≥ 1, not a quantization scale) as float32, aliases resolved.

    Each stored variable is converted once; an alias shares its target's array (and
    so its target's scale: CTranslate2 aliases before it quantizes).
    """
    out: dict[str, np.ndarray] = {}
    for name, value in model.variables.items():
        if value.ndim > 0 and not name.endswith(("_scale", "_zero")):
            out[name] = _dequantize(model, name)
    for alias, target in model.aliases.items():
        if target in out:
            out[alias] = out[target]
    return out


# --------------------------------------------------------------------------- dimensions


@dataclass(frozen=True)
class WhisperDims:
    """The sizes of a Whisper model, read from tensor shapes and the spec's attributes."""

    n_mels: int
    d_model: int
    vocab_size: int
    encoder_layers: int
    decoder_layers: int
    encoder_heads: int
    decoder_heads: int
    encoder_ffn_dim: int
    decoder_ffn_dim: int
    max_source_positions: int
    max_target_positions: int


def _count_layers(names: set[str], stack: str) -> int:
    """How many `{stack}/layer_N/` blocks there are."""
    pattern = re.compile(rf"^{stack}/layer_(\d+)/")
    indices = {int(m.group(1)) for n in names if (m := pattern.match(n))}
    if indices != set(range(len(indices))):
        raise CT2ImportError(f"{stack} layers are not numbered 0..N-1: {sorted(indices)}")
    return len(indices)


def _heads(model: CT2Model, stack: str, d_model: int) -> int:
    """Attention heads of a stack: the spec's `{stack}/num_heads`, else d_model / 64."""
    heads = _scalar(model, f"{stack}/num_heads")
    if heads is None:
        heads = d_model // HEAD_DIM
    if heads <= 0 or d_model % heads:
        raise CT2ImportError(f"{model.path}: {stack} has {heads} heads for d_model {d_model}")
    return heads


def _require(tensors: dict[str, np.ndarray], model: CT2Model, name: str) -> np.ndarray:
    """A tensor that every Whisper spec has; a clear error naming it if missing."""
    if name not in tensors:
        raise CT2ImportError(
            f"{model.path} has no variable {name}: it is not a complete CTranslate2 Whisper model."
        )
    return tensors[name]


def whisper_dims(model: CT2Model, tensors: dict[str, np.ndarray]) -> WhisperDims:
    """Infer the Whisper sizes from tensor shapes and the stored head counts."""

    def shape(name: str) -> tuple[int, ...]:
        return _require(tensors, model, name).shape

    conv1 = shape("encoder/conv1/weight")  # [d_model, n_mels, kernel]
    d_model = conv1[0]
    names = model.names()
    return WhisperDims(
        n_mels=conv1[1],
        d_model=d_model,
        vocab_size=shape("decoder/embeddings/weight")[0],
        encoder_layers=_count_layers(names, "encoder"),
        decoder_layers=_count_layers(names, "decoder"),
        encoder_heads=_heads(model, "encoder", d_model),
        decoder_heads=_heads(model, "decoder", d_model),
        encoder_ffn_dim=shape("encoder/layer_0/ffn/linear_0/weight")[0],
        decoder_ffn_dim=shape("decoder/layer_0/ffn/linear_0/weight")[0],
        max_source_positions=shape("encoder/position_encodings/encodings")[0],
        max_target_positions=shape("decoder/position_encodings/encodings")[0],
    )


def _check_spec(model: CT2Model) -> None:
    """Refuse models that are not Whisper, or Whisper variants the mapping does not cover."""
    if model.spec_name != WHISPER_SPEC:
        raise CT2ImportError(
            f"{model.path} holds a CTranslate2 '{model.spec_name}' model, not '{WHISPER_SPEC}': "
            "only Whisper models can be imported here."
        )
    activation = _scalar(model, "decoder/activation")
    if activation not in (None, WHISPER_GELU):
        raise CT2ImportError(f"{model.path}: decoder activation {activation} is not GELU")
    if _scalar(model, "decoder/scale_embeddings"):
        raise CT2ImportError(f"{model.path}: scaled embeddings are not Whisper's")


# --------------------------------------------------------------------------- name mapping


class _Mapper:
    """Reverses CTranslate2's Whisper naming, recording which tensors it used."""

    def __init__(self, model: CT2Model, tensors: dict[str, np.ndarray]) -> None:
        self.model = model
        self.tensors = tensors
        self.used: set[str] = set()
        self.out: dict[str, np.ndarray] = {}

    def take(self, name: str, default_shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Tensor `name`; zeros of `default_shape` if CT2 left an optional bias out."""
        if name in self.tensors:
            self.used.add(name)
            return self.tensors[name]
        if default_shape is not None:
            return np.zeros(default_shape, dtype=np.float32)
        return _require(self.tensors, self.model, name)

    def linear(self, ct2: str, hf: str, bias: bool = True) -> None:
        """A linear (or conv) layer: weight, and bias unless HF has none."""
        weight = self.take(f"{ct2}/weight")
        self.out[f"{hf}.weight"] = weight
        if bias:
            self.out[f"{hf}.bias"] = self.take(f"{ct2}/bias", (weight.shape[0],))

    def layer_norm(self, ct2: str, hf: str) -> None:
        """A layer norm: CT2's gamma/beta are HF's weight/bias."""
        self.out[f"{hf}.weight"] = self.take(f"{ct2}/gamma")
        self.out[f"{hf}.bias"] = self.take(f"{ct2}/beta")

    def split(self, ct2: str, hf_names: list[str]) -> None:
        """A fused projection split by rows into equal parts; HF's `k_proj` has no bias.

        Dropping the key bias is exact: it adds the same q·b to every key of a query,
        which softmax ignores. CTranslate2 writes zeros there anyway.
        """
        weight = self.take(f"{ct2}/weight")
        bias = self.take(f"{ct2}/bias", (weight.shape[0],))
        parts = len(hf_names)
        for hf, w, b in zip(hf_names, np.split(weight, parts), np.split(bias, parts), strict=True):
            self.out[f"{hf}.weight"] = w
            if not hf.endswith("k_proj"):
                self.out[f"{hf}.bias"] = b

    def self_attention(self, ct2: str, hf: str) -> None:
        """Self-attention: fused q,k,v in linear_0, output in linear_1."""
        self.split(f"{ct2}/linear_0", [f"{hf}.q_proj", f"{hf}.k_proj", f"{hf}.v_proj"])
        self.linear(f"{ct2}/linear_1", f"{hf}.out_proj")

    def cross_attention(self, ct2: str, hf: str) -> None:
        """Cross-attention: q in linear_0, fused k,v in linear_1, output in linear_2."""
        self.linear(f"{ct2}/linear_0", f"{hf}.q_proj")
        self.split(f"{ct2}/linear_1", [f"{hf}.k_proj", f"{hf}.v_proj"])
        self.linear(f"{ct2}/linear_2", f"{hf}.out_proj")

    def ffn(self, ct2: str, hf: str) -> None:
        """Feed-forward block: linear_0/1 are fc1/fc2, its layer norm is `final_layer_norm`."""
        self.linear(f"{ct2}/linear_0", f"{hf}.fc1")
        self.linear(f"{ct2}/linear_1", f"{hf}.fc2")
        self.layer_norm(f"{ct2}/layer_norm", f"{hf}.final_layer_norm")

    def stack_common(self, stack: str) -> None:
        """Positions and the final layer norm, shared by encoder and decoder."""
        hf = f"model.{stack}"
        positions = self.take(f"{stack}/position_encodings/encodings")
        self.out[f"{hf}.embed_positions.weight"] = positions
        self.layer_norm(f"{stack}/layer_norm", f"{hf}.layer_norm")

    def encoder(self, layers: int) -> None:
        """The audio encoder: two convolutions, then pre-norm transformer layers."""
        self.linear("encoder/conv1", "model.encoder.conv1")
        self.linear("encoder/conv2", "model.encoder.conv2")
        self.stack_common("encoder")
        for i in range(layers):
            ct2, hf = f"encoder/layer_{i}", f"model.encoder.layers.{i}"
            self.self_attention(f"{ct2}/self_attention", f"{hf}.self_attn")
            self.layer_norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
            self.ffn(f"{ct2}/ffn", hf)

    def decoder(self, layers: int) -> None:
        """The text decoder: token embeddings, then self-, cross-attention and FFN per layer."""
        self.out["model.decoder.embed_tokens.weight"] = self.take("decoder/embeddings/weight")
        self.stack_common("decoder")
        for i in range(layers):
            ct2, hf = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
            self.self_attention(f"{ct2}/self_attention", f"{hf}.self_attn")
            self.layer_norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
            self.cross_attention(f"{ct2}/attention", f"{hf}.encoder_attn")
            self.layer_norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
            self.ffn(f"{ct2}/ffn", hf)

    def projection(self) -> bool:
        """The output projection; True when it is tied to the token embeddings (always, so far)."""
        embeddings = self.out["model.decoder.embed_tokens.weight"]
        projection = self.take("decoder/projection/weight", embeddings.shape)
        bias = self.tensors.get("decoder/projection/bias")
        if bias is not None:
            self.used.add("decoder/projection/bias")
            if np.any(bias):
                raise CT2ImportError(
                    f"{self.model.path}: decoder/projection/bias is non-zero, but Whisper's "
                    "output projection has no bias in transformers."
                )
        tied = self.model.aliases.get("decoder/projection/weight") == "decoder/embeddings/weight"
        if tied or np.array_equal(projection, embeddings):
            return True
        self.out["proj_out.weight"] = projection
        return False

    def unused(self) -> list[str]:
        """Weight tensors this mapping did not place: a spec it does not understand."""
        return sorted(set(self.tensors) - self.used)


def hf_state_dict(
    model: CT2Model, tensors: dict[str, np.ndarray], dims: WhisperDims
) -> tuple[dict[str, np.ndarray], bool]:
    """HF Whisper parameters (float32 numpy) and whether the output projection is tied."""
    mapper = _Mapper(model, tensors)
    mapper.encoder(dims.encoder_layers)
    mapper.decoder(dims.decoder_layers)
    tied = mapper.projection()
    if unused := mapper.unused():
        raise CT2ImportError(
            f"{model.path} has tensors a Whisper import does not know: {unused[:5]}"
            f"{' ...' if len(unused) > 5 else ''}; this spec revision ({model.spec_revision}) "
            "is not supported by models/ct2_import.py."
        )
    return mapper.out, tied


# --------------------------------------------------------------------------- side files


def read_ct2_config(src: Path) -> dict[str, Any]:
    """CTranslate2's `config.json` (suppressed ids, alignment heads, language ids), or {}."""
    path = src / "config.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CT2ImportError(f"{path} is not valid JSON ({exc}); re-convert the model.") from exc


def _ct2_vocabulary(src: Path) -> list[str] | None:
    """The token list CTranslate2 decodes with (vocabulary.json or vocabulary.txt), if any."""
    if (path := src / "vocabulary.json").is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    if (path := src / "vocabulary.txt").is_file():
        return path.read_text(encoding="utf-8").split("\n")[:-1]
    return None


def timestamp_tokens(count: int) -> list[str]:
    """Whisper's timestamp tokens `<|0.00|>`, `<|0.02|>`, ... named as CTranslate2 and OpenAI do."""
    return ["<|%.2f|>" % (i * 0.02) for i in range(count)]


def load_tokenizer(src: Path, vocab_size: int) -> WhisperTokenizerFast:
    """The fast tokenizer from the CT2 `tokenizer.json`, padded with timestamp tokens to the model.

    faster-whisper's `tokenizer.json` stops at `<|notimestamps|>`; the model's extra rows
    are the 1501 timestamp tokens, added here as HF's own Whisper tokenizers have them
    (not special), so every id the model can emit decodes.
    """
    path = src / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: the import needs the tokenizer. faster-whisper models "
            "ship it; when converting, pass copy_files=['tokenizer.json'] "
            "(ct2-transformers-converter --copy_files tokenizer.json)."
        )
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(path))
    missing = vocab_size - len(tokenizer)
    if missing < 0:
        raise CT2ImportError(
            f"{path} has {len(tokenizer)} tokens but the model only {vocab_size}: "
            "the tokenizer belongs to another model."
        )
    if missing:
        tokenizer.add_tokens(timestamp_tokens(missing), special_tokens=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.model_max_length = MAX_TOKENIZER_LENGTH
    return tokenizer


def check_vocabulary(src: Path, tokenizer: WhisperTokenizerFast) -> None:
    """Refuse a tokenizer whose ids do not name the same tokens as CT2's vocabulary."""
    vocab = _ct2_vocabulary(src)
    if vocab is None:
        return
    ours = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    if len(vocab) != len(ours):
        raise CT2ImportError(
            f"{src}: the vocabulary file has {len(vocab)} tokens, tokenizer.json (+ timestamps) "
            f"{len(ours)}; they do not belong to the same model."
        )
    bad = [i for i, (a, b) in enumerate(zip(vocab, ours, strict=True)) if a != b]
    if bad:
        i = bad[0]
        raise CT2ImportError(
            f"{src}: tokenizer.json disagrees with the vocabulary file on {len(bad)} ids "
            f"(first: id {i} is {ours[i]!r} vs {vocab[i]!r}); they do not belong together."
        )


# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class SpecialTokens:
    """The ids Whisper's decoding prompt is made of."""

    eot: int
    sot: int
    no_timestamps: int
    prev_sot: int
    transcribe: int
    translate: int


def special_tokens(tokenizer: WhisperTokenizerFast) -> SpecialTokens:
    """Whisper's control tokens, looked up by name so English and multilingual ids both fit."""

    def tid(token: str) -> int:
        value = tokenizer.convert_tokens_to_ids(token)
        if value is None or (value == tokenizer.unk_token_id and token != tokenizer.unk_token):
            raise CT2ImportError(f"the tokenizer has no {token}: it is not a Whisper tokenizer")
        return int(value)

    return SpecialTokens(
        eot=tid("<|endoftext|>"),
        sot=tid("<|startoftranscript|>"),
        no_timestamps=tid("<|notimestamps|>"),
        prev_sot=tid("<|startofprev|>"),
        transcribe=tid("<|transcribe|>"),
        translate=tid("<|translate|>"),
    )


def _id_list(value: Any) -> list[int]:
    """A JSON list of ids (CT2 writes null when the source had none) as a list of ints."""
    return [int(v) for v in value or []]


def hf_config(
    dims: WhisperDims, ids: SpecialTokens, ct2_config: dict[str, Any], tied: bool
) -> WhisperConfig:
    """The transformers model config, with the same ids and suppressions as the CT2 model."""
    return WhisperConfig(
        vocab_size=dims.vocab_size,
        num_mel_bins=dims.n_mels,
        d_model=dims.d_model,
        encoder_layers=dims.encoder_layers,
        decoder_layers=dims.decoder_layers,
        encoder_attention_heads=dims.encoder_heads,
        decoder_attention_heads=dims.decoder_heads,
        encoder_ffn_dim=dims.encoder_ffn_dim,
        decoder_ffn_dim=dims.decoder_ffn_dim,
        max_source_positions=dims.max_source_positions,
        max_target_positions=dims.max_target_positions,
        activation_function="gelu",
        scale_embedding=False,
        tie_word_embeddings=tied,
        decoder_start_token_id=ids.sot,
        bos_token_id=ids.sot,
        eos_token_id=ids.eot,
        pad_token_id=ids.eot,
        suppress_tokens=_id_list(ct2_config.get("suppress_ids")),
        begin_suppress_tokens=_id_list(ct2_config.get("suppress_ids_begin")),
        architectures=["WhisperForConditionalGeneration"],
    )


def _language_ids(
    tokenizer: WhisperTokenizerFast, ct2_config: dict[str, Any], ids: SpecialTokens
) -> dict[str, int]:
    """`<|xx|>` → id for a multilingual model, from CT2's `lang_ids` or the tokens after sot."""
    lang_ids = _id_list(ct2_config.get("lang_ids")) or list(range(ids.sot + 1, ids.translate))
    return {tokenizer.convert_ids_to_tokens(i): i for i in lang_ids}


def generation_config(
    dims: WhisperDims,
    ids: SpecialTokens,
    ct2_config: dict[str, Any],
    tokenizer: WhisperTokenizerFast,
) -> GenerationConfig:
    """A generation config shaped like the ones on `openai/whisper-*` model cards.

    English-only models (vocab < 51865) force `<|notimestamps|>` after sot, as
    `openai/whisper-tiny.en` does; multilingual ones leave the language to detection
    and transcribe, and get `lang_to_id` / `task_to_id`.
    """
    multilingual = dims.vocab_size >= MULTILINGUAL_MIN_VOCAB
    fields: dict[str, Any] = dict(
        decoder_start_token_id=ids.sot,
        bos_token_id=ids.sot,
        eos_token_id=ids.eot,
        pad_token_id=ids.eot,
        max_length=dims.max_target_positions,
        no_timestamps_token_id=ids.no_timestamps,
        prev_sot_token_id=ids.prev_sot,
        max_initial_timestamp_index=50,
        return_timestamps=False,
        is_multilingual=multilingual,
        suppress_tokens=_id_list(ct2_config.get("suppress_ids")),
        begin_suppress_tokens=_id_list(ct2_config.get("suppress_ids_begin")),
    )
    if ct2_config.get("alignment_heads"):
        fields["alignment_heads"] = [[int(a), int(b)] for a, b in ct2_config["alignment_heads"]]
    if multilingual:
        fields["forced_decoder_ids"] = [[1, None], [2, ids.transcribe]]
        fields["lang_to_id"] = _language_ids(tokenizer, ct2_config, ids)
        fields["task_to_id"] = {"transcribe": ids.transcribe, "translate": ids.translate}
    else:
        fields["forced_decoder_ids"] = [[1, ids.no_timestamps]]
    return GenerationConfig(**fields)


# --------------------------------------------------------------------------- writing


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
        "importer": "models.ct2_import.import_ct2_whisper",
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
    _check_spec(model)
    tensors = _float_tensors(model)
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
