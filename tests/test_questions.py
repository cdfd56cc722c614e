"""Shared question machinery: guards, multiple choice, the LLM-output validator, answer rewards."""

from __future__ import annotations

import functools
import json
import random

import pytest

from labeling.questions.choices import (
    MultipleChoice,
    assemble,
    balanced_positions,
    multiple_choice,
    normalize_text,
    numeric_distractors,
    pick_distractors,
    rng_for,
)
from labeling.questions.guards import Margin, extreme
from labeling.questions.templates import Question, Skipped, Template, format_number
from labeling.questions.validate import check_choice, parse_choice
from training.rewards import REWARDS
from training.rewards.answers import (
    answer_correct,
    answer_format,
    answer_span,
    choice_correct,
    normalize_answer,
    numeric_correct,
    open_answer_match,
    parse_choice_letter,
    parse_number,
)
from training.rewards.composite import REWARD_NAMES

OPTIONS = ["dog", "rain", "car horn", "music"]
GOOD = {"question": "Which sound lasts the longest?", "options": OPTIONS, "answer": "B"}

# --------------------------------------------------------------------------- templates, guards


def test_templates_render_open_questions_and_rows():
    t = Template("duration", "How long is {label} heard?", "number", hint="Answer in seconds.")
    q = t.ask(answer=2.04, tolerance=0.5, subject="dog", label="dog")
    assert (q.prompt, q.answer, q.value, q.tolerance) == (
        "How long is dog heard? Answer in seconds.", "2", 2.04, 0.5)
    assert q.row() == {"kind": "duration", "question": "How long is dog heard? Answer in seconds.",
                       "answer": "2", "answer_type": "number", "tolerance": 0.5,
                       "subject": "dog"}
    label = Template("longest", "Which is longest?").ask(answer="rain", tolerance=3.0)
    assert (label.answer, label.value, label.tolerance) == ("rain", None, None)
    assert Skipped("x", "near_tie", "d", "dog").row() == {
        "kind": "x", "subject": "dog", "reason": "near_tie", "detail": "d"}
    assert [format_number(v) for v in (0.04, 12.0, 1.25001, -0.01)] == ["0", "12", "1.3", "0"]


def test_guard_needs_two_items_and_a_margin_of_max_abs_and_rel():
    assert extreme({}, highest=True).reason == "too_few_items"
    assert extreme({"a": 20.0, "b": 18.5}, highest=True).reason == "near_tie"  # 1.5 < 2.0
    assert extreme({"a": 20.0, "b": 17.9}, highest=True).winner == "a"
    assert extreme({"a": 0.2, "b": 0.6}, highest=False).reason == "near_tie"  # 0.4 < 0.5
    assert extreme({"a": 0.2, "b": 0.8, "c": 0.21}, highest=False,
                   margin=Margin(abs=0.0, rel=0.0)).winner == "a"
    pick = extreme({"a": 1.0, "b": 3.0}, highest=True)
    assert pick.measured == {"values": {"a": 1.0, "b": 3.0}, "runner_up": "a", "gap": 2.0,
                             "margin": 0.5}


# --------------------------------------------------------------------------- choices


def test_normalize_text_ignores_case_punctuation_and_articles_but_not_numbers():
    assert normalize_text("The  Car-Horn!") == normalize_text("car horn") == "car horn"
    assert normalize_text("1.5") != normalize_text("15")
    assert normalize_text("-2") != normalize_text("2")
    assert normalize_text("An") == "an"
    samples = ["The Dog.", "a_b", "3.5 s", "  A  ", "Ünïcode—dash", "x,y", "1,000"]
    assert [normalize_text(s) for s in samples] == [normalize_answer(s) for s in samples]


@pytest.mark.parametrize("n", range(0, 14))
def test_positions_are_balanced_for_any_batch_size(n):
    positions = balanced_positions(n, seed=n)
    counts = [positions.count(i) for i in range(4)]
    assert sum(counts) == n and max(counts) - min(counts) <= (1 if n else 0)
    assert positions == balanced_positions(n, seed=n)


