"""A reader of CTranslate2's ``model.bin`` (binary versions 4-6), no CTranslate2 runtime needed.

:func:`read_ct2_model` parses the file into a :class:`CT2Model` (every variable in its stored
dtype, aliases kept); :func:`float_tensors` gives its weight tensors as float32, undoing
CTranslate2's int8 / int16 quantization. Damage (a truncated download, an unknown dtype, a size
that does not add up) raises :class:`CT2ImportError` naming the file and the fix.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SUPPORTED_BINARY_VERSIONS = (4, 5, 6)
"""model.bin layouts read here: 4 introduced dtype ids; 5 and 6 keep the same layout."""

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


# --------------------------------------------------------------------------- model.bin


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
            "models/whisper/ct2/reader.py."
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


def scalar(model: CT2Model, name: str) -> int | None:
    """An integer attribute stored as a 0-d variable (e.g. `encoder/num_heads`), if present."""
    value = model.get(name)
    return None if value is None else int(value.reshape(()))


def float_tensors(model: CT2Model) -> dict[str, np.ndarray]:
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
