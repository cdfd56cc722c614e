"""Human QC of the audio chain's sound regions: tasks, parsing, agreement by class-wise IoU,
acceptance, and the accepted regions becoming the chain's `human` source.

The pure logic runs fast, without Label Studio. The last test is a real round trip: Label
Studio from `.venv-labelstudio` (the session's `label_studio` fixture), the sample scenes
ingested, pushed with their manifest regions pre-drawn, annotated through the API by two
users, pulled, and `sound_regions` rebuilt with the human regions first.
"""

from __future__ import annotations

import doctest
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
from dagster import DagsterInstance, materialize

import labeling.qc.region_verdicts
import labeling.qc.regions
from assets.audio_qa.qc import CLASSES, PROJECT, audio_qa_qc_tasks, audio_qa_qc_verdicts
from assets.audio_qa.questions import VOCABULARY
from assets.audio_qa.regions import sound_regions
from assets.ingest import audio_clips
from labeling.audio_qa.chain import region_rows
from labeling.audio_qa.regions import SoundRegion
from labeling.qc.region_verdicts import (
    RegionAnnotation,
    RegionExportError,
    human_regions,
    parse_region_export,
    pull_region_reviews,
    review_clip,
)
from labeling.qc.regions import (
    AUDIO,
    LABELS,
    config_classes,
    preannotations,
    region_tasks,
    regions_config_xml,
)
from labeling.qc.review import second_review
from labeling.qc.tasks import batch_tasks
from pipelines.partitions import BATCHES
from resources.model_hub import ModelHub
from resources.warehouse import Warehouse

SCENES = Path(__file__).resolve().parent.parent / "data" / "sample" / "audio_qa"
KNOWN = ("speech", "music", "noise", "silence", "other")


def test_doctests():
    for module in (labeling.qc.regions, labeling.qc.region_verdicts):
        assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0


def region(label, start, end, **extra) -> dict:
    """An audio region as Label Studio's UI writes it."""
    return {"id": f"{label}{start}", "from_name": LABELS, "to_name": AUDIO, "type": "labels",
            "original_length": 10.0, **extra,
            "value": {"start": start, "end": end, "channel": 0, "labels": [label]}}


def task(clip="c1", *annotations, duration=10.0, flagged=False, task_id=1) -> dict:
    return {"id": task_id, "data": {"clip_id": clip, "source_path": f"/m/{clip}.ogg",
                                    "duration_s": duration, "second_review": flagged},
            "annotations": list(annotations)}


def ann(who, *regions, **extra) -> dict:
    return {"id": 100, "completed_by": who, "result": list(regions), **extra}


# --------------------------------------------------------------------------- tasks


def test_the_config_offers_each_class_once_and_names_the_tags_results_use():
    xml = regions_config_xml(CLASSES)
    root = ET.fromstring(xml)
    (labels,) = root.iter("Labels")
    (audio,) = root.iter("Audio")
    assert (labels.get("name"), labels.get("toName"), audio.get("name")) == (LABELS, AUDIO, AUDIO)
    assert config_classes(xml) == CLASSES
    assert CLASSES[:len(VOCABULARY)] == VOCABULARY and CLASSES[-2:] == ["silence", "other"]
    with pytest.raises(ValueError, match="distinct"):
        regions_config_xml(["speech", "speech"])
    assert config_classes("<View><Choices name='x' toName='y'/></View>") == []