def test_positions_differ_between_seeds():
    assert len({tuple(balanced_positions(12, seed=s)) for s in range(10)}) > 1


def test_label_distractors_prefer_the_first_pool_and_skip_duplicates():
    rng = random.Random(0)
    picked = pick_distractors("dog", ["rain", "The dog", ""], ["music", "Rain", "bird", "owl"],
                              rng=rng)
    assert picked[0] == "rain" and len(picked) == 3
    assert {normalize_text(p) for p in picked[1:]} <= {"music", "bird", "owl"}
    assert pick_distractors("dog", ["rain"], rng=rng) == ("rain",)


def test_numeric_distractors_are_spaced_bounded_and_distinct():
    for seed in range(50):
        value = random.Random(seed).uniform(0.1, 9.0)
        got = numeric_distractors(value, spacing=1.1, rng=rng_for(seed), lower=0.1, upper=10.0)
        values = [float(g) for g in got]
        assert len(set(got)) == 3 and format_number(value) not in got
        assert all(abs(v - value) > 1.0 for v in values)
        assert all(v >= 0.1 for v in values)
    counts = numeric_distractors(0, spacing=1, rng=random.Random(0), upper=4, decimals=0)
    assert set(counts) <= {"1", "2", "3", "4"}
    assert set(numeric_distractors(9.5, spacing=2.0, rng=random.Random(0), upper=10.0)) == {
        "7.5", "5.5", "3.5"}  # only below fits: in bounds first
    with pytest.raises(ValueError, match="spacing"):
        numeric_distractors(1.0, spacing=0.01, rng=random.Random(0))


def test_assemble_refuses_options_that_are_not_four_distinct():
    rng = random.Random(0)
    with pytest.raises(ValueError, match="3 distractors"):
        assemble("Q?", "dog", ["rain", "music"], 0, rng=rng)
    with pytest.raises(ValueError, match="distinct"):
        assemble("Q?", "dog", ["rain", "The Dog", "music"], 0, rng=rng)
    mc = assemble("Q?", "dog", ["rain", "music", "owl"], 2, rng=rng, kind="k", subject="s")
    assert (mc.answer, mc.answer_text, mc.kind, mc.subject) == ("C", "dog", "k", "s")


def test_questions_without_three_distractors_get_no_choice_form():
    full = Question("longest", "Which?", "dog", distractors=("rain", "music", "owl"))
    short = Question("shortest", "Which?", "dog", distractors=("rain",), subject=None)
    choices, skipped = multiple_choice([full, short, full], seed=0)
    assert len(choices) == 2
    assert [(s.kind, s.reason) for s in skipped] == [("shortest", "too_few_options")]
    assert skipped[0].detail == "1 distractor(s) (rain); 3 needed"


def test_choice_prompt_and_row():
    mc = MultipleChoice("Which?", ("a dog", "rain", "music", "owl"), "A", "longest")
    assert mc.prompt.splitlines() == ["Which?", "A. a dog", "B. rain", "C. music", "D. owl",
                                      "Answer with the letter of the correct option."]
    assert mc.row()["options"] == ["a dog", "rain", "music", "owl"]


# --------------------------------------------------------------------------- validation


_DROP = object()


def _with(**changes):
    """GOOD with some fields changed (``_DROP``: removed)."""
    obj = dict(GOOD)
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not _DROP}


