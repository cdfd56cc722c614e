"""Our own trainer for Whisper, an encoder-decoder that TRL's trainers do not take.

* :mod:`training.whisper.loop`: the training loop (``train``), resumable, DDP-ready;
* :mod:`training.whisper.offline`: one micro-batch of SFT, DPO or MPO;
* :mod:`training.whisper.online`: one micro-batch of online RL (GRPO, MWER);
* :mod:`training.whisper.logps`: teacher-forced log-probabilities of transcripts;
* :mod:`training.whisper.reference_cache`: the frozen reference's log-probs, kept on disk;
* :mod:`training.whisper.data`: training rows, log-mel features, deterministic batches.
"""
