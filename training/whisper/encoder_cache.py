"""A frozen encoder's output per clip, computed on first use and kept for later visits.

With ``freeze_encoder`` (the default) the encoder is a fixed function of a clip's features, yet a
run visits each clip many times: every epoch of SFT, both sides of every DPO pair, the reference
pass before DPO, every GRPO step that draws the clip. On tiny.en the encoder of a 30 s-padded
clip costs more than the decoder's forward and backward over its transcript, so
:class:`EncoderStates` keeps each clip's states (on the CPU, up to ``cap_mb``) and a step runs the
encoder only on clips it has not seen. A frozen encoder always runs in eval mode (no dropout), so
a cached state is exactly what a fresh call returns.

Example:
    >>> import torch
    >>> calls = []
    >>> def encode(features):
    ...     calls.append(len(features))
    ...     return features * 2
    >>> cache = EncoderStates(encode, torch.arange(6.0).view(3, 2, 1), cap_mb=1)
    >>> cache.of([2, 0]).flatten().tolist(), calls
    ([8.0, 10.0, 0.0, 2.0], [2])
    >>> cache.of([0, 1]).flatten().tolist(), calls  # clip 0 is kept: only clip 1 is encoded
    ([0.0, 2.0, 4.0, 6.0], [2, 1])
    >>> cache.cached, cache.encoded
    (3, 3)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["EncoderStates"]


class EncoderStates:
    """Encoder states of clips by index into `features`, encoded once while under the cap."""

    def __init__(self, encode: Callable[[torch.Tensor], torch.Tensor], features: torch.Tensor,
                 cap_mb: int, device: torch.device | str = "cpu"):
        self.encode, self.features, self.device = encode, features, torch.device(device)
        self.cap_bytes = cap_mb * 2**20
        self.kept: dict[int, torch.Tensor] = {}
        self.kept_bytes = 0
        self.encoded = 0
        """Clips run through the encoder so far (a clip over the cap counts each time)."""

    @property
    def cached(self) -> int:
        return len(self.kept)

    @torch.no_grad()
    def of(self, clips: Sequence[int]) -> torch.Tensor:
        """``[len(clips), frames, width]`` states on `device`, in `clips`' order."""
        missing = sorted({c for c in clips if c not in self.kept})
        fresh: dict[int, torch.Tensor] = {}
        if missing:
            states = self.encode(self.features[missing])
            self.encoded += len(missing)
            for clip, state in zip(missing, states, strict=True):
                fresh[clip] = state
                size = state.numel() * state.element_size()
                if self.kept_bytes + size <= self.cap_bytes:
                    self.kept[clip] = state.detach().to("cpu", copy=True)
                    self.kept_bytes += size
        rows = [fresh[c] if c in fresh else self.kept[c] for c in clips]
        return torch.stack([r.to(self.device) for r in rows])
