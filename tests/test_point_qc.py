"""Human QC of the image chain's verified points: tasks, verdicts, agreement, the dataset.

The pure logic and the dataset's use of verdicts run fast, without Label Studio. The last test
is a real round trip: Label Studio 1.23.2 from `.venv-labelstudio`, started on a free port
with a fresh database (~30-70 s of migrations), the QC assets run in-process against it.
Skipped only when that venv is missing and we are not in CI: with CI=true a missing venv
fails, and a server that cannot start fails anywhere.
"""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import numpy as np
import pytest
import requests
from dagster import DagsterInstance, materialize
from PIL import Image

import labeling.qc.point_verdicts
import labeling.qc.points
from assets.image.dataset import pointing_dataset
from assets.image.qc import PROJECT, image_qc_tasks, image_qc_verdicts
from labeling.image.masks import encode_rle
from labeling.qc.agreement import cohens_kappa
from labeling.qc.point_verdicts import (
    PointExportError,
    example_qc,
    filter_points,
    pull_point_verdicts,
    verdict_lookup,
)
from labeling.qc.points import (
    MASK_ALPHA,
    MASK_COLOUR,
    PALETTE,
    blend,
    brush_rle,
    choices_result,
    colour_distance,
    point_config_xml,
    point_id,
    point_tasks,
)
from labeling.qc.review import second_review
from labeling.qc.tasks import batch_tasks
from pipelines import labelstudio_server as server
from pipelines.partitions import BATCHES
from resources.warehouse import Warehouse

RED, BLUE, GREEN, WHITE = (200, 30, 30), (30, 30, 200), (30, 180, 30), (255, 255, 255)


def test_doctests():
    for module in (labeling.qc.points, labeling.qc.point_verdicts):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, module.__name__


# --------------------------------------------------------------------------- tasks


def ls_decode(rle: list[int]) -> np.ndarray:
    """Label Studio's brush decoder (thi.ng rle-pack), as label_studio_sdk.converter.brush."""
    bits = "".join(f"{b:08b}" for b in rle)
    pos = 0

    def read(n):
        nonlocal pos
        pos += n
        return int(bits[pos - n:pos], 2)

    num, word = read(32), read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    out, i = np.zeros(num, dtype=np.uint8), 0
    while i < num:
        repeat = read(1)
        j = i + 1 + read(sizes[read(2)])
        if repeat:
            out[i:j] = read(word)
            i = j
        else:
            while i < j:
                out[i] = read(word)
                i += 1
    return out


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (300, 300)])
def test_brush_rle_decodes_back_to_the_mask(shape):
    rng = np.random.default_rng(0)
    for mask in (rng.random(shape) > 0.5, np.ones(shape, bool), np.zeros(shape, bool)):
        decoded = ls_decode(brush_rle(mask)).reshape(*shape, 4)
        assert (decoded == (mask * 255)[..., None]).all()  # runs past 65536 bytes split


def test_the_config_names_every_palette_colour_and_the_tags_results_use():
    root = ET.fromstring(point_config_xml())
    names = {el.get("name"): el.tag for el in root.iter() if el.get("name")}
    assert names == {"image": "Image", "point": "KeyPointLabels", "mask": "BrushLabels",
                     "on_phrase": "Choices"}
    assert [el.get("value") for el in root.find("KeyPointLabels")] == list(PALETTE)
    assert [el.get("value") for el in root.find("Choices")] == ["yes", "no"]


def shapes_image(colour, size=(64, 48)) -> tuple[np.ndarray, np.ndarray]:
    """(pixels, mask): a white image with one coloured rectangle, and the rectangle's mask."""
    pixels = np.full((size[1], size[0], 3), WHITE, dtype=np.uint8)
    mask = np.zeros((size[1], size[0]), dtype=bool)
    mask[8:24, 6:26] = True
    pixels[mask] = colour
    return pixels, mask


def point_row(image_id, phrase, mask, x, y, path="/m/a.png", **extra) -> dict:
    rle = encode_rle(mask)
    return {"image_id": image_id, "region": 0, "point": 0, "phrase": phrase, "x": x, "y": y,
            "width": mask.shape[1], "height": mask.shape[0], "source_path": path,
            "mask_counts": rle["counts"], **extra}


