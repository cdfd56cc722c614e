"""Jobs: named selections of the asset graph that users launch per batch, or for the loop."""

from dagster import AssetSelection, define_asset_job

from pipelines.partitions import batches, loops

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
speech_data_job = define_asset_job(
    "speech_data",
    AssetSelection.assets("audio_clips", "asr_hypotheses", "preference_pairs", "reward_shaping",
                          "curriculum_buckets"),
    partitions_def=batches,
    description="Everything a train batch contributes to the loop: ingest its audio, N-best "
    "hypotheses, preference pairs, reward components and curriculum buckets.",
)
speech_loop_job = define_asset_job(
    "speech_loop",
    AssetSelection.assets("speech_training_set", "whisper_sft_model", "whisper_preference_model",
                          "asr_eval", "promoted_model"),
    partitions_def=loops,
    description="One speech loop (a loop partition) over the labeled batches: training set, "
    "cold-start SFT, DPO or MPO, evaluation against the incumbent on held-out batches, and "
    "promotion. Re-running a loop's partition resumes its training.",
)
speech_rl_loop_job = define_asset_job(
    "speech_rl_loop",
    AssetSelection.assets("speech_training_set", "whisper_rl_model", "asr_eval",
                          "promoted_model"),
    partitions_def=loops,
    description="One online-RL loop (a loop partition): GRPO or MWER from the family's newest "
    "DPO/MPO (or SFT, or promoted) model, evaluation against the incumbent, promotion.",
)
qc_push_job = define_asset_job(
    "qc_push", AssetSelection.assets("pairwise_qc_tasks"), partitions_def=batches,
    description="Push a batch's mined transcript pairs to Label Studio (the model's pick "
    "pre-selected; a share routed to a second annotator).",
)
qc_pull_job = define_asset_job(
    "qc_pull", AssetSelection.assets("pairwise_qc_verdicts", "preference_pairs"),
    partitions_def=batches,
    description="Pull a batch's verdicts and agreement from Label Studio, then rebuild its "
    "preference pairs with the verdicts in place of the mined pairs.",
)
image_labeling_job = define_asset_job(
    "image_labeling", AssetSelection.groups("image"), partitions_def=batches,
    description="A batch's images to a pointing dataset: captions, noun phrases, boxes, masks, "
    "points, their verification, then the dataset (TRL rows and COCO).",
)
image_qc_push_job = define_asset_job(
    "image_qc_push", AssetSelection.assets("image_qc_tasks"), partitions_def=batches,
    description="Push a batch's verified points to Label Studio as yes/no tasks (the point and "
    "its mask pre-drawn; a share routed to a second annotator).",
)
image_qc_pull_job = define_asset_job(
    "image_qc_pull", AssetSelection.assets("image_qc_verdicts", "pointing_dataset"),
    partitions_def=batches,
    description="Pull a batch's point verdicts and agreement from Label Studio, then rebuild its "
    "pointing dataset with only the points people said yes to.",
)
audio_qa_labeling_job = define_asset_job(
    "audio_qa_labeling", AssetSelection.groups("audio_qa"), partitions_def=batches,
    description="A batch's clips to an audio questions dataset: sound regions (given, or speech "
    "detected by silero-vad), durations per class, templated questions (open and multiple "
    "choice), then the dataset (TRL rows).",
)
audio_qa_qc_push_job = define_asset_job(
    "audio_qa_qc_push", AssetSelection.assets("audio_qa_qc_tasks"), partitions_def=batches,
    description="Push a batch's clips to Label Studio to mark their sounds (the manifest's or "
    "the detector's regions pre-drawn; a share routed to a second annotator).",
)
audio_qa_qc_pull_job = define_asset_job(
    "audio_qa_qc_pull",
    AssetSelection.assets("audio_qa_qc_verdicts", "sound_regions", "sound_durations",
                          "audio_questions", "audio_qa_dataset"),
    partitions_def=batches,
    description="Pull a batch's marked regions and their agreement (class-wise IoU) from Label "
    "Studio, then rebuild its regions, durations, questions and dataset with the accepted "
    "human regions first.",
)
video_qa_labeling_job = define_asset_job(
    "video_qa_labeling", AssetSelection.groups("video_qa"), partitions_def=batches,
    description="A batch's videos to a video questions dataset: frames cut at 70 % (the rest is "
    "the truth), descriptions of both parts (given, or by the VLM), questions about what "
    "happens next (by the text LLM, checked, or by a template) with a blind control, then the "
    "dataset (TRL rows).",
)
video_qc_push_job = define_asset_job(
    "video_qc_push", AssetSelection.assets("video_qc_tasks"), partitions_def=batches,
    description="Push a batch's video questions to Label Studio as yes/no tasks (one per "
    "question: the video, the question, its options and the marked answer; a share routed to "
    "a second annotator).",
)
video_qc_pull_job = define_asset_job(
    "video_qc_pull", AssetSelection.assets("video_qc_verdicts", "video_qa_dataset"),
    partitions_def=batches,
    description="Pull a batch's question statuses and agreement (percent, Cohen's kappa) from "
    "Label Studio, then rebuild its video questions dataset with only the accepted questions.",
)
vlm_loop_job = define_asset_job(
    "vlm_loop", AssetSelection.groups("vlm_loop"), partitions_def=loops,
    description="One vision-language loop (a loop partition) on the image pointing and video "
    "question datasets: training set, cold-start SFT, DPO/MPO on the pairs people's verdicts "
    "give, GRPO with verifiable rewards (TRL), evaluation with and without the media against "
    "the vlm champion, promotion.",
)
alm_loop_job = define_asset_job(
    "alm_loop", AssetSelection.groups("alm_loop"), partitions_def=loops,
    description="One audio-language loop (a loop partition) on the audio questions datasets: "
    "training set, cold-start SFT, DPO/MPO where pairs are asked for (pairs_from: verified), "
    "GRPO with verifiable rewards (TRL), evaluation with and without the audio against the "
    "alm champion, promotion.",
)
JOBS = [ingest_job, speech_labeling_job, speech_eval_job, preferences_job, speech_data_job,
        speech_loop_job, speech_rl_loop_job, qc_push_job, qc_pull_job, image_labeling_job,
        image_qc_push_job, image_qc_pull_job, audio_qa_labeling_job, audio_qa_qc_push_job,
        audio_qa_qc_pull_job, video_qa_labeling_job, video_qc_push_job, video_qc_pull_job,
        vlm_loop_job, alm_loop_job]
