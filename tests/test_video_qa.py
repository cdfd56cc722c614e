"""The video questions chain's pure parts: the 70/30 cut exact to a frame on the sample videos,
the checks of LLM-written questions, balanced answer letters, the blind control, descriptions
and curriculum buckets."""

import json
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from labeling.questions.choices import LETTERS, normalize_text
from labeling.video_qa.blind import BlindResult, blind_control
from labeling.video_qa.chain import question_rows, shuffle_choices, template_drafts, video_inputs
from labeling.video_qa.curriculum import ORDER, curriculum
from labeling.video_qa.dataset import keep_row
from labeling.video_qa.descriptions import description_rows
from labeling.video_qa.questions import Draft, llm_questions, read_question
from labeling.video_qa.segments import SegmentSettings, cut_video

VIDEOS = Path(__file__).resolve().parent.parent / "data" / "sample" / "videos"
NOTES = [json.loads(line) for line in (VIDEOS / "annotations.jsonl").open()]


def _decoded(name: str) -> list[np.ndarray]:
    with av.open(str(VIDEOS / name)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.mark.parametrize("note", NOTES, ids=[n["video"] for n in NOTES])
def test_the_cut_at_70_percent_is_exact_to_a_frame_at_the_source_rate(note, tmp_path):
    """Frames at a constant rate start at i / fps, the video lasts n / fps, so the first frame
    at or after 70 % of it is ceil(0.7 n) = (7n + 9) // 10, computed here in integers from the
    annotations; the frames written are the decoded source frames, pixel for pixel."""
    n, fps = note["frames"], note["fps"]
    expected = (7 * n + 9) // 10
    seg = cut_video(VIDEOS / note["video"], tmp_path / "f",
                    SegmentSettings(fps=None, short_side=None, image_format="png"))
    assert seg.source_frames == n and seg.source_cut_frame == expected
    assert seg.context_source_frames == list(range(expected))
    assert seg.truth_source_frames == list(range(expected, n))
    assert float(seg.duration_s) == pytest.approx(n / fps, abs=1e-9)
    assert max(seg.context_times) < seg.cut_s <= min(seg.truth_times)
    decoded = _decoded(note["video"])
    last_context, first_truth = (np.asarray(Image.open(p)) for p in
                                 (seg.context_paths[-1], seg.truth_paths[0]))
    assert np.array_equal(last_context, decoded[expected - 1])
    assert np.array_equal(first_truth, decoded[expected])
    assert not np.array_equal(first_truth, decoded[expected - 1])  # the shapes moved


@pytest.mark.parametrize("note", NOTES, ids=[n["video"] for n in NOTES])
def test_the_cut_is_exact_at_a_standard_rate_and_size(note, tmp_path):
    """At 2 fps the grid is k / 2 s below n / fps; 70 % of the duration falls after the
    ceil(0.7 × 2n / fps)-th grid time; grid time k shows source frame floor(k × fps / 2)."""
    n, fps = note["frames"], note["fps"]
    grid = (2 * n + fps - 1) // fps  # k / 2 < n / fps  <=>  k < 2n / fps
    context = (14 * n + 10 * fps - 1) // (10 * fps)
    seg = cut_video(VIDEOS / note["video"], tmp_path / "f", SegmentSettings(fps=2.0,
                                                                            short_side=224))
    assert len(seg.context_paths) == context and len(seg.truth_paths) == grid - context
    assert seg.context_source_frames + seg.truth_source_frames == [k * fps // 2
                                                                   for k in range(grid)]
    assert seg.size == (299, 224) and Image.open(seg.truth_paths[0]).size == (299, 224)
    assert [float(t) for t in seg.context_times + seg.truth_times] == [k / 2 for k in range(grid)]


def test_a_video_too_short_to_cut_is_refused_with_a_reason(tmp_path):
    from labeling.ingest.media import MediaError
    from labeling.video_qa.segments import segment_rows

    with pytest.raises(MediaError) as err:
        cut_video(VIDEOS / "bouncing_circle.mp4", tmp_path / "f",
                  SegmentSettings(fps=1.0, min_context=3))
    assert err.value.reason == "too_short" and "2 frame(s) before the cut" in err.value.detail
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 64)
    rows, failures = segment_rows([{"video_id": "a" * 64, "source_path": str(tmp_path /
                                                                            "junk.mp4")}],
                                  tmp_path / "out")
    assert rows == [] and [f["reason"] for f in failures] == ["undecodable"]