@pytest.mark.parametrize("text", [
    json.dumps(GOOD),
    "Sure, here it is:\n```json\n" + json.dumps(GOOD, indent=2) + "\n```\nHope that helps!",
    "The question {as asked} is: " + json.dumps(GOOD) + " -- done",
    json.dumps([GOOD, {"question": "another"}]),
    json.dumps({"Question": GOOD["question"], "OPTIONS": OPTIONS, "Correct_Answer": "rain"}),
    json.dumps({"q": GOOD["question"], "choices": dict(zip("ABCD", OPTIONS, strict=True)),
                "correct": "(b)"}),
    json.dumps(_with(options=[f"{k}) {o}" for k, o in zip("ABCD", OPTIONS, strict=True)])),
    json.dumps(_with(options=[f"({k}) {o}" for k, o in zip("ABCD", OPTIONS, strict=True)])),
    json.dumps(_with(answer="Answer: B")),
    json.dumps(_with(answer="B) rain")),
    json.dumps(_with(answer=["B"])),
    json.dumps(_with(answer="The rain.")),
    json.dumps(_with(answer="b.")),
])
def test_valid_questions_parse_in_every_form(text):
    checked = parse_choice(text)
    assert checked.ok, (checked.reason, checked.detail)
    mc = checked.choice
    assert (mc.question, mc.options, mc.answer) == (GOOD["question"], tuple(OPTIONS), "B")
    assert checked.row()["valid"] and checked.row()["answer_text"] == "rain"


@pytest.mark.parametrize(("obj", "reason"), [
    ("No JSON here, sorry.", "no_json"),
    ("", "no_json"),
    ("{not json at all}", "no_json"),
    (None, "no_json"),
    ("[1, 2, 3]", "not_an_object"),
    ('"just a string" and [true]', "not_an_object"),
    (_with(question=_DROP), "missing_question"),
    (_with(question="   "), "missing_question"),
    (_with(question=7), "missing_question"),
    (_with(options=_DROP), "missing_options"),
    (_with(options="dog, rain, car horn, music"), "missing_options"),
    (_with(options={"A": "dog", "B": "rain", "C": "horn", "E": "music"}), "missing_options"),
    (_with(options=OPTIONS[:3]), "wrong_option_count"),
    (_with(options=[*OPTIONS, "bird"]), "wrong_option_count"),
    (_with(options={"A": "dog", "B": "rain", "C": "horn"}), "wrong_option_count"),
    (_with(options=["dog", "", "horn", "music"]), "empty_option"),
    (_with(options=["dog", "rain", None, "music"]), "empty_option"),
    (_with(options=["dog", "rain", "?!", "music"]), "empty_option"),
    (_with(options=["dog", "rain", {"text": "x"}, "music"]), "empty_option"),
    (_with(options=["dog", "rain", "The Dog!", "music"]), "duplicate_options"),
    (_with(options=["dog", "rain", "Which sound lasts the longest", "music"]),
     "option_repeats_question"),
    (_with(answer=_DROP), "missing_answer"),
    (_with(answer=""), "missing_answer"),
    (_with(answer=[]), "missing_answer"),
    (_with(answer={"letter": "B"}), "missing_answer"),
    (_with(answer=["A", "C"]), "multiple_answers"),
    (_with(answer="A and C"), "multiple_answers"),
    (_with(answer="B, D"), "multiple_answers"),
    (_with(answer="E"), "answer_not_in_options"),
    (_with(answer="bird"), "answer_not_in_options"),
    (_with(answer=2), "answer_not_in_options"),
    (_with(options=["B", "rain", "horn", "music"], answer="B"), "ambiguous_answer"),
    (_with(answer="C) rain"), "ambiguous_answer"),
])
def test_each_malformed_case_has_its_reason(obj, reason):
    checked = parse_choice(obj if isinstance(obj, str) or obj is None else json.dumps(obj))
    assert not checked.ok
    assert (checked.reason, bool(checked.detail)) == (reason, True), checked.detail
    if isinstance(obj, dict):
        assert check_choice(obj).reason == reason


def test_the_validator_never_raises():
    rng = random.Random(0)
    pieces = ['{"question": ', '"Q?"', ', "options": ', "[", "]", "{", "}", '"A"', "1e999",
              "null", ", ", ":", '"answer"', "```json", "```", "\\", '"', "true", "-", "0.5"]
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        checked = parse_choice(text)
        assert checked.ok or checked.reason
    for weird in ("[" * 50_000, "{" * 50_000 + "}", 3.5, b"bytes", ["list"], "x" * 300_000):
        assert parse_choice(weird).reason in ("no_json", "not_an_object")
    for obj in (None, 1, [], [1, 2], {"question": {}}, {"options": 5}, {1: 2},
                _with(answer=float("nan")), _with(options=[True, False, 1, 2])):
        assert check_choice(obj).reason


