"""The speech loop end to end on a tiny Whisper: training set, SFT, DPO, eval, promotion.

Training runs out of process (torchrun + Pipes), as in production. Whether a
random tiny model "improves" is noise, so the promotion outcome is forced
through the check's own tolerance: a huge tolerance must promote, a negative
one (demand an impossible gain) must block.
"""

import json
import re
from datetime import UTC, datetime

import pytest
from dagster import DagsterInstance, materialize
from transformers import WhisperForConditionalGeneration

from assets.label_sets import clip_set
from assets.speech.checks import (
    asr_eval_candidate_not_worse,
    asr_eval_deletions_not_up,
    whisper_rl_model_entropy_ok,
)
from assets.speech.labeling import asr_hypotheses
from assets.speech.preferences import preference_pairs
from assets.speech.promotion import asr_eval, promoted_model
from assets.speech.training import (
    speech_training_set,
    whisper_preference_model,
    whisper_rl_model,
    whisper_sft_model,
)
from labeling.testing import write_tone
from pipelines.partitions import BATCHES, LOOPS
from resources.model_hub import ModelHub
from resources.training_launcher import TrainingLauncher
from training.data.training_set import TrainingSetError

NOW = datetime.now(UTC)
LOOP = [speech_training_set, whisper_sft_model, whisper_preference_model, asr_eval,
        promoted_model, asr_eval_candidate_not_worse, asr_eval_deletions_not_up]


def _clips(tmp_path, batch, refs, tags):
    rows = []
    for i, ref in enumerate(refs):
        path = write_tone(tmp_path / f"{batch}-{i}.wav", seconds=0.5, seed=hash(batch) % 97 + i)
        rows.append({"clip_id": f"{batch}{i}".ljust(64, "0"), "source_path": str(path),
                     "sample_rate": 16000, "channels": 1, "duration_s": 0.5, "rms_dbfs": -20.0,
                     "peak_dbfs": -3.0, "text": ref, "tags": json.dumps(tags[i % len(tags)]),
                     "ingested_at": NOW})
    return rows


@pytest.fixture
def loop_env(warehouse, tmp_path, tiny_whisper_dir, registry):
    """A train batch with hypotheses and pairs, an eval batch, both registered."""
    train = _clips(tmp_path, "b", ["the cat sat on the mat", "good morning everyone",
                                   "see you tomorrow"], [{}])
    dev = _clips(tmp_path, "dev", ["the cat sat", "good night"],
                 [{"accent": "us"}, {"accent": "gb"}])
    warehouse.write_partition("audio_clips", "b", train)
    warehouse.write_partition("audio_clips", "dev", dev)
    warehouse.register_batch("b", tmp_path)
    warehouse.register_batch("dev", tmp_path, role="eval")
    _label(warehouse, train)
    resources = {"warehouse": warehouse, "training_launcher": TrainingLauncher(),
                 "model_registry": registry,
                 "model_hub": ModelHub(cache_dir=str(tmp_path / "models"),
                                       baseline_asr=str(tiny_whisper_dir))}
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BATCHES, ["b", "dev"])
    instance.add_dynamic_partitions(LOOPS, ["asr-l1", "asr-l2"])
    assert materialize([preference_pairs], partition_key="b", instance=instance,
                       resources=resources).success
    yield instance, resources
    instance.dispose()


def _label(warehouse, clips):
    """Hypotheses of batch b's clips, made from its clip set now (as asr_hypotheses does)."""
    made_from = clip_set(warehouse, "audio_clips", "b")
    warehouse.write_partition("asr_hypotheses", "b", [
        {"clip_id": c["clip_id"], "model": "m", "kind": "beam", "rank": r, "seed": 0,
         "text": text, "avg_logprob": -0.5, "num_tokens": 4, "clip_set": made_from,
         "created_at": NOW}
        for c in clips for r, text in enumerate([c["text"], c["text"].split()[0]])])


def _loop_config(tolerance: float) -> dict:
    return {"ops": {
        "whisper_sft_model": {"config": {"max_steps": 2, "batch_size": 2, "warmup_steps": 0}},
        "whisper_preference_model": {"config": {"max_steps": 2, "batch_size": 2, "beta": 0.5}},
        "asr_eval": {"config": {"group_by": ["accent"], "max_wer_increase": tolerance,
                                "candidate": "preference"}},
    }}


