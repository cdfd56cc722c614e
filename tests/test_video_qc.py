"""Human validation of the video chain's questions: what is pushed (one task per question), the
statuses joined back as `qc`, and the dataset keeping only accepted questions once a batch has
verdicts (before any, every question, as before validation).

The pure policy runs fast; the middle test writes verdicts by hand (no server); the last one
is the real round trip: Label Studio from `.venv-labelstudio` (the session's `label_studio`
fixture), the sample videos ingested and labeled (tiny random VLM and text LLM: their output
is refused, template questions stand in), pushed through `video_qc_tasks`, answered through
the API by two users (one question rejected), pulled by the `video_qc_pull` job's assets.
"""

from __future__ import annotations

import doctest
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

import labeling.video_qa.validation
from assets.ingest import videos
from assets.video_qa import ASSETS, QC
from assets.video_qa.dataset import video_qa_dataset
from assets.video_qa.qc import video_qc_tasks, video_qc_verdicts
from labeling.qc.question_checks import choice_result, comment_result
from labeling.qc.tasks import batch_tasks
from labeling.video_qa.validation import kept_states, qc_note, qc_rows
from pipelines.jobs import video_qc_pull_job, video_qc_push_job
from pipelines.partitions import BATCHES
from resources.model_hub import ModelHub
from resources.warehouse import Warehouse

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "videos"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from models.tiny import build_tiny_llava, build_tiny_qwen2

    root = tmp_path_factory.mktemp("models")
    return ModelHub(device="cpu", cache_dir=str(root / "cache"),
                    vlm_model=str(build_tiny_llava(root / "vlm")),
                    text_llm_model=str(build_tiny_qwen2(root / "llm")))


def run(assets, warehouse, batch, *, ls=None, hub=None, config=None) -> dict[str, dict]:
    """Materialize `assets` for `batch`; each asset's metadata by name."""
    resources = {"warehouse": warehouse, **({"label_studio": ls} if ls else {}),
                 **({"model_hub": hub} if hub else {})}
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, [batch])
        result = materialize(assets, partition_key=batch, instance=instance, resources=resources,
                             run_config={"ops": config or {}})
    assert result.success
    return {m.asset_key.to_user_string(): {k: getattr(v, "value", v)
                                           for k, v in m.metadata.items()}
            for m in (e.event_specific_data.materialization
                      for e in result.get_asset_materialization_events())}


def label_sample(warehouse, hub, manifest: Path, batch: str) -> dict[str, dict]:
    warehouse.register_batch(batch, manifest)
    return run([videos, *ASSETS], warehouse, batch, hub=hub)


def dataset_groups(meta: dict) -> list[str]:
    return [json.loads(line)["group_id"] for line in open(meta["jsonl"])]


# --------------------------------------------------------------------------- pure


def test_doctests():
    assert doctest.testmod(labeling.video_qa.validation,
                           optionflags=doctest.ELLIPSIS).failed == 0


def test_one_task_per_question_showing_its_choice_form():
    rows = [{"question_id": f"q{i}", "group_id": g, "form": form, "question": f"{g} {form}",
             "options": ["a", "b", "c", "d"] if form == "choice" else [],
             "answer": "C" if form == "choice" else "c", "source_path": f"/v/{g}.mp4"}
            for i, (g, form) in enumerate([("g1", "open"), ("g1", "choice"), ("g2", "open")])]
    assert qc_rows(rows) == [
        {"question_id": "g1", "media": "/v/g1.mp4", "question": "g1 choice",
         "options": ["a", "b", "c", "d"], "answer": "C"},
        {"question_id": "g2", "media": "/v/g2.mp4", "question": "g2 open", "options": [],
         "answer": "c"}]


