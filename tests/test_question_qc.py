"""Human validation of generated questions (yes/no "makes sense, answer right") in Label Studio.

The pure logic runs fast, without Label Studio. The last test is a real round trip: Label
Studio from `.venv-labelstudio` (the session's `label_studio` fixture), hand-written questions
about the sample videos pushed, answered through the API by two users, pulled back.
"""

from __future__ import annotations

import doctest
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests

import assets.question_qc
import labeling.qc.question_checks
from assets.question_qc import project_title, pull_metadata, pull_questions, push_questions
from labeling.qc.question_checks import (
    COMMENT,
    MEDIA,
    QUESTION,
    VALID,
    QuestionExportError,
    QuestionRow,
    choice_result,
    comment_result,
    pull_question_checks,
    question_config_xml,
    question_tasks,
    statuses,
    validated,
)
from labeling.qc.review import second_review
from labeling.qc.tasks import batch_tasks

VIDEOS = Path(__file__).resolve().parent.parent / "data" / "sample" / "videos"
OPTIONS = ["it stops", "it keeps bouncing", "it turns blue", "it splits in two"]


def test_doctests():
    for module in (labeling.qc.question_checks, assets.question_qc):
        assert doctest.testmod(module).failed == 0


def test_one_config_per_media_kind_with_a_required_unselected_yes_no():
    for kind, tag in [("video", "Video"), ("audio", "Audio"), ("image", "Image")]:
        root = ET.fromstring(question_config_xml(kind))
        (media,) = root.iter(tag)
        (choices,) = root.iter("Choices")
        assert (media.get("name"), media.get("value")) == (MEDIA, "$media")
        assert (choices.get("name"), choices.get("toName"), choices.get("required")) == (
            VALID, QUESTION, "true")
        assert [c.get("value") for c in choices.iter("Choice")] == ["yes", "no"]
        assert all(c.get("selected") is None for c in choices.iter("Choice"))
        assert next(root.iter("TextArea")).get("name") == COMMENT
    with pytest.raises(ValueError, match="media kind"):
        question_config_xml("text")


def test_tasks_letter_the_options_and_spell_out_the_marked_answer():
    rows = [QuestionRow("q1", "/m/a.mp4", "What happens next?", OPTIONS, "b"),
            {"question_id": "q2", "media": "/m/b.webm", "question": "What colour is it?",
             "options": [], "answer": "red"}]
    one, two = question_tasks(rows, batch="b1", media_url=lambda p: f"/data/local-files/?d={p}")
    assert one["data"]["options_text"].splitlines() == [
        "A. it stops", "B. it keeps bouncing", "C. it turns blue", "D. it splits in two"]
    assert one["data"]["answer_text"] == "Marked answer: B. it keeps bouncing"
    assert one["data"]["media"] == "/data/local-files/?d=/m/a.mp4"
    assert one["data"]["media_path"] == "/m/a.mp4" and one["data"]["options"] == OPTIONS
    assert (two["data"]["options_text"], two["data"]["answer_text"]) == (
        "", "Marked answer: red")
    assert [t["data"]["second_review"] for t in (one, two)] == [
        second_review("q1"), second_review("q2")]
    assert "predictions" not in one  # nothing pre-selected
    with pytest.raises(ValueError, match="question q3: answer 'E' is not the letter"):
        question_tasks([{**rows[1], "question_id": "q3", "options": OPTIONS, "answer": "E"}],
                       batch="b")
    with pytest.raises(ValueError, match="question q4: media '/m/c.wav' is audio, the project "
                                         "shows video"):
        question_tasks([rows[0], {**rows[1], "question_id": "q4", "media": "/m/c.wav"}],
                       batch="b")
    with pytest.raises(ValueError, match="of an unknown kind"):
        question_tasks([{**rows[1], "media": "/m/c.txt"}], batch="b")


def qtask(qid, *annotations, task_id=1, flagged=False) -> dict:
    return {"id": task_id, "data": {"question_id": qid, "second_review": flagged},
            "annotations": list(annotations)}


def vote(who, answer=None, comment=None, **extra) -> dict:
    result = ([choice_result(answer)] if answer else []) + (
        [comment_result(comment)] if comment else [])
    return {"id": 50, "completed_by": who, "result": result, **extra}


