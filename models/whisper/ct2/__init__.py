"""CTranslate2 / faster-whisper Whisper models imported as transformers models.

* :mod:`models.whisper.ct2.reader`: CTranslate2's ``model.bin``, read without its runtime;
* :mod:`models.whisper.ct2.weights`: the model's sizes and its tensors under transformers' names;
* :mod:`models.whisper.ct2.configs`: tokenizer, ``WhisperConfig`` and ``GenerationConfig``;
* :mod:`models.whisper.ct2.importer`: ``import_ct2_whisper``, which checks all of it in memory,
  then writes the directory atomically.
"""
