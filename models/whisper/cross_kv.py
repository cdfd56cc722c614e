"""Cross-attention keys and values computed once per clip, shared by every row of that clip.

Each Whisper decoder layer projects the encoder output into cross-attention keys and values
(``1500 frames x width`` per row, twice per layer). The stock decoder does it per row, so a
clip scored against many transcripts (GRPO's samples, a DPO pair, MWER's beams) or sampled many
times pays for the projection once per row: on tiny.en a GRPO step with 6 samples a clip spent
most of its decoder time there. :func:`shared_cross_cache` projects each clip's states once and
gathers them to the rows, in an ``EncoderDecoderCache`` whose cross-attention part is marked
filled, so the decoder reuses it instead of projecting again. The result is the same up to
float rounding (the projection is row-independent); with grad enabled, the gradient into the
projections is the sum over rows, as before.

Example:
    >>> import torch
    >>> from transformers import WhisperConfig, WhisperForConditionalGeneration
    >>> cfg = WhisperConfig(d_model=16, encoder_layers=1, decoder_layers=2,
    ...                     encoder_attention_heads=2, decoder_attention_heads=2,
    ...                     encoder_ffn_dim=16, decoder_ffn_dim=16,
    ...                     vocab_size=60, max_source_positions=8, max_target_positions=16,
    ...                     num_mel_bins=8, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    ...                     decoder_start_token_id=1)
    >>> model = WhisperForConditionalGeneration(cfg).eval()
    >>> states, rows = torch.randn(2, 8, 16), torch.tensor([0, 0, 1])
    >>> ids = torch.tensor([[1, 2, 3], [1, 4, 5], [1, 2, 6]])
    >>> decoder = model.get_decoder()
    >>> plain = decoder(input_ids=ids, encoder_hidden_states=states[rows]).last_hidden_state
    >>> shared = decoder(input_ids=ids, encoder_hidden_states=states[rows[:1]].expand(3, -1, -1),
    ...                  past_key_values=shared_cross_cache(model, states, rows),
    ...                  use_cache=True).last_hidden_state
    >>> torch.allclose(plain, shared, atol=1e-6)
    True
"""

from __future__ import annotations

import torch
from transformers import DynamicCache, EncoderDecoderCache, WhisperForConditionalGeneration

__all__ = ["shared_cross_cache", "worth_sharing"]


def worth_sharing(rows: int, clips: int) -> bool:
    """Whether sharing saves work: more rows than clips (otherwise it only adds a gather)."""
    return rows > clips


def shared_cross_cache(
    model: WhisperForConditionalGeneration,
    states: torch.Tensor,
    rows: torch.Tensor,
    cache: EncoderDecoderCache | None = None,
) -> EncoderDecoderCache:
    """A cache holding every decoder layer's cross-attention keys/values for `rows`.

    `states` is ``[clips, frames, width]``; `rows[i]` is the clip of decoder row `i`. Keys and
    values are projected per clip (with grad if enabled), then gathered to the rows. `cache`
    (e.g. a ``BeamCache``) is filled instead of a new one.
    """
    decoder = model.get_decoder()
    config = model.config.get_text_config(decoder=True)
    if cache is None:
        cache = EncoderDecoderCache(DynamicCache(config=config), DynamicCache(config=config))
    rows = torch.as_tensor(rows, dtype=torch.long, device=states.device)
    for index, layer in enumerate(decoder.layers):
        attention = layer.encoder_attn
        shape = (states.shape[0], states.shape[1], attention.num_heads, attention.head_dim)
        keys = attention.k_proj(states).view(shape).transpose(1, 2)
        values = attention.v_proj(states).view(shape).transpose(1, 2)
        _fill(cache.cross_attention_cache, index, keys[rows], values[rows])
        cache.is_updated[index] = True
    return cache


def _fill(cache: DynamicCache, index: int, keys: torch.Tensor, values: torch.Tensor) -> None:
    """Layer `index` of `cache` holds `keys`/`values` as they are (``update`` would copy them
    once more by concatenating onto an empty tensor)."""
    layer = cache.layers[index]
    layer.lazy_initialization(keys, values)
    layer.keys, layer.values = keys, values