def test_statuses_votes_and_agreement():
    tasks = [qtask("yes", vote(1, "yes"), vote(2, "yes"), flagged=True),
             qtask("split", vote(1, "yes"), vote(2, "no", "the circle never stops"),
                   flagged=True, task_id=2),
             qtask("no", vote(1, "no"), vote(2, "no"), vote(3, "yes"), task_id=3),
             qtask("no_choice", vote(1, comment="not sure"), task_id=4),
             qtask("skipped", vote(1, "yes", was_cancelled=True), task_id=5),
             qtask("changed", vote(1, "no"), vote(1, "yes"), task_id=6),
             qtask("untouched", task_id=7)]
    pulled = pull_question_checks(tasks)
    rows = {r["question_id"]: r for r in pulled.rows}
    assert {q: r["status"] for q, r in rows.items()} == {
        "yes": "accepted", "split": "disputed", "no": "rejected", "no_choice": "unreviewed",
        "skipped": "unreviewed", "changed": "accepted", "untouched": "unreviewed"}
    assert (pulled.n_votes, pulled.n_unanswered) == (9, 1)
    assert rows["changed"]["n_annotators"] == 1  # an annotator's last vote wins
    assert rows["no"]["agreement"] == pytest.approx(2 / 3) and rows["no"]["n_yes"] == 1
    assert json.loads(rows["split"]["comments"]) == {"2": "the circle never stops"}
    assert rows["split"]["verdict"] is None and rows["split"]["agreement"] == 0.5
    report = pulled.report
    # first two votes of the double-answered: (yes, yes), (yes, no), (no, no)
    assert (report.n_questions, report.n_double, report.n_flagged, report.n_flagged_done) == (
        4, 3, 2, 2)
    assert report.percent == pytest.approx(2 / 3)
    # p_o = 2/3; p_e = (2/3)(1/3) + (1/3)(2/3) = 4/9; kappa = (2/3 - 4/9) / (5/9) = 0.4
    assert report.kappa == pytest.approx(0.4)
    assert [(d.question_id, d.tied) for d in report.disagreements] == [
        ("split", True), ("no", False)]
    assert validated(pulled.rows) == {"yes", "changed"}
    assert statuses(["yes", "never_pushed"], pulled.rows) == {
        "yes": "accepted", "never_pushed": "unreviewed"}
    meta = pull_metadata(pulled)
    assert (meta["accepted"], meta["rejected"], meta["disputed"], meta["unreviewed"]) == (
        2, 1, 1, 3)


def test_a_malformed_export_is_refused_whole_with_every_problem_named():
    bad = [qtask("q1", {"id": 9, "completed_by": 1}),                       # no result list
           qtask("q2", vote(1, "maybe"), task_id=2),                         # not yes/no
           qtask("q3", {"id": 3, "completed_by": 1,
                        "result": [choice_result("yes"), choice_result("no")]}, task_id=3),
           {"id": 4, "data": {"media": "/m/a.mp4"}},                         # not ours
           qtask("q5", vote(True, "yes"), task_id=5)]                        # bad annotator
    with pytest.raises(QuestionExportError) as info:
        pull_question_checks(bad, source="http://ls/projects/2")
    assert len(info.value.problems) == 5
    message = str(info.value)
    for part in ("http://ls/projects/2: not a valid Label Studio question-check export",
                 "task #0 (id=1), annotation #0 (id=9): 'result' is not a list",
                 "answer ['maybe'] is not one of ['yes', 'no']",
                 "2 answers to 'valid', expected one", "task #3 (id=4): data.question_id",
                 "'completed_by' must be"):
        assert part in message


# --------------------------------------------------------------------------- real server


