"""Curriculum buckets of audio questions (labeling/audio_qa/buckets.py): the rule at its
thresholds, bad input, the separation against a brute force over a time grid, and the bucket
reaching the dataset rows, their `datasets` features and the easy-to-hard order."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from labeling.audio_qa.buckets import (
    CLEAR_GAP_S,
    JITTER_S,
    question_bucket,
    question_buckets,
    separation_s,
)
from labeling.audio_qa.regions import SoundRegion as R

GRID = 0.01  # regions on this grid in the brute force


def _two(gap: float) -> list[R]:
    """dog 0-1 s and rain starting ``gap`` s after it ends (negative: overlapping)."""
    return [R("dog", 0.0, 1.0), R("rain", 1.0 + gap, 3.0)]


@pytest.mark.parametrize(("gap", "bucket"), [
    (1.0, "easy"), (CLEAR_GAP_S, "easy"), (0.19, "medium"), (0.0, "medium"),
    (-JITTER_S, "medium"), (-0.06, "hard"), (-0.5, "hard")])
def test_apart_is_easy_touching_is_medium_overlapping_is_hard(gap, bucket):
    assert question_bucket(_two(gap)) == bucket


def test_without_regions_it_says_no_question_can_be_asked():
    with pytest.raises(ValueError, match="no sound regions"):
        question_bucket([])
    with pytest.raises(ValueError, match="no sound regions"):
        separation_s([], "dog")


def test_one_region_or_one_sound_is_easy_there_is_nothing_to_tell_apart():
    assert separation_s([R("dog", 0.0, 1.0)]) is None
    assert question_bucket([R("dog", 0.0, 1.0)]) == "easy"
    # one class heard three times, its regions touching and overlapping: still one sound
    assert question_bucket([R("dog", 0.0, 1.0), R("dog", 1.0, 2.0), R("dog", 1.5, 4.0)]) == "easy"
    assert question_bucket([R("dog", 0.0, 1.0)], subject="dog") == "easy"


def test_a_subject_the_clip_does_not_have_is_refused_by_name():
    with pytest.raises(ValueError, match="'bird'.*\\['dog', 'rain'\\]"):
        question_bucket(_two(0.5), subject="bird")


def test_a_duration_question_looks_only_at_its_subject_against_the_others():
    clip = [R("dog", 0.0, 1.0), R("rain", 2.0, 4.0), R("horn", 3.0, 5.0)]  # rain+horn overlap
    assert question_bucket(clip) == "hard"  # which is longest: all three matter
    assert question_bucket(clip, "dog") == "easy"  # dog is 1 s away from both
    assert question_bucket(clip, "rain") == question_bucket(clip, "horn") == "hard"


def test_the_closest_occurrences_count_not_the_first_or_last():
    # rain sits between two dogs: 0.1 s after the first, far from the second
    clip = [R("dog", 0.0, 1.0), R("dog", 5.0, 6.0), R("rain", 1.1, 2.0)]
    assert separation_s(clip) == pytest.approx(0.1)
    assert question_bucket(clip) == "medium"


def _brute(regions: list[R], subject: str | None) -> float | None:
    """Min over the question's pairs of -(time together) or the gap, on a time grid."""
    steps = round(10.0 / GRID)
    active = {}
    for r in regions:
        mask = active.setdefault(r.label, np.zeros(steps, bool))
        mask[round(r.start_s / GRID):round(r.end_s / GRID)] = True
    labels = sorted(active)
    pairs = [(a, b) for i, a in enumerate(labels) for b in labels[i + 1:]
             if subject is None or subject in (a, b)]
    out = []
    for a, b in pairs:
        together = (active[a] & active[b]).sum() * GRID
        if together > 0:
            out.append(-together)
            continue
        ia, ib = np.flatnonzero(active[a]), np.flatnonzero(active[b])
        # cells are [k, k+1) * GRID: the gap between cell i of one and j of the other
        gaps = np.abs(ia[:, None] - ib[None, :]) - 1
        out.append(max(int(gaps.min()), 0) * GRID)
    return min(out) if out else None


