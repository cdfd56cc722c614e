"""The frozen reference's log-probs, computed once before training and kept on disk.

DPO and MPO compare the policy with the starting model. The reference never changes, so its
chosen/rejected log-probs are computed once (eval mode, no grad, same autocast as training) and
a training step costs only the policy's forward and backward, with no second model in memory.

The cache is ``<output_dir>/reference_logps.safetensors``: float32 tensors ``chosen_logps``,
``rejected_logps`` (NaN for SFT rows) and int64 ``chosen_tokens``, ``rejected_tokens``, in the
order of ``keys`` (pair_id / row id) stored in the metadata with a fingerprint of the data file and
the model path. A resumed run loads it instead of recomputing (its model has already moved); a
cache whose fingerprint does not match is recomputed from the starting model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from training.whisper.data import TrainData
from training.whisper.encoder_cache import EncoderStates
from training.whisper.logps import WhisperScorer

CACHE_NAME = "reference_logps.safetensors"


@dataclass
class ReferenceLogps:
    """Reference log-probs and token counts per example key."""

    keys: list[str]
    chosen_logps: torch.Tensor
    rejected_logps: torch.Tensor
    chosen_tokens: torch.Tensor
    rejected_tokens: torch.Tensor

    def __post_init__(self) -> None:
        self._index = {key: i for i, key in enumerate(self.keys)}

    def lookup(self, keys: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(chosen, rejected) reference log-probs of `keys`, ``[len(keys)]`` each."""
        rows = torch.tensor([self._index[k] for k in keys])
        return self.chosen_logps[rows], self.rejected_logps[rows]


def fingerprint(data_path: str | Path, model: str) -> str:
    """What a cache was computed from: the data file's bytes and the model path."""
    digest = hashlib.sha256(Path(data_path).read_bytes())
    digest.update(b"\0" + str(model).encode())
    return digest.hexdigest()


@torch.no_grad()
def compute_reference(
    scorer: WhisperScorer,
    data: TrainData,
    *,
    batch_size: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    encoder: EncoderStates | None = None,
) -> ReferenceLogps:
    """Log-probs of every example's texts under `scorer`'s model as it is now, in eval mode
    (`encoder`: the frozen encoder's state cache, which this pass fills for training)."""
    was_training = scorer.training
    scorer.eval()
    chosen, rejected, chosen_n, rejected_n = [], [], [], []
    try:
        for start in range(0, len(data), batch_size):
            batch = data.batch(list(range(start, min(start + batch_size, len(data)))))
            texts = batch.chosen + (batch.rejected or [])
            clips = batch.clips * (2 if batch.rejected is not None else 1)
            states = encoder.of(batch.clip_ids) if encoder is not None else None
            with autocast():
                out = scorer(None if states is not None else batch.features, clips, texts,
                             states=states)
            logps, tokens = out.logps.float().cpu(), out.tokens.cpu()
            b = len(batch.chosen)
            chosen.append(logps[:b])
            chosen_n.append(tokens[:b])
            if batch.rejected is not None:
                rejected.append(logps[b:])
                rejected_n.append(tokens[b:])
            else:
                rejected.append(torch.full((b,), float("nan")))
                rejected_n.append(torch.zeros(b, dtype=torch.long))
    finally:
        scorer.train(was_training)
    return ReferenceLogps(
        [e.key for e in data.examples],
        torch.cat(chosen),
        torch.cat(rejected),
        torch.cat(chosen_n),
        torch.cat(rejected_n),
    )


def save_reference(ref: ReferenceLogps, path: str | Path, fingerprint_: str) -> Path:
    """Write the cache atomically (temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tensors = {
        "chosen_logps": ref.chosen_logps.contiguous(),
        "rejected_logps": ref.rejected_logps.contiguous(),
        "chosen_tokens": ref.chosen_tokens.contiguous(),
        "rejected_tokens": ref.rejected_tokens.contiguous(),
    }
    metadata = {"keys": json.dumps(ref.keys), "fingerprint": fingerprint_}
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def load_reference(path: str | Path, fingerprint_: str) -> ReferenceLogps | None:
    """The cache at `path` if it exists and matches `fingerprint_`, else None."""
    path = Path(path)
    if not path.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if metadata.get("fingerprint") != fingerprint_:
        return None
    tensors = load_file(str(path))
    return ReferenceLogps(
        json.loads(metadata["keys"]),
        tensors["chosen_logps"],
        tensors["rejected_logps"],
        tensors["chosen_tokens"],
        tensors["rejected_tokens"],
    )