def test_push_answer_pull_video_questions_through_a_real_label_studio(label_studio):
    ls = label_studio.settings.resource()
    media = label_studio.settings.document_root / "media" / "videos"
    shutil.copytree(VIDEOS, media)
    circle, shapes, three = (str(media / n) for n in (
        "bouncing_circle.mp4", "two_shapes.mp4", "three_shapes.webm"))
    rows = [
        {"question_id": "vq-1", "media": circle, "question": "What does the red circle do next?",
         "options": OPTIONS, "answer": "B"},
        {"question_id": "vq-2", "media": shapes, "question": "Which shape moves first?",
         "options": ["the square", "the triangle", "neither", "both at once"], "answer": "A"},
        {"question_id": "vq-3", "media": circle, "question": "Where is the circle at the end?",
         "options": ["top left", "bottom right", "centre", "off screen"], "answer": "C"},
        QuestionRow("vq-4", shapes, "What colour is the triangle?",
                    ["red", "green", "blue", "purple"], "B"),
        {"question_id": "vq-5", "media": three, "question": "How many shapes are there?",
         "options": [], "answer": "3"},
        {"question_id": "vq-6", "media": three, "question": "Which shape is orange?",
         "options": ["the circle", "the square", "the triangle", "none"], "answer": "A"},
    ]
    flagged = {r["question_id"] if isinstance(r, dict) else r.question_id for r in rows}
    flagged = {q for q in flagged if second_review(q, 0.2)}
    assert flagged == {"vq-1", "vq-3"}

    pushed = push_questions(ls, rows, batch="vb")
    assert (pushed["media_kind"], pushed["questions"], pushed["pushed"],
            pushed["second_review"], pushed["media_not_served"]) == ("video", 6, 6, 2, 0)
    again = push_questions(ls, rows, batch="vb")
    assert (again["pushed"], again["already_in_label_studio"]) == (0, 6)
    project = ls.find_project(project_title("video"))
    tasks = {t["data"]["question_id"]: t for t in batch_tasks(ls.export_tasks(project), "vb")}
    assert set(tasks) == {f"vq-{i}" for i in range(1, 7)}
    assert tasks["vq-1"]["data"]["answer_text"] == "Marked answer: B. it keeps bouncing"
    video = requests.get(f"{label_studio.url}{tasks['vq-1']['data']['media']}", timeout=30,
                         headers={"Authorization": f"Token {label_studio.settings.token}"})
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"  # an MP4, served
    waiting = ls.request("GET", f"/api/tasks/{tasks['vq-1']['id']}/")
    assert (waiting["overlap"], waiting["is_labeled"]) == (2, False)

    reviewer = ls.request("POST", "/api/users/", json={
        "email": "question-reviewer@rlfoundry.test", "username": "question-reviewer"})["id"]
    first = {"vq-1": "yes", "vq-2": "no", "vq-3": "yes", "vq-5": "yes"}
    for qid, answer in first.items():
        result = [choice_result(answer)]
        if answer == "no":
            result.append(comment_result("the triangle moves first"))
        ls.create_annotation(tasks[qid]["id"], result)
    ls.create_annotation(tasks["vq-4"]["id"], [comment_result("cannot tell")])  # no choice
    ls.create_annotation(tasks["vq-1"]["id"], [choice_result("yes")], completed_by=reviewer)
    ls.create_annotation(tasks["vq-3"]["id"], [choice_result("no")], completed_by=reviewer)

    got, pulled = pull_questions(ls, batch="vb")
    assert got == project
    rows_by_id = {r["question_id"]: r for r in pulled.rows}
    assert {q: r["status"] for q, r in rows_by_id.items()} == {
        "vq-1": "accepted", "vq-2": "rejected", "vq-3": "disputed", "vq-4": "unreviewed",
        "vq-5": "accepted", "vq-6": "unreviewed"}
    assert validated(pulled.rows) == {"vq-1", "vq-5"}
    assert rows_by_id["vq-1"]["annotators"] == ["1", str(reviewer)]
    assert json.loads(rows_by_id["vq-2"]["comments"]) == {"1": "the triangle moves first"}
    report = pulled.report
    assert (report.n_double, report.n_flagged, report.n_flagged_done) == (2, 2, 2)
    # (yes, yes) and (yes, no): half agree; the first annotator always said yes, so kappa is 0
    assert report.percent == 0.5 and report.kappa == 0.0
    meta = pull_metadata(pulled)
    assert (meta["votes"], meta["annotations_without_answer"], meta["double_reviewed"]) == (
        6, 1, 2)
    assert "| vq-3 | 1: yes; " in meta["disagreements"].value