# --------------------------------------------------------------------------- rewards


@pytest.mark.parametrize("completion", [
    "B", "b", "B)", "(B)", "B.", "[B]", "**B**", "Answer: B", "answer - B",
    "The answer is (B).", "The correct option is B.", "<answer>B</answer>",
    "<think>A looks right, but no</think><answer>B</answer>",
    "<think>x</think> <answer> (b) </answer>",
    "B) rain", "(B) rain", "rain", "The rain.", "It is the rain that lasts longest.",
    [{"role": "assistant", "content": "B"}],
    [{"role": "assistant", "content": [{"type": "text", "text": "<answer>"},
                                       {"type": "text", "text": "B</answer>"}]}],
])
def test_choice_correct_reads_every_answer_format(completion):
    assert choice_correct([completion], answer=["B"], options=[OPTIONS]) == [1.0]
    assert choice_correct([completion], answer=["rain"], options=[OPTIONS]) == [1.0]


@pytest.mark.parametrize("completion", [
    "A", "A or B", "B, no, C", "", None, "<think>B</think>", "I do not know.", "dog",
    "<answer>B</answer><answer>C</answer>", "Option A and option B", "car horn or rain",
])
def test_choice_correct_pays_nothing_for_a_wrong_hedged_or_missing_choice(completion):
    assert choice_correct([completion], answer=["B"], options=[OPTIONS]) == [0.0]


def test_choice_correct_without_options_and_rows_without_answers():
    assert choice_correct(["(B)", "rain", "A"], answer=["B", "rain", None]) == [1.0, 1.0, None]
    assert parse_choice_letter("dog barking", ["dog", "dog barking", "rain", "horn"]) == "B"
    assert parse_choice_letter("a dog", ["dog", "dog barking", "rain", "horn"]) == "A"
    assert parse_choice_letter("A dog barks") is None  # an article, not a letter
    with pytest.raises(ValueError, match="2 values for 1 completions"):
        choice_correct(["B"], answer=["B", "C"])


@pytest.mark.parametrize(("completion", "expected"), [
    ("3.5", 3.5), ("3.5s", 3.5), ("3.5 s", 3.5), ("3.5 seconds", 3.5), ("3 sec", 3.0),
    ("about 3.2 seconds, maybe 9", 3.2), ("3400 ms", 3.4), ("0.06 min", 3.6), (".5", 0.5),
    ("three", 3.0), ("Three seconds.", 3.0), ("<think>maybe 9</think><answer>4</answer>", 4.0),
    ("<think>9 s?</think> It is 3 s.", 3.0), ("2 sounds", 2.0), ("none", None), ("", None),
    ("seventeen", 17.0), ("x2", None),
])
def test_numbers_are_read_with_their_units(completion, expected):
    assert parse_number(completion) == (None if expected is None else pytest.approx(expected))


def test_numeric_correct_within_tolerance():
    got = numeric_correct(["3.5", "4.0 s", "4.01 s", "three", "no idea", "3"],
                          answer=[3.5, "3.5", 3.5, 3.5, 3.5, None], tolerance=[0.5] * 6)
    assert got == [1.0, 1.0, 0.0, 1.0, 0.0, None]
    assert numeric_correct(["2", "3"], answer=["2", "2"], tolerance=[0.0, 0.0]) == [1.0, 0.0]
    # without a tolerance column: max(abs_tol, rel_tol × answer)
    assert numeric_correct(["11.9", "10.4"], answer=[10.0, 10.0]) == [0.0, 1.0]
    strict = functools.partial(numeric_correct, abs_tol=0.0, rel_tol=0.0)
    assert strict(["10.4", "10"], answer=[10.0, 10.0]) == [0.0, 1.0]


