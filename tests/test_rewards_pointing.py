"""Pointing rewards: every answer format, coordinates mapped back, masks, shaping, F1, garbage."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from training.rewards import REWARDS, pointing
from training.rewards.pointing import (
    ParsedPoints,
    decode_rle,
    encode_rle,
    parse_points,
    point_f1,
    point_format,
    point_in_mask,
    to_original,
)

pytest.importorskip("pycocotools")  # masks are COCO RLE; the module imports it on first use

W, H = 200, 100  # the original image: 200 px wide, 100 px high


def _box(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


@pytest.fixture(scope="module")
def ring() -> dict:
    """A ring: the square [50, 150) × [20, 80) without its centre [80, 120) × [40, 60)."""
    mask = _box(50, 20, 150, 80)
    mask[40:60, 80:120] = False
    return encode_rle(mask)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(("text", "expected"), [
    ('<point x="12.5" y="40" alt="cup">cup</point>', ParsedPoints("molmo", ((12.5, 40.0),))),
    ("<point y='40' x='12.5'>cup</point>", ParsedPoints("molmo", ((12.5, 40.0),))),
    ('<points x1="10" y1="20" x2="30.5" y2="40" alt="cups">cups</points>',
     ParsedPoints("molmo", ((10.0, 20.0), (30.5, 40.0)))),
    ('<point x="1" y="2">a</point> and <point x="3" y="4">b</point>',
     ParsedPoints("molmo", ((1.0, 2.0), (3.0, 4.0)))),
    ("The cup is at (120, 48).", ParsedPoints("tuple", ((120.0, 48.0),))),
    ("[120.5, 48]", ParsedPoints("tuple", ((120.5, 48.0),))),
    ("(1, 2) and [3,4]", ParsedPoints("tuple", ((1.0, 2.0), (3.0, 4.0)))),
    ("[[1, 2], [3, 4]]", ParsedPoints("tuple", ((1.0, 2.0), (3.0, 4.0)))),
    ('{"point": [120, 48]}', ParsedPoints("json", ((120.0, 48.0),))),
    ('[{"point_2d": [120, 48], "label": "cup"}, {"point_2d": [10, 5], "label": "cup"}]',
     ParsedPoints("json", ((120.0, 48.0), (10.0, 5.0)))),
    ('```json\n[\n  {"point_2d": [120, 48], "label": "cup"}\n]\n```',
     ParsedPoints("json", ((120.0, 48.0),))),
    ('Sure! {"points": [[1, 2], [3, 4]]}', ParsedPoints("json", ((1.0, 2.0), (3.0, 4.0)))),
    ('{"x": 7, "y": 8}', ParsedPoints("json", ((7.0, 8.0),))),
    ('{"objects": [{"label": "cup", "point": {"x": 7, "y": 8}}]}',
     ParsedPoints("json", ((7.0, 8.0),))),
])
def test_every_format_parses(text, expected):
    assert parse_points(text) == expected


@pytest.mark.parametrize("text", [
    None, "", "   ", "no cup here", "I think it's on the left.", "<point>cup</point>",
    '<point x="12">cup</point>', "<point x=", "(1, )", "(1; 2)", "[1, 2, 3, 4]", "{",
    '{"point": [NaN, 1]}', '{"point": [1e999, 2]}', '{"point": [true, false]}',
    '{"point": "12, 40"}', "[" * 20_000, "{" * 20_000, "(" * 10_000 + ")" * 10_000,
    '{"a": ' * 5_000, "\x00\ud800 ☃ " * 1000, "1e5, 2e5", '{"point": [' + "9" * 400 + ", 2]}",
    '{"points": ' + "[" * 900 + "]" * 900 + "}", "<points x" + "9" * 5000 + '="1">',
])
def test_garbage_is_no_point_never_an_exception(text, ring):
    assert parse_points(text) == ParsedPoints(None)
    assert point_in_mask([text], masks=[ring], sigma=5.0) == [0.0]
    assert point_format([text]) == [0.0]


def test_format_term_wants_the_expected_format():
    answers = ['<point x="1" y="2">a</point>', '{"point": [1, 2]}', "(1, 2)", "nothing"]
    assert point_format(answers) == [1.0, 1.0, 1.0, 0.0]
    assert point_format(answers, expected="molmo") == [1.0, 0.0, 0.0, 0.0]
    assert point_format(answers, expected="json") == [0.0, 1.0, 0.0, 0.0]
    assert point_format(answers, expected="tuple") == [0.0, 0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="expected must be"):
        point_format(answers, expected="xml")


# --------------------------------------------------------------------------- coordinates


def test_mapping_back_from_a_resized_input():
    assert to_original([(50, 25)], scale="pixels", image_size=(W, H),
                       input_size=(100, 50)) == [(100.0, 50.0)]
    assert to_original([(50, 25)], scale="pixels", image_size=(W, H)) == [(50.0, 25.0)]
    assert to_original([(500, 500)], scale="norm1000", image_size=(W, H)) == [(100.0, 50.0)]
    assert to_original([(50, 50)], scale="percent", image_size=(W, H)) == [(100.0, 50.0)]
    with pytest.raises(ValueError, match="scale must be"):
        to_original([(1, 1)], scale="unit", image_size=(W, H))
    with pytest.raises(ValueError, match="input_size must be positive"):
        to_original([(1, 1)], scale="pixels", image_size=(W, H), input_size=(0, 10))


def test_reward_maps_points_back_by_scale_and_input_size():
    target = encode_rle(_box(90, 40, 110, 60))  # around (100, 50) of the original
    # the model saw the image at 400 × 200 (twice the size): (200, 100) there is (100, 50) here
    assert point_in_mask(["(200, 100)"], masks=[target], input_size=[(400, 200)]) == [1.0]
    assert point_in_mask(["(200, 100)"], masks=[target]) == [0.0]  # read as original pixels
    assert point_in_mask(['[{"point_2d": [500, 500]}]'], masks=[target], scale="norm1000",
                         input_size=[(400, 200)]) == [1.0]  # input size plays no part
    # Molmo tags are percent whatever the scale
    assert point_in_mask(['<point x="50" y="50">c</point>'], masks=[target],
                         input_size=[(400, 200)]) == [1.0]
    assert point_in_mask(["(100, 50)"], masks=[target], image_size=[(W, H)]) == [1.0]


def test_points_outside_the_image_score_zero(ring):
    outside = ["(-5, 50)", "(250, 50)", "(100, -1)", "(100, 101)",
               '<point x="120" y="50">c</point>', '{"point": [1200, 500]}']
    assert point_in_mask(outside, masks=[ring] * 6, sigma=50.0) == [0.0] * 6
    assert point_format(outside) == [1.0] * 6  # well formed, badly aimed
    # the far edge is still on the image: 100 % of the width is the last column
    edge = encode_rle(_box(W - 1, 0, W, H))
    assert point_in_mask(['<point x="100" y="50">c</point>'], masks=[edge]) == [1.0]


# --------------------------------------------------------------------------- masks


def test_in_and_out_of_a_ring(ring):
    answers = ["(60, 50)", "(100, 30)", "(100, 50)", "(85, 45)", "(10, 50)", "(199, 99)"]
    assert point_in_mask(answers, masks=[ring] * 6) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def test_distance_shaping_is_monotone_in_distance():
    target = encode_rle(_box(50, 40, 60, 60))  # columns 50..59
    answers = [f"({x}, 50)" for x in (55, 60, 61, 65, 75, 120)]  # 0, 1, 2, 6, 16, 61 px off
    shaped = point_in_mask(answers, masks=[target] * 6, sigma=10.0)
    assert shaped[0] == 1.0
    assert all(a > b for a, b in zip(shaped, shaped[1:], strict=False))
    assert shaped[1] == pytest.approx(math.exp(-1 / 10))
    assert shaped[3] == pytest.approx(math.exp(-6 / 10))
    assert point_in_mask(answers, masks=[target] * 6, sigma=0.0) == [1.0] + [0.0] * 5


def test_shaping_in_the_hole_of_a_ring_measures_to_the_nearest_ring_pixel(ring):
    # (100, 50) is 10 px from the ring below it (row 60), 11 above (row 39), 20 and 21 aside
    assert point_in_mask(["(100, 50)"], masks=[ring], sigma=4.0) == [
        pytest.approx(math.exp(-10 / 4))]


def test_f1_with_two_targets_and_three_predictions():
    left, right = encode_rle(_box(0, 0, 50, 50)), encode_rle(_box(150, 50, 200, 100))
    two_hits = '[{"point_2d": [10, 10]}, {"point_2d": [160, 60]}, {"point_2d": [100, 50]}]'
    same_target = '[{"point_2d": [10, 10]}, {"point_2d": [20, 20]}, {"point_2d": [100, 50]}]'
    all_hit = '[{"point_2d": [10, 10]}, {"point_2d": [160, 60]}]'
    rewards = point_in_mask([two_hits, same_target, all_hit, "(10, 10)"],
                            masks=[[left, right]] * 4)
    # F1 = 2·TP / (predictions + targets)
    assert rewards == [pytest.approx(0.8), pytest.approx(0.4), 1.0, pytest.approx(2 / 3)]


def test_greedy_matching_is_one_to_one_and_takes_the_best_pair_first():
    a, b = _box(0, 0, 50, 50), _box(45, 0, 100, 50)  # overlap in columns 45..49
    assert point_f1([(47, 10), (47, 20)], [a, b]) == 1.0  # each point to its own mask
    assert point_f1([(47, 10)] * 3, [a]) == pytest.approx(0.5)  # repeats are false positives
    far = _box(150, 50, 200, 100)
    near = point_f1([(52, 10), (160, 60)], [a, far], sigma=5.0)  # 3 px off a; in far
    assert near == pytest.approx((math.exp(-3 / 5) + 1.0) * 2 / 4)
    assert point_f1([], [a]) == 0.0


def test_rle_counts_as_str_bytes_or_run_lengths():
    mask = _box(10, 10, 20, 30)
    rle = encode_rle(mask)
    as_bytes = {"size": rle["size"], "counts": rle["counts"].encode()}
    runs, value, count = [], False, 0  # COCO's uncompressed RLE: column-major, zeros first
    for pixel in mask.flatten(order="F"):
        if pixel == value:
            count += 1
        else:
            runs.append(count)
            value, count = pixel, 1
    as_runs = {"size": [H, W], "counts": [*runs, count]}
    for form in (rle, as_bytes, as_runs):
        assert (decode_rle(form) == mask).all()
        assert point_in_mask(["(15, 20)", "(25, 20)"], masks=[form, [form]]) == [1.0, 0.0]


def test_masks_are_decoded_once_per_call(ring, monkeypatch):
    calls = []
    decode = pointing.decode_rle
    monkeypatch.setattr(pointing, "decode_rle", lambda rle: calls.append(1) or decode(rle))
    as_bytes = {"size": ring["size"], "counts": ring["counts"].encode()}
    point_in_mask(["(60, 50)"] * 8 + ["(60, 50)"], masks=[ring] * 8 + [as_bytes], sigma=3.0)
    assert len(calls) == 1
    point_in_mask(["(60, 50)"], masks=[ring])
    assert len(calls) == 2  # no cache between calls


def test_rows_without_a_target_do_not_apply(ring):
    assert point_in_mask(["(60, 50)"] * 3, masks=[None, [], ring]) == [None, None, 1.0]


def test_bad_columns_name_the_row(ring):
    with pytest.raises(ValueError, match="row 1: masks of"):
        point_in_mask(["(1, 1)"] * 2, masks=[ring] * 2, image_size=[(W, H), (H, W)])
    with pytest.raises(ValueError, match="masks of row 0: .*COCO RLE"):
        point_in_mask(["(1, 1)"], masks=[{"size": [H, W]}])
    with pytest.raises(TypeError, match="one value per completion"):
        point_in_mask(["(1, 1)"], masks=ring)
    with pytest.raises(ValueError, match="2 values for 1 completions"):
        point_in_mask(["(1, 1)"], masks=[ring], input_size=[(W, H)] * 2)
    with pytest.raises(ValueError, match="image_size of row 0 must be"):
        point_in_mask(["(1, 1)"], masks=[ring], image_size=[W])


# --------------------------------------------------------------------------- TRL's call


def test_conversational_completions_and_trl_keywords(ring):
    completions = [
        [{"role": "assistant", "content": "(60, 50)"}],
        [{"role": "assistant", "content": [{"type": "text", "text": '{"point": '},
                                           {"type": "text", "text": "[100, 50]}"}]}],
        [{"role": "assistant", "content": None}],
    ]
    extra = {"prompts": [[{"role": "user", "content": "point at the ring"}]] * 3,
             "completion_ids": [[1]] * 3, "trainer_state": object(), "image": [b"..."] * 3,
             "image_size": [(W, H)] * 3}
    assert point_in_mask(completions, masks=[ring] * 3, **extra) == [1.0, 0.0, 0.0]
    assert point_format(completions, **extra) == [1.0, 1.0, 0.0]


def test_registered_under_their_names_and_bound_with_partial(ring):
    assert REWARDS["point_in_mask"] is point_in_mask
    assert REWARDS["point_format"] is point_format
    shaped = functools.partial(REWARDS["point_in_mask"], sigma=10.0, scale="norm1000")
    assert shaped(["(500, 500)"], masks=[ring]) == [pytest.approx(math.exp(-10 / 10))]