def _meta(result, asset):
    (mat,) = [e.event_specific_data.materialization for e in
              result.get_asset_materialization_events() if e.asset_key.path[-1] == asset]
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def test_loop_trains_sft_then_dpo_evaluates_and_promotes(loop_env, warehouse, registry):
    instance, resources = loop_env
    # round 1 (baseline labels): mined pairs only; hard negatives start with round 2
    assert warehouse.fetch("SELECT DISTINCT source, round FROM preference_pairs") == [
        ("model", 1)]
    result = materialize(LOOP, instance=instance, resources=resources, partition_key="asr-l1",
                         run_config=_loop_config(tolerance=100.0))
    assert result.success
    snap = _meta(result, "speech_training_set")
    assert (snap["sft_rows"], snap["eval_clips"]) == (3, 2) and snap["pairs"] > 0
    # each pair carries its clip's verified transcript, for an SFT term on the reference
    texts = dict(warehouse.fetch("SELECT clip_id, text FROM audio_clips WHERE batch = 'b'"))
    pairs = [json.loads(line) for line in open(f"{snap['snapshot']}/pairs.jsonl")]
    assert pairs and all(p["reference"] == texts[p["clip_id"]].strip() for p in pairs)
    sft, dpo = _meta(result, "whisper_sft_model"), _meta(result, "whisper_preference_model")
    assert "data:image/png;base64," in sft["curves"] and "data:image/png" in dpo["curves"]
    # DPO starts from the SFT checkpoint, which is also its frozen reference
    assert dpo["base_model"] == registry.get(sft["model_id"])["checkpoint"]
    evaluation = _meta(result, "asr_eval")
    assert "|accent|gb|" in evaluation["table"] and "baseline WER" in evaluation["table"]
    promoted = _meta(result, "promoted_model")
    assert promoted["model_id"] == dpo["model_id"] and promoted["replaces"] == "baseline"
    row = registry.champion("asr")
    assert row["model_id"] == dpo["model_id"] and list(row["train_batches"]) == ["b"]
    assert row["eval_wer"] is not None and row["config"]["objective"] == "dpo"
    assert not registry.get(sft["model_id"])["promoted"]
    WhisperForConditionalGeneration.from_pretrained(row["checkpoint"])
    rows = warehouse.fetch("SELECT DISTINCT eval_name FROM asr_eval WHERE batch = 'dev'")
    assert {r[0] for r in rows} == {"incumbent", "sft", "preference"}

    # round 2: the promoted model relabels the train batch; its worst clips become hard negatives
    assert registry.current_round("asr") == 2
    relabel = materialize([asr_hypotheses, preference_pairs], partition_key="b",
                          instance=instance, resources=resources, run_config={"ops": {
                              "asr_hypotheses": {"config": {"num_beams": 2, "num_samples": 2}},
                              "preference_pairs": {"config": {"hard_negative_share": 1.0}}}})
    assert relabel.success
    labels = warehouse.fetch("SELECT DISTINCT model, round FROM asr_hypotheses WHERE batch='b'")
    assert labels == [(row["checkpoint"], 2)]
    sources = dict(warehouse.fetch("SELECT source, count(*) FROM preference_pairs "
                                   "WHERE batch = 'b' AND round = 2 GROUP BY 1"))
    assert sources.get("hard_negative", 0) >= 1  # a random tiny model errs on every clip

    # online RL from the promoted DPO model, competing with it (now the incumbent)
    rl = materialize(
        [speech_training_set, whisper_rl_model, asr_eval, promoted_model,
         asr_eval_candidate_not_worse, whisper_rl_model_entropy_ok],
        instance=instance, resources=resources, partition_key="asr-l2", run_config={"ops": {
            "whisper_rl_model": {"config": {"objective": "grpo", "base_model": "preference",
                                            "max_steps": 1, "batch_size": 2,
                                            "num_generations": 2}},
            "asr_eval": {"config": {"candidate": "rl", "group_by": ["accent"],
                                    "max_wer_increase": 100.0}}}})
    assert rl.success
    grpo = _meta(rl, "whisper_rl_model")
    assert grpo["base_model"] == row["checkpoint"] and not grpo["stopped_early"]
    assert "data:image/png;base64," in grpo["curves"]
    assert _meta(rl, "promoted_model")["replaces"] == dpo["model_id"]
    # the incumbent (the DPO model) was decoded on these clips before: not again; the SFT
    # model belongs to the other loop, so this loop's table has no SFT column
    assert set(_meta(rl, "asr_eval")["transcripts_reused"]) == {dpo["model_id"]}
    assert "sft-asr-l1" not in _meta(rl, "asr_eval")["table"]
    # shown again as a column, the SFT model keeps the incumbent of its own loop
    assert registry.get(sft["model_id"])["incumbent"] == "baseline"
    promoted_now = registry.champion("asr")
    assert promoted_now["stage"] == "grpo" and promoted_now["round"] == 2