def test_tasks_place_the_point_in_percent_and_colour_it_against_the_mask():
    images = {"/m/red.png": shapes_image(RED), "/m/green.png": shapes_image(GREEN)}
    rows = [point_row("r", "red box", images["/m/red.png"][1], 16.0, 12.0, "/m/red.png"),
            point_row("g", "green box", images["/m/green.png"][1], 16.0, 12.0, "/m/green.png",
                      display_path="/copies/green.png")]
    for show_mask in (False, True):
        tasks = point_tasks(rows, batch="b1", show_mask=show_mask,
                            media_url=lambda p: f"/data/local-files/?d={p.lstrip('/')}",
                            load=lambda p: Image.fromarray(images[p][0]))
        for task, colour in zip(tasks, (RED, GREEN), strict=True):
            under = blend(colour, MASK_COLOUR, MASK_ALPHA) if show_mask else colour
            chosen = task["data"]["point_colour"]
            assert colour_distance(PALETTE[chosen], under) == max(
                colour_distance(c, under) for c in PALETTE.values())
            kp = task["predictions"][0]["result"][0]
            assert kp["value"]["keypointlabels"] == [chosen]
            assert (kp["value"]["x"], kp["value"]["y"]) == (25.0, 25.0)  # of 64 x 48
            assert (kp["original_width"], kp["original_height"]) == (64, 48)
            assert len(task["predictions"][0]["result"]) == 1 + show_mask
        assert tasks[0]["data"]["point_colour"] != tasks[1]["data"]["point_colour"]
    assert tasks[0]["data"]["image"] == "/data/local-files/?d=m/red.png"
    assert tasks[1]["data"]["image"] == "/data/local-files/?d=copies/green.png"
    assert tasks[0]["data"]["prompt"] == "Point at red box."


def test_an_image_that_does_not_open_gets_the_fallback_colour():
    def gone(path):
        raise FileNotFoundError(path)

    (task,) = point_tasks([point_row("r", "cup", shapes_image(RED)[1], 9.5, 9.5)], batch="b",
                          load=gone)
    assert task["data"]["point_colour"] == "magenta" and task["data"]["image"] == "/m/a.png"


def test_second_review_is_the_shared_deterministic_hash_of_the_point():
    mask = shapes_image(RED)[1]
    rows = [point_row(f"im{i}", "box", mask, 10.5, 10.5) for i in range(400)]
    tasks = point_tasks(rows, batch="b", show_mask=False, load=lambda p: Image.new("RGB", (64, 48)))
    flags = [t["data"]["second_review"] for t in tasks]
    assert flags == [second_review(point_id(f"im{i}", "box", 10.5, 10.5), 0.2)
                     for i in range(400)]
    assert 50 < sum(flags) < 110
    again = point_tasks(rows, batch="b", seed=1, show_mask=False,
                        load=lambda p: Image.new("RGB", (64, 48)))
    assert [t["data"]["second_review"] for t in again] != flags


# --------------------------------------------------------------------------- verdicts


def task_with(pid: str, votes, *, flagged=False, task_id=1) -> dict:
    return {"id": task_id, "data": {"point_id": pid, "image_id": f"im-{pid}", "region": 0,
                                    "point": 0, "phrase": "cup", "x": 1.5, "y": 2.5,
                                    "second_review": flagged},
            "annotations": [{"id": k, "completed_by": who, "result": [choices_result(a)]}
                            for k, (who, a) in enumerate(votes)]}