def test_open_answer_match_normalises():
    got = open_answer_match(["The Dog!", "<answer>dog</answer>", "dogs", "", "a dog barking",
                             "Rainfall."], answer=["dog"] * 5 + [["rain", "rainfall"]])
    assert got == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert open_answer_match(["x"], answer=[None]) == [None]


def test_answer_correct_dispatches_by_type_and_names_a_bad_row():
    got = answer_correct(["(C)", "4.2 seconds", "snow", "x"],
                         answer=["C", "4", "rain", None],
                         answer_type=["choice", "number", "text", None],
                         options=[OPTIONS, None, None, None], tolerance=[None, 0.5, None, None])
    assert got == [1.0, 1.0, 0.0, None]
    with pytest.raises(ValueError, match="row 1"):
        answer_correct(["a", "b"], answer=["a", "b"], answer_type=["text", "essay"])


def test_answer_correct_text_row():
    assert answer_correct(["Rain."], answer=["rain"], answer_type=["text"]) == [1.0]


@pytest.mark.parametrize(("completion", "required", "optional", "none"), [
    ("<think>x</think><answer>B</answer>", 1.0, 1.0, 0.0),
    ("  <think>\nlong\nthought\n</think>\n\n<answer>\nB\n</answer>\n", 1.0, 1.0, 0.0),
    ("<THINK>x</THINK><ANSWER>B</ANSWER>", 1.0, 1.0, 0.0),
    ("<think></think><answer>B</answer>", 1.0, 1.0, 0.0),
    ("<answer>B</answer>", 0.0, 1.0, 1.0),
    ("<think>x</think><answer> </answer>", 0.0, 0.0, 0.0),
    ("<think>x</think><answer>B</answer> extra", 0.0, 0.0, 0.0),
    ("preamble <think>x</think><answer>B</answer>", 0.0, 0.0, 0.0),
    ("<think>x</think><answer>B</answer><answer>C</answer>", 0.0, 0.0, 0.0),
    ("<think>x<think>y</think></think><answer>B</answer>", 0.0, 0.0, 0.0),
    ("<answer>B</answer><think>x</think>", 0.0, 0.0, 0.0),
    ("<think>x</think>", 0.0, 0.0, 0.0),
    ("B", 0.0, 0.0, 0.0),
    ("", 0.0, 0.0, 0.0),
])
def test_answer_format(completion, required, optional, none):
    assert answer_format([completion]) == [required]
    assert answer_format([completion], think="optional") == [optional]
    assert answer_format([completion], think="none") == [none]


def test_answer_format_rejects_an_unknown_setting_and_span_falls_back():
    with pytest.raises(ValueError, match="think"):
        answer_format(["x"], think="sometimes")
    assert answer_span("<answer>B") == "B"  # cut off before the closing tag
    assert answer_span("<think>A</think>B") == "B"


def test_registered_after_the_speech_rewards_and_ignore_other_columns():
    names = ["answer_correct", "choice_correct", "numeric_correct", "open_answer_match",
             "answer_format"]
    assert all(name in REWARDS for name in names)
    assert not set(names) & set(REWARD_NAMES)  # the speech loop's weights stay speech-only
    assert list(REWARDS).index("answer_correct") > max(list(REWARDS).index(n)
                                                       for n in REWARD_NAMES)
    extra = {"prompts": ["p"], "completion_ids": [[1]], "trainer_state": object(),
             "audio": ["clip.wav"], "question": ["Q?"]}
    assert REWARDS["choice_correct"](["B"], answer=["B"], **extra) == [1.0]
    assert REWARDS["answer_format"](["<think></think><answer>B</answer>"], **extra) == [1.0]


# --------------------------------------------------------------------------- prompt and reward


