"""The question chains' loops on the spine: a VLM loop and an audio-LM loop, as task specs.

Each trains one model family through the TRL backend on the datasets its chains export
(`pointing_dataset`, `video_qa_dataset`, `audio_qa_dataset`: TRL-shaped JSONL per batch) and
is built from its spec by `assets.loop.build`. `CHAINS` says, per chain task, which media table
holds its batches and which batch job labels one, so that `rlfoundry run --task` can label a
batch that has no dataset yet.
"""

from __future__ import annotations

from training.tasks import TaskSpec
from training.trl_backend.config import FAMILY_REWARD_WEIGHTS

VISION = TaskSpec(
    name="vision", family="vlm", media_table="images", label_job="image_labeling",
    loop_jobs={"grpo": "vlm_loop"}, training_set="vlm_training_set",
    models={"sft": "vlm_sft_model", "preference": "vlm_preference_model",
            "rl": "vlm_grpo_model"}, evaluation="vlm_eval",
    metric="score", higher_is_better=True, rewards=tuple(FAMILY_REWARD_WEIGHTS["vlm"]),
    datasets={"pointing": ("pointing_dataset", "pointing.jsonl"),
              "video_qa": ("video_qa_dataset", "video_qa.jsonl")})
AUDIO_QA = TaskSpec(
    name="audio_qa", family="alm", media_table="audio_clips", label_job="audio_qa_labeling",
    loop_jobs={"grpo": "alm_loop"}, training_set="alm_training_set",
    models={"sft": "alm_sft_model", "preference": "alm_preference_model",
            "rl": "alm_grpo_model"}, evaluation="alm_eval",
    metric="score", higher_is_better=True, rewards=tuple(FAMILY_REWARD_WEIGHTS["alm"]),
    datasets={"audio_qa": ("audio_qa_dataset", "audio_qa.jsonl")})
SPECS = (VISION, AUDIO_QA)

#: chain task -> (media table of its batches, the batch job that makes its dataset)
CHAINS = {"pointing": ("images", "image_labeling"),
          "video_qa": ("videos", "video_qa_labeling"),
          "audio_qa": ("audio_clips", "audio_qa_labeling")}
#: the model hub role whose default is each family's starting model
ROLE = {"vlm": "vlm", "alm": "audio_lm"}


def promotion_asset(spec: TaskSpec) -> str:
    """The loop's promotion asset (`vlm_promoted_model`)."""
    return f"{spec.family}_promoted_model"