def test_verdicts_majority_ties_and_agreement_over_the_double_labelled():
    tasks = [task_with("p1", [(1, "yes"), (2, "no")], flagged=True),
             task_with("p2", [(1, "no"), (2, "no")], flagged=True),
             task_with("p3", [(1, "yes"), (2, "yes")], flagged=True),
             task_with("p4", [(1, "yes")], flagged=True),
             task_with("p5", [(1, "no")]),
             task_with("p6", [])]
    pulled = pull_point_verdicts(tasks)
    rows = {r["point_id"]: r for r in pulled.rows}
    assert set(rows) == {"p1", "p2", "p3", "p4", "p5"} and pulled.n_votes == 8
    assert [rows[p]["verdict"] for p in ("p1", "p2", "p3", "p4", "p5")] == [
        None, "no", "yes", "yes", "no"]
    assert (rows["p1"]["agreement"], rows["p1"]["annotators"], rows["p1"]["answers"]) == (
        0.5, ["1", "2"], ["yes", "no"])
    report = pulled.report
    assert (report.n_points, report.n_double, report.n_flagged, report.n_flagged_done) == (
        5, 3, 4, 3)
    ratings = [("yes", "no"), ("no", "no"), ("yes", "yes")]
    assert report.percent == pytest.approx(2 / 3) and report.kappa == cohens_kappa(ratings)
    assert [(d.point_id, d.tied) for d in report.disagreements] == [("p1", True)]


def test_last_vote_wins_and_cancelled_or_unanswered_annotations_are_no_votes():
    task = task_with("p", [(1, "yes"), (1, "no")])
    task["annotations"] += [{"completed_by": 2, "was_cancelled": True, "result": []},
                            {"completed_by": 3, "result": [{"type": "keypointlabels",
                                                            "from_name": "point"}]}]
    (row,) = pull_point_verdicts([task]).rows
    assert (row["verdict"], row["n_annotators"]) == ("no", 1)


def test_a_bad_export_is_refused_whole_with_every_problem_named():
    bad_answer = task_with("p1", [(1, "maybe")], task_id=11)
    two = task_with("p2", [(1, "yes")], task_id=12)
    two["annotations"][0]["result"].append(choices_result("no"))
    no_id = {"id": 13, "data": {"image": "x"}, "annotations": []}
    with pytest.raises(PointExportError) as err:
        pull_point_verdicts([bad_answer, two, no_id, task_with("p4", [(None, "yes")])],
                            source="http://ls/projects/3")
    text = str(err.value)
    assert text.startswith("http://ls/projects/3: not a valid Label Studio point-QC export")
    assert "'maybe'" in text and "2 answers" in text and "data.point_id" in text
    assert "completed_by" in text and len(err.value.problems) == 4
    with pytest.raises(PointExportError, match="top level is a JSON dict"):
        labeling.qc.point_verdicts.parse_point_export({"tasks": []})


def test_dataset_filter_modes_and_the_recorded_verdicts():
    regions = [{"image_id": "a", "phrase": "cup", "points": [[1.5, 1.5], [3.5, 1.5]]},
               {"image_id": "a", "phrase": "cup", "points": [[8.5, 8.5]]}]
    verdicts = verdict_lookup([
        {"image_id": "a", "phrase": "cup", "x": 1.5, "y": 1.5, "verdict": "yes",
         "annotators": ["1"], "answers": ["yes"]},
        {"image_id": "a", "phrase": "cup", "x": 3.5, "y": 1.5, "verdict": None,
         "annotators": ["1", "2"], "answers": ["yes", "no"]}])
    kept, out = filter_points(regions, verdicts, "require_yes")
    assert [r["points"] for r in kept] == [[[1.5, 1.5]], []]
    assert [o["reason"] for o in out] == ["qc_tied", "qc_unreviewed"]
    assert "1: yes, 2: no" in out[0]["detail"]
    assert [r["points"] for r in filter_points(regions, verdicts, "drop_no")[0]] == [
        r["points"] for r in regions]
    assert filter_points(regions, {}, "require_yes") == ([dict(r) for r in regions], [])
    qc = example_qc("a", "cup", [r["points"] for r in regions], verdicts)
    assert json.loads(qc["qc_verdicts"]) == [
        [{"verdict": "yes", "votes": {"1": "yes"}},
         {"verdict": None, "votes": {"1": "yes", "2": "no"}}], [None]]
    assert qc["qc_annotators"] == ["1", "2"] and qc["human_verified"] is False


# --------------------------------------------------------------------------- the batch


# four PNGs with a red box and a blue ball (two points each) and a TIFF with a green square
# (one point); one more point on img-0 failed geometric verification (never pushed)
RED_POINTS, BLUE_POINTS = [(10.5, 12.5), (20.5, 18.5)], [(40.5, 25.5), (50.5, 33.5)]


