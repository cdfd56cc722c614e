"""A run's checkpoints: written atomically, found through ``latest.json``, resumed exactly.

``checkpoints/step-NNNNNNNN/`` holds the model (``save_pretrained``: safetensors), the processor
and ``trainer_state.pt`` (optimizer, scheduler, grad scaler, step, torch / CUDA / numpy / python
RNG states). That file holds only tensors and plain Python containers and numbers (numpy's RNG
state is converted to a tensor), so it loads with ``torch.load(weights_only=True)``; nothing is
unpickled. A checkpoint is written to a temp folder and renamed into place, then ``latest.json``
(also atomically replaced) points at it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

LATEST_NAME = "latest.json"
STATE_NAME = "trainer_state.pt"


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The checkpoint folder `latest.json` points at, if it is complete."""
    pointer = output_dir / LATEST_NAME
    if not pointer.is_file():
        return None
    folder = output_dir / json.loads(pointer.read_text())["checkpoint"]
    if not (folder / STATE_NAME).is_file():
        raise FileNotFoundError(
            f"{pointer} points at {folder}, which has no {STATE_NAME}; delete {pointer} to start "
            "over or restore the checkpoint"
        )
    return folder


def step_of(folder: Path) -> int:
    """The step a checkpoint folder (``step-NNNNNNNN``) was saved at."""
    return int(folder.name.rsplit("-", 1)[-1])


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "gauss": gauss},
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def save_checkpoint(
    output_dir: Path, step: int, model, processor, optimizer, scheduler, scaler
) -> Path:
    """Write checkpoint `step` atomically and point `latest.json` at it."""
    root = output_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)  # transformers 5 always writes safetensors
    processor.save_pretrained(tmp)
    state = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": _rng_state(),
    }
    torch.save(state, tmp / STATE_NAME)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer = output_dir / LATEST_NAME
    pointer_tmp = output_dir / (LATEST_NAME + ".tmp")
    pointer_tmp.write_text(json.dumps({"step": step, "checkpoint": f"checkpoints/{final.name}"}))
    os.replace(pointer_tmp, pointer)
    return final


def load_weights(model: torch.nn.Module, folder: Path) -> None:
    """Checkpoint weights into `model`; only tied output-projection keys may be absent."""
    state = load_file(str(folder / "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("proj_out.weight")]
    if missing or unexpected:
        raise RuntimeError(f"{folder}: weights do not fit the model: missing {missing}, "
                           f"unexpected {unexpected}")


def restore_state(folder: Path, optimizer, scheduler, scaler) -> int:
    """Optimizer, scheduler, scaler and RNG states of a checkpoint; returns its step."""
    state = torch.load(folder / STATE_NAME, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"])
    return int(state["step"])
