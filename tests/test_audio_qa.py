"""Audio questions: regions checked and merged, durations, and every answer against a brute force.

Synthetic clips with regions on a 0.1 s grid; the truth is computed independently by sampling
a 0.05 s time grid (numpy), never by the code under test.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from labeling.audio_qa.durations import timeline
from labeling.audio_qa.questions import KINDS, QuestionSettings, clip_questions
from labeling.audio_qa.regions import (
    SoundRegion,
    class_iou,
    mean_class_iou,
    merge_by_class,
    validate_regions,
)
from labeling.questions.choices import LETTERS, multiple_choice, normalize_text
from labeling.questions.guards import Margin
from labeling.questions.validate import check_choice
from models.roles import Region
from training.rewards.answers import answer_correct, choice_correct, numeric_correct

CLIP_S = 10.0
STEP = 0.05
VOCAB = ["dog", "rain", "car horn", "music", "speech", "bird", "siren", "engine"]
SETTINGS = QuestionSettings()


def random_clip(rng: random.Random) -> list[SoundRegion]:
    """1-5 classes, each with 1-3 regions on a 0.1 s grid inside a 10 s clip."""
    regions = []
    for label in rng.sample(VOCAB, rng.randint(1, 5)):
        for _ in range(rng.randint(1, 3)):
            start = rng.randint(0, 95)
            end = min(start + rng.randint(1, 40), 100)
            regions.append(SoundRegion(label, round(start * 0.1, 1), round(end * 0.1, 1),
                                       rng.choice(["manifest", "human", "model:tagger"])))
    return regions


def grid(regions: list[SoundRegion]) -> dict[str, np.ndarray]:
    """Per class, which 0.05 s cells are sounding (tested at the cell's midpoint)."""
    mids = (np.arange(round(CLIP_S / STEP)) + 0.5) * STEP
    active: dict[str, np.ndarray] = {}
    for r in regions:
        cells = (mids >= r.start_s) & (mids < r.end_s)
        active[r.label] = active.get(r.label, np.zeros_like(cells)) | cells
    return active


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first cell, cells) of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(s), int(e - s)) for s, e in zip(starts, ends, strict=True)]


def truth(regions: list[SoundRegion]) -> dict:
    active = grid(regions)
    at_once = sum(m.astype(int) for m in active.values()) if active else np.zeros(1, int)
    top = int(at_once.max())
    peak = max((n for _, n in runs(at_once == top)), default=0) * STEP if top else 0.0
    return {
        "totals": {k: m.sum() * STEP for k, m in active.items()},
        "firsts": {k: np.flatnonzero(m)[0] * STEP for k, m in active.items()},
        "lasts": {k: (np.flatnonzero(m)[-1] + 1) * STEP for k, m in active.items()},
        "counts": {k: len(runs(m)) for k, m in active.items()},
        "max_concurrent": top,
        "peak_s": peak,
    }


def _ranked(values: dict[str, float], highest: bool) -> tuple[str, float, float]:
    order = sorted(values, key=lambda k: -values[k] if highest else values[k])
    return order[0], values[order[0]], values[order[1]]


CLIPS = [random_clip(random.Random(seed)) for seed in range(300)]


# --------------------------------------------------------------------------- regions


def test_validation_gives_each_bad_region_its_reason_and_clips_within_slack():
    regions = [
        SoundRegion("dog", 0.0, 1.0),
        SoundRegion("dog", float("nan"), 1.0),
        SoundRegion("dog", 2.0, 2.0),
        SoundRegion("dog", 3.0, 2.0),
        SoundRegion("dog", -0.5, 1.0),
        SoundRegion("dog", 9.0, 10.5),
        SoundRegion("cat", 1.0, 2.0),
        SoundRegion(" ", 1.0, 2.0),
        SoundRegion("dog", 1.0, 2.0, source="model:"),
        SoundRegion("dog", 1.0, 2.0, source="guess"),
        SoundRegion("rain", -0.03, 10.04, source="human"),
    ]
    kept, problems = validate_regions(regions, clip_duration_s=10.0, classes={"dog", "rain"})
    assert [(p.index, p.reason) for p in problems] == [
        (1, "not_finite"), (2, "empty_region"), (3, "empty_region"), (4, "outside_clip"),
        (5, "outside_clip"), (6, "unknown_class"), (7, "unknown_class"), (8, "bad_source"),
        (9, "bad_source"),
    ]
    assert all(p.detail for p in problems)
    assert kept == [SoundRegion("dog", 0.0, 1.0), SoundRegion("rain", 0.0, 10.0, "human")]
    with pytest.raises(ValueError, match="clip_duration_s"):
        validate_regions(regions, clip_duration_s=0.0)
    numpy_times = SoundRegion("dog", np.float32(1.0), np.int64(2), "model:x", 0.5)
    kept, problems = validate_regions([numpy_times, SoundRegion("dog", True, 2.0)],
                                      clip_duration_s=np.float32(3.0))
    assert kept == [SoundRegion("dog", 1.0, 2.0, "model:x", 0.5)]
    assert type(kept[0].end_s) is float
    assert [p.reason for p in problems] == ["not_finite"]