def test_which_statuses_the_dataset_keeps():
    assert kept_states("require_accepted", reviewed=0) == ("unreviewed", "accepted")
    assert kept_states("require_accepted", reviewed=1) == ("accepted",)
    assert kept_states("drop_rejected", reviewed=0) == ("unreviewed", "accepted", "disputed")
    assert "rejected" in kept_states("ignore", reviewed=5)
    with pytest.raises(ValueError, match="human_qc"):
        kept_states("sometimes", reviewed=0)
    questions = [{"group_id": "g1", "qc": "accepted"}, {"group_id": "g2", "qc": "unreviewed"}]
    verdicts = [{"group_id": "g1", "status": "accepted"}, {"group_id": "g0", "status": "rejected"},
                {"group_id": "g3", "status": "unreviewed"}]
    states, note = qc_note("require_accepted", verdicts, questions)
    assert states == ("accepted",)
    assert note.startswith("2 question(s) with a human verdict (accepted: 1, rejected: 1)")
    assert "1 question(s) never pushed, 2 verdict(s) on questions no longer" in note
    # pushed but nobody answered yet: still the behaviour before review
    states, note = qc_note("require_accepted", verdicts[2:], questions)
    assert states == ("unreviewed", "accepted") and note.startswith("no human verdict")


# --------------------------------------------------------------------------- without a server


def test_statuses_join_in_as_qc_and_the_dataset_keeps_only_accepted(tmp_path, hub):
    warehouse = Warehouse(root=str(tmp_path / "warehouse"))
    meta = label_sample(warehouse, hub, SAMPLE / "video_qa.jsonl", "vq")["video_qa_dataset"]
    assert meta["human_qc"].startswith("no human verdict on this batch yet")
    assert meta["qc_of_questions"] == {"unreviewed": 6} and meta["qc_kept"] == [
        "unreviewed", "accepted"]
    groups = sorted({r["group_id"] for r in warehouse.fetch_dicts(
        "SELECT group_id FROM video_questions")})
    assert len(groups) == 3
    now = datetime.now(UTC)
    warehouse.write_partition("video_question_verdicts", "vq", [
        {"group_id": g, "status": s, "verdict": {"accepted": "yes", "rejected": "no"}.get(s),
         "n_annotators": int(s != "unreviewed"), "n_yes": int(s == "accepted"),
         "agreement": None, "annotators": [], "answers": [], "comments": "{}",
         "second_review": False, "pulled_at": now}
        for g, s in zip(groups, ["accepted", "rejected", "disputed"], strict=True)])
    qc = {(r["group_id"], r["form"]): r["qc"] for r in warehouse.fetch_dicts(
        "SELECT q.group_id, q.form, v.status AS qc FROM video_questions q "
        "JOIN video_question_verdicts v USING (batch, group_id)")}
    assert set(qc.values()) == {"accepted", "rejected", "disputed"} and len(qc) == 6

    keep_blind = {"include_answerable_blind": True}
    for mode, kept in [("require_accepted", {groups[0]}), ("drop_rejected",
                                                          {groups[0], groups[2]}),
                       ("ignore", set(groups))]:
        out = run([video_qa_dataset], warehouse, "vq",
                  config={"video_qa_dataset": {"config": {**keep_blind, "human_qc": mode}}}
                  )["video_qa_dataset"]
        assert set(dataset_groups(out)) == kept and out["examples"] == 2 * len(kept), mode
    rows = [json.loads(line) for line in open(out["jsonl"])]
    assert {r["qc"] for r in rows} == {"accepted", "rejected", "disputed"}
    reasons = {r["reason"] for r in warehouse.fetch_dicts(
        "SELECT reason FROM quarantine WHERE asset = 'video_qa_dataset'")}
    assert reasons <= {"answerable_blind"}  # ignore: nothing left out for QC


# --------------------------------------------------------------------------- real server


