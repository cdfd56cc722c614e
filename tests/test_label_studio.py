"""Tests for labeling.label_studio (now labeling.qc.pairwise / .export): pairwise tasks out,
human preferences back in."""

from __future__ import annotations

import doctest
import json
import xml.etree.ElementTree as ET

import pytest

import labeling.label_studio
import labeling.qc.export
import labeling.qc.pairwise
from labeling.label_studio import (
    PAIRWISE_CONFIG_XML,
    HumanPreference,
    LabelStudioExportError,
    aggregate,
    make_tasks,
    pair_key,
    parse_pairwise_export,
    read_pairwise_export,
    summarize,
)

PAIRS = [
    {"clip_id": "c1", "audio": "/data/c1.wav", "a": "the cat sat", "b": "the cap sat"},
    {"clip_id": "c2", "audio": "/data/c2.wav", "a": "good morning", "b": "could mourning"},
    {"clip_id": "c3", "audio": "/data/c3.wav", "a": "red car", "b": "read car"},
    {"clip_id": "c4", "audio": "/data/c4.wav", "a": "ship it", "b": "sheep it"},
]
# The "a" text of each pair is the one most annotators prefer below.


def choose(task: dict, text: str) -> str:
    """The side on which a task shows `text` (tasks may have swapped sides)."""
    data = task["data"]
    assert text in (data["a"], data["b"])
    return "left" if data["a"] == text else "right"


def ann(who, selected: str | None, *, cancelled: bool = False, ann_id: int = 0) -> dict:
    """An annotation as Label Studio exports it: `to_name` is the Pairwise tag's own name."""
    result = [] if selected is None else [{
        "id": "r1", "from_name": "pw", "to_name": "pw", "type": "pairwise",
        "origin": "manual", "value": {"selected": selected},
    }]
    return {"id": ann_id, "completed_by": who, "result": result, "was_cancelled": cancelled,
            "ground_truth": False, "lead_time": 4.5}


def write(tmp_path, export, name="export.json"):
    path = tmp_path / name
    path.write_text(json.dumps(export) if not isinstance(export, str) else export)
    return path


def hand_written_export(tasks: list[dict]) -> list[dict]:
    """What Label Studio would export after four annotators worked on `tasks`."""
    alice = {"id": 1, "email": "alice@example.org", "first_name": "", "last_name": ""}
    bob = {"id": 2, "email": "bob@example.org"}
    t1, t2, t3, t4 = (dict(t, id=100 + i) for i, t in enumerate(tasks))
    good = [pr["a"] for pr in PAIRS]
    bad = [pr["b"] for pr in PAIRS]
    # c1: one annotator (completed_by as a plain user id)
    t1["annotations"] = [ann(7, choose(t1, good[0]), ann_id=1)]
    # c2: two annotators agree
    t2["annotations"] = [ann(alice, choose(t2, good[1]), ann_id=2),
                         ann(bob, choose(t2, good[1]), ann_id=3)]
    # c3: two annotators disagree -> no preference
    t3["annotations"] = [ann(alice, choose(t3, good[2]), ann_id=4),
                         ann(bob, choose(t3, bad[2]), ann_id=5)]
    # c4: 2-1, plus a cancelled annotation and one submitted without a choice
    t4["annotations"] = [ann(alice, choose(t4, good[3]), ann_id=6),
                         ann(bob, choose(t4, bad[3]), ann_id=7),
                         ann(7, choose(t4, good[3]), ann_id=8),
                         ann(9, choose(t4, bad[3]), cancelled=True, ann_id=9),
                         ann(10, None, ann_id=10)]
    return [t1, t2, t3, t4]


def test_doctests():
    for module in (labeling.label_studio, labeling.qc.pairwise, labeling.qc.export):
        assert doctest.testmod(module).failed == 0


def test_config_is_the_pairwise_template_with_audio():
    root = ET.fromstring(PAIRWISE_CONFIG_XML)
    assert root.tag == "View"
    pw = root.find("Pairwise")
    assert pw.attrib == {"name": "pw", "toName": "a,b"}
    assert {t.get("name"): t.get("value") for t in root.findall("Text")} == {"a": "$a", "b": "$b"}
    assert root.find("Audio").attrib == {"name": "audio", "value": "$audio"}


def test_make_tasks_shape_and_default_pair_id():
    (task,) = make_tasks(PAIRS[:1], swap_sides=False)
    assert task == {"data": {"audio": "/data/c1.wav", "a": "the cat sat", "b": "the cap sat",
                             "clip_id": "c1", "pair_id": pair_key("c1", "the cat sat",
                                                                  "the cap sat")}}
    assert pair_key("c1", "x", "y") == pair_key("c1", "y", "x") != pair_key("c2", "x", "y")