def test_detected_regions_keep_their_model_and_score():
    r = SoundRegion.from_detected(Region(1.0, 2.5, "speech", 0.75), "bundled:silero-vad")
    assert (r.label, r.start_s, r.end_s, r.source, r.score) == (
        "speech", 1.0, 2.5, "model:bundled:silero-vad", 0.75)
    assert validate_regions([r], clip_duration_s=3.0)[1] == []


def test_merging_joins_overlapping_and_touching_regions_of_one_class_only():
    merged = merge_by_class([SoundRegion("a", 0.0, 1.0), SoundRegion("a", 1.0, 2.0),
                             SoundRegion("a", 1.5, 1.8), SoundRegion("a", 3.0, 4.0),
                             SoundRegion("b", 0.5, 3.5)])
    assert merged == {"a": [(0.0, 2.0), (3.0, 4.0)], "b": [(0.5, 3.5)]}


@pytest.mark.parametrize("seed", range(40))
def test_class_iou_equals_the_brute_force_over_a_time_grid(seed):
    rng = random.Random(1000 + seed)
    a, b = random_clip(rng), random_clip(rng)
    ga, gb = grid(a), grid(b)
    expected = {}
    for label in set(ga) | set(gb):
        x = ga.get(label, np.zeros(round(CLIP_S / STEP), bool))
        y = gb.get(label, np.zeros_like(x))
        expected[label] = (x & y).sum() / (x | y).sum()
    got = class_iou(a, b)
    assert set(got) == set(expected)
    for label, iou in expected.items():
        assert got[label] == pytest.approx(iou, abs=1e-9), label
    assert mean_class_iou(a, b) == pytest.approx(sum(expected.values()) / len(expected))
    assert mean_class_iou(a, a) == pytest.approx(1.0)


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize("index", range(0, 300, 3))
def test_timeline_equals_the_brute_force(index):
    regions = CLIPS[index]
    t, want = timeline(regions), truth(regions)
    assert set(t.classes) == set(want["totals"])
    for label, stats in t.classes.items():
        assert stats.total_s == pytest.approx(want["totals"][label], abs=1e-9)
        assert stats.first_start_s == pytest.approx(want["firsts"][label], abs=1e-9)
        assert stats.last_end_s == pytest.approx(want["lasts"][label], abs=1e-9)
        assert stats.count == want["counts"][label]
    assert t.max_concurrent == want["max_concurrent"]
    assert t.max_concurrent_s == pytest.approx(want["peak_s"], abs=1e-9)
    active = grid(regions)
    for (a, b), seconds in t.overlaps.items():
        assert seconds == pytest.approx((active[a] & active[b]).sum() * STEP, abs=1e-9)


def test_overlapping_classes_keep_their_full_time_and_touching_is_not_at_once():
    t = timeline([SoundRegion("speech", 0.0, 4.0), SoundRegion("music", 2.0, 6.0),
                  SoundRegion("dog", 6.0, 7.0)])
    assert (t.classes["speech"].total_s, t.classes["music"].total_s) == (4.0, 4.0)
    assert t.overlaps == {("music", "speech"): 2.0}
    assert (t.max_concurrent, t.max_concurrent_s, t.max_concurrent_at_s) == (2, 2.0, 2.0)
    # one class ends as another starts while a third plays on: two at once throughout
    relay = timeline([SoundRegion("a", 0.0, 2.0), SoundRegion("b", 2.0, 4.0),
                      SoundRegion("c", 0.0, 4.0)])
    assert (relay.max_concurrent, relay.max_concurrent_s) == (2, 4.0)
    assert timeline([]).max_concurrent == 0


# --------------------------------------------------------------------------- questions


def _ask(regions, **options):
    return clip_questions(timeline(regions), clip_duration_s=CLIP_S, vocabulary=VOCAB, **options)


