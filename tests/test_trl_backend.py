"""The TRL backend for vision-language models: config, adapters, SFT and GRPO runs, resume,
evaluation with and without the media.

Data are the chains' own rows: pointing rows written by `labeling.image.pointing` (through
`training.trl_backend.synthetic.quadrant_pointing`) and video questions written by
`labeling.video_qa.dataset` (`video_choice_rows`), mixed in one run. The model is the tiny
random LLaVA of `models.tiny` (its answers are garbage: these tests prove the wiring, the
learning check in `test_trl_learning.py` proves learning).
"""

from __future__ import annotations

import json
import math
import shutil

import pytest

from training.config import ConfigError
from training.runtime.metrics_log import read_metrics
from training.trl_backend.config import TrlConfig
from training.trl_backend.data import (
    REWARD_COLUMNS,
    DataError,
    read_rows,
    to_dataset,
    trl_row,
    trl_rows,
)
from training.trl_backend.synthetic import quadrant_pointing, video_choice_rows

pytest.importorskip("trl")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

BASE = {"objective": "grpo", "model": "m", "data": "d.jsonl", "output_dir": "o"}


@pytest.fixture(scope="module")
def chain_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("chains")
    return (quadrant_pointing(root / "image", n=4, seed=0),
            video_choice_rows(root / "video", n=4, frames=3, seed=0))


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory):
    from models.tiny import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("llava"))


def _config(tmp_path, chain_data, model, **overrides) -> TrlConfig:
    return TrlConfig(**{
        "model": str(model), "data": ",".join(map(str, chain_data)),
        "output_dir": str(tmp_path / "run"), "batch_size": 2, "num_generations": 2,
        "max_completion_length": 6, "save_every": 1, "log_every": 1, "learning_rate": 1e-3,
        **overrides})


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(("bad", "field"), [
    ({"objective": "ppo"}, "objective"),
    ({"loss_type": "ppo"}, "loss_type"),
    ({"num_generations": 1}, "num_generations"),
    ({"beta": -0.1}, "beta"),
    ({"max_steps": "10"}, "max_steps"),
    ({"learning_rate": 0}, "learning_rate"),
    ({"stepz": 3}, "stepz"),
    ({"reward_weights": {"wer": 1.0}}, "reward_weights"),
    ({"reward_weights": {"point_in_mask": 0, "point_format": 0, "choice_correct": 0,
                         "answer_format": 0}}, "reward_weights"),
    ({"model": ""}, "model"),
])
def test_config_errors_name_the_field(bad, field):
    with pytest.raises(ConfigError) as err:
        TrlConfig.from_dict({**BASE, **bad})
    assert err.value.field == field and field in str(err.value)


def test_a_bad_config_file_exits_2_naming_the_field(tmp_path, capsys):
    from training.trl_backend.run import main

    path = tmp_path / "c.json"
    path.write_text(json.dumps({**BASE, "temperature": 0}))
    with pytest.raises(SystemExit) as done:
        main([str(path)])
    assert done.value.code == 2
    assert "config field 'temperature': must be > 0" in capsys.readouterr().err
    cfg = TrlConfig.from_dict({**BASE, "beta": 0})  # a JSON integer is a float
    assert TrlConfig.from_json(cfg.to_json(tmp_path / "ok.json")) == cfg


# --------------------------------------------------------------------------- adapters


