"""The image chain as a user runs it: a batch of odd images, ingested and labeled through Dagster
on tiny random models (captioner, Grounding DINO, SAM), down to the pointing dataset and COCO."""

import json

import numpy as np
import pycocotools.mask as mask_util
import pytest
from dagster import DagsterInstance, materialize
from PIL import Image, ImageDraw

from assets.image import CHECKS, LABELING
from assets.ingest import images
from labeling.image.chain import DetectParams, detection_rows, mask_rows
from labeling.testing import write_manifest
from models.roles import Detection, Mask
from models.tiny import build_tiny_blip, build_tiny_grounding_dino, build_tiny_sam
from pipelines.partitions import BATCHES
from resources.model_hub import ModelHub

CHAIN = ("image_captions", "image_phrases", "image_detections", "image_masks", "image_points",
         "image_point_checks", "pointing_dataset")
LOOSE = {"margin": 0.0, "min_box_iou": 0.0, "min_area_share": 0.0, "max_area_share": 1.0}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-vision")
    return ModelHub(device="cpu", captioner_model=str(build_tiny_blip(root / "blip")),
                    detector_model=str(build_tiny_grounding_dino(root / "gdino")),
                    segmenter_model=str(build_tiny_sam(root / "sam")))


def _shapes(mode: str, size=(160, 120), background="white"):
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 20, 70, 80), fill=(200, 30, 30))
    draw.ellipse((90, 30, 140, 90), fill=(30, 30, 200))
    return image if mode == "RGB" else image.convert(mode)


@pytest.fixture
def batch(tmp_path):
    """Five images: RGB, grey, CMYK JPEG, 16-bit PNG (no caption: the model writes one), and
    one whose caption names nothing to point at."""
    d = tmp_path / "imgs"
    d.mkdir()
    _shapes("RGB").save(d / "rgb.png")
    _shapes("L", (120, 96), "black").save(d / "grey.png")
    _shapes("CMYK", (128, 128)).save(d / "cmyk.jpg", quality=95)
    deep = np.asarray(_shapes("L", (150, 100))).astype(np.uint16) * 257
    Image.fromarray(deep).save(d / "deep.png")
    _shapes("RGB", (96, 96), "gray").save(d / "idea.png")
    return write_manifest(d / "m.jsonl", [
        {"image_filepath": "rgb.png", "text": "A red square next to a blue circle."},
        {"image_filepath": "grey.png", "text": "A white square and a grey circle."},
        {"image_filepath": "cmyk.jpg", "text": "A red box beside a blue ball."},
        {"image_filepath": "deep.png"},
        {"image_filepath": "idea.png", "text": "It was a good idea at the time."},
    ])


def run_chain(warehouse, hub, batch, config):
    warehouse.register_batch("b1", batch)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, ["b1"])
        result = materialize([images, *LABELING, *CHECKS], partition_key="b1", instance=instance,
                             resources={"warehouse": warehouse, "model_hub": hub},
                             run_config={"ops": config})
    assert result.success
    return {m.asset_key.to_user_string(): {k: getattr(v, "value", v) for k, v in m.metadata.items()}
            for m in (e.event_specific_data.materialization
                      for e in result.get_asset_materialization_events())}, result