def test_push_answer_pull_into_the_dataset_through_a_real_label_studio(label_studio, hub,
                                                                       tmp_path):
    assert {a.key.to_user_string() for a in QC} == {"video_qc_tasks", "video_qc_verdicts"}
    assert video_qc_push_job.name == "video_qc_push" and video_qc_pull_job.name == "video_qc_pull"
    ls = label_studio.settings.resource()
    media = label_studio.settings.document_root / "media" / "video-qc"
    shutil.copytree(SAMPLE, media)
    warehouse = Warehouse(root=str(tmp_path / "warehouse"))
    batch = "vqc"
    before = label_sample(warehouse, hub, media / "video_qa.jsonl", batch)["video_qa_dataset"]
    assert before["human_qc"].startswith("no human verdict")
    questions = warehouse.fetch_dicts(
        "SELECT q.group_id, q.form, q.answerable_blind, s.source_path FROM video_questions q "
        "JOIN video_segments s USING (batch, video_id)")
    video_of = {q["group_id"]: Path(q["source_path"]).name for q in questions}
    assert sorted(video_of.values()) == ["bouncing_circle.mp4", "three_shapes.webm",
                                         "two_shapes.mp4"]

    project = "rlfoundry test: check the video questions"
    push = {"video_qc_tasks": {"config": {"project": project, "second_review_share": 1.0}}}
    pushed = run([video_qc_tasks], warehouse, batch, ls=ls, config=push)["video_qc_tasks"]
    assert (pushed["media_kind"], pushed["questions"], pushed["pushed"], pushed["second_review"],
            pushed["media_not_served"], pushed["question_rows"]) == ("video", 3, 3, 3, 0, 6)
    assert pushed["forms_shown"] == {"choice": 3}
    again = run([video_qc_tasks], warehouse, batch, ls=ls, config=push)["video_qc_tasks"]
    assert (again["pushed"], again["already_in_label_studio"]) == (0, 3)

    tasks = {video_of[t["data"]["question_id"]]: t
             for t in batch_tasks(ls.export_tasks(ls.find_project(project)), batch)}
    task = tasks["two_shapes.mp4"]["data"]
    assert task["media"].startswith("/data/local-files/?d=") and len(task["options"]) == 4
    assert task["answer_text"].startswith(f"Marked answer: {task['answer']}. ")
    reviewer = ls.request("POST", "/api/users/", json={
        "email": "video-qc-reviewer@rlfoundry.test", "username": "video-qc-reviewer"})["id"]
    for name, answer in [("bouncing_circle.mp4", "yes"), ("two_shapes.mp4", "no"),
                         ("three_shapes.webm", "yes")]:
        result = [choice_result(answer)]
        if answer == "no":
            result.append(comment_result("two options describe what happens"))
        ls.create_annotation(tasks[name]["id"], result)
    for name, answer in [("bouncing_circle.mp4", "yes"), ("two_shapes.mp4", "no")]:
        ls.create_annotation(tasks[name]["id"], [choice_result(answer)], completed_by=reviewer)

    pull = {"video_qc_verdicts": {"config": {"project": project}},
            "video_qa_dataset": {"config": {"include_answerable_blind": True}}}
    meta = run([video_qc_verdicts, video_qa_dataset], warehouse, batch, ls=ls, config=pull)
    pulled, dataset = meta["video_qc_verdicts"], meta["video_qa_dataset"]
    assert (pulled["tasks"], pulled["votes"], pulled["accepted"], pulled["rejected"],
            pulled["disputed"], pulled["unreviewed"]) == (3, 5, 2, 1, 0, 0)
    assert (pulled["double_reviewed"], pulled["second_review_flagged"],
            pulled["second_review_done"]) == (2, 3, 2)
    assert pulled["percent_agreement"] == 1.0 and pulled["cohens_kappa"] == 1.0
    stored = {video_of[r["group_id"]]: r for r in warehouse.fetch_dicts(
        "SELECT * FROM video_question_verdicts")}
    assert {n: r["status"] for n, r in stored.items()} == {
        "bouncing_circle.mp4": "accepted", "two_shapes.mp4": "rejected",
        "three_shapes.webm": "accepted"}
    assert stored["two_shapes.mp4"]["annotators"] == ["1", str(reviewer)]
    assert json.loads(stored["two_shapes.mp4"]["comments"]) == {
        "1": "two options describe what happens"}

    # the dataset: both forms of the two accepted questions, nothing of the rejected one
    assert dataset["human_qc"] == ("3 question(s) with a human verdict (accepted: 2, "
                                   "rejected: 1); only accepted kept; 0 question(s) never "
                                   "pushed, 0 verdict(s) on questions no longer in "
                                   "video_questions")
    assert sorted(video_of[g] for g in dataset_groups(dataset)) == [
        "bouncing_circle.mp4", "bouncing_circle.mp4", "three_shapes.webm", "three_shapes.webm"]
    assert {json.loads(line)["qc"] for line in open(dataset["jsonl"])} == {"accepted"}
    left_out = warehouse.fetch_dicts(
        "SELECT reason FROM quarantine WHERE asset = 'video_qa_dataset'")
    assert [r["reason"] for r in left_out] == ["qc_rejected", "qc_rejected"]
