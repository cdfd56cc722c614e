"""Builders of tiny, randomly initialised models for tests and examples.

They prove code paths, not quality: every test that needs a model builds one
here, offline, in well under a second.

Example:
    >>> from models.testing import build_tiny_whisper
    >>> import tempfile
    >>> path = build_tiny_whisper(tempfile.mkdtemp())
    >>> (path / "config.json").exists()
    True
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizerFast,
)

from models.bundled import bundled_whisper_dir


def load_bundled_tokenizer() -> WhisperTokenizerFast:
    """The real Whisper English tokenizer shipped with the bundled tiny.en weights."""
    src = bundled_whisper_dir()
    return WhisperTokenizerFast(tokenizer_file=str(src / "tokenizer.json"))


def tiny_whisper_config(vocab_size: int, **overrides) -> WhisperConfig:
    """A 2-layer, 16-wide Whisper config with the real English token ids."""
    cfg = dict(
        vocab_size=vocab_size,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        num_mel_bins=80,
        max_source_positions=1500,
        max_target_positions=64,
        decoder_start_token_id=50257,
        pad_token_id=50256,
        bos_token_id=50257,
        eos_token_id=50256,
        suppress_tokens=[],
        begin_suppress_tokens=[220, 50256],
    )
    cfg.update(overrides)
    return WhisperConfig(**cfg)


def build_tiny_whisper(dest: str | Path, seed: int = 0, **overrides) -> Path:
    """Write a tiny random English Whisper (model, tokenizer, feature extractor) to `dest`."""
    dest = Path(dest)
    tokenizer = load_bundled_tokenizer()
    torch.manual_seed(seed)
    config = tiny_whisper_config(len(tokenizer), **overrides)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=50257,
        eos_token_id=50256,
        pad_token_id=50256,
        bos_token_id=50257,
        max_length=config.max_target_positions,
        forced_decoder_ids=[[1, 50362]],  # <|notimestamps|>, as tiny.en does
        begin_suppress_tokens=[220, 50256],
        no_timestamps_token_id=50362,
        is_multilingual=False,
    )
    model.save_pretrained(dest)
    processor = WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer)
    processor.save_pretrained(dest)
    return dest