TRUTH = "The red circle keeps moving down and to the right."


def _llm_json(question="Where does the red circle go next?", options=None, answer="B"):
    options = options or ["up and to the left", "down and to the right", "it stops",
                          "it bounces off the top edge"]
    return json.dumps({"question": question, "options": options, "answer": answer})


@pytest.mark.parametrize("text, reason", [
    ("The circle will move on.", "no_json"),
    ('{"question": "Where next?", "options": ["up", "down and right"', "no_json"),
    (_llm_json(options=["up", "down and to the right", "left"]), "wrong_option_count"),
    (_llm_json(options=["left", "down and to the right", "Left!", "up"]), "duplicate_options"),
    (_llm_json(answer="E"), "answer_not_in_options"),
    (_llm_json(answer="sideways"), "answer_not_in_options"),
    (_llm_json(answer=["A", "B"]), "multiple_answers"),
    (_llm_json(options=["up", "down and to the right", "Where does the red circle go next?",
                        "left"]), "option_repeats_question"),
    (_llm_json(answer="C"), "answer_unsupported"),
    (_llm_json(options=["down", "down and to the right", "up", "left"]), "distractor_supported"),
    (_llm_json(question="The circle moves down and to the right: what next?"),
     "answer_in_question"),
])
def test_llm_questions_that_break_the_schema_are_refused_with_their_reason(text, reason):
    assert read_question(text, video_id="v", truth=TRUTH, source="model:m")[0] == reason


def test_a_valid_llm_question_is_read_from_prose_and_fences():
    text = f"Here you go:\n```json\n{_llm_json()}\n```\nHope it helps."
    draft = read_question(text, video_id="v", truth=TRUTH, source="model:m")
    assert isinstance(draft, Draft)
    assert draft.answer == "down and to the right" and draft.support == 1.0
    assert len(draft.distractors) == 3 and draft.answer not in draft.distractors
    assert draft.open_question == "Where does the red circle go next? Answer in one sentence."


class ScriptedLLM:
    """A text LLM whose answers are given in order (no logits: text is read)."""

    name = "scripted"

    def __init__(self, answers):
        self.answers, self.prompts = list(answers), []

    def generate(self, prompts, *, max_new_tokens=64, temperature=0.0):
        self.prompts += prompts
        return [self.answers.pop(0) for _ in prompts]


def _inputs(n, truth_source="manifest"):
    colours = ["red", "blue", "green", "orange", "purple", "white", "black", "yellow"]
    return [{"video_id": f"v{i}", "source_path": f"/d/{i}.mp4",
             "context": f"The {colours[i % 8]} circle {i} rolls up.", "context_source": "manifest",
             "truth": f"The {colours[i % 8]} circle {i} falls down and to the right.",
             "truth_source": truth_source} for i in range(n)]


def test_refused_llm_output_is_quarantined_whole_and_the_template_falls_back():
    inputs = _inputs(4)
    llm = ScriptedLLM([_llm_json(question="Where does circle 0 go?",
                                 options=["up", "down and to the right", "left", "stop"]),
                       "garbage garbage", _llm_json(answer="Z"), ""])
    drafts, refused = llm_questions(llm, inputs)
    assert [d.video_id for d in drafts] == ["v0"] and drafts[0].source == "model:scripted"
    assert [(f["source_path"], f["reason"]) for f in refused] == [
        ("/d/1.mp4", "no_json"), ("/d/2.mp4", "answer_not_in_options"), ("/d/3.mp4", "no_json")]
    assert "the model wrote: 'garbage garbage'" in refused[0]["detail"]
    assert "falls down" in llm.prompts[1][1]["content"]  # the truth is given to the writer
    fallback = template_drafts(inputs, drafts, mode="fallback", seed=0)
    assert [d.video_id for d in fallback] == ["v1", "v2", "v3"]
    assert all(d.source == "template" and d.answer == inputs[int(d.video_id[1])]["truth"]
               for d in fallback)
    assert len(template_drafts(inputs, drafts, mode="always", seed=0)) == 4
    assert template_drafts(inputs, drafts, mode="off", seed=0) == []
    # a model's truth is no template's answer
    assert template_drafts(_inputs(4, "model:vlm"), [], mode="always", seed=0) == []


