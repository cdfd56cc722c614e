"""Video-R1's temporal contrast bonus (training/trl_backend/temporal.py): the rule, the
shuffle, the config's checks, and short GRPO runs of a tiny LLaVA on video questions."""

from __future__ import annotations

import math

import pytest

from training.config import ConfigError
from training.runtime.metrics_log import read_metrics
from training.trl_backend.config import TrlConfig
from training.trl_backend.synthetic import quadrant_pointing, video_choice_rows

pytest.importorskip("trl")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

BASE = {"objective": "grpo", "model": "m", "data": "d.jsonl", "output_dir": "o"}
TEMPORAL_KEYS = ("temporal/ordered_acc", "temporal/shuffled_acc", "temporal/bonus_share",
                 "rewards/temporal_bonus")


# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(("ordered", "shuffled", "expected"), [
    ([1, 1, 0, 0], [1, 0], [0.3, 0.3, 0.0, 0.0]),  # 0.5 >= 0.8 * 0.5
    ([1, 1, 0, 0, 0], [1, 0], [0.3, 0.3, 0.0, 0.0, 0.0]),  # 0.4 == 0.8 * 0.5: paid
    ([1, 1, 1, 0, 0], [1, 1, 1, 0], [0.3, 0.3, 0.3, 0.0, 0.0]),  # 0.6 == 0.8 * 0.75 rounded
    ([1, 0, 0, 0], [1, 1], [0.0] * 4),  # 0.25 < 0.8: the order did not help
    ([1, 1, 1, 1], [1, 1], [0.3] * 4),  # as good as shuffled is enough
    ([0, 0], [0, 0], [0.0, 0.0]),  # 0 >= 0, but nobody to pay
    ([1, 1], [], [0.0, 0.0]),  # no shuffled group: nothing compared
])
def test_right_ordered_completions_get_the_bonus_when_order_helps(ordered, shuffled, expected):
    from training.trl_backend.temporal import temporal_bonus

    assert temporal_bonus(ordered, shuffled) == expected


def test_alpha_and_ratio_are_the_configs():
    from training.trl_backend.temporal import temporal_bonus

    assert temporal_bonus([1, 0], [1, 1], alpha=0.5, ratio=0.5) == [0.5, 0.0]  # 0.5 >= 0.5
    assert temporal_bonus([1, 0], [1, 1], alpha=0.5, ratio=0.6) == [0.0, 0.0]


def test_a_batch_is_judged_question_by_question_and_pointing_rows_get_none():
    from training.trl_backend.temporal import batch_bonus

    bonus, stats = batch_bonus(
        [1, 1, 0, 0, None, None, 1, 0],  # q1 right twice, q2 never, pointing, q4
        [1, None, 0, None, None, None, 1, None], 2, alpha=0.3, ratio=0.8)
    assert bonus == [0.3, 0.3, 0.0, 0.0, None, None, 0.0, 0.0]  # q4: 0.5 < 0.8 * 1
    assert stats.questions == 3 and stats.rewarded == 1
    assert stats.metrics() == pytest.approx({"temporal/ordered_acc": 0.5,
                                             "temporal/shuffled_acc": 2 / 3,
                                             "temporal/bonus_share": 1 / 3})
    assert batch_bonus([None, None], [None, None], 2) == ([None, None], None)
    with pytest.raises(ValueError, match="whole groups of 2"):
        batch_bonus([1, 0, 1], [None] * 3, 2)


def test_a_one_frame_question_has_no_shuffled_group_so_no_bonus():
    from training.trl_backend.temporal import batch_bonus, frame_order, shuffled_frames

    with pytest.raises(ValueError, match="1 frame: there is no other order to compare with"):
        shuffled_frames(["only.png"], seed=0)
    with pytest.raises(ValueError, match="0 frames"):
        frame_order(0, seed=0)
    bonus, stats = batch_bonus([1, 1], [None, None], 2)  # what the trainer sends for it
    assert bonus == [None, None] and stats is None


# --------------------------------------------------------------------------- the shuffle


def test_the_shuffle_is_seeded_and_never_the_original_order():
    from training.trl_backend.temporal import frame_order

    for n in (2, 3, 4, 8):
        orders = [frame_order(n, seed=[0, step, q]) for step in range(20) for q in range(5)]
        assert all(sorted(o) == list(range(n)) and o != list(range(n)) for o in orders)
        assert orders == [frame_order(n, seed=[0, step, q]) for step in range(20)
                          for q in range(5)]
        if n > 2:
            assert len({tuple(o) for o in orders}) > 1  # the seed matters
    assert frame_order(2, seed=123) == [1, 0]


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(("bad", "words"), [
    ({"objective": "sft"}, "objective is 'sft'"),
    ({"family": "alm"}, "family is 'alm'"),
    ({"blind": True}, "no frames to shuffle"),
    ({"max_frames": 1}, "max_frames >= 2"),
    ({"temporal_bonus": -0.3}, "must be >= 0.0, got -0.3"),
])
def test_config_refuses_a_bonus_that_cannot_apply_naming_the_field(bad, words):
    with pytest.raises(ConfigError) as err:
        TrlConfig.from_dict({**BASE, "temporal_bonus": 0.3, **bad})
    assert err.value.field == "temporal_bonus" and words in str(err.value)