def test_make_tasks_swaps_about_half_the_sides_deterministically():
    pairs = [{"clip_id": f"c{i}", "audio": f"/{i}.wav", "a": f"good {i}", "b": f"bad {i}"}
             for i in range(40)]
    tasks = make_tasks(pairs)
    assert tasks == make_tasks(pairs)
    swapped = sum(t["data"]["a"].startswith("bad") for t in tasks)
    assert 5 < swapped < 35
    for pair, task in zip(pairs, tasks, strict=True):
        assert {task["data"]["a"], task["data"]["b"]} == {pair["a"], pair["b"]}


def test_make_tasks_rejects_bad_pairs():
    with pytest.raises(ValueError, match=r"pair #1: missing audio"):
        make_tasks([PAIRS[0], {"clip_id": "c9", "a": "x", "b": "y"}])
    with pytest.raises(ValueError, match=r"pair #0 \(clip c9\): both texts"):
        make_tasks([{"clip_id": "c9", "audio": "/9.wav", "a": "same", "b": "same"}])


def test_round_trip_read_and_aggregate(tmp_path):
    tasks = make_tasks(PAIRS)
    assert any(t["data"]["a"] != p["a"] for t, p in zip(tasks, PAIRS, strict=True))  # swapped
    path = write(tmp_path, hand_written_export(tasks))
    prefs = read_pairwise_export(path)

    # 1 + 2 + 2 + 3 annotations with a choice; cancelled and empty ones are left out.
    assert len(prefs) == 8
    assert [p.annotator for p in prefs] == [
        "7", "alice@example.org", "bob@example.org", "alice@example.org", "bob@example.org",
        "alice@example.org", "bob@example.org", "7"]
    first = prefs[0]
    assert (first.task_id, first.clip_id, first.audio) == (100, "c1", "/data/c1.wav")
    assert (first.chosen, first.rejected) == ("the cat sat", "the cap sat")
    assert first.pair_id == tasks[0]["data"]["pair_id"] and first.lead_time == 4.5
    assert first.side == choose(tasks[0], "the cat sat")

    summary = summarize(prefs)
    by_clip = {a.clip_id: a for a in summary.preferences}
    assert list(by_clip) == ["c1", "c2", "c4"]
    assert summary.tied_pair_ids == [tasks[2]["data"]["pair_id"]]
    assert summary.n_votes == 8
    c1, c2, c4 = by_clip["c1"], by_clip["c2"], by_clip["c4"]
    assert (c1.chosen, c1.rejected, c1.n_annotators, c1.n_agree, c1.agreement) == (
        "the cat sat", "the cap sat", 1, 1, 1.0)
    assert (c2.chosen, c2.n_annotators, c2.n_agree, c2.agreement) == ("good morning", 2, 2, 1.0)
    assert (c4.chosen, c4.rejected, c4.n_annotators, c4.n_agree) == ("ship it", "sheep it", 3, 2)
    assert c4.agreement == pytest.approx(2 / 3)
    assert c4.annotators == ("alice@example.org", "bob@example.org", "7")
    assert c4.audio == "/data/c4.wav" and c4.pair_id == tasks[3]["data"]["pair_id"]
    assert aggregate(prefs) == summary.preferences


def test_right_means_b_and_to_name_order_is_respected(tmp_path):
    task = {"id": 5, "data": {"a": "one text", "b": "another", "clip_id": "c", "pair_id": "p"}}
    right = dict(task, annotations=[ann(1, "right")])  # to_name "pw": left is a, right is b
    (p,) = read_pairwise_export(write(tmp_path, [right]))
    assert (p.chosen, p.rejected, p.side) == ("another", "one text", "right")
    for to_name, chosen in [(["a", "b"], "another"), ("a,b", "another"), ("b,a", "one text")]:
        other = ann(1, "right")  # tolerant: hand-made exports list the objects in display order
        other["result"][0]["to_name"] = to_name
        (q,) = read_pairwise_export(write(tmp_path, [dict(task, annotations=[other])]))
        assert q.chosen == chosen, to_name
    flipped = ann(1, "left")
    flipped["result"][0]["to_name"] = "b,a"  # left shows b
    (q,) = read_pairwise_export(write(tmp_path, [dict(task, annotations=[flipped])]))
    assert (q.chosen, q.side) == ("another", "right")


