"""The ``trl`` backend: TRL's SFTTrainer and GRPOTrainer for vision-language models (``vlm``) and
audio-language models (``alm``, Qwen2-Audio class).

One run = one typed config (:mod:`~training.trl_backend.config`), launched like the Whisper
trainer: ``torchrun --nproc-per-node N -m training.trl_backend.run CONFIG.json``.

* :mod:`~training.trl_backend.config`: :class:`TrlConfig` (objective sft | grpo, loss type,
  KL beta, reward weights, blind control, ...);
* :mod:`~training.trl_backend.data`: the image and video chains' dataset rows as TRL rows
  (conversational prompt, ``images``, gold completion, reward columns; blind: no media);
* :mod:`~training.trl_backend.rewards`: one TRL reward function per component, each scoring
  its own task's rows (built on :mod:`training.rewards`);
* :mod:`~training.trl_backend.callback`: metrics.jsonl, entropy watch, Pipes progress and
  curves, as the Whisper trainer writes them;
* :mod:`~training.trl_backend.train`: builds the trainer, trains or resumes;
* :mod:`~training.trl_backend.run`: the entry point (Pipes or JSON lines);
* :mod:`~training.trl_backend.evaluate`: held-out accuracy per task, with and without media;
* :mod:`~training.trl_backend.synthetic`: synthetic chain data and a learnable tiny LLaVA
  (tests and ``benchmarks/trl_learning_check.py``);
* ``alm``: :mod:`~training.trl_backend.audio` (the audio chain's rows as TRL rows; prompts
  with the clip's features), :mod:`~training.trl_backend.audio_trainer` (a GRPOTrainer
  subclass and an SFT collator that pass ``input_features`` / ``feature_attention_mask``),
  :mod:`~training.trl_backend.audio_eval` (accuracy per question type, numeric error, with and
  without the clip), :mod:`~training.trl_backend.synthetic_audio` (chain rows from tone clips;
  the two-tone task and a learnable tiny Qwen2-Audio for
  ``benchmarks/trl_learning_check_alm.py``).

The package is named ``trl_backend`` (not ``trl``) so it can never shadow TRL itself.
"""
