"""The video questions chain as a user runs it: the sample videos (data/sample/videos, with the
descriptions of data/sample/videos/video_qa.jsonl, measured from their pixels by
scripts/make_video_qa_manifest.py) ingested and labeled through Dagster with a tiny random VLM
and text LLM (offline: their output is garbage, and must be quarantined, never stored as a
question)."""

import json
import shutil
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from assets.ingest import videos
from assets.video_qa import ASSETS, CHECKS
from labeling.questions.choices import LETTERS, normalize_text
from labeling.testing import write_manifest
from pipelines.partitions import BATCHES
from resources.model_hub import ModelHub
from training.rewards.answers import choice_correct

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "videos"
MANIFEST = SAMPLE / "video_qa.jsonl"
LINES = [json.loads(line) for line in MANIFEST.open()]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from models.tiny import build_tiny_llava, build_tiny_qwen2

    root = tmp_path_factory.mktemp("models")
    return ModelHub(device="cpu", cache_dir=str(root / "cache"),
                    vlm_model=str(build_tiny_llava(root / "vlm")),
                    text_llm_model=str(build_tiny_qwen2(root / "llm")))


def run_chain(warehouse, hub, source, batch="vq"):
    warehouse.register_batch(batch, source)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, [batch])
        result = materialize([videos, *ASSETS, *CHECKS], partition_key=batch, instance=instance,
                             resources={"warehouse": warehouse, "model_hub": hub})
    assert result.success
    meta = {m.asset_key.to_user_string(): {k: getattr(v, "value", v) for k, v in m.metadata.items()}
            for m in (e.event_specific_data.materialization
                      for e in result.get_asset_materialization_events())}
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    return meta, checks


def test_the_sample_videos_become_checked_questions_and_a_grpo_dataset(warehouse, hub):
    meta, checks = run_chain(warehouse, hub, MANIFEST)
    assert checks == {"video_segments_cut_exact": True, "video_questions_well_formed": True}
    assert meta["videos"]["ingested"] == 3 and meta["video_segments"]["segments"] == 3
    # 2 fps: 5 grid frames per 2.4-2.5 s video, 4 before the cut (1.68-1.75 s), 1 after
    segments = warehouse.fetch_dicts("SELECT * FROM video_segments")
    assert {(r["context_frames"], r["truth_frames"], r["width"], r["height"])
            for r in segments} == {(4, 1, 299, 224)}

    # every description is the manifest's: the VLM is not even loaded
    descriptions = warehouse.fetch_dicts("SELECT * FROM video_descriptions")
    names = {r["video_id"]: Path(r["source_path"]).name for r in segments}
    given = {(line["video_filepath"], part): line[key] for line in LINES
             for part, key in (("context", "description"), ("truth", "truth_description"))}
    assert {(names[d["video_id"]], d["part"]): d["description"] for d in descriptions} == given
    assert {d["source"] for d in descriptions} == {"manifest"}
    assert meta["video_descriptions"]["model"].startswith("none")

    # the tiny random LLM's questions are all refused, with its output kept; templates stand in
    questions = warehouse.fetch_dicts("SELECT * FROM video_questions")
    refused = warehouse.fetch_dicts(
        "SELECT * FROM quarantine WHERE asset = 'video_questions'")
    assert len(refused) == 3 and all("the model wrote:" in r["detail"] for r in refused)
    assert {r["reason"] for r in refused} <= {"no_json", "not_an_object", "missing_question",
                                              "missing_options", "wrong_option_count"}
    assert {q["question_source"] for q in questions} == {"template"}
    assert meta["video_questions"]["weights"] == "random-tiny"
    _questions_are_well_formed(questions, given, names)
    _dataset_is_usable(meta["video_qa_dataset"], questions, warehouse)


