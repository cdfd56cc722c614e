"""Audio-language generation (the `audio_lm` role) with Qwen2-Audio.

`Qwen2AudioForConditionalGeneration` + `AutoProcessor` (a Whisper feature
extractor and a Qwen2 tokenizer, no torchaudio). Each clip is one audio turn
followed by its text prompt, rendered with the processor's chat template.
Clips are resampled to the feature extractor's rate (16 kHz) and, as Qwen2-Audio
does, cut at its 30 s window. Prompts are left-padded and batched; only new
tokens are decoded.

Example (tiny random weights: the text is meaningless):
    >>> import numpy as np, tempfile
    >>> from models.tiny import build_tiny_qwen2_audio
    >>> alm = Qwen2AudioLM.from_pretrained(str(build_tiny_qwen2_audio(tempfile.mkdtemp())))
    >>> clip = np.zeros(16_000, dtype=np.float32)
    >>> answers = alm.generate_with_audio([clip], ["What do you hear?"], max_new_tokens=3)
    >>> len(answers), isinstance(answers[0], str)
    (1, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

from models.loading import (
    batched,
    check_pairs,
    generation_options,
    load_pretrained,
    new_text,
)

DEFAULT_AUDIO_LM = "Qwen/Qwen2-Audio-7B-Instruct"


class Qwen2AudioLM:
    """Answers prompts about clips."""

    def __init__(self, model, processor, *, name: str, batch_size: int = 4):
        self.model = model.eval()
        self.processor = processor
        self.processor.tokenizer.padding_side = "left"
        self.name = name
        self.batch_size = batch_size
        self.sample_rate: int = processor.feature_extractor.sampling_rate

    @classmethod
    def from_pretrained(
        cls, path_or_id: str = DEFAULT_AUDIO_LM, *, device: str | None = None,
        dtype: torch.dtype | None = None, batch_size: int = 4,
    ) -> Qwen2AudioLM:
        """Load from a folder or a hub id (bfloat16 on GPU; the default needs ~16 GB)."""
        model, processor = load_pretrained(
            Qwen2AudioForConditionalGeneration, AutoProcessor, path_or_id, device, dtype,
            torch.bfloat16)
        return cls(model, processor, name=str(path_or_id), batch_size=batch_size)

    def generate_with_audio(
        self, audios: Sequence[np.ndarray], prompts: Sequence[str], *, sample_rate: int = 16_000,
        max_new_tokens: int = 64, temperature: float = 0.0,
    ) -> list[str]:
        """One answer per (mono clip at `sample_rate`, prompt), in input order."""
        check_pairs(audios, prompts, "generate_with_audio")
        options = generation_options(
            max_new_tokens, temperature, self.processor.tokenizer.pad_token_id
        )
        clips = [self._resampled(a, sample_rate) for a in audios]
        answers: list[str] = []
        for batch in batched(list(zip(clips, prompts, strict=True)), self.batch_size):
            answers += self._generate(batch, options)
        return answers

    def _resampled(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"audio must be mono (1-D), got shape {audio.shape}")
        if sample_rate != self.sample_rate:
            import soxr

            audio = soxr.resample(audio, sample_rate, self.sample_rate).astype(np.float32)
        return audio

    @torch.inference_mode()
    def _generate(self, batch, options: dict) -> list[str]:
        texts = [
            self.processor.apply_chat_template(
                [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": p}]}],
                add_generation_prompt=True, tokenize=False,
            )
            for _, p in batch
        ]
        inputs = self.processor(
            text=texts, audio=[clip for clip, _ in batch], sampling_rate=self.sample_rate,
            return_tensors="pt", padding=True,
        ).to(self.model.device, dtype=self.model.dtype)
        out = self.model.generate(**inputs, **options)
        return new_text(self.processor, out, inputs["input_ids"].shape[1])
