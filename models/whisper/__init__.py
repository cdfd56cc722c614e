"""Whisper, the pipeline's ASR model, and the import of its CTranslate2 weights.

* :mod:`models.whisper.asr`: ``WhisperASR``, transcripts, n-best lists and scores;
* :mod:`models.whisper.inputs`: audio checks, token caps, the decoder prompt;
* :mod:`models.whisper.decoding`: seeded sampling, token caps and lean beam search in ``generate``;
* :mod:`models.whisper.nbest`: n-best lists of greedy, beam and sampled hypotheses;
* :mod:`models.whisper.scoring`: teacher-forced scores of transcripts;
* :mod:`models.whisper.ct2`: CTranslate2 / faster-whisper weights as a transformers model.
"""
