"""The TRL backend for audio-language models (``alm``): adapter, SFT and GRPO runs with the
clip's features in every pass, resume, the blind control, evaluation per question type.

Data are the audio chain's own rows: tone clips with manifest regions run through
`labeling.audio_qa.chain` and `labeling.audio_qa.dataset` (by
`training.trl_backend.synthetic_audio.chain_audio_questions`): multiple choice, numbers and
sound names. The model is the tiny random Qwen2-Audio of `models.tiny` (its answers are
garbage: these tests prove the wiring; `test_trl_audio_learning.py` proves learning).
"""

from __future__ import annotations

import json
import math
import shutil

import pytest

from training.config import ConfigError
from training.runtime.metrics_log import read_metrics
from training.trl_backend.config import TrlConfig
from training.trl_backend.data import DataError, read_rows, to_dataset, trl_row
from training.trl_backend.synthetic_audio import chain_audio_questions

pytest.importorskip("trl")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

BASE = {"family": "alm", "objective": "grpo", "model": "m", "data": "d.jsonl",
        "output_dir": "o"}
COMPONENTS = ("choice_correct", "numeric_correct", "text_correct", "answer_format")


@pytest.fixture(scope="module")
def chain_data(tmp_path_factory):
    """Two batches of the chain's rows, of 3 s and 5 s clips (different numbers of audio
    tokens per row, so a row given another row's features shows)."""
    root = tmp_path_factory.mktemp("audio_chain")
    return (chain_audio_questions(root / "short", clips=1, seed=0, seconds=3.0),
            chain_audio_questions(root / "long", clips=1, seed=1, seconds=5.0))


@pytest.fixture(scope="module")
def tiny_alm(tmp_path_factory):
    from models.tiny import build_tiny_qwen2_audio

    return build_tiny_qwen2_audio(tmp_path_factory.mktemp("qwen2_audio"))


def _config(tmp_path, chain_data, model, **overrides) -> TrlConfig:
    return TrlConfig(**{
        "family": "alm", "model": str(model), "data": ",".join(map(str, chain_data)),
        "output_dir": str(tmp_path / "run"), "batch_size": 2, "num_generations": 2,
        "max_completion_length": 6, "save_every": 1, "log_every": 1, "learning_rate": 1e-3,
        **overrides})