def test_the_bonus_is_off_by_default_and_other_runs_ignore_it():
    cfg = TrlConfig.from_dict(BASE)
    assert (cfg.temporal_bonus, cfg.temporal_ratio) == (0.0, 0.8)
    assert TrlConfig.from_dict({**BASE, "objective": "sft", "temporal_ratio": 0.5}).objective
    with pytest.raises(ConfigError) as err:
        TrlConfig.from_dict({**BASE, "temporal_ratio": -1})
    assert err.value.field == "temporal_ratio"


# --------------------------------------------------------------------------- GRPO runs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two 3-frame video questions, one 1-frame video question, two pointing rows (open-form
    video rows are skipped)."""
    root = tmp_path_factory.mktemp("temporal")
    return ",".join(map(str, (video_choice_rows(root / "video", n=4, frames=3, seed=0),
                              video_choice_rows(root / "one", n=2, frames=1, seed=1),
                              quadrant_pointing(root / "image", n=2, seed=0))))


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory):
    from models.tiny import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("llava"))


def _config(tmp_path, data, model, **overrides) -> TrlConfig:
    return TrlConfig(**{
        "objective": "grpo", "model": str(model), "data": data,
        "output_dir": str(tmp_path / "run"), "batch_size": 5, "num_generations": 2,
        "max_completion_length": 4, "save_every": 2, "log_every": 1, "learning_rate": 1e-3,
        "max_steps": 2, "beta": 0.0, "temporal_bonus": 0.3, **overrides})


def test_two_grpo_steps_with_the_bonus_log_the_temporal_metrics(tmp_path, data, tiny_llava):
    from training.trl_backend.temporal import TemporalGRPOTrainer
    from training.trl_backend.train import build_trainer, train

    config = _config(tmp_path, data, tiny_llava)
    assert isinstance(build_trainer(config)[0], TemporalGRPOTrainer)
    with pytest.warns(UserWarning, match="has 1 frame.s., so no other order"):
        result = train(config)
    assert result.step == 2 and result.checkpoint.name == "checkpoint-2"
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        for key in (*TEMPORAL_KEYS, "rewards/choice_correct", "reward/mean"):
            assert key in row and math.isfinite(row[key]), key
        assert all(0 <= row[key] <= 1 for key in TEMPORAL_KEYS)
        assert row["rewards/temporal_bonus"] <= 0.3 + 1e-6


def test_the_bonus_reaches_the_reward_and_shuffled_frames_reach_the_model(
        tmp_path, data, tiny_llava):
    """Ordered answers forced right (p = 1 >= 0.8 p~): every compared question is paid; the
    shuffled group is generated from a reordering of the same frames."""
    from training.trl_backend.callback import MetricsCallback
    from training.trl_backend.train import build_trainer

    trainer, _ = build_trainer(_config(tmp_path, data, tiny_llava, max_steps=1))
    index = trainer.reward_func_names.index("choice_correct")

    def always_right(completions, task, **_):
        return [1.0 if t == "video_qa" else None for t in task]

    trainer.reward_funcs[index] = always_right  # the ordered group's; the shuffled keeps its own
    frames: list[list[bytes]] = []
    tokenize = trainer._tokenize_prompts

    def spy(prompts):
        frames.extend([part["image"].tobytes() for message in prompt
                       if isinstance(message["content"], list)
                       for part in message["content"] if part.get("type") == "image"]
                      for prompt in prompts)
        return tokenize(prompts)

    trainer._tokenize_prompts = spy
    trainer.add_callback(MetricsCallback(tmp_path / "run", log_every=1))
    with pytest.warns(UserWarning, match="has 1 frame"):
        trainer.train()
    (row,) = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert row["temporal/ordered_acc"] == 1 and row["temporal/bonus_share"] == 1
    assert row["rewards/temporal_bonus"] == pytest.approx(0.3)  # every compared completion
    assert 0 <= row["temporal/shuffled_acc"] <= 1
    ordered, shuffled = frames[:10], frames[10:]  # 5 prompts x 2, then one per 3-frame question
    assert len(shuffled) == 2
    for images in shuffled:
        assert len(images) == 3 and images not in ordered
        assert any(sorted(images) == sorted(o) for o in ordered)


def test_the_temporal_module_docstring_examples_run():
    import doctest

    from training.trl_backend import temporal

    result = doctest.testmod(temporal, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
