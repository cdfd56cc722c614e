"""Our rewards called the way TRL 1.16's GRPOTrainer calls reward functions, and the registry.

TRL's real ``GRPOTrainer._calculate_rewards(inputs, prompts, completions, completion_ids)`` runs
unmodified on a trainer made with ``GRPOTrainer.__new__`` (no model, tokenizer or dataset): it
builds the keyword arguments itself (every dataset column of ``inputs`` but ``prompt``, as a list
aligned with the completions, plus ``prompts``, ``completions``, ``completion_ids``,
``trainer_state``, ``log_extra`` and ``log_metric``), calls each reward function with them, turns
``None`` into NaN and stacks the results in float32. Those values must equal a direct call of the
same function with only the columns it needs. ``inputs`` are rows repeated per generation, as
TRL's ``RepeatSampler`` produces them, with columns no reward reads (``audio``, ``clip_id``).
"""

from __future__ import annotations

import functools
import math
import warnings

import pytest
import torch

from training.rewards import REWARDS, accuracy_per, gated_accuracy, keyword_recall
from training.rewards.composite import REWARD_NAMES, RewardWeights, reward_table

grpo_trainer = pytest.importorskip("trl.trainer.grpo_trainer")
from transformers import TrainerState  # noqa: E402
from trl import GRPOConfig  # noqa: E402
from trl.trainer.utils import get_callable_name  # noqa: E402

GENERATIONS = 3
CLIPS = [
    {"reference": "call doctor smith at five pm", "keywords": ["Dr Smith", "5 pm"],
     "language": "en", "duration_s": 2.0},
    {"reference": "the meeting starts at nine", "keywords": "meeting, nine",
     "language": None, "duration_s": 0.5},  # no language: language_match does not apply
    {"reference": None, "keywords": None, "language": "es", "duration_s": None},  # unlabelled
]
COMPLETIONS = [
    "call dr smith at 5 pm", "call doctor smith", "",
    "the meeting the meeting the meeting the meeting the meeting", "the meeting starts at nine",
    "El tiempo es muy bueno hoy",
    "hola amigo", "hello my friend", "[noise]",
]
COLUMNS = ("reference", "keywords", "language", "duration_s")


def _letters(text: str, voice: str) -> tuple[str, ...]:
    """A phonemizer without espeak-ng: letters stand in for phonemes."""
    return tuple(text.replace(" ", ""))


#: The speech rewards as a task spec would bind them: settings through functools.partial.
FUNCS = {
    **{name: REWARDS[name] for name in REWARD_NAMES},
    "gated_accuracy": functools.partial(gated_accuracy, threshold=0.4, failure_penalty=-0.5),
    "accuracy_per": functools.partial(accuracy_per, phonemizer=_letters),
}


class _OneProcess:
    """Single-process accelerator (what ``_calculate_rewards`` reads from it)."""

    device = torch.device("cpu")
    is_main_process = True
    num_processes = 1
    process_index = 0


def _trainer(funcs: list) -> grpo_trainer.GRPOTrainer:
    """A GRPOTrainer without model or data; reward attributes as ``__init__`` sets them."""
    trainer = grpo_trainer.GRPOTrainer.__new__(grpo_trainer.GRPOTrainer)
    with warnings.catch_warnings():  # transformers' own deprecation notices, not ours
        warnings.simplefilter("ignore", FutureWarning)
        trainer.args = GRPOConfig(use_cpu=True, bf16=False, report_to="none")
    trainer.accelerator = _OneProcess()
    trainer.state = TrainerState()
    trainer.environments = None
    trainer.reward_funcs = funcs
    trainer.reward_processing_classes = [None] * len(funcs)
    trainer.reward_func_names = [get_callable_name(f) for f in funcs]
    return trainer


def _inputs() -> list[dict]:
    """Dataset rows, each repeated once per generation, with columns no reward reads."""
    return [{"prompt": f"Transcribe clip {i}.", **clip, "audio": {"path": f"c{i}.wav"},
             "clip_id": f"c{i}"} for i, clip in enumerate(CLIPS) for _ in range(GENERATIONS)]


