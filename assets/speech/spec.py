"""The speech task's declaration on the spine (see `training.tasks.TaskSpec`)."""

from training.rewards.composite import REWARD_NAMES
from training.tasks import TaskSpec

SPEECH = TaskSpec(
    name="speech",
    family="asr",
    media_table="audio_clips",
    label_job="speech_data",
    loop_jobs={"dpo": "speech_loop", "mpo": "speech_loop", "grpo": "speech_rl_loop",
               "mwer": "speech_rl_loop"},
    training_set="speech_training_set",
    models={"sft": "whisper_sft_model", "preference": "whisper_preference_model",
            "rl": "whisper_rl_model"},
    evaluation="asr_eval",
    metric="wer",
    higher_is_better=False,
    rewards=tuple(REWARD_NAMES),
    label_tables=("asr_hypotheses", "preference_pairs", "reward_shaping", "curriculum_buckets"),
)