def test_tasks_predraw_the_best_non_human_source_and_leave_out_unknown_classes():
    rows = [{"clip_id": c, "label": label, "start_s": s, "end_s": e, "source": src,
             "score": score}
            for c, label, s, e, src, score in [
                ("a", "speech", 0.5, 2.0, "model:vad", 0.9),
                ("a", "music", 1.0, 4.0, "manifest", None),
                ("a", "dog bark", 5.0, 6.0, "manifest", None),
                ("a", "speech", 0.0, 1.0, "human", None),
                ("b", "speech", 0.2, 0.9, "model:vad", 0.8),
                ("b", "speech", 1.5, 2.0, "model:vad", 0.6)]]
    given = preannotations(rows)
    assert {c: {r.source for r in rs} for c, rs in given.items()} == {
        "a": {"manifest"}, "b": {"model:vad"}}
    clips = [{"clip_id": c, "source_path": f"/m/{c}.ogg", "duration_s": 8.0} for c in "abc"]
    a, b, c = region_tasks(clips, given, batch="b1", classes=KNOWN,
                           media_url=lambda p: f"/data/local-files/?d={p[1:]}")
    assert a["data"]["audio"] == "/data/local-files/?d=m/a.ogg"
    assert a["data"]["preannotation_source"] == "manifest"
    assert a["data"]["preannotation_left_out"] == 1  # "dog bark" is not offered
    (music,) = a["predictions"][0]["result"]
    assert music["value"] == {"start": 1.0, "end": 4.0, "channel": 0, "labels": ["music"]}
    assert music["original_length"] == 8.0 and (music["from_name"], music["to_name"]) == (
        LABELS, AUDIO)
    assert b["data"]["preannotation_source"] == "model:vad"
    assert b["predictions"][0]["score"] == pytest.approx(0.7)
    assert [r["id"] for r in b["predictions"][0]["result"]] == ["r0", "r1"]
    assert "predictions" not in c and c["data"]["preannotation_source"] is None
    flags = [t["data"]["second_review"] for t in region_tasks(clips, {}, batch="b", seed=7)]
    assert flags == [second_review(x, 0.2, 7) for x in "abc"]


# --------------------------------------------------------------------------- parsing


def test_an_annotation_with_a_bad_region_is_refused_whole_and_quarantined():
    tasks = [
        task("unknown", ann(1, region("speech", 1.0, 2.0), region("dog", 2.0, 3.0))),
        task("reversed", ann(1, region("speech", 3.0, 2.0))),
        task("past_end", ann(1, region("music", 8.0, 11.0))),
        task("in_slack", ann(1, region("music", 8.0, 10.03))),
        task("no_labels", ann(1, {"from_name": LABELS, "type": "labels",
                                  "value": {"start": 1.0, "end": 2.0, "labels": []}})),
        task("nan", ann(1, region("speech", float("nan"), 2.0))),
    ]
    usable, refused, n_refused = parse_region_export(tasks, classes=KNOWN)
    assert [(a.clip_id, [(r.label, r.start_s, r.end_s) for r in a.regions]) for a in usable] == [
        ("in_slack", [("music", 8.0, 10.0)])]  # within 0.05 s: clipped to the clip
    assert n_refused == 5
    assert [(q["source_path"], q["reason"]) for q in refused] == [
        ("/m/unknown.ogg", "unknown_class"), ("/m/reversed.ogg", "empty_region"),
        ("/m/past_end.ogg", "outside_clip"), ("/m/no_labels.ogg", "bad_region"),
        ("/m/nan.ogg", "not_finite")]
    assert "annotator 1, region 1: 'dog'" in refused[0]["detail"]
    pulled = pull_region_reviews(tasks, classes=KNOWN)
    assert [r["status"] for r in pulled.rows] == [
        "unreviewed", "unreviewed", "unreviewed", "accepted", "unreviewed", "unreviewed"]
    assert pulled.n_refused == 5 and len(pulled.refused) == 5


def test_a_malformed_export_is_refused_whole_with_every_problem_named():
    bad = [task("c1", {"id": 5, "completed_by": 1}),              # no result list
           {"id": 2, "data": {"audio": "/m/x.ogg"}},               # not a task we pushed
           task("c3", ann(None, region("speech", 0.0, 1.0))),      # no annotator
           task("c4", duration="ten")]
    with pytest.raises(RegionExportError) as info:
        parse_region_export(bad, classes=KNOWN, source="http://ls/projects/1")
    assert len(info.value.problems) == 4
    message = str(info.value)
    assert message.startswith("http://ls/projects/1: not a valid Label Studio region-QC export")
    for part in ("task #0 (id=1), annotation #0 (id=5): 'result' is not a list",
                 "task #1 (id=2): data.clip_id missing", "'completed_by' must be",
                 "task #3 (id=1): data.duration_s 'ten'"):
        assert part in message
    with pytest.raises(RegionExportError, match="top level is a JSON dict"):
        parse_region_export({"tasks": []}, classes=KNOWN)


