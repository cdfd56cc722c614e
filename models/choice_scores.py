"""How likely a causal text LLM finds each option letter as its answer: the next-token
probabilities of "A", "B", "C", "D" after the prompt, renormalised over the four.

This is how multiple-choice benchmarks (MMLU and its kin) score a model without parsing its
prose, and it gives a margin (how sure it is), which greedy text does not. It needs the
model's logits: it works on :class:`models.text_llm.CausalTextLLM` (or anything with the same
``model``, ``tokenizer``, ``render`` and ``batch_size``) and returns None for any other
``text_llm`` (a remote service, a stub), whose text the caller reads instead.

Example (tiny random weights: the numbers are meaningless, but they are probabilities):
    >>> import tempfile
    >>> from models.text_llm import CausalTextLLM
    >>> from models.tiny import build_tiny_qwen2
    >>> llm = CausalTextLLM.from_pretrained(str(build_tiny_qwen2(tempfile.mkdtemp())))
    >>> [probs] = letter_probabilities(llm, ["Which? A. dog B. cat C. owl D. cow"])
    >>> len(probs), round(sum(probs), 6)
    (4, 1.0)
    >>> letter_probabilities(object(), ["Which?"]) is None
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from models.loading import batched
from models.roles import Message

LETTERS = ("A", "B", "C", "D")


def letter_token_ids(tokenizer: Any, letters: Sequence[str] = LETTERS) -> list[int] | None:
    """The token id of each letter written alone, or None when one is not a single token of
    its own (then its probability is not one next-token probability)."""
    ids = []
    for letter in letters:
        encoded = tokenizer.encode(letter, add_special_tokens=False)
        if len(encoded) != 1:
            return None
        ids.append(encoded[0])
    return ids if len(set(ids)) == len(ids) else None


def letter_probabilities(
    llm: Any, prompts: Sequence[str | list[Message]], letters: Sequence[str] = LETTERS,
) -> list[list[float]] | None:
    """Per prompt, the probability of each of ``letters`` being the next token (they sum to
    1); None when ``llm`` exposes no logits or a letter is not one token."""
    model, tokenizer = getattr(llm, "model", None), getattr(llm, "tokenizer", None)
    render = getattr(llm, "render", None)
    if model is None or tokenizer is None or render is None or not hasattr(model, "forward"):
        return None
    ids = letter_token_ids(tokenizer, letters)
    if ids is None:
        return None
    out: list[list[float]] = []
    for batch in batched([render(p) for p in prompts], getattr(llm, "batch_size", 8)):
        out += _next_token_probabilities(model, tokenizer, batch, ids)
    return out


@torch.inference_mode()
def _next_token_probabilities(model, tokenizer, texts: list[str], ids: list[int]
                              ) -> list[list[float]]:
    inputs = tokenizer(texts, return_tensors="pt", padding=True,
                       add_special_tokens=not tokenizer.chat_template).to(model.device)
    logits = model(**inputs).logits[:, -1, :]  # left-padded: the last position is the prompt's
    return torch.softmax(logits[:, ids].float(), dim=-1).tolist()
