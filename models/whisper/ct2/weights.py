"""Whisper's weights out of a CTranslate2 model: its sizes, and tensors under transformers' names.

:func:`whisper_dims` reads the model's sizes from tensor shapes and the spec's attributes;
:func:`hf_state_dict` reverses the name mapping of ``ctranslate2/converters/transformers.py``
(``WhisperLoader``), giving the parameters of ``WhisperForConditionalGeneration``.
:func:`check_spec` refuses a model that is not Whisper or a variant the mapping does not cover.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from models.whisper.ct2.reader import CT2ImportError, CT2Model, scalar

WHISPER_SPEC = "WhisperSpec"
HEAD_DIM = 64
"""Every released Whisper size uses 64-wide attention heads; used only if num_heads is absent."""
MAX_TOKENIZER_LENGTH = 1024
"""What `openai/whisper-*` tokenizers declare (GPT-2's context); the decoder itself takes 448."""
WHISPER_GELU = 3
"""`ctranslate2.specs.common_spec.Activation.GELU`."""


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
    heads = scalar(model, f"{stack}/num_heads")
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


def check_spec(model: CT2Model) -> None:
    """Refuse models that are not Whisper, or Whisper variants the mapping does not cover."""
    if model.spec_name != WHISPER_SPEC:
        raise CT2ImportError(
            f"{model.path} holds a CTranslate2 '{model.spec_name}' model, not '{WHISPER_SPEC}': "
            "only Whisper models can be imported here."
        )
    activation = scalar(model, "decoder/activation")
    if activation not in (None, WHISPER_GELU):
        raise CT2ImportError(f"{model.path}: decoder activation {activation} is not GELU")
    if scalar(model, "decoder/scale_embeddings"):
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
            "is not supported by models/whisper/ct2/weights.py."
        )
    return mapper.out, tied