def test_skipped_empty_and_repeated_annotations():
    tasks = [task("skipped", ann(1, region("speech", 0.0, 1.0), was_cancelled=True)),
             task("empty", ann(1)),  # submitted with no region: nothing of the classes heard
             task("twice", ann(1, region("speech", 0.0, 1.0)), ann(1, region("music", 0.0, 1.0)))]
    pulled = pull_region_reviews(tasks, classes=KNOWN)
    rows = {r["clip_id"]: r for r in pulled.rows}
    assert rows["skipped"]["status"] == "unreviewed" and rows["skipped"]["regions"] is None
    assert rows["empty"]["status"] == "accepted" and json.loads(rows["empty"]["regions"]) == []
    assert rows["twice"]["n_annotations"] == 1  # the annotator's last annotation wins
    assert json.loads(rows["twice"]["regions"]) == [{"label": "music", "start": 0.0, "end": 1.0}]
    assert human_regions(pulled.rows) == {
        "empty": [], "twice": [SoundRegion("music", 0.0, 1.0, "human")]}
    assert pulled.report.n_double == 0 and pulled.report.mean_iou is None


# --------------------------------------------------------------------------- agreement


def test_two_annotators_agree_by_class_iou_and_disagreements_are_listed():
    agree = task("agree", ann(1, region("speech", 1.0, 3.0), region("music", 4.0, 8.0)),
                 ann(2, region("speech", 1.2, 3.0), region("music", 4.0, 7.0)), flagged=True)
    clash = task("clash", ann(1, region("music", 0.0, 4.0), region("silence", 4.0, 5.0)),
                 ann(2, region("noise", 0.0, 4.0), region("silence", 4.0, 5.0)), flagged=True,
                 task_id=2)
    waiting = task("waiting", ann(1, region("speech", 0.0, 2.0)), flagged=True, task_id=3)
    pulled = pull_region_reviews([agree, clash, waiting], classes=KNOWN, min_iou=0.5)
    rows = {r["clip_id"]: r for r in pulled.rows}
    assert json.loads(rows["agree"]["class_iou"]) == {"music": 0.75, "speech": 0.9}
    assert rows["agree"]["status"] == "accepted" and rows["agree"]["accepted_annotator"] == "1"
    assert rows["agree"]["mean_iou"] == pytest.approx(0.825)
    assert rows["clash"]["status"] == "disputed" and rows["clash"]["regions"] is None
    assert json.loads(rows["clash"]["class_iou"]) == {"music": 0.0, "noise": 0.0,
                                                      "silence": 1.0}
    assert rows["waiting"]["status"] == "accepted" and rows["waiting"]["class_iou"] is None
    report = pulled.report
    assert (report.n_clips, report.n_double, report.n_flagged, report.n_flagged_done,
            report.n_agreed) == (3, 2, 3, 2, 1)
    assert report.mean_iou == pytest.approx((0.825 + 1 / 3) / 2)
    assert report.class_iou == pytest.approx({"music": 0.375, "noise": 0.0, "speech": 0.9,
                                              "silence": 1.0})
    assert [(d.clip_id, d.label, d.iou, d.annotators) for d in report.disagreements] == [
        ("clash", "music", 0.0, ("1", "2")), ("clash", "noise", 0.0, ("1", "2"))]
    table = labeling.qc.region_verdicts.disagreements_markdown(report)
    assert "| 2 | clash | music | 0.00 | 1, 2 |" in table


def test_a_third_annotator_settles_a_dispute():
    def a(who, label, start):
        return RegionAnnotation(1, "c", who, (SoundRegion(label, start, 4.0, "human"),))

    assert review_clip([a("1", "music", 0.0), a("2", "noise", 0.0)])[0] == "disputed"
    status, accepted = review_clip([a("1", "music", 0.0), a("2", "noise", 0.0),
                                    a("3", "noise", 0.5)])
    assert (status, accepted.annotator) == ("accepted", "2")
    status, accepted = review_clip([a("1", "music", 0.0), a("2", "music", 0.1)], min_iou=0.99)
    assert status == "disputed" and accepted is None