def batch_images(folder) -> list[tuple[str, str, str, list]]:
    """(image_id, path, format, [(phrase, mask, points)]) for the test batch."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(4):
        pixels = np.full((48, 64, 3), WHITE, dtype=np.uint8)
        red, blue = np.zeros((48, 64), bool), np.zeros((48, 64), bool)
        red[8:24, 6:26] = True
        blue[20:40, 36:58] = True
        pixels[red], pixels[blue] = RED, BLUE
        path = folder / f"img-{k}.png"
        Image.fromarray(pixels).save(path)
        out.append((f"img-{k}", str(path), "PNG",
                    [("red box", red, RED_POINTS), ("blue ball", blue, BLUE_POINTS)]))
    pixels = np.full((48, 64, 3), WHITE, dtype=np.uint8)
    green = np.zeros((48, 64), bool)
    green[10:30, 10:30] = True
    pixels[green] = GREEN
    path = folder / "img-t.tif"
    Image.fromarray(pixels).save(path, format="TIFF")
    out.append(("img-t", str(path), "TIFF", [("green square", green, [(20.5, 20.5)])]))
    return out


def write_batch(warehouse: Warehouse, folder, batch: str = "b1") -> list[tuple]:
    """The chain's tables for a batch, as the image assets leave them; the verified points."""
    now = datetime.now(UTC)
    images, masks, points, checks, verified = [], [], [], [], []
    for image_id, path, fmt, regions in batch_images(folder):
        images.append({"image_id": image_id, "source_path": path, "format": fmt, "mode": "RGB",
                       "width": 64, "height": 48, "bytes": os.path.getsize(path), "tags": "{}",
                       "ingested_at": now})
        for region, (phrase, mask, xys) in enumerate(regions):
            ys, xs = np.nonzero(mask)
            masks.append({"image_id": image_id, "region": region, "phrase": phrase,
                          "x0": float(xs.min()), "y0": float(ys.min()),
                          "x1": float(xs.max() + 1), "y1": float(ys.max() + 1), "score": 0.9,
                          "mask_counts": encode_rle(mask)["counts"], "height": 48, "width": 64,
                          "area": int(mask.sum()), "predicted_iou": 0.9, "model": "sam",
                          "weights": "pretrained", "created_at": now})
            extra = [(2.5, 2.5)] if (image_id, region) == ("img-0", 0) else []
            for n, (x, y) in enumerate(xys + extra):
                ok = (x, y) in xys
                common = {"image_id": image_id, "region": region, "phrase": phrase, "point": n,
                          "x": x, "y": y, "created_at": now}
                points.append({**common, "strategy": "random", "seed": 0})
                checks.append({**common, "verified": ok,
                               "reason": None if ok else "point_outside_mask"})
                if ok:
                    verified.append((image_id, phrase, x, y))
    for table, rows in [("images", images), ("image_masks", masks), ("image_points", points),
                        ("image_point_checks", checks)]:
        warehouse.write_partition(table, batch, rows)
    return verified


def run(assets, warehouse, batch="b1", ls=None, config=None) -> dict:
    resources = {"warehouse": warehouse, **({"label_studio": ls} if ls else {})}
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, [batch])
        result = materialize(assets, partition_key=batch, instance=instance, resources=resources,
                             run_config={"ops": config or {}})
    assert result.success
    (mat,) = result.asset_materializations_for_node(assets[0].op.name)
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def dataset_points(warehouse) -> set[tuple]:
    rows = warehouse.fetch_dicts("SELECT * FROM pointing_examples")
    return {(r["image_id"], r["phrase"], x, y) for r in rows
            for mask in json.loads(r["points"]) for x, y in mask}