def _questions_are_well_formed(questions, given, names):
    choices = [q for q in questions if q["form"] == "choice"]
    assert len(choices) == 3 and len([q for q in questions if q["form"] == "open"]) == 3
    for q in choices:
        truth = given[(names[q["video_id"]], "truth")]
        keys = [normalize_text(o) for o in q["options"]]
        assert len(q["options"]) == 4 and len(set(keys)) == 4  # four distinct options
        assert keys.count(normalize_text(truth)) == 1  # exactly one is the truth
        assert q["options"][LETTERS.index(q["answer"])] == truth == q["answer_text"]
        assert given[(names[q["video_id"]], "context")] in q["options"]  # the past as a decoy
        assert q["blind_method"] == "letter_probabilities" and len(q["blind_probabilities"]) == 4
        assert q["answerable_blind"] == (q["blind_pick"] == q["answer"])
        assert q["qc"] == "unreviewed" and q["curriculum_bucket"].startswith("choice/")
        assert q["weights"] == "random-tiny"  # its blind control ran on a tiny random LLM
    assert len({q["answer"] for q in choices}) == 3  # 3 questions: 3 letters, balanced
    for q in (q for q in questions if q["form"] == "open"):
        assert q["answer"] == given[(names[q["video_id"]], "truth")] and q["options"] == []
        assert q["curriculum_bucket"].startswith("open/")


def _dataset_is_usable(meta, questions, warehouse):
    from datasets import load_from_disk

    blind = {q["group_id"] for q in questions if q["answerable_blind"]}
    kept = [q for q in questions if q["group_id"] not in blind]
    data = load_from_disk(meta["dataset"])
    assert len(data) == meta["examples"] == len(kept)
    assert sum(1 for _ in open(meta["jsonl"])) == len(kept)
    left_out = warehouse.fetch_dicts("SELECT * FROM quarantine WHERE asset = 'video_qa_dataset'")
    assert {r["reason"] for r in left_out} <= {"answerable_blind"}
    assert len(left_out) == len(questions) - len(kept)
    for row in json.loads("[" + ",".join(open(meta["jsonl"])) + "]"):
        assert row["prompt"] == [{"role": "user", "content": row["prompt_text"]}]
        assert len(row["images"]) == 4 and all(Path(p).is_file() for p in row["images"])
        assert row["question_source"] == "template" and row["truth_source"] == "manifest"
        assert set(json.loads(row["field_sources"])) >= {"images", "prompt", "answer"}
        assert row["problem_type"] in ("multiple choice", "free-form")
    choice = [r for r in data if r["answer_type"] == "choice"]
    said = [f"<answer>{r['answer_text']}</answer>" for r in choice]
    assert choice_correct(said, answer=[r["answer"] for r in choice],
                          options=[r["options"] for r in choice]) == [1.0] * len(choice)


def test_a_video_without_descriptions_is_described_by_the_vlm_and_said_to_be_random(
        warehouse, hub, tmp_path):
    """Two videos keep the manifest's descriptions; the third is described by the tiny random
    VLM (source model:<path>, weights random-tiny). A model's truth is no template's answer
    (nor its descriptions a template's distractors), so that video gets no question: the random
    LLM's is refused; the two others get template questions from each other's descriptions."""
    for line in LINES:
        shutil.copy(SAMPLE / line["video_filepath"], tmp_path)
    lines = [dict(line) for line in LINES]
    for key in ("description", "truth_description", "description_cut"):
        lines[0].pop(key)
    meta, checks = run_chain(warehouse, hub, write_manifest(tmp_path / "m.jsonl", lines))
    assert checks == {"video_segments_cut_exact": True, "video_questions_well_formed": True}
    described = meta["video_descriptions"]
    assert described["weights"] == "random-tiny" and described["model"].endswith("vlm")
    names = dict(warehouse.fetch("SELECT video_id, source_path FROM video_segments"))
    rows = warehouse.fetch_dicts("SELECT * FROM video_descriptions")
    by_model = {names[r["video_id"]] for r in rows if r["source"].startswith("model:")}
    assert by_model == {str(tmp_path / lines[0]["video_filepath"])}
    assert all(r["weights"] == "random-tiny" and r["frames_shown"] for r in rows
               if r["source"].startswith("model:"))
    refused = warehouse.fetch_dicts(
        "SELECT * FROM quarantine WHERE asset = 'video_questions'")
    assert len(refused) == 3 and all("the model wrote:" in r["detail"] for r in refused)
    questions = warehouse.fetch_dicts("SELECT * FROM video_questions")
    assert {Path(names[q["video_id"]]).name for q in questions} == {
        line["video_filepath"] for line in lines[1:]}
    assert {(q["question_source"], q["truth_source"]) for q in questions} == {
        ("template", "manifest")}
    assert sorted(q["form"] for q in questions) == ["choice", "choice", "open", "open"]
    given = {line[key] for line in lines[1:] for key in ("description", "truth_description")}
    for q in (q for q in questions if q["form"] == "choice"):  # 4 options from 4 given texts
        assert set(q["options"]) == given and q["answer_text"] in given