def test_template_distractors_are_unsupported_by_the_truth_and_its_own_context_comes_first():
    inputs = _inputs(5)
    for d in template_drafts(inputs, [], mode="always", seed=3):
        own = inputs[int(d.video_id[1])]
        assert own["context"] in d.distractors
        assert len({normalize_text(o) for o in (d.answer, *d.distractors)}) == 4
        assert d.distractor_support < d.support - 0.1


def test_right_letters_are_balanced_over_the_batch_even_when_the_llm_always_says_a():
    inputs = _inputs(10)
    llm = ScriptedLLM([_llm_json(question=f"Where does circle {i} go?", answer="A", options=[
        "down and to the right", "up", "left", "stop"]) for i in range(10)])
    drafts, refused = llm_questions(llm, inputs)
    assert refused == [] and len(drafts) == 10
    choices, short = shuffle_choices(drafts, seed=7)
    counts = Counter(mc.answer for mc in choices.values())
    assert short == [] and set(counts) == set(LETTERS)
    assert max(counts.values()) - min(counts.values()) <= 1
    for i, mc in choices.items():
        assert mc.answer_text == drafts[i].answer == "down and to the right"
        assert len({normalize_text(o) for o in mc.options}) == 4


def test_the_blind_control_flags_questions_the_text_alone_answers():
    drafts = template_drafts(_inputs(4), [], mode="always", seed=0)
    choices, _ = shuffle_choices(drafts, seed=0)
    right = {i: mc.answer_text for i, mc in choices.items()}
    # the stub answers the first two questions right (by the option's text), the others "wrong"
    answers = [right[0], f"({choices[1].answer})"] + [
        next(letter for letter in LETTERS if letter != choices[i].answer) for i in (2, 3)]
    blind = dict(zip(choices, blind_control(ScriptedLLM(answers), list(choices.values())),
                     strict=True))
    rows = question_rows(drafts, choices, blind, _inputs(4), seed=0)
    flagged = {r["video_id"]: r["answerable_blind"] for r in rows}
    assert flagged == {"v0": True, "v1": True, "v2": False, "v3": False}
    kept = [r["video_id"] for r in rows
            if keep_row(r, keep_qc=("unreviewed", "accepted"), include_blind=False) is None]
    assert sorted(set(kept)) == ["v2", "v3"]
    assert keep_row(rows[0], keep_qc=("unreviewed",), include_blind=True) is None


def test_the_blind_control_reads_letter_probabilities_from_a_causal_llm(tmp_path):
    from models.text_llm import CausalTextLLM
    from models.tiny import build_tiny_qwen2

    llm = CausalTextLLM.from_pretrained(str(build_tiny_qwen2(tmp_path / "llm")))
    drafts = template_drafts(_inputs(4), [], mode="always", seed=0)
    choices, _ = shuffle_choices(drafts, seed=0)
    results = blind_control(llm, list(choices.values()))
    for mc, r in zip(choices.values(), results, strict=True):
        assert r.method == "letter_probabilities"
        assert sum(r.probabilities) == pytest.approx(1, abs=1e-5)
        probs = dict(zip(LETTERS, r.probabilities, strict=True))
        assert r.pick == max(probs, key=probs.get)
        assert r.margin == pytest.approx(probs[mc.answer] - max(
            p for letter, p in probs.items() if letter != mc.answer), abs=1e-5)
        assert r.answered(mc.answer) == (r.margin > 0)


