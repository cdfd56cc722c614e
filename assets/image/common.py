"""What the image chain's assets share: model provenance (random tiny weights or pretrained)."""

from __future__ import annotations

from typing import Any

from dagster import MetadataValue

TINY_PARAMETERS = 2_000_000
"""Fewer parameters than this is a tiny random build (`models.tiny`): the smallest real
captioner, detector or segmenter (SAM ViT-B, 94 M; Grounding DINO tiny, 172 M) is far larger."""

RANDOM_TINY, PRETRAINED = "random-tiny", "pretrained"


def parameter_count(model) -> int | None:
    """Parameters of a role's underlying torch model (None: the role object has none)."""
    module = getattr(model, "model", None)
    if module is None or not hasattr(module, "parameters"):
        return None
    return sum(p.numel() for p in module.parameters())


def weights_kind(model) -> str:
    """'random-tiny' for a tiny random build, 'pretrained' otherwise (a stand-in without a
    torch model counts as pretrained: nothing says otherwise)."""
    count = parameter_count(model)
    return RANDOM_TINY if count is not None and count < TINY_PARAMETERS else PRETRAINED


def model_metadata(context, role: str, model) -> dict[str, Any]:
    """`model` and `weights` metadata for a model-produced asset; a banner in the log when the
    weights are a tiny random build, so nobody mistakes its output for labels."""
    weights = weights_kind(model)
    if weights == RANDOM_TINY:
        context.log.warning(
            f"RANDOM TINY WEIGHTS: the {role} {model.name} is a tiny random build "
            f"({parameter_count(model):,} parameters); its output is meaningless and is for "
            "tests and demos only.")
    return {"model": MetadataValue.text(model.name), "weights": MetadataValue.text(weights)}
