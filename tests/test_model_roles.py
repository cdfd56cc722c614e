"""Every model role, loaded through the hub from a tiny random model, runs and answers in shape."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from PIL import Image

from labeling.testing import speech_like
from models import roles
from models.tiny import BUILDERS
from resources.model_hub import ROLE_MODELS, ModelHub, ModelUnavailable

PROTOCOLS = {
    "asr": roles.ASR, "captioner": roles.Captioner, "detector": roles.Detector,
    "segmenter": roles.Segmenter, "vlm": roles.VLM, "text_llm": roles.TextLLM,
    "audio_lm": roles.AudioLM, "region_detector": roles.RegionDetector,
}


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory, tiny_whisper_dir):
    root = tmp_path_factory.mktemp("tiny_models")
    dirs = {role: str(build(root / role)) for role, build in BUILDERS.items()}
    dirs["asr"] = str(tiny_whisper_dir)
    dirs["region_detector"] = "bundled:silero-vad"
    return dirs


@pytest.fixture(scope="session")
def hub():
    return ModelHub(device="cpu")


@pytest.fixture(scope="session")
def models(tiny_dirs, hub):
    threads = torch.get_num_threads()
    loaded = {role: hub.load(role, path) for role, path in tiny_dirs.items()}
    assert torch.get_num_threads() == threads  # importing silero_vad sets it to 1: undone
    return loaded


def test_every_role_satisfies_its_protocol_and_only_its_own(models):
    assert set(models) == set(roles.ROLES) == set(PROTOCOLS)
    for role, model in models.items():
        assert isinstance(model, PROTOCOLS[role]), role
        others = [p for r, p in PROTOCOLS.items() if r != role and isinstance(model, p)]
        assert not others, f"{role} also passes for {others}"
        assert isinstance(model.name, str) and model.name


def test_captioner_captions_each_image(models):
    images = [Image.new("RGB", (40, 30), (200, 0, 0)), Image.new("L", (20, 50)),
              np.zeros((24, 24, 3), dtype=np.uint8)]
    captions = models["captioner"].caption(images, max_new_tokens=5)
    assert len(captions) == 3 and all(isinstance(c, str) for c in captions)
    prompted = models["captioner"].caption(images[:1], prompt="a photo of", max_new_tokens=3)
    assert prompted[0].startswith("a photo of")  # BLIP continues the prompt


def test_detector_boxes_are_in_original_pixels(models):
    detector = models["detector"]
    small, large = (Image.new("RGB", size, (200, 30, 30)) for size in [(120, 80), (240, 160)])
    phrases = [["red square", "cat"], ["red square", "cat"]]
    found = detector.detect([small, large], phrases, box_threshold=0.0, text_threshold=0.0)
    assert len(found) == 2 and found[0], "tiny model should keep its queries at threshold 0"
    for detections, (w, h) in zip(found, [(120, 80), (240, 160)], strict=True):
        assert all(isinstance(d, roles.Detection) for d in detections)
        assert all(0 <= d.box[0] <= d.box[2] <= w and 0 <= d.box[1] <= d.box[3] <= h
                   for d in detections)
        assert {d.phrase for d in detections} <= {"red square", "cat"}
        scores = [d.score for d in detections]
        assert scores == sorted(scores, reverse=True)
    # Same picture at twice the size: the processor sees the same pixels, boxes double.
    pairs = zip(sorted(found[0], key=lambda d: d.box), sorted(found[1], key=lambda d: d.box),
                strict=True)
    for a, b in pairs:
        np.testing.assert_allclose(np.array(b.box), 2 * np.array(a.box), rtol=1e-3, atol=1e-2)
    assert detector.detect([small], [["cat"]], box_threshold=1.0) == [[]]
    assert detector.detect([small, large], [[], ["cat"]], box_threshold=1.0) == [[], []]
    with pytest.raises(ValueError, match="phrases"):
        detector.detect([small], [["a.b"]])


def test_segmenter_masks_have_the_image_size(models):
    segmenter = models["segmenter"]
    image = Image.new("RGB", (120, 80), (10, 200, 10))
    boxes = [(10, 10, 50, 40), (0, 0, 120, 80), (60, 20, 110, 70)]
    masks = segmenter.segment(image, boxes)
    assert [m.mask.shape for m in masks] == [(80, 120)] * 3
    assert all(m.mask.dtype == bool and isinstance(m.iou, float) for m in masks)
    assert [m.box for m in masks] == [tuple(float(v) for v in b) for b in boxes]
    assert segmenter.segment(image, []) == []
    segmenter.boxes_per_pass = 1  # one embedding, boxes decoded one at a time: same masks
    try:
        one_by_one = segmenter.segment(image, boxes)
    finally:
        segmenter.boxes_per_pass = 64
    for a, b in zip(masks, one_by_one, strict=True):
        assert (a.mask == b.mask).all() and a.iou == pytest.approx(b.iou, abs=1e-5)


def test_vlm_answers_images_and_frame_lists(models):
    frames = [Image.new("RGB", (32, 24), (i * 40, 0, 0)) for i in range(3)]
    answers = models["vlm"].generate_with_images(
        [Image.new("RGB", (40, 30)), frames], ["What is this?", "What happens?"], max_new_tokens=4
    )
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    with pytest.raises(ValueError, match="prompts"):
        models["vlm"].generate_with_images([frames[0]], ["a", "b"])


def test_text_llm_batches_like_single_prompts(models):
    llm = models["text_llm"]
    prompts = ["hello", "describe the picture of a red square", [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "what is it"}]]
    batched = llm.generate(prompts, max_new_tokens=6)
    assert len(set(batched)) > 1  # the tiny model's greedy text differs by prompt
    assert batched == [llm.generate([p], max_new_tokens=6)[0] for p in prompts]
    sampled = llm.generate(["hello"], max_new_tokens=3, temperature=1.0)
    assert isinstance(sampled[0], str)


def test_audio_lm_answers_per_clip_at_any_rate(models):
    clips = [np.zeros(16_000, dtype=np.float32), speech_like(0.5, sample_rate=8_000)]
    answers = models["audio_lm"].generate_with_audio(
        clips[:1], ["What do you hear?"], max_new_tokens=3
    )
    assert len(answers) == 1 and isinstance(answers[0], str)
    resampled = models["audio_lm"].generate_with_audio(
        clips[1:], ["Is it speech?"], sample_rate=8_000, max_new_tokens=3
    )
    assert isinstance(resampled[0], str)


def test_region_detector_finds_speech_like_sound_and_nothing_in_silence(models):
    vad, sr = models["region_detector"], 16_000
    silence = np.zeros(sr, dtype=np.float32)
    voiced = np.concatenate([silence, speech_like(2.0, sample_rate=sr), silence])
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * sr) / sr)).astype(np.float32)
    found = vad.regions([voiced, silence, tone, silence[:100]])
    assert found[1:] == [[], [], []]
    [region] = found[0]
    assert region.label == "speech" and 0.5 < region.score <= 1.0
    assert 0.8 < region.start_s < 1.2 and 2.8 < region.end_s < 3.3


def test_hub_rejects_unknown_roles_by_listing_them(hub):
    with pytest.raises(ValueError, match="roles: asr, captioner, detector"):
        hub.load("painter")


def test_hub_offline_hub_id_fails_in_one_line(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable) as info:
        hub.load("captioner", "rlfoundry-tests/not-a-model")
    message = str(info.value)
    assert "\n" not in message and "'rlfoundry-tests/not-a-model'" in message
    assert "local folder" in message and "RLFOUNDRY_CAPTIONER_MODEL" in message
    with pytest.raises(ModelUnavailable, match="asr model 'rlfoundry-tests/whisper'"):
        hub.load("asr", "rlfoundry-tests/whisper")
    with pytest.raises(FileNotFoundError):
        hub.load("segmenter", "./no/such/model")


def test_hub_default_names_field_then_env_then_real_id(tiny_dirs, monkeypatch):
    monkeypatch.delenv("RLFOUNDRY_TEXT_LLM_MODEL", raising=False)
    assert ModelHub().default_name("text_llm") == "Qwen/Qwen2.5-0.5B-Instruct"
    monkeypatch.setenv("RLFOUNDRY_TEXT_LLM_MODEL", tiny_dirs["text_llm"])
    hub = ModelHub(device="cpu")
    assert hub.default_name("text_llm") == tiny_dirs["text_llm"]
    assert isinstance(hub.load("text_llm"), roles.TextLLM)
    assert ModelHub(text_llm_model="some/model").default_name("text_llm") == "some/model"
    assert ModelHub().default_name("region_detector") == "bundled:silero-vad"


def test_hub_defaults_match_the_implementations():
    constants = {"captioner": "DEFAULT_CAPTIONER", "detector": "DEFAULT_DETECTOR",
                 "segmenter": "DEFAULT_SEGMENTER", "vlm": "DEFAULT_VLM",
                 "text_llm": "DEFAULT_TEXT_LLM", "audio_lm": "DEFAULT_AUDIO_LM",
                 "region_detector": "BUNDLED_VAD"}
    for role, (module, cls, default) in ROLE_MODELS.items():
        loaded = importlib.import_module(module)
        assert hasattr(loaded, cls)
        assert getattr(loaded, constants[role]) == default, role