def _dataset_rows():
    """One audio row per answer type and one video row, built by the chains' own code."""
    from labeling.audio_qa.dataset import dataset_row as audio_row
    from labeling.video_qa.dataset import dataset_row as video_row

    audio = {"question_id": "q", "clip_id": "c", "kind": "longest", "subject": None,
             "regions_source": "manifest", "seed": 0, "value": None, "tolerance": None,
             "options": []}
    rows = [
        audio_row({**audio, "form": "choice", "question": "Which sound lasts longest?",
                   "prompt": "Which sound lasts longest?\nA. music\nB. speech\nC. dog\n"
                             "D. noise\nAnswer with the letter of the correct option.",
                   "answer": "B", "answer_text": "speech", "answer_type": "choice",
                   "options": ["music", "speech", "dog", "noise"]}, audio="/a.ogg", duration_s=9),
        audio_row({**audio, "form": "open", "kind": "duration", "subject": "music",
                   "question": "How long is music heard?",
                   "prompt": "How long is music heard? Answer with a number of seconds.",
                   "answer": "3.5", "answer_text": "3.5", "answer_type": "number",
                   "tolerance": 0.5}, audio="/a.ogg", duration_s=9),
        audio_row({**audio, "form": "open", "question": "Which sound starts first?",
                   "prompt": "Which sound starts first? Answer with the name of a sound.",
                   "answer": "music", "answer_text": "music", "answer_type": "text"},
                  audio="/a.ogg", duration_s=9),
    ]
    video = {"question_id": "v", "group_id": "g", "video_id": "v1", "kind": "rest_of_video",
             "form": "choice", "question": "What happens next?",
             "prompt": "The images are frames.\nWhat happens next?\nA. It rolls.\nB. It stops."
                       "\nC. It jumps.\nD. It spins.\nAnswer with the letter of the correct "
                       "option.", "answer": "B", "answer_text": "It stops.",
             "answer_type": "choice", "options": ["It rolls.", "It stops.", "It jumps.",
                                                  "It spins."],
             "question_source": "template", "context_source": "manifest",
             "truth_source": "manifest", "truth_description": "It stops.", "support": 1.0,
             "answerable_blind": False, "blind_margin": -0.2, "curriculum_bucket": "c",
             "curriculum_order": 0, "bucket": "easy", "qc": "accepted"}
    return rows + [video_row(video, video="/v.mp4", frames=["/f.jpg"], weights="none")]


def test_the_datasets_prompts_ask_for_the_format_the_reward_pays_for():
    """Every chain's prompt ends with the think/answer instruction; a completion that does
    what it says scores 1.0 on the format reward (its default) and on the answer reward,
    one that answers without thinking or adds text after the answer scores 0 on format."""
    import doctest
    import inspect

    import labeling.questions.reasoning as reasoning

    assert doctest.testmod(reasoning).failed == 0
    instruction = reasoning.FORMAT_INSTRUCTION
    assert "<think> </think>" in instruction and "<answer> </answer>" in instruction
    assert inspect.signature(answer_format).parameters["think"].default == "required"
    rows = _dataset_rows()
    for row in rows:
        assert row["prompt"] == [{"role": "user", "content": row["prompt_text"]}]
        assert row["prompt_text"].splitlines()[-1] == instruction
        assert row["prompt_text"].count(instruction) == 1
    answers = [r["answer"] for r in rows]
    kw = {"answer": answers, "answer_type": [r["answer_type"] for r in rows],
          "options": [r["options"] for r in rows], "tolerance": [r.get("tolerance")
                                                                 for r in rows]}
    good = [f"<think>I hear it, and weigh the options.</think>\n<answer>{a}</answer>"
            for a in answers]
    assert answer_format(good) == [1.0] * len(rows)
    assert answer_correct(good, **kw) == [1.0] * len(rows)
    bare = [f"<answer>{a}</answer>" for a in answers]
    chatty = [f"{g} That is my answer." for g in good]
    assert answer_format(bare) == answer_format(chatty) == [0.0] * len(rows)
    assert answer_correct(chatty, **kw) == [1.0] * len(rows)  # the span is still read
