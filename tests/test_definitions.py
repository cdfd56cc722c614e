"""A snapshot of the asset graph, so that a lineage change is always a deliberate one."""

from pipelines.definitions import defs

EXPECTED_ASSETS = {
    "audio_clips": set(),
    "images": set(),
    "videos": set(),
    "asr_hypotheses": {"audio_clips"},
    "asr_baseline_eval": {"audio_clips"},
    "preference_pairs": {"asr_hypotheses", "audio_clips"},
    "reward_shaping": {"asr_hypotheses", "audio_clips"},
    "pairwise_qc_tasks": {"preference_pairs"},
    "pairwise_qc_verdicts": {"pairwise_qc_tasks"},
    "curriculum_buckets": {"audio_clips", "reward_shaping"},
    "speech_training_set": {"audio_clips", "preference_pairs", "curriculum_buckets"},
    "whisper_sft_model": {"speech_training_set"},
    "whisper_preference_model": {"speech_training_set", "whisper_sft_model"},
    "whisper_rl_model": {"speech_training_set", "whisper_sft_model", "whisper_preference_model"},
    "asr_eval": {"speech_training_set", "whisper_sft_model", "whisper_preference_model",
                 "whisper_rl_model"},
    "promoted_model": {"asr_eval"},
    "image_captions": {"images"},
    "image_phrases": {"image_captions", "images"},
    "image_detections": {"image_phrases", "images"},
    "image_masks": {"image_detections", "images"},
    "image_points": {"image_masks"},
    "image_point_checks": {"image_points", "image_masks"},
    "image_qc_tasks": {"image_point_checks"},
    "image_qc_verdicts": {"image_qc_tasks"},
    "pointing_dataset": {"image_point_checks", "image_points", "image_masks", "image_detections",
                         "image_captions", "images", "image_qc_verdicts"},
    "sound_regions": {"audio_clips", "audio_qa_qc_verdicts"},
    "audio_qa_qc_tasks": {"audio_clips"},
    "audio_qa_qc_verdicts": {"audio_qa_qc_tasks"},
    "sound_durations": {"sound_regions"},
    "audio_questions": {"sound_durations", "audio_clips"},
    "audio_qa_dataset": {"audio_questions", "audio_clips", "sound_regions"},
    "video_segments": {"videos"},
    "video_descriptions": {"video_segments", "videos"},
    "video_questions": {"video_descriptions", "video_segments"},
    "video_qc_tasks": {"video_questions"},
    "video_qc_verdicts": {"video_qc_tasks"},
    "video_qa_dataset": {"video_questions", "video_segments", "video_qc_verdicts"},
}
for _family, _datasets in (("vlm", {"pointing_dataset", "video_qa_dataset"}),
                           ("alm", {"audio_qa_dataset"})):
    EXPECTED_ASSETS.update({
        f"{_family}_training_set": _datasets,
        f"{_family}_sft_model": {f"{_family}_training_set"},
        f"{_family}_preference_model": {f"{_family}_training_set", f"{_family}_sft_model"},
        f"{_family}_grpo_model": {f"{_family}_training_set", f"{_family}_sft_model"},
        f"{_family}_eval": {f"{_family}_training_set", f"{_family}_sft_model",
                            f"{_family}_preference_model", f"{_family}_grpo_model"},
        f"{_family}_promoted_model": {f"{_family}_eval"}})
LOOP_ASSETS = {"speech_training_set", "whisper_sft_model", "whisper_preference_model",
               "whisper_rl_model", "asr_eval", "promoted_model",
               *(f"{f}_{a}" for f in ("vlm", "alm") for a in (
                   "training_set", "sft_model", "preference_model", "grpo_model", "eval",
                   "promoted_model"))}
EXPECTED_CHECKS = {("audio_clips", "audio_clips_well_formed"),
                   ("audio_clips", "audio_clips_quarantine_share"),
                   ("asr_eval", "asr_eval_candidate_not_worse"),
                   ("asr_eval", "asr_eval_deletions_not_up"),
                   ("whisper_rl_model", "whisper_rl_model_entropy_ok"),
                   ("image_masks", "image_masks_well_formed"),
                   ("pointing_dataset", "pointing_dataset_points_in_masks"),
                   ("audio_questions", "audio_questions_well_formed"),
                   ("video_segments", "video_segments_cut_exact"),
                   ("video_questions", "video_questions_well_formed"),
                   ("vlm_eval", "vlm_eval_candidate_not_worse"),
                   ("alm_eval", "alm_eval_candidate_not_worse")}