def test_the_best_trained_model_competes_and_a_guard_regression_blocks_it(
        loop_env, warehouse, registry, tmp_path):
    instance, resources = loop_env
    real = _clips(tmp_path, "real", ["good evening", "the mat"], [{}])
    warehouse.write_partition("audio_clips", "real", real)
    warehouse.register_batch("real", tmp_path, role="guard")
    instance.add_dynamic_partitions(BATCHES, ["real"])
    config = _loop_config(tolerance=100.0)
    config["ops"]["asr_eval"]["config"] = {"group_by": ["accent"], "max_wer_increase": 100.0,
                                           "guard_max_wer_increase": -1.0}  # impossible
    for stage in ("whisper_sft_model", "whisper_preference_model"):
        config["ops"][stage]["config"]["save_every"] = 1
    result = materialize(LOOP, instance=instance, resources=resources, partition_key="asr-l1",
                         run_config=config, raise_on_error=False)
    assert not result.success and registry.champion("asr") is None
    assert _meta(result, "speech_training_set")["guard_clips"] == 2
    decision = warehouse.read_output("asr_eval", "asr-l1")["decision"]
    assert not decision["passed"] and "refused: it regresses on guard real: WER" in (
        decision["reason"])
    assert "every model regresses on a guard batch" in decision["selection"]
    assert [g["batch"] for g in decision["guards"]] == ["real"]
    # every model's guard WER is reported, not only the candidate's
    out = warehouse.read_output("asr_eval", "asr-l1")
    guard_wer = out["guard_wer"]  # baseline, and each stage's final and intermediate checkpoint
    assert len(guard_wer) == len(out["models"]) - 1 == 5  # "candidate" names one of them
    assert all(set(w) == {"real"} for w in guard_wer.values())
    assert "| model | real |" in _meta(result, "asr_eval")["guard_wer"]
    # a realistic tolerance, and every saved checkpoint competing: the lowest-WER model
    config["ops"]["asr_eval"]["config"].update(guard_max_wer_increase=100.0)
    again = materialize([asr_eval, promoted_model, asr_eval_candidate_not_worse],
                        instance=instance, resources=resources, partition_key="asr-l1",
                        run_config={"ops": {"asr_eval": config["ops"]["asr_eval"]}})
    assert again.success
    evaluation = warehouse.read_output("asr_eval", "asr-l1")
    stages = ["sft.step1", "sft", "preference.step1", "preference"]  # save_every 1, 2 steps
    assert sorted(s for s in evaluation["models"] if s not in ("incumbent", "candidate")) == (
        sorted(stages))
    wers = {evaluation["models"][s]["model_id"]: evaluation["reports"][
        evaluation["models"][s]["model_id"]]["overall"]["wer"] for s in stages}
    best = min(wers, key=lambda m: (round(wers[m], 9), list(wers).index(m)))
    assert evaluation["models"]["candidate"]["model_id"] == best
    assert registry.champion("asr")["model_id"] == best  # registered if a step won
    assert evaluation["decision"]["selection"].startswith(f"{best}: lowest eval WER")
    guard_rows = warehouse.fetch("SELECT DISTINCT eval_name FROM asr_eval WHERE batch='real'")
    assert {r[0] for r in guard_rows} == {"incumbent", *stages}