def _audio_calls(model, calls: list[dict]):
    """Record, per forward of ``model`` over a prompt (not a one-token decoding step), the
    rows, their audio tokens and what their features say the audio tokens should be."""
    audio_id = model.config.audio_token_id

    def hook(_module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None or ids.shape[1] == 1:
            return
        mask = kwargs.get("feature_attention_mask")
        expected = None if mask is None else [
            (((int(n) - 1) // 2 + 1) - 2) // 2 + 1 for n in mask.sum(-1)]
        calls.append({"rows": ids.shape[0], "features": kwargs.get("input_features"),
                      "audio_tokens": (ids == audio_id).sum(-1).tolist(), "expected": expected})

    return model.register_forward_pre_hook(hook, with_kwargs=True)


# --------------------------------------------------------------------------- config, rows


def test_the_alm_family_has_its_own_reward_components():
    config = TrlConfig(**BASE)
    assert list(config.weights()) == list(COMPONENTS)
    with pytest.raises(ConfigError) as err:
        TrlConfig(**BASE, reward_weights={"point_in_mask": 1.0})
    assert err.value.field == "reward_weights" and "family 'alm'" in str(err.value)
    with pytest.raises(ConfigError, match="every weight is 0"):
        TrlConfig(**BASE, reward_weights=dict.fromkeys(COMPONENTS, 0.0))


def test_adapter_turns_the_chains_rows_into_trl_rows_whose_gold_answers_score(chain_data):
    from training.trl_backend.audio import AUDIO_COLUMNS, audio_trl_rows
    from training.trl_backend.rewards import reward_functions

    chain_rows = read_rows(",".join(map(str, chain_data)))
    assert {"audio", "answer", "options", "problem_type", "tolerance", "kind",
            "field_sources"} <= chain_rows[0].keys()  # the chain's own shape
    rows, skipped = audio_trl_rows(chain_rows)
    assert skipped == [] and len(rows) == len(chain_rows)
    assert {r["answer_type"] for r in rows} == {"choice", "number", "text"}
    assert {r["problem_type"] for r in rows} == {"multiple choice", "numerical", "free-form"}
    for row, chain in zip(rows, chain_rows, strict=True):
        assert row["audio"] == chain["audio"] and row["prompt"] == chain["prompt"]
        assert row["answer_style"] == "think"  # the chain's prompts ask for <think>/<answer>
        text = row["completion"][0]["content"]
        assert text.startswith("<think>") and text.endswith(f"<answer>{chain['answer']}</answer>")
    number = next(r for r in rows if r["kind"] == "duration" and r["answer_type"] == "number")
    assert number["tolerance"] == pytest.approx(0.5)
    # the gold answers are what the rewards pay for, each row scored by its answer type
    config = TrlConfig(**BASE)
    funcs, weights = reward_functions(config)
    assert weights == [1.0, 1.0, 1.0, 0.1]
    columns = {k: [r[k] for r in rows] for k in AUDIO_COLUMNS}
    scores = {f.__name__: f([r["completion"] for r in rows], **columns) for f in funcs}
    for name, kind in (("choice_correct", "choice"), ("numeric_correct", "number"),
                       ("text_correct", "text")):
        assert [s for s, r in zip(scores[name], rows, strict=True)
                if r["answer_type"] == kind] == [1.0] * sum(r["answer_type"] == kind
                                                           for r in rows)
        assert all(s is None for s, r in zip(scores[name], rows, strict=True)
                   if r["answer_type"] != kind)
    assert scores["answer_format"] == [1.0] * len(rows)
    # a near number earns the numeric reward, a far one does not
    truth = float(number["answer"])
    near, far = (f"<think>x</think><answer>{truth + d:.1f}</answer>" for d in (0.4, 1.5))
    got = funcs[1]([near, far], **{k: [number[k]] * 2 for k in AUDIO_COLUMNS})
    assert got == [1.0, 0.0]
    # the blind control: the same rows, prompts and rewards, without the clip
    blind, _ = audio_trl_rows(chain_rows, blind=True)
    assert all("audio" not in r for r in blind)
    assert [r["prompt"] for r in blind] == [r["prompt"] for r in rows]
    assert "audio" not in to_dataset(blind).column_names


def test_bad_rows_are_refused_naming_the_file_and_row(tmp_path, chain_data):
    from training.trl_backend.audio import audio_trl_row

    row = read_rows(str(chain_data[0]))[0]
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({**row, "audio": "gone.wav"}) + "\n")
    with pytest.raises(DataError, match=r"rows.jsonl row 1: audio .*gone.wav does not exist"):
        read_rows(str(path))
    with pytest.raises(DataError, match="no `audio`"):
        audio_trl_row({**row, "audio": None})
    with pytest.raises(DataError, match="answer_type 'essay'"):
        audio_trl_row({**row, "answer_type": "essay"})
    with pytest.raises(DataError, match="set family: alm"):  # a VLM run given audio rows
        trl_row(row)
    with pytest.raises(DataError, match="not an audio question"):
        audio_trl_row({"prompt": row["prompt"], "masks": [{"size": [1, 1], "counts": "1"}]})
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really")
    with pytest.raises(DataError, match="broken.wav: the clip cannot be decoded"):
        from training.trl_backend.audio import load_clip

        load_clip(str(broken))


def test_prompts_expand_the_clip_to_its_audio_tokens_and_keep_rows_apart(chain_data, tiny_alm):
    from transformers import AutoProcessor

    from training.trl_backend.audio import AudioPrompts, audio_trl_rows

    prompts = AudioPrompts(AutoProcessor.from_pretrained(tiny_alm))
    rows, _ = audio_trl_rows(read_rows(",".join(map(str, chain_data))))
    short, long_ = rows[0], rows[-1]
    encoded = prompts.encode([short["prompt"], long_["prompt"], short["prompt"]],
                             [short["audio"], long_["audio"], short["audio"]])
    audio_id = prompts.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    counts = [ids.count(audio_id) for ids in encoded.ids]
    assert counts == [75, 125, 75]  # 3 s and 5 s at Qwen2-Audio's 25 tokens a second
    assert encoded.input_features.shape[:2] == (3, 128)
    assert encoded.feature_attention_mask.sum(-1).tolist() == [300, 500, 300]
    assert len(prompts._cache) == 2  # the repeated prompt was processed once
    text = prompts.tokenizer.decode(encoded.ids[0])
    assert "Audio 1: <|audio_bos|>" in text and text.endswith("<|im_start|>assistant\n")
    blind = prompts.encode([short["prompt"]], [None])
    assert blind.input_features is None and audio_id not in blind.ids[0]
    with pytest.raises(DataError, match="mixes rows with and without audio"):
        prompts.encode([short["prompt"]] * 2, [short["audio"], None])


# --------------------------------------------------------------------------- training runs


@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory, chain_data, tiny_alm):
    """Two GRPO steps on the chain's rows (every audio forward recorded), then the run killed
    back to its first checkpoint and resumed to three steps."""
    from training.trl_backend import train as train_module

    tmp = tmp_path_factory.mktemp("alm_grpo")
    config = _config(tmp, chain_data, tiny_alm, objective="grpo", max_steps=2, beta=0.04,
                     batch_size=4)
    calls: dict[str, list[dict]] = {"policy": [], "reference": []}
    build = train_module.build_trainer

    def recording(cfg):
        trainer, skipped = build(cfg)
        _audio_calls(trainer.model, calls["policy"])
        _audio_calls(trainer.ref_model, calls["reference"])
        return trainer, skipped

    reported: list[dict] = []
    train_module.build_trainer = recording
    try:
        first = train_module.train(config, log=reported.append)
    finally:
        train_module.build_trainer = build
    out = first.output_dir
    first_rows = read_metrics(out / "metrics.jsonl")
    shutil.rmtree(out / "checkpoints" / "checkpoint-2")  # as if it died while saving step 2
    resumed = train_module.train(config.model_copy(update={"max_steps": 3}))
    return first, first_rows, reported, resumed, calls


def test_two_grpo_steps_log_every_reward_component_kl_and_entropy(grpo_run):
    first, rows, reported, _, _ = grpo_run
    assert first.step == 2 and first.resumed_from is None
    assert [r["step"] for r in rows] == [1, 2] and reported == rows  # log_every 1
    for row in rows:
        for key in ("loss", "reward/mean", "reward/std", "frac_reward_zero_std", "kl", "entropy",
                    "lr", "grad_norm", "step_time_s", *(f"rewards/{c}" for c in COMPONENTS)):
            assert key in row, key
        assert math.isfinite(row["kl"]) and row["entropy"] > 0
        assert 0 <= row["rewards/answer_format"] <= 1
    checkpoint = first.checkpoint
    assert checkpoint.name == "checkpoint-2" and (checkpoint / "model.safetensors").is_file()
    assert (checkpoint / "processor_config.json").is_file()
    assert (first.output_dir / "curves.png").stat().st_size > 0
    assert TrlConfig.from_json(first.output_dir / "config.json").family == "alm"


def test_the_clips_reach_generation_and_every_log_prob_pass_row_for_row(grpo_run):
    *_, calls = grpo_run
    policy, reference = calls["policy"], calls["reference"]
    # per step: the sampling's prefill and the policy's loss pass (old log-probs are not
    # needed when generation and optimisation are aligned); the reference: one KL pass
    assert len(policy) == 4 and len(reference) == 2
    for call in policy + reference:
        assert call["features"] is not None and call["features"].shape[0] == call["rows"] == 8
        assert call["audio_tokens"] == call["expected"]  # each row got its own clip's features
    assert len({n for c in policy for n in c["audio_tokens"]}) == 2  # 3 s and 5 s clips mixed


def test_a_resumed_grpo_run_continues_the_step_count_from_its_checkpoint(grpo_run):
    _, first_rows, _, resumed, _ = grpo_run
    assert resumed.resumed_from == 1 and resumed.step == 3
    rows = read_metrics(resumed.output_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]  # step 2 of the dead run dropped, redone
    assert rows[0] == first_rows[0]


def test_two_sft_steps_resume_exactly_and_evaluate_per_question_type_with_and_without_audio(
        tmp_path, chain_data, tiny_alm, capsys):
    from training.trl_backend.evaluate import evaluate_with_blind
    from training.trl_backend.run import main
    from training.trl_backend.train import train

    config = _config(tmp_path, chain_data, tiny_alm, objective="sft", max_steps=2)
    path = config.to_json(tmp_path / "sft.json")
    capsys.readouterr()
    assert main([str(path)]) == 0  # the entry point, as torchrun runs it
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["message", "progress", "progress", "materialization"]
    done = events[-1]
    assert done["family"] == "alm" and done["checkpoint"].endswith("checkpoint-2")
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert all(math.isfinite(r["loss"]) and "entropy" in r for r in rows)
    # killed before step 2 was saved: the resumed run redoes it from step 1's weights,
    # optimizer and data order, so it logs the same loss
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "checkpoint-2")
    resumed = train(config)
    again = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert resumed.resumed_from == 1 and [r["step"] for r in again] == [1, 2]
    assert again[1]["loss"] == pytest.approx(rows[1]["loss"], rel=1e-5)
    chain_rows = read_rows(config.data)
    report = evaluate_with_blind(str(resumed.checkpoint), chain_rows, config)
    for name in ("media", "blind"):
        got = report[name]
        assert got["blind"] is (name == "blind") and got["n"] == len(chain_rows)
        assert set(got["by_problem_type"]) == {"multiple choice", "numerical", "free-form"}
        assert {"longest", "duration", "max_concurrent"} <= set(got["by_kind"])
        assert got["numeric"]["n"] == sum(r["answer_type"] == "number" for r in chain_rows)
        assert 0 <= got["accuracy"] <= 1 and len(got["answers"]) == len(chain_rows)


def test_an_sft_batch_learns_the_completion_only_and_carries_the_clip(chain_data, tiny_alm):
    from transformers import AutoProcessor

    from training.trl_backend.audio import AudioPrompts, audio_trl_rows
    from training.trl_backend.audio_trainer import AudioSFTCollator

    processor = AutoProcessor.from_pretrained(tiny_alm)
    rows, _ = audio_trl_rows(read_rows(str(chain_data[0])))
    batch = AudioSFTCollator(AudioPrompts(processor))(rows[:2])
    assert batch["input_features"].shape[0] == 2
    labels = batch["labels"][0]
    learnt = processor.tokenizer.decode(labels[labels != -100])
    assert learnt == rows[0]["completion"][0]["content"] + "<|im_end|>\n"
    with pytest.raises(DataError, match="raise max_length"):
        AudioSFTCollator(AudioPrompts(processor), max_length=16)(rows[:1])


def test_a_blind_grpo_step_sends_the_model_no_audio(tmp_path, chain_data, tiny_alm):
    from training.trl_backend.train import build_trainer

    config = _config(tmp_path, chain_data, tiny_alm, objective="grpo", blind=True,
                     max_steps=1, beta=0.0)
    trainer, _ = build_trainer(config)
    assert "audio" not in trainer.train_dataset.column_names
    calls: list[dict] = []
    _audio_calls(trainer.model, calls)
    trainer.train()
    assert calls and all(c["features"] is None and set(c["audio_tokens"]) == {0} for c in calls)


# --------------------------------------------------------------------------- scoring


def test_scores_accuracy_per_question_type_and_the_numeric_error():
    from training.trl_backend.audio_eval import score_audio

    def row(answer_type, answer, kind, tolerance=None, options=()):
        problem = {"choice": "multiple choice", "number": "numerical", "text": "free-form"}
        return {"answer_type": answer_type, "answer": answer, "kind": kind,
                "tolerance": tolerance, "options": list(options), "answer_style": "think",
                "problem_type": problem[answer_type]}

    rows = [row("choice", "B", "longest", options="wxyz"), row("choice", "A", "longest",
                                                               options="wxyz"),
            row("number", "4", "duration", 0.5), row("number", "2", "max_concurrent", 0.0),
            row("number", "3", "duration", 0.5), row("text", "rain", "starts_first")]
    answers = ["<think>x</think><answer>B</answer>", "<think>x</think><answer>C</answer>",
               "<think>x</think><answer>4.4 s</answer>", "<think>x</think><answer>3</answer>",
               "I do not know", "<think>x</think><answer>The rain.</answer>"]
    got = score_audio(rows, answers, TrlConfig(**BASE))
    assert got["accuracy"] == pytest.approx(3 / 6)
    assert got["by_problem_type"] == {"free-form": {"n": 1, "accuracy": 1.0},
                                      "multiple choice": {"n": 2, "accuracy": 0.5},
                                      "numerical": {"n": 3, "accuracy": 1 / 3}}
    assert got["by_kind"]["max_concurrent"] == {"n": 1, "accuracy": 0.0}
    numeric = got["numeric"]
    assert numeric["within_tolerance"] == pytest.approx(1 / 3)
    assert numeric["no_number_rate"] == pytest.approx(1 / 3)
    assert numeric["mean_abs_error"] == pytest.approx((0.4 + 1.0) / 2)
    assert got["format_rate"] == pytest.approx(5 / 6)
    assert got["reward"] == pytest.approx((1.1 + 0.1 + 1.1 + 0.1 + 0 + 1.1) / 6)


@pytest.mark.parametrize("name", ["audio", "audio_eval", "synthetic_audio", "rewards",
                                  "config"])
def test_docstring_examples_run(name):
    import doctest
    import importlib

    module = importlib.import_module(f"training.trl_backend.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
