"""Dagster configs derived from a training config: the fields a user tunes for one stage.

A stage (speech SFT, DPO/MPO, online RL; a VLM's or audio LM's SFT and GRPO) exposes fields
of its trainer's pydantic config (`training.config.TrainConfig`,
`training.trl_backend.config.TrlConfig`) with the same type, choices, range and description;
only the default may differ. Dagster shows the choices in the launchpad and rejects a wrong
type or choice before the run starts; pydantic rejects an out-of-range value when the asset
starts, naming the field, before anything is launched.

Example:
    >>> from pydantic import BaseModel, Field
    >>> class Train(BaseModel):
    ...     steps: int = Field(10, description="Optimizer steps.", ge=1)
    >>> Stage = stage_config("Stage", "A stage.", Train, {"steps": 5})
    >>> Stage().steps, Stage.model_fields["steps"].description
    (5, 'Optimizer steps.')
"""

from __future__ import annotations

from typing import Any

from dagster import Config
from pydantic import BaseModel, Field, create_model


def stage_config(name: str, doc: str, source: type[BaseModel], defaults: dict[str, Any],
                 plain: dict[str, Any] | None = None, **own: Any) -> type[Config]:
    """A Dagster Config class with `own` fields plus `source`'s fields named in `defaults`,
    with those defaults. `plain` maps a field to the annotation to use instead of the
    source's (e.g. `float` for an optional the stage always sets)."""
    fields: dict[str, Any] = {}
    for key, default in defaults.items():
        info = source.model_fields[key]
        annotation = (plain or {}).get(key, info.annotation)
        fields[key] = (annotation, Field(default, description=info.description, **bounds(info)))
    return create_model(name, __base__=Config, __doc__=doc, **own, **fields)


def bounds(info) -> dict[str, Any]:
    """A pydantic field's numeric bounds (gt, ge, lt, le) as Field keyword arguments."""
    out: dict[str, Any] = {}
    for item in info.metadata:
        for key in ("gt", "ge", "lt", "le"):
            value = getattr(item, key, None)
            if value is not None:
                out[key] = value
    return out


def settings_of(config: Config, source: type[BaseModel]) -> dict[str, Any]:
    """The `source` fields a stage config sets (everything but the asset's own)."""
    return {k: v for k, v in config.model_dump().items() if k in source.model_fields}
