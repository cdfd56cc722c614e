"""The vlm and alm loops end to end through their assets: training set, SFT, DPO/MPO on the
pairs people's verdicts give, GRPO (out of process, torchrun + Pipes, the TRL backend),
evaluation with and without the media, the blocking gate and promotion in the family's
registry.

The datasets are the chains' own exports (`pointing.jsonl`, `video_qa.jsonl`,
`audio_qa.jsonl`, written by the chains' export functions into the dataset assets' report
folders); the models are tiny random ones, so whether a candidate is better is noise: the
gate's outcome is forced through its tolerance (a huge one promotes, a negative one — a gain
demanded that no model can show — blocks).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from dagster import DagsterInstance, materialize

from assets.loop import ASSETS, CHECKS
from assets.loop.specs import AUDIO_QA, VISION
from pipelines.partitions import BATCHES, LOOPS
from resources.model_hub import ModelHub
from resources.training_launcher import TrainingLauncher
from training.data.training_set import TrainingSetError
from training.trl_backend.synthetic import quadrant_pointing, video_choice_rows
from training.trl_backend.synthetic_audio import chain_audio_questions

pytest.importorskip("trl")

TINY_RUN = {"max_steps": 2, "batch_size": 2, "save_every": 1, "learning_rate": 1e-3}
TINY_GRPO = {**TINY_RUN, "max_steps": 1, "num_generations": 2, "max_completion_length": 6}


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _assets(spec):
    names = {spec.training_set, *spec.models.values(), spec.evaluation,
             f"{spec.family}_promoted_model"}
    return ([a for a in ASSETS if a.key.path[-1] in names],
            [c for c in CHECKS if spec.evaluation in str(c.check_specs_by_output_name)])


def _env(warehouse, registry, tmp_path, hub: dict, batches: list[str], loops: list[str]):
    resources = {"warehouse": warehouse, "training_launcher": TrainingLauncher(),
                 "model_registry": registry,
                 "model_hub": ModelHub(cache_dir=str(tmp_path / "models"), **hub)}
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BATCHES, batches)
    instance.add_dynamic_partitions(LOOPS, loops)
    return instance, resources


def _meta(result, asset):
    (mat,) = [e.event_specific_data.materialization for e in
              result.get_asset_materialization_events() if e.asset_key.path[-1] == asset]
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def _config(family: str, tolerance: float, **preference) -> dict:
    return {"ops": {f"{family}_sft_model": {"config": TINY_RUN},
                    f"{family}_preference_model": {"config": {**TINY_RUN, **preference}},
                    f"{family}_grpo_model": {"config": TINY_GRPO},
                    f"{family}_eval": {"config": {"tolerance": tolerance, "batch_size": 4}}}}


def _said_no(warehouse, batch: str, rows_file) -> dict:
    """A person's "no" on a point of the first pointing row of `rows_file` (a point in the
    opposite corner of its image), as image_qc_verdicts stores it."""
    row = json.loads(open(rows_file).readline())
    width, height = row["image_size"]
    (x, y), = [instance[0] for instance in row["points"]]
    wrong = {"point_id": "p-no", "image_id": row["image_id"], "phrase": row["phrase"],
             "x": width - x, "y": height - y, "verdict": "no", "n_annotators": 1, "n_yes": 0,
             "n_agree": 1, "agreement": 1.0, "annotators": ["1"], "answers": ["no"],
             "second_review": False, "pulled_at": datetime.now(UTC)}
    warehouse.write_partition("point_verdicts", batch, [wrong])
    return wrong


@pytest.fixture
def vlm_env(warehouse, registry, tmp_path):
    from models.tiny import build_tiny_llava

    for batch, role, seed in (("img-train", "train", 0), ("img-eval", "eval", 1)):
        pointing = quadrant_pointing(warehouse.report_dir("pointing_dataset", batch), n=4,
                                     seed=seed)
        if role == "train":
            _said_no(warehouse, batch, pointing)
        video_choice_rows(warehouse.report_dir("video_qa_dataset", batch), n=4, frames=2,
                          seed=seed)
        warehouse.register_batch(batch, tmp_path, role=role)
    hub = {"vlm_model": str(build_tiny_llava(tmp_path / "llava"))}
    instance, resources = _env(warehouse, registry, tmp_path, hub, ["img-train", "img-eval"],
                               ["vlm-l1"])
    yield instance, resources
    instance.dispose()


def test_vlm_loop_trains_sft_then_grpo_evaluates_blind_too_and_promotes(
        vlm_env, warehouse, registry):
    instance, resources = vlm_env
    assets, checks = _assets(VISION)
    result = materialize([*assets, *checks], instance=instance, resources=resources,
                         partition_key="vlm-l1", run_config=_config("vlm", tolerance=100.0))
    assert result.success
    snap = _meta(result, "vlm_training_set")
    assert (snap["train_rows"], snap["eval_rows"]) == (8, 8)
    assert snap["rows_per_task"] == {"train": {"pointing": 4, "video_qa": 4},
                                     "eval": {"pointing": 4, "video_qa": 4}}
    # the one point a person said no to is the one preference pair (questions nobody
    # reviewed give none): MPO from the SFT model trains on it
    preference = _meta(result, "vlm_preference_model")
    assert preference["pairs"] == 1
    assert preference["pair_sources"] == "1 against a point people said no to"
    assert preference["rows_without_pair"] == ("5 without a human verdict, "
                                               "2 not multiple choice")
    assert list(preference)[:3] == ["pairs", "pair_sources", "rows_without_pair"]
    assert preference["base_model"] == warehouse.read_output("vlm_sft_model",
                                                             "vlm-l1")["checkpoint"]
    sft, grpo = _meta(result, "vlm_sft_model"), _meta(result, "vlm_grpo_model")
    assert "data:image/png;base64," in sft["curves"]
    assert sft["weights"] == grpo["weights"] == preference["weights"] == "random-tiny"
    # GRPO starts from this loop's SFT checkpoint, which is also its KL reference
    assert grpo["base_model"] == warehouse.read_output("vlm_sft_model", "vlm-l1")["checkpoint"]
    evaluation = _meta(result, "vlm_eval")
    for column in ("score", "blind", "media gain", "pointing", "video_qa blind"):
        assert column in evaluation["table"]
    for label in ("incumbent", "sft", "mpo", "grpo"):
        assert f"| {label} |" in evaluation["table"]
    assert "data:image/png;base64," in evaluation["by_task"]
    report = json.loads(open(evaluation["report"]).read())
    assert report["models"]["incumbent"]["model_id"] == "baseline"
    assert set(report["scores"]["sft"]["tasks"]) == {"pointing", "video_qa"}
    # promoted in the vlm family's registry; the asr family is untouched
    promoted = _meta(result, "vlm_promoted_model")
    assert registry.champion("vlm")["model_id"] == promoted["model_id"]
    assert promoted["model_id"] in ("sft-vlm-l1", "mpo-vlm-l1", "grpo-vlm-l1")
    assert registry.champion("asr") is None
    runs = {m["model_id"]: m for m in registry.all_models("vlm")}
    assert set(runs) == {"sft-vlm-l1", "mpo-vlm-l1", "grpo-vlm-l1"}
    assert all(r["run_id"] for r in runs.values())

    # judged again against itself with a gain demanded: the blocking check stops promotion
    evals = [a for a in assets if a.key.path[-1] in ("vlm_eval", "vlm_promoted_model")]
    again = materialize([*evals, *checks], instance=instance, resources=resources,
                        partition_key="vlm-l1", raise_on_error=False,
                        run_config={"ops": {"vlm_eval": {"config": {"tolerance": -2.0}}}})
    assert not again.success
    decision = warehouse.read_output("vlm_eval", "vlm-l1")["decision"]
    assert not decision["passed"] and "short of the gain demanded" in decision["reason"]
    assert registry.champion("vlm")["model_id"] == promoted["model_id"]


def test_a_preference_stage_without_pairs_trains_nothing_and_says_why(vlm_env, warehouse,
                                                                     capsys):
    from pipelines.task_loop_cli import print_outcome

    instance, resources = vlm_env
    assets, _ = _assets(VISION)
    stages = [a for a in assets if a.key.path[-1] in ("vlm_training_set",
                                                      "vlm_preference_model")]
    result = materialize(stages, instance=instance, resources=resources,
                         partition_key="vlm-l1", run_config={"ops": {"vlm_training_set": {
                             "config": {"tasks": ["video_qa"]}}}})  # nobody reviewed them
    preference = _meta(result, "vlm_preference_model")
    assert preference["pairs"] == 0 and list(preference)[0] == "skipped"
    assert "nothing trained" in preference["skipped"]
    assert "image_qc_verdicts" in preference["skipped"] and "pairs_file" not in preference
    assert "checkpoint" not in warehouse.read_output("vlm_preference_model", "vlm-l1")
    print_outcome({"table": "| model |", "not_trained": {"vlm_preference_model": "no pair"},
                   "decision": {"selection": "sft", "passed": True, "reason": "better"},
                   "models": {"candidate": {"model_id": "sft-vlm-l1"}}})
    assert "(not in the table: vlm_preference_model trained nothing: no pair)" in \
        capsys.readouterr().out


def test_a_vlm_loop_without_datasets_says_which_job_labels_them(vlm_env, warehouse, tmp_path):
    instance, resources = vlm_env
    warehouse.register_batch("empty", tmp_path, role="train")
    instance.add_dynamic_partitions(BATCHES, ["empty"])
    assets, _ = _assets(VISION)
    (training_set,) = [a for a in assets if a.key.path[-1] == "vlm_training_set"]
    with pytest.raises(TrainingSetError, match="image_labeling"):
        materialize([training_set], instance=instance, resources=resources,
                    partition_key="vlm-l1", run_config={"ops": {"vlm_training_set": {
                        "config": {"train_batches": ["empty"], "eval_batches": ["img-eval"]}}}})


def test_alm_loop_trains_and_promotes_in_its_own_family(warehouse, registry, tmp_path):
    from models.tiny import build_tiny_qwen2_audio

    for batch, role, seed in (("aq-train", "train", 0), ("aq-eval", "eval", 1)):
        chain_audio_questions(warehouse.report_dir("audio_qa_dataset", batch), clips=1,
                              seed=seed, seconds=3.0)
        warehouse.register_batch(batch, tmp_path, role=role)
    hub = {"audio_lm_model": str(build_tiny_qwen2_audio(tmp_path / "qwen2_audio"))}
    instance, resources = _env(warehouse, registry, tmp_path, hub, ["aq-train", "aq-eval"],
                               ["alm-l1"])
    assets, checks = _assets(AUDIO_QA)
    result = materialize([*assets, *checks], instance=instance, resources=resources,
                         partition_key="alm-l1", run_config=_config(
                             "alm", tolerance=100.0, objective="dpo", pairs_from="verified"))
    instance.dispose()
    assert result.success
    # no person reviews audio questions: pairs only when the chain's verification is asked for
    preference = _meta(result, "alm_preference_model")
    assert preference["pairs"] > 0
    assert preference["pair_sources"].endswith("against a verified distractor")
    evaluation = _meta(result, "alm_eval")
    assert "| dpo |" in evaluation["table"]
    assert "audio_qa" in evaluation["table"] and "audio_qa/" in evaluation["by_bucket"]
    assert registry.champion("alm")["model_id"] == _meta(result, "alm_promoted_model")["model_id"]
    assert registry.champion("vlm") is None


def test_an_easy_to_hard_run_reads_large_targets_first_in_order(tmp_path):
    """The curriculum reaches the trainer: rows ordered by bucket, read sequentially."""
    from torch.utils.data import SequentialSampler

    from models.tiny import build_tiny_llava
    from training.trl_backend.config import TrlConfig
    from training.trl_backend.curriculum import bucket_of
    from training.trl_backend.data import read_rows
    from training.trl_backend.train import build_trainer

    data = quadrant_pointing(tmp_path / "image", n=8, seed=0)
    rows = read_rows([data])
    assert {bucket_of(r) for r in rows} == {"easy"}  # 10-14 px squares in 32 px images
    video = video_choice_rows(tmp_path / "video", n=4, frames=2, seed=0)
    config = TrlConfig(objective="sft", model=str(build_tiny_llava(tmp_path / "llava")),
                       data=f"{data},{video}", output_dir=str(tmp_path / "run"),
                       curriculum="easy_to_hard", max_steps=1, batch_size=2)
    trainer, _ = build_trainer(config)
    assert isinstance(trainer._get_train_sampler(), SequentialSampler)
    shuffled, _ = build_trainer(config.model_copy(update={"curriculum": "none"}))
    assert not isinstance(shuffled._get_train_sampler(), SequentialSampler)


def test_run_task_refuses_speech_only_flags_in_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from pipelines.cli import main

    monkeypatch.setenv("RLFOUNDRY_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["run", "--task", "image", "--guard", "real"])
    assert result.exit_code != 0
    assert "--guard apply to --task speech" in result.output
    assert "Traceback" not in result.output


def test_a_starting_model_that_cannot_load_offline_stops_the_loop_in_one_line(
        warehouse, tmp_path, monkeypatch):
    import click

    from pipelines.task_loop_cli import _check_start_model

    monkeypatch.setenv("RLFOUNDRY_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("RLFOUNDRY_AUDIO_LM_MODEL", raising=False)
    with pytest.raises(click.ClickException) as caught:  # the hub default, not cached here
        _check_start_model(AUDIO_QA, {"ops": {}}, warehouse)
    message = caught.value.message
    assert "Qwen/Qwen2-Audio-7B-Instruct" in message and "$RLFOUNDRY_AUDIO_LM_MODEL" in message
    assert "BUILDERS['audio_lm']" in message and "\n" not in message
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    _check_start_model(AUDIO_QA, {"ops": {"alm_sft_model": {"config": {
        "base_model": str(tiny)}}}}, warehouse)  # a local folder passes
