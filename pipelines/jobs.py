"""Jobs: named selections of the asset graph that users launch per batch."""

from dagster import AssetSelection, define_asset_job

from pipelines.partitions import batches

ingest_job = define_asset_job(
    "ingest", AssetSelection.groups("ingest"), partitions_def=batches,
    description="Probe, hash, deduplicate and quarantine a batch's audio, images and videos.",
)
speech_labeling_job = define_asset_job(
    "speech_labeling", AssetSelection.assets("asr_hypotheses"), partitions_def=batches,
    description="N-best Whisper hypotheses for every clip of a batch.",
)
speech_eval_job = define_asset_job(
    "speech_eval", AssetSelection.assets("asr_baseline_eval"), partitions_def=batches,
    description="Baseline WER/CER of a batch, per accent and noise group.",
)
preferences_job = define_asset_job(
    "speech_preferences", AssetSelection.assets("preference_pairs", "reward_shaping"),
    partitions_def=batches,
    description="Preference pairs (mined + human) and per-hypothesis reward components.",
)
preference_training_job = define_asset_job(
    "speech_preference_training", AssetSelection.assets("whisper_preference_model"),
    partitions_def=batches,
    description="DPO or MPO on the batch's pairs, out of process through torchrun and Pipes.",
)
JOBS = [ingest_job, speech_labeling_job, speech_eval_job, preferences_job,
        preference_training_job]