def test_adapters_turn_both_chains_rows_into_trl_rows_whose_gold_answers_score(chain_data):
    from PIL import Image

    from training.trl_backend.rewards import reward_functions

    chain_rows = read_rows(",".join(map(str, chain_data)))
    assert {"masks", "points", "image_size"} <= chain_rows[0].keys()  # the chains' own shapes
    assert {"options", "answer", "problem_type", "kind"} <= chain_rows[-1].keys()
    config = TrlConfig(**BASE, point_format="json", point_scale="norm1000", max_frames=2)
    rows, skipped = trl_rows(chain_rows, max_frames=2, point_format="json",
                             point_scale="norm1000")
    assert [s["reason"] for s in skipped] == ["open_form", "open_form"]
    assert [r["task"] for r in rows] == ["pointing"] * 4 + ["video_qa"] * 2
    point, video = rows[0], rows[-1]
    assert point["prompt"] == [{"role": "user", "content": "Point at red square."}]
    assert json.loads(point["completion"][0]["content"])[0]["label"] == "red square"
    assert len(point["images"]) == 1 and point["answer"] is None
    prompt = video["prompt"][0]["content"]
    assert "Answer with the letter of the correct option." in prompt
    letter, style = video["answer"], video["answer_style"]  # the style the prompt asks for
    assert style == ("think" if "<think>" in prompt else "plain")
    option = video["options"]["ABCD".index(letter)]
    assert video["completion"][0]["content"] == (
        f"<think>{option}</think><answer>{letter}</answer>" if style == "think" else letter)
    frames = read_rows(str(chain_data[1]))[-2]["images"]  # the last choice row's
    assert video["images"] == [frames[0], frames[-1]]  # 3 frames, 2 kept: first and last
    assert video["masks"] is None and video["problem_type"] == "multiple choice"
    # the gold answers are what the rewards pay for, each task scored by its own
    funcs, _ = reward_functions(config)
    columns = {k: [r[k] for r in rows] for k in ("task", *REWARD_COLUMNS)}
    scores = {f.__name__: f([r["completion"] for r in rows], **columns) for f in funcs}
    assert scores["point_in_mask"] == [1.0] * 4 + [None] * 2
    assert scores["point_format"] == [1.0] * 4 + [None] * 2
    assert scores["choice_correct"] == [None] * 4 + [1.0] * 2
    assert scores["answer_format"] == [None] * 4 + [1.0] * 2
    # in a datasets.Dataset the images are RGB PIL images loaded from the paths
    data = to_dataset(rows)
    assert isinstance(data[0]["images"][0], Image.Image) and data[0]["images"][0].mode == "RGB"
    assert len(data[5]["images"]) == 2 and data[5]["masks"] is None
    # the blind control: the same rows, prompts and rewards, without media
    blind, _ = trl_rows(chain_rows, blind=True)
    assert all("images" not in r for r in blind)
    assert [r["prompt"] for r in blind] == [r["prompt"] for r in rows]
    assert "images" not in to_dataset(blind).column_names


def test_bad_rows_are_refused_naming_the_file_and_row(tmp_path, chain_data):
    row = read_rows(str(chain_data[0]))[0]
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({**row, "images": ["gone.png"]}) + "\n")
    with pytest.raises(DataError, match=r"rows.jsonl row 1: image .*gone.png does not exist"):
        read_rows(str(path))
    with pytest.raises(DataError, match="must be conversational"):
        trl_row({**row, "prompt": "Point at red square."})
    with pytest.raises(DataError, match="no `images`"):
        trl_row({**row, "images": []})
    with pytest.raises(DataError, match="neither a pointing row"):
        trl_row({"prompt": row["prompt"], "images": row["images"]})


# --------------------------------------------------------------------------- training runs


@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory, chain_data, tiny_llava):
    """Two GRPO steps on both chains' rows, then the run killed back to its first checkpoint
    and resumed to three steps."""
    from training.trl_backend.train import train

    tmp = tmp_path_factory.mktemp("grpo")
    config = _config(tmp, chain_data, tiny_llava, objective="grpo", max_steps=2, beta=0.04,
                     batch_size=6)  # every row each step: both tasks always scored
    reported: list[dict] = []
    first = train(config, log=reported.append)
    out = first.output_dir
    first_rows = read_metrics(out / "metrics.jsonl")
    shutil.rmtree(out / "checkpoints" / "checkpoint-2")  # as if it died while saving step 2
    resumed = train(config.model_copy(update={"max_steps": 3}))
    return first, first_rows, reported, resumed


