"""The answering format the question datasets ask for: reasoning in ``<think>…</think>``, then
the answer alone in ``<answer>…</answer>`` (the format R1-AQA and VLM-R1 train with GRPO).

A dataset row's prompt is the stored question prompt (the question, its lettered options
and its hint: "Answer with the letter of the correct option.", "Answer with a number of
seconds.", ...) followed by :data:`FORMAT_INSTRUCTION`: the hint says *what* to answer, the
instruction *where*. The judge of the format is the reward, not this module:
:func:`training.rewards.answers.answer_format` with its default ``think="required"`` gives
1.0 to exactly this shape (a ``<think>`` block, then a non-empty ``<answer>``, nothing
outside them), and the answer rewards read the last ``<answer>`` span
(``tests/test_questions.py`` checks that prompt and reward agree).

Example:
    >>> prompt = with_reasoning_format("Which sound starts first?\\nAnswer with a sound.")
    >>> prompt.splitlines()[1:] == ["Answer with a sound.", FORMAT_INSTRUCTION]
    True
    >>> print(FORMAT_INSTRUCTION)  # doctest: +NORMALIZE_WHITESPACE
    Think it through inside <think> </think> tags first, then give only the final answer
    inside <answer> </answer> tags, with nothing after them.
    >>> with_reasoning_format(prompt) == prompt  # added once
    True
"""

from __future__ import annotations

FORMAT_NAME = "think_answer"
"""How the datasets' metadata name this format."""
FORMAT_INSTRUCTION = ("Think it through inside <think> </think> tags first, then give only the "
                      "final answer inside <answer> </answer> tags, with nothing after them.")


def with_reasoning_format(prompt: str) -> str:
    """The prompt with :data:`FORMAT_INSTRUCTION` on a line of its own after it (once)."""
    prompt = prompt.rstrip()
    if prompt.endswith(FORMAT_INSTRUCTION):
        return prompt
    return f"{prompt}\n{FORMAT_INSTRUCTION}"