def test_the_chain_turns_odd_images_into_a_verified_pointing_dataset(warehouse, hub, batch):
    meta, result = run_chain(warehouse, hub, batch, {
        "image_detections": {"config": {"box_threshold": 0.0, "text_threshold": 0.0,
                                        "max_side": 100}},
        "image_masks": {"config": {"max_side": 64}},
        "image_points": {"config": {"strategy": "random", "n": 2, "seed": 3}},
        "image_point_checks": {"config": LOOSE},
    })
    assert meta["images"]["ingested"] == 5
    for table in CHAIN[:-1]:
        assert warehouse.count(table, "b1") > 0, table
    sources = dict(warehouse.fetch("SELECT source, count(*) FROM image_captions GROUP BY 1"))
    assert sources == {"manifest": 4, "model": 1}
    # every model asset says what it ran and that the weights are random
    for name, folder in [("image_captions", "blip"), ("image_detections", "gdino"),
                         ("image_masks", "sam")]:
        assert meta[name]["weights"] == "random-tiny", name
        assert meta[name]["model"].endswith(folder), name
    assert meta["pointing_dataset"]["weights"] == "random-tiny"

    quarantined = warehouse.fetch_dicts("SELECT * FROM quarantine")
    assert {(q["asset"], q["source_path"].rsplit("/", 1)[-1]) for q in quarantined
            if q["reason"] == "no_phrases"} == {("image_phrases", "idea.png")}
    assert {q["reason"] for q in quarantined} <= {
        "no_phrases", "empty_mask", "point_ambiguous", "unverified_instance"}
    # with only the ambiguity check strict, random masks overlap: refused with what was measured
    refused = [q for q in quarantined if q["asset"] == "image_point_checks"]
    assert refused and all("other_masks_at_point=" in q["detail"] for q in refused)
    assert meta["image_point_checks"]["pass_rate"] < 1.0

    # boxes are in original pixels though the detector saw images shrunk to 100 px
    boxes = warehouse.fetch("SELECT d.x1, d.y1, i.width, i.height FROM image_detections d "
                            "JOIN images i USING (image_id)")
    assert all(x1 <= w and y1 <= h for x1, y1, w, h in boxes)
    assert any(max(x1, y1) > 100 for x1, y1, _, _ in boxes)

    # every verified point is inside its mask, decoded here by pycocotools itself
    verified = warehouse.fetch(
        "SELECT p.x, p.y, m.mask_counts, m.height, m.width FROM image_point_checks p "
        "JOIN image_masks m USING (image_id, region) WHERE p.verified")
    assert verified
    for x, y, counts, height, width in verified:
        mask = mask_util.decode({"size": [height, width], "counts": counts.encode()})
        assert mask.shape == (height, width) and mask[int(y), int(x)] == 1

    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"image_masks_well_formed": True, "pointing_dataset_points_in_masks": True}
    _dataset_is_usable(warehouse, meta["pointing_dataset"])


def _dataset_is_usable(warehouse, meta):
    from datasets import load_from_disk
    from pycocotools.coco import COCO

    from training.rewards.pointing import point_in_mask

    data = load_from_disk(meta["dataset"])
    assert len(data) == meta["examples"] > 0
    row = data[0]
    assert row["prompt"] == [{"role": "user", "content": f"Point at {row['phrase']}."}]
    assert row["images"][0].mode == "RGB" and row["images"][0].size == tuple(row["image_size"])
    assert {"masks", "points", "caption_source", "detector", "segmenter", "weights"} <= set(row)
    # the reward scores a row's own verified point as a hit
    answers = [" ".join(f"({x}, {y})" for x, y in (points[0] for points in r["points"]))
               for r in data]
    assert point_in_mask(answers, masks=data["masks"], image_size=data["image_size"],
                         scale="pixels") == [1.0] * len(data)
    lines = (warehouse.report_dir("pointing_dataset", "b1") / "pointing.jsonl").read_text()
    assert len(lines.splitlines()) == len(data)
    coco = COCO(meta["coco_json"])
    assert len(coco.getAnnIds()) == meta["masks"] and coco.loadImgs(coco.getImgIds())
    assert json.loads(lines.splitlines()[0])["masks"][0]["counts"]


class _Nothing:
    name = "stub"

    def detect(self, images, phrases, **_):
        return [[Detection((0, 0, 5, 5), 0.9, p[0])] if i else [] for i, p in enumerate(phrases)]

    def segment(self, image, boxes):
        return [Mask(np.zeros((image.size[1], image.size[0]), bool), 0.5, b) for b in boxes]


def test_images_without_boxes_and_empty_masks_are_quarantined():
    load = lambda path: Image.new("RGB", (20, 10))  # noqa: E731
    items = [{"image_id": "a", "source_path": "a.png", "phrases": ["cup"]},
             {"image_id": "b", "source_path": "b.png", "phrases": ["dog"]}]
    rows, bad = detection_rows(_Nothing(), items, DetectParams(), load=load)
    assert [r["image_id"] for r in rows] == ["b"]
    assert [(b["source_path"], b["reason"]) for b in bad] == [("a.png", "no_detections")]
    flat = {**rows[0], "source_path": "b.png", "region": 1, "x1": rows[0]["x0"]}
    masks, bad = mask_rows(_Nothing(), [{**rows[0], "source_path": "b.png"}, flat], load=load)
    assert masks == [] and [b["reason"] for b in bad] == ["degenerate_box", "empty_mask"]
