"""resources/registry.py: model versions, champions and rounds per family, and training runs.

All tests share one SQLite store (creating one runs MLflow's migrations, about 2 s on two
cores); each test gets its own name prefix, so its registered models and experiments are new.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resources.registry import ModelRegistry


def _record(registry: ModelRegistry, family, model_id: str, **kw):
    args = {"stage": model_id.split("-")[0], "checkpoint": f"/ckpt/{model_id}",
            "base_model": "/hub/base", "train_batches": ["b1"], "config": {"lr": 1e-5},
            "loop": "loop1", **kw}
    return registry.record(family, model_id=model_id, **args)


def test_record_get_update_promote_per_family(registry):
    sft = _record(registry, "asr", "sft-1", eval_batches=["e1"], train_metrics={"loss": 0.5})
    assert sft["checkpoint"] == "/ckpt/sft-1" and sft["family"] == "asr" and sft["round"] == 1
    assert sft["train_batches"] == ["b1"] and sft["eval_batches"] == ["e1"]
    assert sft["config"] == {"lr": 1e-5} and sft["train_metrics"] == {"loss": 0.5}
    assert not sft["promoted"] and sft["eval_wer"] is None and sft["promoted_at"] is None
    _record(registry, "asr", "dpo-1", base_model="/ckpt/sft-1")
    _record(registry, "alm", "grpo-1")
    assert registry.get("grpo-1")["family"] == "alm"
    assert [r["model_id"] for r in registry.all_models()] == ["grpo-1", "dpo-1", "sft-1"]
    assert [r["model_id"] for r in registry.all_models("asr")] == ["dpo-1", "sft-1"]

    row = registry.update("dpo-1", eval_wer=0.25, eval_cer=0.1, incumbent="baseline",
                          incumbent_wer=0.5)
    assert (row["eval_wer"], row["eval_cer"], row["incumbent"], row["incumbent_wer"]) == (
        0.25, 0.1, "baseline", 0.5)
    assert registry.update("dpo-1", eval_cer=None)["eval_cer"] is None

    assert registry.champion("asr") is None and registry.current_round("asr") == 1
    promoted = registry.promote("asr", "dpo-1")
    assert promoted["promoted"] and promoted["champion"] and promoted["promoted_at"]
    assert registry.champion("asr")["model_id"] == "dpo-1"
    assert (registry.current_round("asr"), registry.current_round("alm")) == (2, 1)
    assert registry.champion("alm") is None and registry.champion("vlm") is None

    registry.promote("alm", "grpo-1")  # another family's promotion leaves asr alone
    assert registry.champion("alm")["model_id"] == "grpo-1"
    assert registry.champion("asr")["model_id"] == "dpo-1"
    assert (registry.current_round("asr"), registry.current_round("alm")) == (2, 2)
    assert _record(registry, "asr", "sft-2")["round"] == 2
    with pytest.raises(LookupError, match="No asr model 'grpo-1'"):
        registry.promote("asr", "grpo-1")


def test_rounds_count_promotions_not_the_alias(registry):
    for model_id in ("sft-a", "dpo-b"):
        _record(registry, "vlm", model_id)
    registry.promote("vlm", "sft-a")
    registry.promote("vlm", "dpo-b")
    registry.promote("vlm", "sft-a")  # a rollback to an earlier champion is a promotion too
    assert registry.current_round("vlm") == 4
    assert [p["model_id"] for p in registry.promotions("vlm")] == ["sft-a", "dpo-b", "sft-a"]
    rows = {r["model_id"]: r for r in registry.all_models("vlm")}
    assert rows["sft-a"]["champion"] and not rows["dpo-b"]["champion"]
    assert rows["dpo-b"]["promoted"]  # promoted once, no longer champion


def test_lookup_errors_and_rejected_fields(registry):
    _record(registry, "asr", "dpo-1")
    with pytest.raises(LookupError, match=r"No model 'sft-9' .*known: \['dpo-1'\]"):
        registry.get("sft-9")
    with pytest.raises(LookupError, match="known: none"):
        registry.get("dpo-1", family="vlm")
    with pytest.raises(LookupError):
        registry.get("x' OR name LIKE '%")  # not a model id: never reaches the search filter
    with pytest.raises(KeyError, match="wer"):
        registry.update("dpo-1", wer=0.1)
    with pytest.raises(KeyError, match="promote"):
        registry.update("dpo-1", promoted=True)
    with pytest.raises(ValueError, match="family"):
        registry.champion("tts")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="model_id"):
        _record(registry, "asr", "bad id")


def test_recording_an_id_again_replaces_it_unless_champion_or_other_family(registry):
    first = _record(registry, "asr", "sft-1")
    again = _record(registry, "asr", "sft-1", checkpoint="/ckpt/retry")
    assert again["version"] > first["version"] and again["checkpoint"] == "/ckpt/retry"
    assert [r["checkpoint"] for r in registry.all_models()] == ["/ckpt/retry"]
    with pytest.raises(ValueError, match="already"):
        _record(registry, "alm", "sft-1")
    registry.promote("asr", "sft-1")
    with pytest.raises(ValueError, match="already"):
        _record(registry, "asr", "sft-1")


def test_training_run_and_version_in_mlflow(registry, tmp_path):
    rows = [{"step": s, "loss": 1.0 / (s + 1), "reward/bucket/easy": 0.5, "stop": None,
             "done": False, "note": "text"} for s in range(1, 1201)]
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    png = tmp_path / "curves.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    config = {"learning_rate": 1e-5, "reward_weights": {"wer": 1.0, "lang": 0.5},
              "prompt": "x" * 7000, "weird key!": 1}
    run_id = registry.log_training_run(
        "asr", stage="grpo", loop="loop7", config=config, metrics_path=metrics,
        curves_png=png, data_snapshot={"train_batches": ["b1"], "dir": "/snap"},
        started_ms=1_700_000_000_000, ended_ms=1_700_000_754_000)
    client = registry.client
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "grpo-loop7"
    # the run spans the training, not the seconds it took to log it afterwards
    assert run.info.end_time - run.info.start_time == 754_000
    kind = client.get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"]
    assert kind == "custom_model_development"  # the UI opens it on its runs
    assert client.get_experiment(run.info.experiment_id).name == registry.name("asr")
    store_dir = Path(registry.uri().removeprefix("sqlite:///")).parent
    assert run.info.artifact_uri.startswith((store_dir / "artifacts").as_uri())  # not ./mlruns
    params = run.data.params
    assert params["learning_rate"] == "1e-05" and params["reward_weights.lang"] == "0.5"
    assert len(params["prompt"]) == 6000 and params["weird key_"] == "1"
    assert run.data.tags["loop"] == "loop7" and run.data.tags["family"] == "asr"
    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(1, 1201)) and history[1].value == 1 / 3
    assert len(client.get_metric_history(run_id, "reward/bucket/easy")) == 1200
    assert set(run.data.metrics) == {"loss", "reward/bucket/easy"}
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert artifacts == {"curves.png", "data_snapshot.json", "metrics.jsonl"}
    snapshot = client.download_artifacts(run_id, "data_snapshot.json", str(tmp_path / "dl"))
    assert json.loads(open(snapshot).read())["dir"] == "/snap"

    row = _record(registry, "asr", "grpo-loop7", run_id=run_id, loop="loop7")
    assert row["run_id"] == run_id
    (version,) = client.search_model_versions(f"run_id = '{run_id}'")
    assert version.name == registry.name("asr") and version.source == "/ckpt/grpo-loop7"
    assert {k: version.tags[k] for k in ("model_id", "stage", "loop", "round", "base_model")} == {
        "model_id": "grpo-loop7", "stage": "grpo", "loop": "loop7", "round": "1",
        "base_model": "/hub/base"}
    assert json.loads(version.tags["train_batches"]) == ["b1"]


def test_store_defaults_to_sqlite_under_home_unless_configured(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RLFOUNDRY_HOME", str(tmp_path))
    assert ModelRegistry().uri() == f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    assert (tmp_path / "mlflow").is_dir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.team:5000")
    assert ModelRegistry().uri() == "http://mlflow.team:5000"
    assert ModelRegistry(tracking_uri="sqlite:////x/m.db").uri() == "sqlite:////x/m.db"
    assert ModelRegistry().name("vlm") == "rlfoundry-vlm"