def _through_trl(funcs: list, completions: list) -> torch.Tensor:
    inputs = _inputs()
    prompts = [row["prompt"] for row in inputs]
    completion_ids = [[7] * (1 + i % 4) for i in range(len(inputs))]
    return _trainer(funcs)._calculate_rewards(inputs, prompts, completions, completion_ids)


def _columns() -> dict[str, list]:
    """The columns the rewards read, one value per completion."""
    rows = _inputs()
    return {c: [row[c] for row in rows] for c in COLUMNS}


def _direct(func, completions: list) -> torch.Tensor:
    values = func(completions, **_columns())
    return torch.tensor([math.nan if v is None else v for v in values], dtype=torch.float32)


@pytest.mark.parametrize("chat", [False, True], ids=["text", "conversational"])
def test_every_reward_gives_trl_the_values_of_a_direct_call(chat):
    completions = ([[{"role": "assistant", "content": c}] for c in COMPLETIONS] if chat
                   else list(COMPLETIONS))
    through_trl = _through_trl(list(FUNCS.values()), completions)
    assert through_trl.shape == (len(COMPLETIONS), len(FUNCS))
    for i, (name, func) in enumerate(FUNCS.items()):
        expected = _direct(func, list(COMPLETIONS))
        torch.testing.assert_close(through_trl[:, i], expected, rtol=0, atol=0,
                                   equal_nan=True, msg=name)


def test_none_where_a_reward_does_not_apply_is_nan_in_trl():
    through_trl = _through_trl(list(FUNCS.values()), list(COMPLETIONS))
    column = dict(zip(FUNCS, through_trl.T, strict=True))
    unlabelled = slice(2 * GENERATIONS, 3 * GENERATIONS)
    for name in ("gated_accuracy", "accuracy_wer", "accuracy_cer", "accuracy_per",
                 "hallucination_ratio"):
        assert column[name][unlabelled].isnan().all(), name
        assert not column[name][: 2 * GENERATIONS].isnan().any(), name
    no_language = slice(GENERATIONS, 2 * GENERATIONS)
    assert column["language_match"][no_language].isnan().all()
    assert column["keyword_recall"][unlabelled].tolist() == [1.0] * GENERATIONS  # none asked
    assert column["language_match"][unlabelled].tolist() == [1.0, 0.0, 1.0]


def test_trls_weighted_sum_is_our_total():
    # accuracy_per weighs 0: reward_table phonemises with espeak-ng, and only given a voice
    weights = RewardWeights(accuracy_cer=0.3, keyword_recall=1.0)
    names = list(REWARD_NAMES)
    through_trl = _through_trl([FUNCS[n] for n in names], list(COMPLETIONS))
    w = torch.tensor([getattr(weights, n) for n in names], dtype=torch.float32)
    # as GRPOTrainer._generate_and_score_completions sums (multi_objective_aggregation's default)
    trl_total = (through_trl * w.unsqueeze(0)).nansum(dim=1)
    ours = reward_table(list(COMPLETIONS), **_columns(), weights=weights, gate_threshold=0.4,
                        failure_penalty=-0.5)
    torch.testing.assert_close(trl_total, torch.tensor(ours["total"], dtype=torch.float32),
                               rtol=0, atol=1e-6)


def test_registry_names_every_weighted_component_and_each_has_an_example():
    assert list(REWARDS)[:len(REWARD_NAMES)] == list(REWARD_NAMES)  # speech first, then others
    for name, func in REWARDS.items():
        assert ">>> " in (func.__doc__ or ""), name


def test_unknown_keywords_are_ignored_and_columns_must_align():
    extra = {"prompts": ["p"], "completion_ids": [[1]], "trainer_state": object(),
             "log_extra": print, "log_metric": print, "audio": [b"..."]}
    assert keyword_recall(["new york"], keywords=[["New York"]], **extra) == [1.0]
    with pytest.raises(ValueError, match="2 values for 1 completions"):
        keyword_recall(["new york"], keywords=["New York", "Boston"])
    with pytest.raises(TypeError, match="one value per completion"):
        gated_accuracy(["hello"], reference="hello")
    with pytest.raises(TypeError, match="completions must be a list"):
        gated_accuracy("hello", reference=["hello"])