EXPECTED_JOBS = {"ingest", "speech_labeling", "speech_eval", "speech_preferences",
                 "speech_data", "speech_loop", "speech_rl_loop", "qc_push", "qc_pull",
                 "image_labeling", "image_qc_push", "image_qc_pull", "audio_qa_labeling",
                 "audio_qa_qc_push", "audio_qa_qc_pull", "video_qa_labeling", "video_qc_push",
                 "video_qc_pull", "vlm_loop", "alm_loop"}


def test_asset_graph_matches_the_snapshot():
    graph = defs.resolve_asset_graph()
    assets = {key.to_user_string(): {d.to_user_string() for d in graph.get(key).parent_keys}
              for key in graph.get_all_asset_keys()}
    assert assets == EXPECTED_ASSETS


def test_batch_assets_are_partitioned_by_batch_loop_assets_by_loop_and_all_are_versioned():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        kind = "loops" if key.to_user_string() in LOOP_ASSETS else "batches"
        assert node.partitions_def is not None and node.partitions_def.name == kind, key
        assert node.code_version, key
    for name in ("speech_loop", "speech_rl_loop", "vlm_loop", "alm_loop"):
        assert defs.resolve_job_def(name).partitions_def.name == "loops"


def test_the_promotion_check_blocks_and_the_automation_starts_switched_off():
    from dagster import DefaultScheduleStatus, DefaultSensorStatus

    graph = defs.resolve_asset_graph()
    (check,) = [graph.get_check_spec(k) for k in graph.asset_check_keys
                if k.name == "asr_eval_candidate_not_worse"]
    assert check.blocking
    schedule = defs.resolve_schedule_def("nightly_retrain")
    assert schedule.job_name == "speech_data" and schedule.cron_schedule == "0 2 * * *"
    assert schedule.default_status == DefaultScheduleStatus.STOPPED
    for name in ("inbox_manifests", "loop_after_nightly_relabel"):
        assert defs.resolve_sensor_def(name).default_status == DefaultSensorStatus.STOPPED


def test_checks_and_jobs_match_the_snapshot():
    graph = defs.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks == EXPECTED_CHECKS
    assert {j.name for j in defs.resolve_all_job_defs()} - {"__ASSET_JOB"} == EXPECTED_JOBS


GPU_ASSETS = {"asr_hypotheses", "asr_baseline_eval", "whisper_sft_model",
              "whisper_preference_model", "whisper_rl_model", "asr_eval",
              "image_captions", "image_detections", "image_masks", "video_descriptions",
              "video_questions",
              *(f"{f}_{a}" for f in ("vlm", "alm")
                for a in ("sft_model", "preference_model", "grpo_model", "eval"))}


def test_model_steps_share_the_gpu_pool():
    pools = {name: defs.get_assets_def(name).op.pool for name in EXPECTED_ASSETS}
    assert {name for name, pool in pools.items() if pool == "gpu"} == GPU_ASSETS
    assert {pool for name, pool in pools.items() if name not in GPU_ASSETS} == {None}


def test_code_version_follows_the_python_an_asset_runs(tmp_path, monkeypatch):
    """Editing the logic behind an asset (not only its SQL) changes its code_version."""
    import importlib

    import sql

    (tmp_path / "logic_under_test.py").write_text("def f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("logic_under_test")
    before = sql.version("schema/audio_clips", module)
    assert sql.version("schema/audio_clips", module) == before  # stable
    (tmp_path / "logic_under_test.py").write_text("def f():\n    return 2\n")
    assert sql.version("schema/audio_clips", module) != before
    # a package counts every module under it: the trainer's assets follow all of training/
    graph = defs.resolve_asset_graph()
    from dagster import AssetKey

    versions = {graph.get(AssetKey(a)).code_version for a in
                ("whisper_sft_model", "whisper_preference_model", "whisper_rl_model")}
    assert len(versions) == 1 and len(versions.pop()) == 12
