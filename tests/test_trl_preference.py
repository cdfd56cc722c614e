"""DPO and MPO for the TRL families: pairs where verdicts give them, and runs on tiny models.

Pairs come from the chains' rows (`training.trl_backend.pairs`): people's "no" on a point,
people's "yes" on a question, or (asked for) the chains' own verification. The runs are
two steps of TRL's DPOTrainer on the tiny random LLaVA and Qwen2-Audio of `models.tiny`:
they prove the wiring (the media reach the model for both halves of the batch, the loss
terms, the metrics log, checkpoints), not learning.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from models.vision.rle import encode_rle
from training.runtime.metrics_log import read_metrics
from training.trl_backend.config import TrlConfig
from training.trl_backend.data import DataError, read_rows
from training.trl_backend.pairs import build_pairs, preference_row
from training.trl_backend.synthetic import quadrant_pointing, video_choice_rows

pytest.importorskip("trl")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _pointing_row(points=((20.0, 20.0),), example_id="p1"):
    mask = np.zeros((100, 200), dtype=bool)
    mask[10:30, 10:30] = True
    return {"example_id": example_id, "image_id": "im", "phrase": "cup",
            "prompt": [{"role": "user", "content": "Point at cup."}], "images": ["a.png"],
            "masks": [encode_rle(mask)], "image_size": [200, 100],
            "points": [[list(p)] for p in points]}


def _question(qc="accepted", **extra):
    return {"example_id": "q1", "task": "video_qa", "answer": "C", "answer_type": "choice",
            "options": ["rolls", "jumps", "stops", "spins"], "qc": qc, "images": ["f.jpg"],
            "prompt": [{"role": "user", "content": "What next? Answer with the letter."}],
            **extra}


# --------------------------------------------------------------------------- pairs


def test_a_point_people_said_no_to_is_the_rejected_answer_in_place_of_the_verified_one():
    pairs, skipped = build_pairs([_pointing_row()],
                                 rejected_points={("im", "cup"): [(150.0, 80.0)]})
    assert skipped == {} and len(pairs) == 1
    assert pairs[0]["rejected"] == {"points": [[150.0, 80.0]]}
    assert pairs[0]["pair_source"] == "human_rejected_point"
    row = preference_row(pairs[0])  # norm1000 JSON, Qwen2-VL's convention
    assert json.loads(row["chosen"][0]["content"])[0]["point_2d"] == [100, 200]
    assert json.loads(row["rejected"][0]["content"])[0]["point_2d"] == [750, 800]


def test_no_pair_where_people_rejected_the_verified_point_itself_or_never_looked():
    contested = build_pairs([_pointing_row()], rejected_points={("im", "cup"): [(20.0, 20.0)]})
    unlooked = build_pairs([_pointing_row(), _question(qc="unreviewed")])
    assert contested == ([], {"contested_by_people": 1})
    assert unlooked == ([], {"no_human_verdict": 2})


def test_verified_pairs_mirror_a_point_only_when_the_mirror_misses_every_mask():
    pairs, _ = build_pairs([_pointing_row()], pairs_from="verified")
    assert pairs[0]["rejected"] == {"points": [[180.0, 80.0]]}
    centred = _pointing_row(points=((100.0, 50.0),))
    centred["masks"] = [encode_rle(np.ones((100, 200), dtype=bool))]
    assert build_pairs([centred], pairs_from="verified") == ([], {"mirror_inside_a_mask": 1})


def test_a_question_gives_its_right_option_against_distractors_in_the_prompts_style():
    pairs, _ = build_pairs([_question()], max_per_row=3)
    assert sorted(p["rejected"]["letter"] for p in pairs) == ["A", "B", "D"]
    think = _question(prompt=[{"role": "user", "content": "Think inside <think> </think>, "
                               "then answer inside <answer> </answer>."}])
    row = preference_row(build_pairs([think])[0][0])
    assert row["chosen"][0]["content"] == "<think>stops</think><answer>C</answer>"
    assert row["rejected"][0]["content"].endswith("</answer>")
    assert row["rejected"][0]["content"] != row["chosen"][0]["content"]
    assert build_pairs([_question(answer_type="number", options=[])], pairs_from="verified") \
        == ([], {"not_multiple_choice": 1})


def test_bad_pair_input_is_refused_clearly():
    with pytest.raises(ValueError, match="pairs_from"):
        build_pairs([], pairs_from="everything")
    with pytest.raises(DataError, match="not a preference pair"):
        preference_row(_question())
    with pytest.raises(DataError, match="without verified points"):
        build_pairs([{**_pointing_row(), "points": []}], pairs_from="verified")


# --------------------------------------------------------------------------- runs


def _pairs_file(rows_path, out, **options):
    pairs, _ = build_pairs(read_rows([rows_path]), **options)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return out, len(pairs)


def _run(tmp_path, model, data, **overrides):
    from training.trl_backend.train import train

    config = TrlConfig(**{"model": str(model), "data": str(data),
                          "output_dir": str(tmp_path / "run"), "batch_size": 2,
                          "max_steps": 2, "save_every": 2, "log_every": 1,
                          "learning_rate": 1e-3, **overrides})
    return train(config), read_metrics(tmp_path / "run" / "metrics.jsonl")


def test_two_mpo_steps_of_the_vlm_on_pointing_and_video_pairs(tmp_path):
    from models.tiny import build_tiny_llava

    pointing = quadrant_pointing(tmp_path / "image", n=2, seed=0)
    video = video_choice_rows(tmp_path / "video", n=2, frames=3, seed=0)
    a, n_points = _pairs_file(pointing, tmp_path / "pairs" / "p.jsonl", pairs_from="verified")
    b, n_questions = _pairs_file(video, tmp_path / "pairs" / "v.jsonl", pairs_from="verified")
    assert n_points == 2 and n_questions >= 1
    model = build_tiny_llava(tmp_path / "llava")
    from training.trl_backend.train import build_trainer

    probe = TrlConfig(objective="mpo", model=str(model), data=str(a), output_dir="o")
    trainer, _ = build_trainer(probe)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    # chosen rows then rejected rows, each with its image
    assert batch["input_ids"].shape[0] == 4 and batch["pixel_values"].shape[0] == 4
    assert trainer.loss_types == ["sigmoid", "bco_pair", "sft"]
    result, rows = _run(tmp_path, model, f"{a},{b}", objective="mpo")
    assert result.step == 2 and result.checkpoint.name == "checkpoint-2"
    assert (result.checkpoint / "model.safetensors").is_file()
    assert [r["step"] for r in rows] == [1, 2]
    for key in ("loss", "rewards/margins", "rewards/accuracies", "logps/chosen", "lr"):
        assert all(math.isfinite(r[key]) for r in rows), key


def test_two_dpo_steps_of_the_alm_send_each_clip_with_both_answers(tmp_path):
    from models.tiny import build_tiny_qwen2_audio
    from training.trl_backend.synthetic_audio import chain_audio_questions

    questions = chain_audio_questions(tmp_path / "audio", clips=1, seed=0, seconds=3.0)
    data, n = _pairs_file(questions, tmp_path / "pairs.jsonl", pairs_from="verified")
    assert n >= 2
    model = build_tiny_qwen2_audio(tmp_path / "qwen2_audio")
    from training.trl_backend.train import build_trainer

    config = TrlConfig(family="alm", objective="dpo", model=str(model), data=str(data),
                       output_dir=str(tmp_path / "probe"), batch_size=2)
    trainer, _ = build_trainer(config)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    assert batch["input_ids"].shape[0] == 4 and batch["input_features"].shape[0] == 4
    audio = batch["input_ids"] == trainer.model.config.audio_token_id
    assert audio[:2].sum(-1).tolist() == audio[2:].sum(-1).tolist() != [0, 0]
    assert not (batch["completion_mask"].bool() & audio).any()  # the clip is never scored
    result, rows = _run(tmp_path, model, data, family="alm", objective="dpo")
    assert result.step == 2 and all(math.isfinite(r["loss"]) for r in rows)
    assert all("rewards/margins" in r for r in rows)


def test_a_pairs_file_without_rejected_answers_is_refused_naming_the_row(tmp_path):
    from training.trl_backend.preference import preference_rows

    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(_question(images=[])) + "\n")
    config = TrlConfig(objective="dpo", model="m", data=str(rows), output_dir="o", blind=True)
    with pytest.raises(DataError, match="q1: not a preference pair"):
        preference_rows(config)
