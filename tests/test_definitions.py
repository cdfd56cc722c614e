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
    "whisper_preference_model": {"preference_pairs"},
}
EXPECTED_CHECKS = {("audio_clips", "audio_clips_well_formed"),
                   ("audio_clips", "audio_clips_quarantine_share")}
EXPECTED_JOBS = {"ingest", "speech_labeling", "speech_eval", "speech_preferences",
                 "speech_preference_training"}


def test_asset_graph_matches_the_snapshot():
    graph = defs.resolve_asset_graph()
    assets = {key.to_user_string(): {d.to_user_string() for d in graph.get(key).parent_keys}
              for key in graph.get_all_asset_keys()}
    assert assets == EXPECTED_ASSETS


def test_every_asset_is_partitioned_by_batch_and_versioned():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.partitions_def is not None and node.partitions_def.name == "batches", key
        assert node.code_version, key


def test_checks_and_jobs_match_the_snapshot():
    graph = defs.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks == EXPECTED_CHECKS
    assert {j.name for j in defs.resolve_all_job_defs()} - {"__ASSET_JOB"} == EXPECTED_JOBS