_COMPARED = {"longest": ("totals", True), "shortest": ("totals", False),
             "starts_first": ("firsts", False), "starts_last": ("firsts", True)}


def test_every_answer_equals_the_brute_force_and_every_skip_is_justified():
    margin = SETTINGS.margin
    asked_kinds, skipped_reasons = set(), set()
    for regions in CLIPS:
        want = truth(regions)
        asked, skipped = _ask(regions, clip_id=str(id(regions)))
        by_kind = {q.kind: q for q in asked if q.kind != "duration"}
        skips = {s.kind: s for s in skipped}
        asked_kinds |= set(by_kind)
        skipped_reasons |= {s.reason for s in skipped}
        assert set(by_kind) | set(skips) == set(KINDS) - {"duration"}
        for kind, (key, highest) in _COMPARED.items():
            values = want[key]
            if len(values) < 2:
                assert skips[kind].reason == "too_few_classes"
                continue
            best, top, second = _ranked(values, highest)
            needed = max(margin.abs, margin.rel * max(abs(top), abs(second)))
            if abs(abs(top - second) - needed) < 1e-6:
                continue  # exactly at the margin: either side is right
            if abs(top - second) < needed:
                assert skips[kind].reason == "near_tie", (kind, values)
                assert "margin" in skips[kind].detail
            else:
                assert by_kind[kind].answer == best, (kind, values)
        if want["peak_s"] >= SETTINGS.min_peak_s:
            assert by_kind["max_concurrent"].answer == str(want["max_concurrent"])
            assert by_kind["max_concurrent"].tolerance == 0.0
        else:
            assert skips["max_concurrent"].reason == "brief_peak"
        durations = {q.subject: q for q in asked if q.kind == "duration"}
        assert set(durations) == set(want["totals"])
        for label, q in durations.items():
            assert q.value == pytest.approx(want["totals"][label], abs=1e-9)
            assert float(q.answer) == pytest.approx(want["totals"][label], abs=0.05 + 1e-9)
            assert q.tolerance == pytest.approx(max(0.5, 0.1 * want["totals"][label]))
            assert label in q.text
    assert asked_kinds == set(KINDS) - {"duration"}
    assert skipped_reasons == {"too_few_classes", "near_tie", "brief_peak"}


def test_distractors_are_distinct_wrong_and_drawn_by_policy():
    for regions in CLIPS[:150]:
        present = {r.label for r in regions}
        asked, _ = _ask(regions, seed=7)
        for q in asked:
            keys = [normalize_text(x) for x in (q.answer, *q.distractors)]
            assert len(set(keys)) == len(keys), q
            assert len(q.distractors) <= 3
            if q.kind in ("shortest", "starts_last"):
                assert set(q.distractors) <= present - {q.answer}
            elif q.kind in ("longest", "starts_first"):
                others = sorted(present - {q.answer})
                assert set(q.distractors[:len(others)]) <= set(others)  # present ones first
                assert len(q.distractors) == 3  # the vocabulary fills in
            elif q.kind == "duration":
                assert len(q.distractors) == 3
                for d in q.distractors:
                    assert abs(float(d) - q.value) > 2 * q.tolerance, (q.value, q.distractors)
                    assert float(d) > 0
                values = sorted(float(d) for d in q.distractors)
                assert all(b - a > q.tolerance for a, b in zip(values, values[1:], strict=False))
            else:
                assert len(q.distractors) == 3
                assert all(d.isdigit() and d != q.answer for d in q.distractors)


def test_same_seed_same_questions_other_seed_other_distractors():
    regions = [SoundRegion("dog", 0.0, 5.0), SoundRegion("rain", 6.0, 7.0)]
    assert _ask(regions, seed=1) == _ask(regions, seed=1)
    draws = {_ask(regions, seed=s)[0][0].distractors for s in range(20)}
    assert len(draws) > 1


def test_near_ties_are_skipped_with_the_measured_gap():
    regions = [SoundRegion("dog", 0.0, 4.0), SoundRegion("rain", 4.0, 7.8),
               SoundRegion("horn", 9.0, 9.5)]
    asked, skipped = _ask(regions)
    reasons = {s.kind: (s.reason, s.detail) for s in skipped}
    assert reasons["longest"] == ("near_tie", "dog 4 s vs rain 3.8 s: 0.2 s apart, margin 0.5 s")
    assert {q.kind for q in asked} >= {"shortest", "starts_first", "starts_last"}
    assert [q.answer for q in asked if q.kind == "max_concurrent"] == ["1"]  # one at a time
    overlap = [SoundRegion("dog", 0.0, 4.0), SoundRegion("rain", 3.8, 7.8)]
    assert {s.kind: s.reason for s in _ask(overlap)[1]}["max_concurrent"] == "brief_peak"
    wider = QuestionSettings(margin=Margin(abs=0.1, rel=0.0))
    assert "longest" in {q.kind for q in _ask(regions, settings=wider)[0]}


