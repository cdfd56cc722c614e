"""The audio questions chain as a user runs it: the sample scenes (data/sample/audio_qa, made by
scripts/make_audio_scenes.py) ingested and labeled through Dagster with the real silero-vad,
every answer checked against the scenes' truth (truth.jsonl), computed here independently."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from dagster import DagsterInstance, materialize

from assets.audio_qa import ASSETS, CHECKS
from assets.audio_qa.questions import VOCABULARY
from assets.ingest import audio_clips
from labeling.audio_qa.chain import region_rows
from labeling.audio_qa.durations import timeline
from labeling.audio_qa.questions import QuestionSettings, clip_questions
from labeling.audio_qa.regions import SoundRegion, class_iou
from labeling.questions.templates import format_number
from labeling.testing import write_manifest
from models.roles import Region
from pipelines.partitions import BATCHES
from resources.model_hub import ModelHub
from training.rewards.answers import answer_correct

SCENES = Path(__file__).resolve().parent.parent / "data" / "sample" / "audio_qa"
TRUTH = {t["audio_filepath"]: t for t in map(json.loads, (SCENES / "truth.jsonl").open())}
VAD = "model:bundled:silero-vad"
SPEECH_IOU_FLOOR = 0.8  # measured 0.93 mean (0.86-0.96 per scene) on these clean scenes


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    return ModelHub(device="cpu", cache_dir=str(tmp_path_factory.mktemp("models")))


def run_chain(warehouse, hub, source, batch="aq"):
    warehouse.register_batch(batch, source)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, [batch])
        result = materialize([audio_clips, *ASSETS, *CHECKS], partition_key=batch,
                             instance=instance,
                             resources={"warehouse": warehouse, "model_hub": hub})
    assert result.success
    meta = {m.asset_key.to_user_string(): {k: getattr(v, "value", v) for k, v in m.metadata.items()}
            for m in (e.event_specific_data.materialization
                      for e in result.get_asset_materialization_events())}
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    return meta, checks


def expected(truth: dict) -> dict[tuple[str, str | None], str | float]:
    """(kind, subject) -> answer (a label, or the number), from the generator's cell-grid
    facts and the guards' rule (top two apart by max(0.5 s, 10 %); at least 0.5 s at the most
    sounds at once)."""
    facts = truth["classes"]
    out: dict = {("duration", label): f["total_s"] for label, f in facts.items()}
    for kind, field, highest in [("longest", "total_s", True), ("shortest", "total_s", False),
                                 ("starts_first", "first_start_s", False),
                                 ("starts_last", "first_start_s", True)]:
        ranked = sorted(facts, key=lambda k: facts[k][field], reverse=highest)
        if len(ranked) >= 2:
            top, second = facts[ranked[0]][field], facts[ranked[1]][field]
            if abs(top - second) >= max(0.5, 0.1 * max(abs(top), abs(second))) - 1e-9:
                out[(kind, None)] = ranked[0]
    if truth["max_concurrent_s"] >= 0.5:
        out[("max_concurrent", None)] = truth["max_concurrent"]
    return out


def same_answers(got: dict, want: dict) -> bool:
    """Labels equal, numbers equal up to float noise (a sum of region lengths)."""
    return got.keys() == want.keys() and all(
        got[k] == want[k] if isinstance(want[k], str) else abs(got[k] - want[k]) < 1e-6
        for k in want)


def test_the_scenes_become_questions_whose_answers_match_the_truth(warehouse, hub):
    meta, checks = run_chain(warehouse, hub, SCENES / "scenes.jsonl")
    assert meta["audio_clips"]["ingested"] == len(TRUTH) == 6
    assert meta["sound_regions"]["clips_by_used_source"] == {"manifest": 6}
    assert checks == {"audio_questions_well_formed": True}
    names = {c: Path(p).name for c, p in warehouse.fetch(
        "SELECT clip_id, source_path FROM audio_clips")}
    rows = warehouse.fetch_dicts("SELECT * FROM audio_questions")
    assert {r["regions_source"] for r in rows} == {"manifest"}

    # every answer (open, and the right option of each multiple choice) is the truth's
    asked: dict[str, dict] = {}
    for r in rows:
        given = r["answer"] if r["form"] == "open" else r["options"]["ABCD".index(r["answer"])]
        assert given == r["answer_text"]
        if r["value"] is not None:  # a number: shown rounded, compared by its value
            assert given == format_number(r["value"], 0 if r["kind"] == "max_concurrent" else 1)
        got = given if r["value"] is None else r["value"]
        assert asked.setdefault(names[r["clip_id"]], {}).setdefault(
            (r["kind"], r["subject"]), got) == got  # both forms agree
    for name, truth in TRUTH.items():
        want = expected(truth)
        assert same_answers(asked[name], want), (name, asked[name], want)
        # the same through the chain's own pure code on the true regions
        true_regions = [SoundRegion(r["label"], r["start"], r["end"]) for r in truth["regions"]]
        questions, _ = clip_questions(timeline(true_regions), clip_duration_s=truth["duration"],
                                      vocabulary=VOCABULARY, settings=QuestionSettings())
        assert same_answers({(q.kind, q.subject): q.answer if q.value is None else q.value
                             for q in questions}, want), name

    # by hand: scene_00 speaks 0.98-3.76 s and 7.18-9.99 s: 2.78 + 2.81 = 5.59 s ≈ 5.6;
    # music is heard 3.65 s, noise 2.4 s, so speech is the longest (by 1.94 s > 0.56 s)
    scene_00 = asked["scene_00.ogg"]
    assert scene_00[("duration", "speech")] == pytest.approx(2.78 + 2.81)
    assert scene_00[("longest", None)] == "speech"

    # skipped questions are quarantined with a reason and what was measured
    skipped = warehouse.fetch_dicts("SELECT * FROM quarantine WHERE asset = 'audio_questions'")
    reasons = {q["reason"] for q in skipped}
    assert {"too_few_classes", "too_few_options"} <= reasons <= {
        "too_few_classes", "too_few_options", "near_tie", "brief_peak"}
    assert all(q["detail"] and q["source_path"] for q in skipped)
    letters = meta["audio_questions"]["choice_letters"]
    assert set(letters) == set("ABCD") and max(letters.values()) - min(letters.values()) <= 1

    _dataset_is_usable(meta["audio_qa_dataset"], len(rows))
    _silero_finds_the_true_speech(warehouse, names, meta["sound_regions"])


def _dataset_is_usable(meta, questions):
    from datasets import load_from_disk

    data = load_from_disk(meta["dataset"])
    assert len(data) == questions == meta["examples"]
    assert sum(1 for _ in open(meta["jsonl"])) == questions
    row = data[0]
    assert row["prompt"] == [{"role": "user", "content": row["prompt_text"]}]
    assert Path(row["audio"]).is_file() and row["regions_source"] == "manifest"
    assert set(json.loads(row["field_sources"])) >= {"audio", "prompt", "answer"}
    assert set(data["problem_type"]) == {"multiple choice", "numerical", "free-form"}
    # every row has its curriculum bucket (separated / touching / overlapping sounds)
    assert set(data["bucket"]) <= {"easy", "medium", "hard"}
    assert sum(meta["curriculum_buckets"].values()) == questions
    print("audio_qa_dataset buckets:", meta["curriculum_buckets"])
    # the reward scores each row's own answer as right (the option's text for choices)
    said = [f"<answer>{r['answer_text']}</answer>" for r in data]
    assert answer_correct(said, answer=data["answer"], answer_type=data["answer_type"],
                          options=data["options"], tolerance=data["tolerance"]) == [1.0] * len(data)


def _silero_finds_the_true_speech(warehouse, names, meta):
    detected = warehouse.fetch_dicts(f"SELECT * FROM sound_regions WHERE source = '{VAD}'")
    assert detected and not any(r["used"] for r in detected)
    ious = {}
    for clip_id, name in names.items():
        truth = [SoundRegion("speech", r["start"], r["end"]) for r in TRUTH[name]["regions"]
                 if r["label"] == "speech"]
        found = [SoundRegion("speech", r["start_s"], r["end_s"], VAD) for r in detected
                 if r["clip_id"] == clip_id]
        ious[name] = class_iou(truth, found)["speech"]
    print("silero-vad speech IoU vs truth:", {k: round(v, 3) for k, v in sorted(ious.items())})
    assert np.mean(list(ious.values())) == pytest.approx(meta["speech_iou_vs_given"], abs=1e-3)
    assert np.mean(list(ious.values())) > SPEECH_IOU_FLOOR and min(ious.values()) > 0.7


def test_without_given_regions_only_speech_is_detected_and_asked_about(warehouse, hub, tmp_path):
    """A clip without `regions` and one whose regions are refused fall back to silero-vad:
    only the speech duration is asked; the comparisons need manifest or human regions."""
    audio, rate = sf.read(SCENES / "scene_03.ogg")  # speech only: 3 sentences
    sf.write(tmp_path / "speech.flac", audio[: 7 * rate], rate)
    sf.write(tmp_path / "bad.flac", audio[rate: 8 * rate] * 0.5, rate)
    manifest = write_manifest(tmp_path / "m.jsonl", [
        {"audio_filepath": "speech.flac"},
        {"audio_filepath": "bad.flac", "regions": [{"label": "speech", "start": 0.0, "end": 9.0}]},
    ])
    meta, checks = run_chain(warehouse, hub, manifest, batch="vad")
    assert meta["sound_regions"]["clips_by_used_source"] == {VAD: 2}
    assert "music" not in meta["sound_regions"]["detected_classes"]
    assert checks == {"audio_questions_well_formed": True}
    rows = warehouse.fetch_dicts("SELECT * FROM audio_questions")
    assert {(r["kind"], r["subject"], r["regions_source"]) for r in rows} == {
        ("duration", "speech", VAD)}
    quarantined = warehouse.fetch_dicts("SELECT asset, reason, detail FROM quarantine")
    assert {(q["asset"], q["reason"]) for q in quarantined} == {
        ("sound_regions", "outside_clip"), ("audio_questions", "partial_regions")}
    # the detector's speech time is close to the truth: scene_03's speech inside each cut
    spans = [(r["start"], r["end"]) for r in TRUTH["scene_03.ogg"]["regions"]]
    true_s = {"speech.flac": _inside(spans, 0.0, 7.0), "bad.flac": _inside(spans, 1.0, 8.0)}
    names = dict(warehouse.fetch("SELECT clip_id, source_path FROM audio_clips"))
    for r in (r for r in rows if r["form"] == "open"):
        assert abs(r["value"] - true_s[Path(names[r["clip_id"]]).name]) <= r["tolerance"]


def _inside(spans, start, end):
    return sum(max(0.0, min(e, end) - max(s, start)) for s, e in spans)


def test_human_regions_beat_the_manifest_which_beats_the_model_and_bad_ones_are_refused():
    speech = [Region(0.5, 2.0, "speech", 0.9)]
    clips = [{"clip_id": c, "source_path": f"/d/{c}.ogg", "duration_s": 5.0, "tags": tags}
             for c, tags in [
                 ("human", {"regions": [{"label": "music", "start": 0, "end": 4}]}),
                 ("manifest", {"regions": [{"label": "music", "start": 0, "end": 4}]}),
                 ("not_a_list", {"regions": "music 0-4"}),
                 ("one_bad", {"regions": [{"label": "music", "start": 0, "end": 4},
                                          {"label": "dog", "start": 3}]}),
                 ("none", {})]]
    rows, failures = region_rows(clips, dict.fromkeys([c["clip_id"] for c in clips], speech),
                                 detector="vad",
                                 human={"human": [SoundRegion("dog", 1.0, 2.0, "human")]})
    used = {(r["clip_id"], r["source"]) for r in rows if r["used"]}
    assert used == {("human", "human"), ("manifest", "manifest"), ("not_a_list", "model:vad"),
                    ("one_bad", "model:vad"), ("none", "model:vad")}
    assert {(r["clip_id"], r["source"]) for r in rows if not r["used"]} == {
        ("human", "manifest"), ("human", "model:vad"), ("manifest", "model:vad")}
    assert [(f["source_path"], f["reason"], f["detail"][:18]) for f in failures] == [
        ("/d/not_a_list.ogg", "bad_regions_tag", "manifest regions: "),
        ("/d/one_bad.ogg", "bad_region", "manifest region 1:")]