def test_two_grpo_steps_log_every_reward_component_kl_and_entropy(grpo_run):
    first, rows, reported, _ = grpo_run
    assert first.step == 2 and first.resumed_from is None
    assert [r["step"] for r in rows] == [1, 2] and reported == rows  # log_every 1
    for row in rows:
        for key in ("loss", "reward/mean", "reward/std", "frac_reward_zero_std", "kl",
                    "entropy", "lr", "grad_norm", "step_time_s", "rewards/point_in_mask",
                    "rewards/point_format", "rewards/choice_correct", "rewards/answer_format"):
            assert key in row, key
        assert math.isfinite(row["kl"]) and row["entropy"] > 0
        assert 0 <= row["rewards/point_in_mask"] <= 1 and 0 <= row["rewards/choice_correct"] <= 1
    checkpoint = first.checkpoint
    assert checkpoint.name == "checkpoint-2" and (checkpoint / "model.safetensors").is_file()
    assert (checkpoint / "processor_config.json").is_file()
    assert (first.output_dir / "curves.png").stat().st_size > 0
    assert TrlConfig.from_json(first.output_dir / "config.json").objective == "grpo"


def test_a_resumed_run_continues_the_step_count_from_its_checkpoint(grpo_run):
    _, first_rows, _, resumed = grpo_run
    assert resumed.resumed_from == 1 and resumed.step == 3
    assert resumed.checkpoint.name == "checkpoint-3"
    rows = read_metrics(resumed.output_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]  # step 2 of the dead run dropped, redone
    assert rows[0] == first_rows[0]


@pytest.mark.slow  # an MLflow store migrates for ~5 s on this machine
def test_mlflow_takes_the_run_as_it_takes_whispers(grpo_run, registry):
    first = grpo_run[0]
    run_id = registry.log_training_run(
        "vlm", stage="grpo", loop="l1", config={"objective": "grpo"},
        metrics_path=first.output_dir / "metrics.jsonl",
        curves_png=first.output_dir / "curves.png", data_snapshot={"dir": "/snap"})
    history = registry.client.get_metric_history(run_id, "rewards/point_in_mask")
    assert [m.step for m in history] == [1, 2, 3]  # the resumed run's log
    assert len(registry.client.get_metric_history(run_id, "kl")) == 3


def test_two_sft_steps_resume_exactly_and_evaluate_with_and_without_the_media(
        tmp_path, chain_data, tiny_llava, capsys):
    from training.trl_backend.evaluate import evaluate_with_blind
    from training.trl_backend.run import main
    from training.trl_backend.train import train

    config = _config(tmp_path, chain_data, tiny_llava, objective="sft", max_steps=2)
    path = config.to_json(tmp_path / "sft.json")
    capsys.readouterr()
    assert main([str(path)]) == 0  # the entry point, as torchrun runs it
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["message", "progress", "progress", "materialization"]
    done = events[-1]
    assert done["objective"] == "sft" and done["checkpoint"].endswith("checkpoint-2")
    assert done["skipped_rows"] == 2 and done["stopped_early"] is False
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2] and rows == [
        {k: v for k, v in e.items() if k != "event"} for e in events[1:3]]
    assert all(math.isfinite(r["loss"]) and "entropy" in r and "lr" in r for r in rows)
    # killed before step 2 was saved: the resumed run redoes it from step 1's weights,
    # optimizer and data order, so it logs the same loss (the weights really are reloaded)
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "checkpoint-2")
    resumed = train(config)
    again = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert resumed.resumed_from == 1 and [r["step"] for r in again] == [1, 2]
    assert again[1]["loss"] == pytest.approx(rows[1]["loss"], rel=1e-5)
    report = evaluate_with_blind(str(resumed.checkpoint), read_rows(config.data), config)
    for name in ("media", "blind"):
        got = report[name]
        assert got["blind"] is (name == "blind") and got["skipped"] == 2
        assert got["pointing"]["n"] == 4 and got["video_qa"]["n"] == 2
        assert 0 <= got["pointing"]["hit_rate"] <= 1 and 0 <= got["video_qa"]["accuracy"] <= 1
        assert set(got["video_qa"]["by_kind"]) == {"rest_of_video", "next_event"}
        assert len(got["answers"]) == 6