def test_a_worse_candidate_is_blocked_and_never_promoted(loop_env, warehouse, registry):
    instance, resources = loop_env
    # demand an impossible gain: the candidate counts as worse than the incumbent
    result = materialize(LOOP, instance=instance, resources=resources, partition_key="asr-l1",
                         run_config=_loop_config(tolerance=-10.0), raise_on_error=False)
    assert not result.success
    checks = {e.asset_check_key.name: e for e in
              (ev.event_specific_data for ev in result.all_events
               if ev.event_type_value == "ASSET_CHECK_EVALUATION")}
    assert not checks["asr_eval_candidate_not_worse"].passed
    assert re.search(r"worse than incumbent|short of the gain demanded",
                     checks["asr_eval_candidate_not_worse"].description)
    assert not [e for e in result.get_asset_materialization_events()
                if e.asset_key.path[-1] == "promoted_model"]
    assert registry.champion("asr") is None
    # materialized on its own (no check in the run), promoted_model refuses too
    alone = materialize([promoted_model], instance=instance, resources=resources,
                        partition_key="asr-l1", raise_on_error=False)
    assert not alone.success and registry.champion("asr") is None


def test_training_set_refuses_an_eval_batch_that_is_also_trained_on(loop_env):
    instance, resources = loop_env
    with pytest.raises(TrainingSetError, match="both trained and evaluated on: b"):
        materialize([speech_training_set], instance=instance, resources=resources,
                    partition_key="asr-l1", run_config={"ops": {"speech_training_set": {"config": {
                        "train_batches": ["b"], "eval_batches": ["b", "dev"]}}}})


def test_training_set_refuses_labels_of_a_batch_reingested_since(loop_env, warehouse,
                                                                  tmp_path):
    instance, resources = loop_env
    # batch b is ingested again from another source: its pairs describe clips it lost
    replaced = _clips(tmp_path, "b2", ["an entirely new clip", "and another"], [{}])
    warehouse.write_partition("audio_clips", "b", replaced)
    with pytest.raises(TrainingSetError, match=r"no longer hold .*: b \(asr_hypotheses, "
                       r"preference_pairs\).*rlfoundry job speech_data --batch b"):
        materialize([speech_training_set], instance=instance, resources=resources,
                    partition_key="asr-l1")
    _label(warehouse, replaced)  # labeled again: N-best, then pairs
    assert materialize([preference_pairs], partition_key="b", instance=instance,
                       resources=resources).success
    result = materialize([speech_training_set], instance=instance, resources=resources,
                         partition_key="asr-l1")
    assert _meta(result, "speech_training_set")["per_batch"]["pairs"] == {"b": 2}


def test_a_bad_training_value_fails_before_launch_naming_the_field(loop_env, warehouse,
                                                                    registry):
    instance, resources = loop_env
    assert materialize([speech_training_set], instance=instance, resources=resources,
                       partition_key="asr-l1").success
    result = materialize([whisper_sft_model], instance=instance, resources=resources,
                         partition_key="asr-l1", raise_on_error=False,
                         run_config={"ops": {"whisper_sft_model": {
                             "config": {"learning_rate": -1.0, "max_steps": 1}}}})
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    cause = failure.step_failure_data.error.cause
    assert "learning_rate" in cause.message and "greater than 0" in cause.message
    assert not warehouse.report_dir("whisper_sft_model", "asr-l1").exists()  # not launched
    assert registry.all_models() == []


def test_a_failed_training_run_says_why_and_registers_nothing(loop_env, warehouse, registry,
                                                              tmp_path):
    instance, resources = loop_env
    assert materialize([speech_training_set], instance=instance, resources=resources,
                       partition_key="asr-l1").success
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    result = materialize([whisper_sft_model], instance=instance, resources=resources,
                         partition_key="asr-l1", raise_on_error=False,
                         run_config={"ops": {"whisper_sft_model": {
                             "config": {"base_model": str(empty), "max_steps": 1}}}})
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "Training failed: " in message and str(empty) in message, message
    assert registry.all_models() == []
    with pytest.raises(FileNotFoundError, match="no output for partition 'asr-l1'"):
        warehouse.read_output("whisper_sft_model", "asr-l1")