def test_curriculum_puts_multiple_choice_first_and_obvious_before_subtle():
    buckets = [curriculum(form, margin) for form in ("open", "choice")
               for margin in (None, -0.9, -0.1, 0.2)]
    assert sorted(buckets, key=lambda b: b.order)[0].name == "choice/obvious"
    assert {b.name: b.order for b in buckets} == {name: ORDER.index(name) for name in ORDER}
    assert curriculum("choice", -0.15).name == "choice/obvious"
    assert curriculum("choice", -0.16).name == "choice/subtle"
    assert [curriculum(f, m).spine for f, m in [("choice", 0.0), ("choice", -1), ("open", 0)]] == [
        "easy", "medium", "hard"]


class FramesVLM:
    name = "frames-vlm"

    def __init__(self, fail_on=None):
        self.calls, self.fail_on = [], fail_on

    def generate_with_images(self, visuals, prompts, *, max_new_tokens=64, temperature=0.0):
        self.calls.append([len(v) for v in visuals])
        if self.fail_on is not None and any(len(v) == self.fail_on for v in visuals):
            raise RuntimeError("shape mismatch")
        return ["   " if len(v) == 1 else f"{len(v)} frames move" for v in visuals]


def test_given_descriptions_win_and_the_vlm_describes_the_rest_with_its_failures_kept():
    videos = [
        {"video_id": "given", "source_path": "/d/g.mp4",
         "tags": {"description": "A ball rolls.", "truth_description": "It stops."}},
        {"video_id": "half", "source_path": "/d/h.mp4", "tags": {"truth_description": 3}},
        {"video_id": "other_cut", "source_path": "/d/o.mp4", "tags": {
            "description": "A", "truth_description": "B", "description_cut": 0.5}},
        {"video_id": "short", "source_path": "/d/s.mp4", "tags": {}},
    ]
    segments = {v["video_id"]: {"cut": 0.7, "context_paths": [f"c{i}" for i in range(12)],
                                "truth_paths": ["t0", "t1", "t2"]} for v in videos}
    segments["short"]["truth_paths"] = ["t0"]
    vlm = FramesVLM(fail_on=3)
    rows, failures = description_rows(vlm, videos, segments, human={"half": {"context": "Hi."}},
                                      load=lambda p: p)
    got = {(r["video_id"], r["part"]): (r["description"], r["source"]) for r in rows}
    assert got == {
        ("given", "context"): ("A ball rolls.", "manifest"),
        ("given", "truth"): ("It stops.", "manifest"),
        ("half", "context"): ("Hi.", "human"),
        ("other_cut", "context"): ("8 frames move", "model:frames-vlm"),
        ("short", "context"): ("8 frames move", "model:frames-vlm"),
    }
    assert sorted((f["source_path"], f["reason"]) for f in failures) == [
        ("/d/h.mp4", "bad_description"), ("/d/h.mp4", "model_error"),
        ("/d/o.mp4", "description_cut_mismatch"), ("/d/o.mp4", "model_error"),
        ("/d/s.mp4", "empty_description")]
    assert max(n for call in vlm.calls for n in call) == 8  # evenly spaced, at most 8
    inputs, missing = video_inputs({"v": {"source_path": "/d/v.mp4",
                                          "context": ("A ball rolls.", "manifest")}})
    assert inputs == [] and missing[0]["reason"] == "no_description"


def test_a_blind_answer_that_names_no_option_is_no_pick():
    drafts = template_drafts(_inputs(4), [], mode="always", seed=0)
    choices, _ = shuffle_choices(drafts, seed=0)
    results = blind_control(ScriptedLLM(["I cannot see it.", "A or B", "", "maybe"]),
                            list(choices.values()))
    assert [r.pick for r in results] == [None] * 4
    assert not any(r.answered(mc.answer) for r, mc in zip(results, choices.values(),
                                                          strict=True))
    assert BlindResult(None).margin is None


DOCTESTED = ["labeling.video_qa.segments", "labeling.video_qa.support",
             "labeling.video_qa.descriptions", "labeling.video_qa.questions",
             "labeling.video_qa.blind", "labeling.video_qa.curriculum",
             "labeling.video_qa.chain", "labeling.video_qa.dataset", "models.choice_scores"]


@pytest.mark.parametrize("name", DOCTESTED)
def test_docstring_examples_run(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0