def test_a_blind_grpo_step_sends_the_model_no_pixels(tmp_path, chain_data, tiny_llava):
    from training.trl_backend.train import build_trainer

    config = _config(tmp_path, chain_data, tiny_llava, objective="grpo", blind=True, max_steps=1)
    trainer, _ = build_trainer(config)
    assert "images" not in trainer.train_dataset.column_names
    pixels = []
    trainer.model.register_forward_pre_hook(
        lambda _m, _a, kwargs: pixels.append(kwargs.get("pixel_values")), with_kwargs=True)
    trainer.train()
    assert pixels and all(p is None for p in pixels)


def test_the_entropy_watch_stops_a_collapsing_run_without_saving_it(tmp_path):
    from transformers import TrainerControl, TrainerState

    from training.monitors import EntropyWatch
    from training.trl_backend.callback import MetricsCallback

    reported: list[dict] = []
    callback = MetricsCallback(tmp_path, log=reported.append, log_every=100,
                               watch=EntropyWatch(0.5, 0.2, patience=5, window=2))
    state, control = TrainerState(max_steps=10), TrainerControl()
    callback.on_train_begin(None, state, control)
    for step, entropy in enumerate([2.0, 2.0, 0.9, 0.9, 0.3, 0.1], 1):
        state.global_step = step
        control.should_save = True  # what the Trainer asks at a checkpoint step
        callback.on_log(None, state, control, logs={"loss": 0.1, "entropy": entropy,
                                                    "reward": 0.5, "learning_rate": 1e-5})
        if control.should_training_stop:
            break
    assert step == 6 and control.should_save is False
    assert callback.stopped.startswith("stopped at step 6: policy entropy")
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[3]["watch"].startswith("warn") and rows[5]["watch"].startswith("stop")
    assert rows[0]["reward/mean"] == 0.5 and rows[0]["lr"] == 1e-5
    assert [r["step"] for r in reported] == [4, 6]  # the first warning, then the stop
    assert callback.last["step"] == 5  # the collapsed step is not the run's result


# --------------------------------------------------------------------------- scoring


def test_scores_per_task_hit_rate_distance_and_accuracy_by_kind():
    import numpy as np

    from training.rewards.pointing import encode_rle
    from training.trl_backend.evaluate import score

    pixels = np.zeros((10, 20), bool)  # the right half of a 20 x 10 px image
    pixels[:, 10:] = True
    mask = encode_rle(pixels)
    rows = [{"task": "pointing", "masks": [mask], "image_size": [20, 10]}] * 3 + [
        {"task": "video_qa", "answer": "B", "options": list("wxyz"), "kind": k, "bucket": "easy"}
        for k in ("next_event", "next_event", "rest_of_video")]
    config = TrlConfig(**BASE, point_format="tuple", point_scale="pixels")
    answers = ["(15, 5)", "(5, 5)", "nothing", "B", "C", "B"]
    got = score(rows, answers, config)
    assert got["pointing"]["hit_rate"] == pytest.approx(1 / 3)
    assert got["pointing"]["no_point_rate"] == pytest.approx(1 / 3)
    assert got["pointing"]["mean_distance_px"] == pytest.approx((0 + 5) / 2)
    assert got["video_qa"]["accuracy"] == pytest.approx(2 / 3)
    assert got["video_qa"]["by_kind"] == {"next_event": {"n": 2, "accuracy": 0.5},
                                          "rest_of_video": {"n": 1, "accuracy": 1.0}}
    assert got["reward"] == pytest.approx((1.1 + 0.1 + 0 + 1.1 + 0.1 + 1.1) / 6)


@pytest.mark.parametrize("name", ["config", "data", "rewards", "callback", "synthetic", "pairs"])
def test_docstring_examples_run(name):
    import doctest
    import importlib

    module = importlib.import_module(f"training.trl_backend.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