def test_a_clip_without_regions_or_with_one_class():
    assert {s.reason for s in _ask([])[1]} == {"no_regions"}
    asked, skipped = _ask([SoundRegion("dog", 1.0, 3.0)])
    assert {s.kind: s.reason for s in skipped} == {
        k: "too_few_classes" for k in ("longest", "shortest", "starts_first", "starts_last")}
    assert sorted((q.kind, q.answer) for q in asked) == [("duration", "2"),
                                                         ("max_concurrent", "1")]
    with pytest.raises(ValueError, match="unknown question kinds"):
        _ask([], settings=QuestionSettings(kinds=("loudest",)))


# --------------------------------------------------------------------------- multiple choice


def _batch(n: int, seed: int = 0):
    questions = []
    for regions in CLIPS:
        asked, _ = _ask(regions, seed=seed, clip_id=str(len(questions)))
        questions += asked
        if len(questions) >= n:
            break
    return questions[:n]


def test_multiple_choice_has_four_distinct_options_one_right_and_balanced_letters():
    questions = _batch(400)
    choices, skipped = multiple_choice(questions, seed=3)
    assert len(choices) >= 100
    assert {s.reason for s in skipped} <= {"too_few_options"}
    assert len(choices) + len(skipped) == len(questions)
    kept = [q for q in questions if len(q.distractors) == 3]  # in order, as built
    for mc, q in zip(choices, kept, strict=True):
        assert len(mc.options) == 4
        assert len({normalize_text(o) for o in mc.options}) == 4
        assert (mc.kind, mc.subject, mc.question) == (q.kind, q.subject, q.text)
        assert mc.answer_text == q.answer
        assert set(mc.options) == {q.answer, *q.distractors}
        assert sum(normalize_text(o) == normalize_text(q.answer) for o in mc.options) == 1
        back = check_choice(mc.row()).choice  # the LLM-side validator accepts our own
        assert (back.question, back.options, back.answer) == (mc.question, mc.options, mc.answer)
    shares = {letter: sum(mc.answer == letter for mc in choices) / len(choices)
              for letter in LETTERS}
    assert all(0.2 <= s <= 0.3 for s in shares.values()), shares


def test_letters_are_balanced_for_a_batch_of_exactly_100():
    choices, _ = multiple_choice([q for q in _batch(400) if len(q.distractors) == 3][:100],
                                 seed=11)
    counts = [sum(mc.answer == letter for mc in choices) for letter in LETTERS]
    assert counts == [25, 25, 25, 25]


def test_generated_rows_score_one_with_the_right_answer_and_zero_otherwise():
    questions = _batch(200)
    choices, _ = multiple_choice(questions, seed=5)
    rows = [mc.row() for mc in choices]
    right = [f"<think>...</think><answer>{r['answer']}</answer>" for r in rows]
    wrong = [LETTERS[(LETTERS.index(r["answer"]) + 1) % 4] for r in rows]
    columns = {"answer": [r["answer"] for r in rows], "options": [r["options"] for r in rows]}
    assert choice_correct(right, **columns) == [1.0] * len(rows)
    assert choice_correct([r["answer_text"] for r in rows], **columns) == [1.0] * len(rows)
    assert choice_correct(wrong, **columns) == [0.0] * len(rows)
    opened = [q.row() for q in questions]
    assert answer_correct([q["answer"] for q in opened], answer=[q["answer"] for q in opened],
                          answer_type=[q["answer_type"] for q in opened],
                          tolerance=[q["tolerance"] for q in opened]) == [1.0] * len(opened)
    numbers = [q for q in questions if q.kind == "duration"]
    off = [f"{q.value + q.tolerance * 1.5:.2f} seconds" for q in numbers]
    assert numeric_correct(off, answer=[q.answer for q in numbers],
                           tolerance=[q.tolerance for q in numbers]) == [0.0] * len(numbers)
    near = [f"{q.value + q.tolerance * 0.9:.3f} s" for q in numbers]
    assert numeric_correct(near, answer=[q.value for q in numbers],
                           tolerance=[q.tolerance for q in numbers]) == [1.0] * len(numbers)
    assert not math.isnan(sum(q.value for q in numbers))