@pytest.mark.parametrize("seed", range(40))
def test_the_separation_equals_the_brute_force(seed):
    rng = random.Random(seed)
    regions = []
    for label in rng.sample(["dog", "rain", "horn", "bird"], rng.randint(1, 4)):
        for _ in range(rng.randint(1, 3)):
            start = rng.randint(0, 90) / 10
            regions.append(R(label, start, min(start + rng.randint(1, 20) / 10, 10.0)))
    subject = rng.choice([None, regions[0].label])
    want = _brute(regions, subject)
    got = separation_s(regions, subject)
    assert (got is None) == (want is None)
    if want is not None:
        assert got == pytest.approx(want, abs=1e-6)


def test_questions_of_a_clip_without_regions_name_the_question_and_the_fix():
    questions = [{"question_id": "q7", "clip_id": "c2", "subject": None}]
    with pytest.raises(ValueError, match="q7 of clip c2.*sound_regions"):
        question_buckets(questions, {"c1": [R("dog", 0.0, 1.0)]})


def test_dataset_rows_carry_the_bucket_and_refuse_an_unknown_one(tmp_path):
    from datasets import load_from_disk

    from training.trl_backend.synthetic_audio import chain_audio_questions, two_tone_rows

    path = chain_audio_questions(tmp_path / "chain", clips=2, seed=0, seconds=4.0)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["bucket"] for r in rows} <= {"easy", "medium", "hard"} and len(rows) > 4
    assert load_from_disk(str(path.parent / "audio_qa_dataset")).features["bucket"].dtype \
        == "string"
    tones = [json.loads(line) for line in two_tone_rows(tmp_path / "tones", n=16, seed=0)
             .read_text().splitlines()]
    assert {r["bucket"] for r in tones} == {"easy", "medium"}  # 0.15-0.3 s pauses

    from labeling.audio_qa.dataset import dataset_row

    question = {k: rows[0][k] for k in ("clip_id", "kind", "form", "subject", "question",
                                        "answer", "answer_text", "answer_type", "options",
                                        "tolerance", "regions_source")}
    question.update(question_id="q1", prompt="Which?", seed=0)
    with pytest.raises(ValueError, match="q1: bucket must be one of"):
        dataset_row(question, audio="/a.wav", duration_s=1.0, bucket="trivial")


def test_easy_to_hard_reads_the_audio_rows_by_their_bucket(tmp_path):
    from training.curriculum import ORDER
    from training.trl_backend.curriculum import bucket_of, easy_to_hard
    from training.trl_backend.data import read_rows
    from training.trl_backend.synthetic_audio import chain_audio_questions, two_tone_rows

    rows = read_rows([two_tone_rows(tmp_path / "tones", n=8, seed=0),
                      chain_audio_questions(tmp_path / "chain", clips=1, seed=0, seconds=4.0)])
    ordered = [bucket_of(r) for r in easy_to_hard(rows, seed=0)]
    assert ordered == sorted(ordered, key=ORDER.index)
    assert ordered[0] == "easy" and ordered[-1] == "hard"


def test_the_alm_loops_training_set_counts_the_buckets(warehouse, tmp_path):
    from dagster import DagsterInstance, materialize

    from assets.loop import ASSETS
    from pipelines.partitions import BATCHES, LOOPS
    from training.trl_backend.synthetic_audio import two_tone_rows

    for batch, role, seed in (("tones-train", "train", 0), ("tones-eval", "eval", 1)):
        two_tone_rows(warehouse.report_dir("audio_qa_dataset", batch), n=8, seed=seed)
        warehouse.register_batch(batch, tmp_path, role=role)
    (training_set,) = [a for a in ASSETS if a.key.path[-1] == "alm_training_set"]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, ["tones-train", "tones-eval"])
        instance.add_dynamic_partitions(LOOPS, ["alm-b1"])
        result = materialize([training_set], instance=instance, partition_key="alm-b1",
                             resources={"warehouse": warehouse})
    (event,) = result.get_asset_materialization_events()
    counted = event.event_specific_data.materialization.metadata["curriculum_buckets"].value
    train = [json.loads(line) for line in open(warehouse.read_output(
        "alm_training_set", "alm-b1")["train_data"])]
    assert counted == {f"audio_qa/{b}": n for b, n in
                       {b: sum(r["bucket"] == b for r in train) for b in ("easy", "medium")}
                       .items() if n}
    assert sum(counted.values()) == 8