def test_parse_an_export_from_the_api_names_its_source():
    with pytest.raises(LabelStudioExportError, match=r"(?s)^http://ls/projects/1: .*top level"):
        parse_pairwise_export({"detail": "oops"}, "http://ls/projects/1")
    task = {"id": 1, "data": {"a": "x", "b": "y"}, "annotations": [ann(1, "left")]}
    assert [p.chosen for p in parse_pairwise_export([task])] == ["x"]


def test_one_vote_per_annotator_last_wins():
    def pref(who, chosen, task_id):
        rejected = "b" if chosen == "a" else "a"
        return HumanPreference(task_id, "c", "p", None, chosen, rejected, who, "left")
    summary = summarize([pref("x", "a", 1), pref("y", "b", 1), pref("x", "b", 2)])
    (agg,) = summary.preferences
    assert (agg.chosen, agg.n_annotators, agg.n_agree) == ("b", 2, 2)
    assert summary.n_votes == 2


def test_pair_id_reused_for_other_texts_is_an_error():
    a = HumanPreference(1, "c", "p", None, "x", "y", "u1", "left")
    b = HumanPreference(2, "c", "p", None, "x", "z", "u2", "left")
    with pytest.raises(ValueError, match=r"pair_id 'p' names two different pairs.*task 1.*task 2"):
        summarize([a, b])


def test_unannotated_tasks_and_missing_pair_id(tmp_path):
    tasks = [{"id": 1, "data": {"a": "x", "b": "y", "clip_id": "c"}, "annotations": []},
             {"id": 2, "data": {"a": "x", "b": "y", "clip_id": "c"},
              "annotations": [ann(3, "left")]}]
    (p,) = read_pairwise_export(write(tmp_path, tasks))
    assert p.pair_id == pair_key("c", "x", "y")


# --------------------------------------------------------------------------- malformed


def good_task(task_id: int = 10) -> dict:
    return {"id": task_id, "data": {"a": "x", "b": "y", "clip_id": "c", "pair_id": "p"},
            "annotations": [ann(1, "left")]}


def raises(tmp_path, export) -> str:
    path = write(tmp_path, export)
    with pytest.raises(LabelStudioExportError) as info:
        read_pairwise_export(path)
    message = str(info.value)
    assert str(path) in message
    return message


def test_invalid_json(tmp_path):
    message = raises(tmp_path, '[{"id": 1, "data": ')
    assert "invalid JSON at line 1" in message


def test_not_a_list(tmp_path):
    message = raises(tmp_path, {"tasks": []})
    assert "top level is a JSON dict, expected a list of tasks" in message


def test_task_without_b(tmp_path):
    bad = good_task(11)
    del bad["data"]["b"]
    message = raises(tmp_path, [good_task(), bad])
    assert "task #1 (id=11): data.b missing or not a string" in message


def test_task_without_data_or_not_an_object(tmp_path):
    message = raises(tmp_path, [{"id": 12, "annotations": []}, "oops"])
    assert "task #0 (id=12): has no 'data' object" in message
    assert "task #1 (id=None): is a str, expected an object" in message


def test_unknown_selected_value(tmp_path):
    bad = good_task(13)
    bad["annotations"][0]["result"][0]["value"]["selected"] = "up"
    message = raises(tmp_path, [bad])
    assert "task #0 (id=13), annotation #0 (id=0): pairwise result has unknown selected value" \
           " 'up' (expected 'left' or 'right')" in message


def test_bad_annotator_and_result(tmp_path):
    no_user = good_task(14)
    no_user["annotations"][0]["completed_by"] = None
    no_result = good_task(15)
    no_result["annotations"][0]["result"] = {"selected": "left"}
    message = raises(tmp_path, [no_user, no_result])
    assert "task #0 (id=14), annotation #0 (id=0): 'completed_by'" in message
    assert "task #1 (id=15), annotation #0 (id=0): 'result' is not a list" in message
    assert "2 problem(s)" in message


def test_all_or_nothing_reports_every_bad_task(tmp_path):
    bad1, bad2 = good_task(21), good_task(22)
    del bad1["data"]["a"]
    bad2["annotations"][0]["result"][0]["value"] = {}
    path = write(tmp_path, [good_task(20), bad1, good_task(23), bad2])
    with pytest.raises(LabelStudioExportError) as info:
        read_pairwise_export(path)
    assert len(info.value.problems) == 2
    assert "task #1 (id=21)" in info.value.problems[0]
    assert "task #3 (id=22)" in info.value.problems[1] and "None" in info.value.problems[1]


def test_cancelled_annotations_are_not_validated(tmp_path):
    task = good_task()
    task["annotations"].append({"was_cancelled": True, "completed_by": 2, "result": []})
    assert len(read_pairwise_export(write(tmp_path, [task]))) == 1