def test_the_dataset_keeps_the_points_people_said_yes_to(warehouse, tmp_path):
    verified = write_batch(warehouse, tmp_path / "media")
    before = run([pointing_dataset], warehouse)  # no verdicts yet: geometric verification only
    assert before["examples"] == 9 and before["point_verdicts"] == 0
    assert dataset_points(warehouse) == set(verified)

    def verdict(image_id, phrase, x, y, answer):
        return {"point_id": point_id(image_id, phrase, x, y), "image_id": image_id,
                "phrase": phrase, "x": x, "y": y, "verdict": answer, "n_annotators": 1,
                "n_yes": int(answer == "yes"), "n_agree": 1, "agreement": 1.0,
                "annotators": ["7"], "answers": [answer], "second_review": False,
                "pulled_at": datetime.now(UTC)}

    no = [("img-t", "green square", 20.5, 20.5), ("img-1", "red box", 10.5, 12.5)]
    reviewed = [p for p in verified if p[0] in ("img-0", "img-1", "img-t")]
    warehouse.write_partition("point_verdicts", "b1", [
        verdict(*p, "no" if p in no else "yes") for p in reviewed])
    meta = run([pointing_dataset], warehouse)
    assert dataset_points(warehouse) == set(reviewed) - set(no)
    assert meta["examples"] == 4  # img-0 and img-1 (two phrases each); img-t refused by a no
    assert meta["points_left_out_by_qc"] == {"qc_rejected": 2, "qc_unreviewed": 8}
    rows = warehouse.fetch_dicts("SELECT * FROM pointing_examples")
    assert all(r["human_verified"] and r["qc_annotators"] == ["7"] for r in rows)
    quarantined = warehouse.fetch_dicts("SELECT reason, detail FROM quarantine "
                                        "WHERE asset = 'pointing_dataset'")
    assert sorted(q["reason"] for q in quarantined) == ["qc_rejected", "qc_rejected"]

    meta = run([pointing_dataset], warehouse,
               config={"pointing_dataset": {"config": {"human_qc": "drop_no"}}})
    assert dataset_points(warehouse) == set(verified) - set(no)
    assert meta["examples"] == 8 and meta["points_left_out_by_qc"] == {"qc_rejected": 2}
    rows = {(r["image_id"], r["phrase"]): r
            for r in warehouse.fetch_dicts("SELECT * FROM pointing_examples")}
    assert rows[("img-0", "red box")]["human_verified"]
    assert not rows[("img-2", "red box")]["human_verified"]
    assert json.loads(rows[("img-2", "red box")]["qc_verdicts"]) == [[None, None]]


# --------------------------------------------------------------------------- real server


def sdk_decode(rle: list[int]) -> np.ndarray:
    """Label Studio's own decoder (label_studio_sdk, in its venv) on `rle`."""
    code = ("import json, sys; from label_studio_sdk.converter.brush import decode_rle; "
            "print(json.dumps(decode_rle(json.load(sys.stdin)).tolist()))")
    python = server.venv_dir() / "bin" / "python"
    out = subprocess.run([str(python), "-c", code], input=json.dumps(rle), text=True,
                         capture_output=True, check=True, timeout=120)
    return np.array(json.loads(out.stdout), dtype=np.uint8)


