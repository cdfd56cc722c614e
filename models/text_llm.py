"""Text generation (the `text_llm` role) with a causal language model.

`AutoModelForCausalLM` + `AutoTokenizer`; the default is Qwen2.5 0.5B
Instruct. A string prompt is one user turn rendered with the tokenizer's chat
template (or used as it is when the tokenizer has none); a list of messages is
a whole chat. Prompts are left-padded and batched; only new tokens are decoded.

Example (tiny random weights: the text is meaningless):
    >>> import tempfile
    >>> from models.tiny import build_tiny_qwen2
    >>> llm = CausalTextLLM.from_pretrained(str(build_tiny_qwen2(tempfile.mkdtemp())))
    >>> chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]
    >>> answers = llm.generate(["describe the picture", chat], max_new_tokens=4)
    >>> len(answers), all(isinstance(a, str) for a in answers)
    (2, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from models.loading import batched, generation_options, load_pretrained, new_text
from models.roles import Message

DEFAULT_TEXT_LLM = "Qwen/Qwen2.5-0.5B-Instruct"


class CausalTextLLM:
    """Completes prompts or chats."""

    def __init__(self, model, tokenizer, *, name: str, batch_size: int = 8):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.name = name
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(
        cls, path_or_id: str = DEFAULT_TEXT_LLM, *, device: str | None = None,
        dtype: torch.dtype | None = None, batch_size: int = 8,
    ) -> CausalTextLLM:
        """Load from a folder or a hub id (bfloat16 on GPU)."""
        model, tokenizer = load_pretrained(
            AutoModelForCausalLM, AutoTokenizer, path_or_id, device, dtype, torch.bfloat16)
        return cls(model, tokenizer, name=str(path_or_id), batch_size=batch_size)

    def render(self, prompt: str | list[Message]) -> str:
        """The text the model sees for one prompt."""
        if not self.tokenizer.chat_template:
            if isinstance(prompt, str):
                return prompt
            raise ValueError(f"{self.name} has no chat template: pass plain strings")
        chat = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        return self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)

    def generate(
        self, prompts: Sequence[str | list[Message]], *, max_new_tokens: int = 64,
        temperature: float = 0.0,
    ) -> list[str]:
        """One completion per prompt, in input order (greedy at temperature 0)."""
        options = generation_options(max_new_tokens, temperature, self.tokenizer.pad_token_id)
        answers: list[str] = []
        for batch in batched([self.render(p) for p in prompts], self.batch_size):
            answers += self._generate(batch, options)
        return answers

    @torch.inference_mode()
    def _generate(self, texts: list[str], options: dict) -> list[str]:
        inputs = self.tokenizer(
            texts, return_tensors="pt", padding=True,
            add_special_tokens=not self.tokenizer.chat_template,  # the template adds its own
        ).to(self.model.device)
        out = self.model.generate(**inputs, **options)
        return new_text(self.tokenizer, out, inputs["input_ids"].shape[1])