def test_accepted_regions_are_the_chains_human_source_without_silence():
    pulled = pull_region_reviews(
        [task("c1", ann(1, region("music", 0.0, 4.0), region("silence", 4.0, 5.0)))],
        classes=KNOWN)
    human = human_regions(pulled.rows)
    assert human == {"c1": [SoundRegion("music", 0.0, 4.0, "human")]}
    clip = {"clip_id": "c1", "source_path": "/m/c1.ogg", "duration_s": 10.0,
            "tags": {"regions": [{"label": "speech", "start": 0, "end": 2}]}}
    rows, failures = region_rows([clip], {}, detector="vad", human=human)
    assert failures == []
    assert {(r["source"], r["label"], r["used"]) for r in rows} == {
        ("human", "music", True), ("manifest", "speech", False)}


# --------------------------------------------------------------------------- real server


def run(assets, warehouse, batch, ls=None, config=None, hub=None) -> dict:
    resources = {"warehouse": warehouse, **({"label_studio": ls} if ls else {}),
                 **({"model_hub": hub} if hub else {})}
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, [batch])
        result = materialize(assets, partition_key=batch, instance=instance, resources=resources,
                             run_config={"ops": config or {}})
    assert result.success
    (mat,) = result.asset_materializations_for_node(assets[-1].op.name)
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def test_push_mark_pull_into_sound_regions_through_a_real_label_studio(label_studio, tmp_path):
    ls = label_studio.settings.resource()
    media = label_studio.settings.document_root / "media" / "aq"
    shutil.copytree(SCENES, media)
    warehouse = Warehouse(root=str(tmp_path / "warehouse"))
    hub = ModelHub(device="cpu", cache_dir=str(tmp_path / "models"))
    batch = "aq"
    warehouse.register_batch(batch, media / "scenes.jsonl")
    no_detector = {"sound_regions": {"config": {"detect_speech": "off"}}}
    run([audio_clips], warehouse, batch, hub=hub)
    run([sound_regions], warehouse, batch, config=no_detector, hub=hub)
    names = {c: Path(p).stem for c, p in warehouse.fetch(
        "SELECT clip_id, source_path FROM audio_clips")}
    ids = {name: clip for clip, name in names.items()}
    truth = {json.loads(line)["scene"]: json.loads(line)
             for line in (SCENES / "scenes.jsonl").read_text().splitlines()}

    push = {"audio_qa_qc_tasks": {"config": {"seed": 2}}}  # seed 2: scenes 00 and 02 flagged
    flagged = {n for n, c in ids.items() if second_review(c, 0.2, 2)}
    assert flagged == {"scene_00", "scene_02"}
    pushed = run([audio_qa_qc_tasks], warehouse, batch, ls=ls, config=push)
    assert (pushed["clips"], pushed["pushed"], pushed["second_review"],
            pushed["media_not_served"]) == (6, 6, 2, 0)
    assert pushed["preannotated_by_source"] == {"manifest": 6}
    assert pushed["classes"] == CLASSES and pushed["preannotated_regions_left_out"] == 0
    again = run([audio_qa_qc_tasks], warehouse, batch, ls=ls, config=push)
    assert (again["pushed"], again["already_in_label_studio"]) == (0, 6)

    project = ls.find_project(PROJECT)
    tasks = {names[t["data"]["clip_id"]]: t for t in batch_tasks(ls.export_tasks(project), batch)}
    audio = requests.get(f"{label_studio.url}{tasks['scene_00']['data']['audio']}", timeout=30,
                         headers={"Authorization": f"Token {label_studio.settings.token}"})
    assert audio.status_code == 200 and audio.content[:4] == b"OggS"
    predicted = {}
    for name, t in tasks.items():
        (prediction,) = ls.request("GET", "/api/predictions/", params={"task": t["id"]})
        predicted[name] = prediction["result"]
        assert [(r["value"]["labels"][0], r["value"]["start"], r["value"]["end"])
                for r in prediction["result"]] == sorted(
            [(r["label"], r["start"], r["end"]) for r in truth[name]["regions"]],
            key=lambda x: (x[1], x[0]))
    waiting = ls.request("GET", f"/api/tasks/{tasks['scene_00']['id']}/")
    assert (waiting["overlap"], waiting["is_labeled"]) == (2, False)

    reviewer = ls.request("POST", "/api/users/", json={
        "email": "region-reviewer@rlfoundry.test", "username": "region-reviewer"})["id"]

    def kept(name, shift=0.0, relabel=None, extra=()):
        """The pre-drawn regions as the UI keeps them, edited."""
        out = []
        for r in predicted[name]:
            label = r["value"]["labels"][0]
            out.append({**r, "origin": "prediction-changed" if shift or relabel else "prediction",
                        "value": {**r["value"], "start": r["value"]["start"] + shift,
                                  "end": r["value"]["end"] + shift,
                                  "labels": [(relabel or {}).get(label, label)]}})
        return out + [region(*e) for e in extra]

    first = {
        "scene_00": kept("scene_00"),
        "scene_01": kept("scene_01", extra=[("silence", 13.5, 14.0)]),
        "scene_02": kept("scene_02"),
        "scene_03": kept("scene_03", extra=[("noise", 10.0, truth["scene_03"]["duration"] + 2)]),
    }
    for name, result in first.items():
        ls.create_annotation(tasks[name]["id"], result)
    ls.create_annotation(tasks["scene_04"]["id"], [], was_cancelled=True)  # skipped
    ls.create_annotation(tasks["scene_00"]["id"], kept("scene_00", shift=0.1),
                         completed_by=reviewer)
    ls.create_annotation(tasks["scene_02"]["id"], kept("scene_02", relabel={"music": "noise"}),
                         completed_by=reviewer)

    pulled = run([audio_qa_qc_verdicts], warehouse, batch, ls=ls)
    assert (pulled["tasks"], pulled["annotations"], pulled["accepted"], pulled["disputed"],
            pulled["unreviewed"], pulled["refused_annotations"]) == (6, 5, 2, 1, 3, 1)
    assert (pulled["double_annotated"], pulled["second_review_flagged"],
            pulled["second_review_done"], pulled["clips_agreed"]) == (2, 2, 2, 1)
    assert "`outside_clip`: 1" in pulled["quarantine_reasons"]
    assert f"| {ids['scene_02'][:12]} | music | 0.00 |" in pulled["disagreements"]
    assert f"| {ids['scene_02'][:12]} | noise |" in pulled["disagreements"]
    reviews = {names[r["clip_id"]]: r for r in warehouse.fetch_dicts(
        "SELECT * FROM sound_region_reviews")}
    iou_00 = json.loads(reviews["scene_00"]["class_iou"])
    assert set(iou_00) == {"speech", "music", "noise"} and min(iou_00.values()) > 0.85
    assert reviews["scene_00"]["annotators"] == ["1", str(reviewer)]
    assert reviews["scene_00"]["project_id"] == project
    assert {n: r["status"] for n, r in reviews.items()} == {
        "scene_00": "accepted", "scene_01": "accepted", "scene_02": "disputed",
        "scene_03": "unreviewed", "scene_04": "unreviewed", "scene_05": "unreviewed"}
    assert pulled["mean_class_iou"] == pytest.approx(
        (reviews["scene_00"]["mean_iou"] + reviews["scene_02"]["mean_iou"]) / 2, abs=1e-4)

    # sound_regions now uses the accepted human regions (silence left out) before the manifest
    meta = run([sound_regions], warehouse, batch, config=no_detector, hub=hub)
    assert meta["clips_by_used_source"] == {"human": 2, "manifest": 4}
    used = warehouse.fetch_dicts("SELECT clip_id, label, start_s, end_s, source FROM "
                                 "sound_regions WHERE used ORDER BY clip_id, start_s")
    scene_01 = [(r["label"], r["start_s"], r["end_s"], r["source"]) for r in used
                if names[r["clip_id"]] == "scene_01"]
    assert scene_01 == [(r["label"], r["start"], r["end"], "human")
                        for r in sorted(truth["scene_01"]["regions"], key=lambda r: r["start"])]