def test_push_answer_pull_into_the_dataset_through_a_real_label_studio(label_studio):
    ls = label_studio.settings.resource()
    docroot = label_studio.settings.document_root
    warehouse = Warehouse(root=str(docroot / "warehouse"))  # the TIFF's PNG copy is served too
    verified = write_batch(warehouse, docroot / "media" / "b1")
    ids = {p: point_id(*p) for p in verified}
    flagged = {p for p, pid in ids.items() if second_review(pid, 0.2)}
    assert flagged == {("img-0", "red box", 20.5, 18.5), ("img-2", "red box", 20.5, 18.5),
                       ("img-3", "red box", 10.5, 12.5)}

    pushed = run([image_qc_tasks], warehouse, ls=ls)
    assert (pushed["points"], pushed["pushed"], pushed["second_review"],
            pushed["media_not_served"]) == (17, 17, 3, 0)
    again = run([image_qc_tasks], warehouse, ls=ls)  # idempotent per batch
    assert (again["pushed"], again["already_in_label_studio"]) == (0, 17)

    project = ls.find_project(PROJECT)
    tasks = {(t["data"]["image_id"], t["data"]["phrase"], t["data"]["x"], t["data"]["y"]): t
             for t in batch_tasks(ls.export_tasks(project), "b1")}
    assert set(tasks) == set(verified)
    token = {"Authorization": f"Token {label_studio.settings.token}"}
    for key in [("img-0", "red box", 10.5, 12.5), ("img-t", "green square", 20.5, 20.5)]:
        image = requests.get(f"{label_studio.url}{tasks[key]['data']['image']}", timeout=30,
                             headers=token)
        assert image.status_code == 200 and image.content[:4] == b"\x89PNG"  # TIFF: a copy
    one = tasks[("img-1", "blue ball", 40.5, 25.5)]
    (prediction,) = ls.request("GET", "/api/predictions/", params={"task": one["id"]})
    point, mask = prediction["result"]
    assert point["value"]["keypointlabels"] == [one["data"]["point_colour"]]
    assert (point["value"]["x"], point["value"]["y"]) == (100 * 40.5 / 64, 100 * 25.5 / 48)
    decoded = sdk_decode(mask["value"]["rle"]).reshape(48, 64, 4)[:, :, 3] > 0
    expected = np.zeros((48, 64), bool)
    expected[20:40, 36:58] = True
    assert (decoded == expected).all()  # Label Studio reads our brush RLE as the mask

    reviewer = ls.request("POST", "/api/users/", json={
        "email": "point-reviewer@rlfoundry.test", "username": "point-reviewer"})["id"]
    first_no = {("img-1", "blue ball", 40.5, 25.5), ("img-2", "red box", 20.5, 18.5)}
    second = {("img-0", "red box", 20.5, 18.5): "no",   # a tie with the first annotator
              ("img-2", "red box", 20.5, 18.5): "no",   # agrees on no
              ("img-3", "red box", 10.5, 12.5): "yes"}  # agrees on yes

    def answer(key, choice, **who):
        task = tasks[key]
        kept = {**point, "value": {**point["value"],  # the pre-drawn point, as the UI keeps it
                                   "x": 100 * task["data"]["x"] / 64,
                                   "y": 100 * task["data"]["y"] / 48,
                                   "keypointlabels": [task["data"]["point_colour"]]},
                "origin": "prediction"}
        ls.create_annotation(task["id"], [kept, choices_result(choice)], **who)

    for key in tasks:
        answer(key, "no" if key in first_no else "yes")
    waiting = ls.request("GET", f"/api/tasks/{tasks[min(flagged)]['id']}/")
    assert (waiting["overlap"], waiting["is_labeled"]) == (2, False)  # waits for a 2nd person
    for key, choice in second.items():
        answer(key, choice, completed_by=reviewer)

    pulled = run([image_qc_verdicts], warehouse, ls=ls)
    assert (pulled["tasks"], pulled["votes"], pulled["yes"], pulled["no"], pulled["tied"],
            pulled["unanswered"]) == (17, 20, 14, 2, 1, 0)
    assert (pulled["double_labelled"], pulled["second_review_flagged"],
            pulled["second_review_done"]) == (3, 3, 3)
    # (first, second) on the flagged: (yes, no), (no, no), (yes, yes)
    assert pulled["percent_agreement"] == round(2 / 3, 4) and pulled["cohens_kappa"] == 0.4
    rows = {(r["image_id"], r["phrase"], r["x"], r["y"]): r
            for r in warehouse.fetch_dicts("SELECT * FROM point_verdicts")}
    assert set(rows) == set(verified)
    tie = rows[("img-0", "red box", 20.5, 18.5)]
    assert tie["verdict"] is None and tie["annotators"] == ["1", str(reviewer)]
    assert tie["second_review"] and tie["project_id"] == project

    meta = run([pointing_dataset], warehouse)
    assert meta["points_left_out_by_qc"] == {"qc_rejected": 2, "qc_tied": 1}
    gone = first_no | {("img-0", "red box", 20.5, 18.5)}
    assert dataset_points(warehouse) == set(verified) - gone
    examples = {(r["image_id"], r["phrase"]): r
                for r in warehouse.fetch_dicts("SELECT * FROM pointing_examples")}
    assert len(examples) == 9 and all(r["human_verified"] for r in examples.values())
    assert examples[("img-3", "red box")]["qc_annotators"] == ["1", str(reviewer)]
