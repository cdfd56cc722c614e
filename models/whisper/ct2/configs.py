"""The files around a CTranslate2 Whisper's weights, as transformers wants them.

CTranslate2's ``config.json`` (suppressed ids, alignment heads, language ids), its tokenizer
(padded with Whisper's timestamp tokens and checked against CT2's vocabulary file), and from
them transformers' ``WhisperConfig`` and ``GenerationConfig`` with the same ids and suppressions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import GenerationConfig, WhisperConfig, WhisperTokenizerFast

from models.whisper.ct2.reader import CT2ImportError
from models.whisper.ct2.weights import WhisperDims

MULTILINGUAL_MIN_VOCAB = 51865
"""Whisper's own rule (and CTranslate2's): English-only models have 51864 tokens."""
MAX_TOKENIZER_LENGTH = 1024
"""What `openai/whisper-*` tokenizers declare (GPT-2's context); the decoder itself takes 448."""


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
