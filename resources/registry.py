"""The model registry and training runs, in MLflow: one registered model per model family.

Each family (`asr`, `vlm`, `alm`) is a registered model `rlfoundry-<family>` whose versions are
the checkpoints trained for it, and an experiment of the same name whose runs are the training
runs. A version's source is the checkpoint folder itself (weights are never copied into
MLflow's artifact store); its tags hold what the loop needs to find and compare models: the
human id users type (`model_id`, e.g. "dpo-1a2b3c4d"), stage, base model, loop, round, batches,
eval scores. The family's `champion` alias is the promoted model (the incumbent that labels new
data and that a candidate must beat); every promotion is also kept as a registered-model tag
`promotion.NNNN`, so rounds count promotions rather than alias moves.

The store is `tracking_uri`, else `$MLFLOW_TRACKING_URI` (a team server), else a SQLite file
under `$RLFOUNDRY_HOME/mlflow` (no server needed; the file store is deprecated in MLflow 3).
mlflow is imported on first use: it costs about a second and Dagster loads this module early.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dagster import ConfigurableResource

from models.roles import FAMILIES, Family
from resources.home import rlfoundry_home

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

CHAMPION = "champion"
PROMOTION = "promotion."
MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
JSON_TAGS = ("train_batches", "eval_batches", "config", "train_metrics")
TEXT_TAGS = ("model_id", "stage", "checkpoint", "base_model", "loop", "incumbent")


@functools.cache
def _client(uri: str) -> MlflowClient:
    """One client per store URI (a SQLite store's engine is made, and migrated, once)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


class ModelRegistry(ConfigurableResource):
    """Trained models per family, which one is champion, and the runs that trained them."""

    tracking_uri: str = ""
    name_prefix: str = "rlfoundry"  # registered models and experiments are `<prefix>-<family>`

    def uri(self) -> str:
        """The store: the field, else `$MLFLOW_TRACKING_URI`, else SQLite under the home."""
        if self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"):
            return self.tracking_uri or os.environ["MLFLOW_TRACKING_URI"]
        folder = rlfoundry_home() / "mlflow"
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / 'mlflow.db'}"

    @property
    def client(self) -> MlflowClient:
        return _client(self.uri())

    def name(self, family: str) -> str:
        """`<prefix>-<family>`: the family's registered model and experiment."""
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
        return f"{self.name_prefix}-{family}"

    # -- model versions ------------------------------------------------------------------

    def record(
        self, family: Family, *, model_id: str, stage: str, checkpoint: str, base_model: str,
        train_batches: Sequence[str], config: Mapping[str, Any], run_id: str | None = None,
        loop: str = "", train_metrics: Mapping[str, Any] | None = None,
        eval_batches: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Register a freshly trained checkpoint as a new version (not promoted).

        `run_id` is the MLflow run that trained it (`log_training_run`), linked to the
        version. Recording an id again replaces its version, unless that one is champion.
        """
        if not MODEL_ID.match(model_id):
            raise ValueError(f"model_id must match {MODEL_ID.pattern}, got {model_id!r}")
        name = self._ensure_model(family)
        for old in self._versions(f"tags.model_id = '{model_id}'"):
            if old.name != name or self._aliases(old.name).get(CHAMPION) == old.version:
                raise ValueError(f"{model_id!r} is already {old.name} version {old.version}")
            self.client.delete_model_version(old.name, old.version)
        tags = {"model_id": model_id, "stage": stage, "checkpoint": checkpoint,
                "base_model": base_model, "loop": loop, "round": str(self.current_round(family)),
                "train_batches": _dumps(list(train_batches)),
                "eval_batches": _dumps(list(eval_batches)), "config": _dumps(dict(config)),
                "train_metrics": _dumps(dict(train_metrics or {}))}
        return self._row(self._create_version(name, checkpoint, run_id, tags))

    def get(self, model_id: str, family: Family | None = None) -> dict[str, Any]:
        """The row of `model_id` (in `family`, or any), or a LookupError naming the known ids."""
        found = (list(self._versions(f"tags.model_id = '{model_id}'", family))
                 if MODEL_ID.match(model_id) else [])
        if not found:
            known = sorted(r["model_id"] for r in self.all_models(family))
            where = f"{family} " if family else ""
            raise LookupError(f"No {where}model {model_id!r} in the registry ({self.uri()}); "
                              f"known: {known or 'none'}.")
        return self._row(max(found, key=lambda mv: int(mv.version)))

    def update(self, model_id: str, **fields: Any) -> dict[str, Any]:
        """Set eval fields of a model (`eval_<metric>`, `incumbent`, `incumbent_<metric>`) as
        version tags; None removes one. Promotion is `promote`, not a field."""
        unknown = sorted(k for k in fields if not _is_eval_field(k))
        if unknown:
            raise KeyError(f"model registry fields are eval_<metric>, incumbent and "
                           f"incumbent_<metric> (promotion: promote()); got {unknown}")
        row = self.get(model_id)
        for key, value in fields.items():
            if value is None:
                self.client.delete_model_version_tag(row["name"], str(row["version"]), key)
            else:
                text = str(value) if key == "incumbent" else repr(float(value))
                self.client.set_model_version_tag(row["name"], str(row["version"]), key, text)
        return self.get(model_id)

    def promote(self, family: Family, model_id: str) -> dict[str, Any]:
        """Make `model_id` its family's champion, and log the promotion (it starts a round)."""
        row = self.get(model_id, family)
        name, version, now = row["name"], str(row["version"]), datetime.now(UTC).isoformat()
        n = self.current_round(family)
        self.client.set_registered_model_tag(name, f"{PROMOTION}{n:04d}", _dumps(
            {"model_id": model_id, "version": row["version"], "promoted_at": now}))
        self.client.set_model_version_tag(name, version, "promoted_at", now)
        self.client.set_registered_model_alias(name, CHAMPION, version)
        return self.get(model_id, family)

    def champion(self, family: Family) -> dict[str, Any] | None:
        """The family's promoted model's row, or None before its first promotion."""
        name = self.name(family)
        version = self._aliases(name).get(CHAMPION)
        return self._row(self.client.get_model_version(name, version)) if version else None

    def checkpoint_of(self, name: str, family: Family) -> str | None:
        """The checkpoint a model name means when it names a registered model: 'promoted'
        (the family's champion) or a model id (`rlfoundry models list`); None for anything
        else (a folder, a hub id, 'bundled:...'). LookupError, saying what to do, for
        'promoted' before any promotion.

        A name that is also an existing path is a path: None.
        """
        if name == "promoted":
            row = self.champion(family)
            if row is None:
                raise LookupError(f"No promoted {family} model yet (`rlfoundry models list` "
                                  "shows the registry): name a model id or a folder.")
            return row["checkpoint"]
        if not MODEL_ID.match(name) or Path(name).expanduser().exists():
            return None
        try:
            return self.get(name)["checkpoint"]
        except LookupError:
            return None

    def current_round(self, family: Family) -> int:
        """The round under way in `family`: 1 + its promotions so far (labels made by the
        model promoted in round r, and models trained on them, belong to round r + 1)."""
        model = self._registered(self.name(family))
        return 1 + (sum(k.startswith(PROMOTION) for k in model.tags) if model else 0)

    def promotions(self, family: Family) -> list[dict[str, Any]]:
        """The family's promotions, oldest first: {model_id, version, promoted_at}."""
        model = self._registered(self.name(family))
        tags = model.tags if model else {}
        return [json.loads(tags[k]) for k in sorted(tags) if k.startswith(PROMOTION)]

    def all_models(self, family: Family | None = None) -> list[dict[str, Any]]:
        """Every model's row (of `family`, or all), newest first."""
        versions = sorted(self._versions(None, family),
                          key=lambda mv: (mv.creation_timestamp, int(mv.version)), reverse=True)
        champions = {n: self._aliases(n).get(CHAMPION) for n in {mv.name for mv in versions}}
        return [self._row(mv, champions[mv.name]) for mv in versions]

    # -- training runs -------------------------------------------------------------------

    def log_training_run(
        self, family: Family, *, stage: str, loop: str, config: Mapping[str, Any],
        data_snapshot: Mapping[str, Any], metrics_path: str | Path | None = None,
        curves_png: str | Path | None = None, status: str = "FINISHED",
        started_ms: int | None = None, ended_ms: int | None = None,
    ) -> str:
        """Record a finished training run in the family's experiment; returns its run id (to
        pass to `record`). What it logs: `resources.training_runs.log_training_run`;
        `started_ms`/`ended_ms` (epoch ms) are when training ran, so its duration shows."""
        from resources.training_runs import log_training_run

        return log_training_run(
            self.client, self._experiment(family), family=family, stage=stage, loop=loop,
            config=config, data_snapshot=data_snapshot, metrics_path=metrics_path,
            curves_png=curves_png, status=status, started_ms=started_ms, ended_ms=ended_ms)

    # -- helpers -------------------------------------------------------------------------

    def _artifact_location(self, name: str) -> str | None:
        """`artifacts/<name>` beside a SQLite file (MLflow's default is `./mlruns` under the
        working directory); a server chooses its own."""
        uri = self.uri()
        if not uri.startswith("sqlite:///"):
            return None
        return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts" / name).as_uri()

    def _experiment(self, family: str) -> str:
        """The id of the family's experiment, created on first use."""
        from mlflow.exceptions import MlflowException

        name = self.name(family)
        found = self.client.get_experiment_by_name(name)
        if found:
            return found.experiment_id
        try:
            # a training experiment: MLflow's UI opens it on its runs, not on GenAI traces
            return self.client.create_experiment(
                name, self._artifact_location(name),
                tags={"mlflow.experimentKind": "custom_model_development"})
        except MlflowException as e:  # another process made it first
            if e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return self.client.get_experiment_by_name(name).experiment_id

    def _ensure_model(self, family: str) -> str:
        name = self.name(family)
        if self._registered(name) is None:
            from mlflow.exceptions import MlflowException

            try:
                self.client.create_registered_model(
                    name, description=f"rlfoundry {family} checkpoints; `{CHAMPION}` = promoted")
            except MlflowException as e:
                if e.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
        return name

    def _registered(self, name: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(name)
        except MlflowException as e:
            if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            return None

    def _aliases(self, name: str) -> dict[str, str]:
        model = self._registered(name)
        return dict(model.aliases) if model else {}

    def _versions(self, condition: str | None, family: str | None = None) -> Iterator[Any]:
        """Model versions of this prefix's families (or of `family`) matching `condition`."""
        names = [self.name(family)] if family else [self.name(f) for f in FAMILIES]
        scope = f"name = '{names[0]}'" if family else f"name LIKE '{self.name_prefix}-%'"
        query = f"{scope} AND {condition}" if condition else scope
        token = None
        while True:
            page = self.client.search_model_versions(query, page_token=token)
            yield from (mv for mv in page if mv.name in names)
            token = page.token
            if not token:
                return

    def _create_version(self, name: str, checkpoint: str, run_id: str | None,
                        tags: dict[str, str]) -> ModelVersion:
        """A version whose source is the checkpoint folder. A tracking server takes a local
        path only inside the run's artifacts: there the source is the run, and the path
        stays in the `checkpoint` tag."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.create_model_version(name, checkpoint, run_id=run_id, tags=tags,
                                                    await_creation_for=0)
        except MlflowException as e:
            if not run_id or "model version source" not in str(e):
                raise
            source = self.client.get_run(run_id).info.artifact_uri
            return self.client.create_model_version(name, source, run_id=run_id, tags=tags,
                                                    await_creation_for=0)

    def _row(self, mv: ModelVersion, champion: str | None | Literal[False] = False
             ) -> dict[str, Any]:
        """A version as the dict the loop reads (the old warehouse row's fields, plus family,
        name, version and champion); `champion` is the family's champion version if known."""
        if champion is False:
            champion = self._aliases(mv.name).get(CHAMPION)
        tags = dict(mv.tags)
        row: dict[str, Any] = {k: tags.get(k, "") for k in TEXT_TAGS}
        row.update({k: _loads(tags.get(k)) for k in JSON_TAGS})
        row.update({"eval_wer": None, "eval_cer": None, "incumbent_wer": None})
        row.update({k: float(v) for k, v in tags.items() if _is_eval_field(k) and k != "incumbent"})
        row["incumbent"] = tags.get("incumbent")
        promoted_at = tags.get("promoted_at")
        row.update({
            "family": mv.name.removeprefix(f"{self.name_prefix}-"), "name": mv.name,
            "version": int(mv.version), "run_id": mv.run_id or "",
            "round": int(tags.get("round", 0)),
            "created_at": datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC),
            "promoted": promoted_at is not None,
            "promoted_at": datetime.fromisoformat(promoted_at) if promoted_at else None,
            "champion": champion == mv.version})
        return row


def _is_eval_field(key: str) -> bool:
    """An eval result: `incumbent`, `eval_<metric>` or `incumbent_<metric>` (not `eval_batches`)."""
    return key == "incumbent" or (key.startswith(("eval_", "incumbent_")) and key not in JSON_TAGS)



def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None
