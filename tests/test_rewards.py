"""Speech reward components on hand-made transcripts: failures, languages, keywords, phonemes."""

import dataclasses
import math
import shutil

import pytest

import training.rewards.phonemes as reward_phonemes
from training.eval.metrics import error_counts
from training.rewards import reward_components
from training.rewards.composite import REWARD_NAMES, RewardWeights, combine, speech_rewards
from training.rewards.language import detect_script, language_match
from training.rewards.phonemes import (
    EspeakNotFoundError,
    accuracy_per,
    phoneme_error_rate,
    phonemize,
)
from training.rewards.text import keyword_recall, parse_keywords
from training.rewards.weighting import gated_accuracy, group_weights, weighted

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)"
)

SENTENCES = {
    "en": "The weather is nice today and I would like to go for a walk.",
    "es": "El tiempo es muy bueno hoy y me gustaría salir a caminar.",
    "fr": "Le temps est beau aujourd'hui et je voudrais aller me promener.",
    "de": "Das Wetter ist heute schön und ich möchte spazieren gehen.",
    "ru": "Сегодня хорошая погода, и я хочу пойти погулять.",
    "zh": "今天天气很好，我想去散步。",
}


# --------------------------------------------------------------------------- the old API stays


def test_reward_components_keys_unchanged():
    keys = set(reward_components("a b", "a b", 1.0))
    assert keys == {
        "accuracy_wer", "accuracy_cer", "hallucination_ratio", "empty", "repetition",
        "length_ratio", "overlong", "wer", "cer",
    }


def test_new_rewards_importable_from_training_rewards():
    from training import rewards

    for name in ("keyword_recall", "language_match", "phoneme_error_rate", "accuracy_per",
                 "gated_accuracy", "group_weights", "weighted", "parse_keywords"):
        assert callable(getattr(rewards, name))


# --------------------------------------------------------------------------- keywords


def test_parse_keywords_from_list_and_comma_string():
    assert parse_keywords(" aspirin , New York,,") == ("aspirin", "New York")
    assert parse_keywords(["aspirin", "  ", "New York "]) == ("aspirin", "New York")
    assert parse_keywords(None) == ()


def test_parse_keywords_rejects_non_strings_with_a_hint():
    with pytest.raises(TypeError, match="quote it"):
        parse_keywords(["ok", 2024])


def test_keywords_partly_present():
    hyp = "take two aspirin and call the pharmacy"
    assert keyword_recall([hyp], keywords=[["aspirin", "ibuprofen", "pharmacy", "doctor"]]) == [0.5]


def test_multi_word_keyword_needs_the_whole_sequence_in_order():
    assert keyword_recall(["we landed in New York"], keywords=[["new york"]]) == [1.0]
    assert keyword_recall(["new cars in york"], keywords=[["new york"]]) == [0.0]
    assert keyword_recall(["york new"], keywords=[["new york"]]) == [0.0]


def test_keyword_matches_whole_words_only():
    assert keyword_recall(["a category of things"], keywords=[["cat"]]) == [0.0]
    assert keyword_recall(["the cat."], keywords=["cat"]) == [1.0]


def test_keywords_are_normalised_like_the_transcript():
    hyp = "Doctor Smith said twenty five dollars"
    assert keyword_recall([hyp], keywords=["Dr. Smith, $25"]) == [1.0]


def test_no_keywords_and_empty_hypothesis():
    assert keyword_recall(["anything"], keywords=[[]]) == [1.0]
    assert keyword_recall(["anything"], keywords=["um, [noise]"]) == [1.0]  # normalise to nothing
    assert keyword_recall([""], keywords=[["aspirin"]]) == [0.0]
    assert keyword_recall([None], keywords=[["aspirin", "aspirin"]]) == [0.0]


# --------------------------------------------------------------------------- language


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_each_sentence_matches_its_own_language_only(lang):
    text = SENTENCES[lang]
    assert language_match([text], language=[lang]) == [1.0]
    others = [other for other in SENTENCES if other != lang]
    assert language_match([text] * len(others), language=others) == [0.0] * len(others)


@pytest.mark.parametrize("lang", ["es", "fr", "de", "ru", "zh"])
def test_wrong_language_output_is_not_english(lang):
    assert language_match([SENTENCES[lang]], language=["en"]) == [0.0]


def test_scripts():
    assert detect_script(SENTENCES["ru"]) == "CYRILLIC"
    assert detect_script(SENTENCES["zh"]) == "CJK"
    assert detect_script("नमस्ते दुनिया") == "DEVANAGARI"
    assert detect_script("مرحبا بالعالم") == "ARABIC"
    assert detect_script("１２３ ＡＢＣ") == "LATIN"  # full-width forms fold to Latin


def test_empty_and_letterless_text_match_any_language():
    assert language_match(["", None, "42 — 17"], language=["en", "ru", "en"]) == [1.0] * 3


def test_short_english_without_stop_words_gets_the_benefit_of_the_doubt():
    assert language_match(["Yes. Okay, thanks!"], language=["en"]) == [1.0]


def test_english_with_a_foreign_word_is_still_english():
    assert language_match(["She said привет to the man at the door"], language=["en"]) == [1.0]


def test_region_suffix_and_unknown_language():
    assert language_match(["Hello there, how are you?"], language=["en-US"]) == [1.0]
    with pytest.raises(ValueError, match="ISO 639-1"):
        language_match(["hello"], language=["klingon"])


# --------------------------------------------------------------------------- phonemes


def test_per_arithmetic_with_a_given_phonemizer():
    def chars(text: str, voice: str) -> tuple[str, ...]:
        return tuple(text.replace(" ", ""))

    assert phoneme_error_rate("abcd", "abcd", phonemizer=chars) == 0.0
    assert phoneme_error_rate("abcd", "abxd", phonemizer=chars) == 0.25
    assert phoneme_error_rate("ab", "", phonemizer=chars) == 1.0
    assert phoneme_error_rate("", "", phonemizer=chars) == 0.0
    assert math.isinf(phoneme_error_rate("", "a", phonemizer=chars))
    assert accuracy_per(["abababab"], reference=["ab"], phonemizer=chars) == [0.0]  # clipped


@needs_espeak
def test_phonemize_gives_ipa_symbols_without_stress_marks():
    phones = phonemize("The cat sat.")
    assert phones == ("ð", "ə", "k", "æ", "t", "s", "æ", "t")
    assert phonemize("judge") == ("dʒ", "ʌ", "dʒ")  # affricates are one symbol


@needs_espeak
def test_per_of_identical_and_different_texts():
    assert phoneme_error_rate("the cat sat on the mat", "The cat sat on the mat!") == 0.0
    per = phoneme_error_rate("the cat sat", "the dog sat")
    assert per == pytest.approx(3 / 8)  # k æ t -> d ɑː ɡ
    assert accuracy_per(["the dog sat"], reference=["the cat sat"]) == pytest.approx([5 / 8])
    assert phoneme_error_rate("the cat sat", "") == 1.0


@needs_espeak
def test_per_forgives_homophones_that_wer_counts():
    assert error_counts("their car", "there car").wer == 0.5
    assert phoneme_error_rate("their car", "there car") == 0.0
    assert phoneme_error_rate("ice cream", "I scream") == 0.0


@needs_espeak
def test_per_with_another_voice():
    assert phoneme_error_rate("hola amigo", "hola amigo", voice="es") == 0.0
    assert phoneme_error_rate("hola amigo", "hola amiga", voice="es") > 0.0


@needs_espeak
def test_unknown_voice_says_how_to_list_voices():
    with pytest.raises(RuntimeError, match="espeak-ng --voices"):
        phonemize("hello", voice="zz")  # "no-such-voice" would silently fall back to "no"


def test_missing_espeak_names_the_system_package(monkeypatch):
    monkeypatch.setattr(reward_phonemes, "ESPEAK_BINARY", "/nonexistent/espeak-ng")
    with pytest.raises(EspeakNotFoundError, match="apt-get install espeak-ng"):
        phoneme_error_rate("hello world", "hello word")


# --------------------------------------------------------------------------- gate


def test_gated_accuracy_on_both_sides_of_the_threshold():
    ref = ["red green blue black"]
    near_miss = ["red green blue block"]  # WER 0.25
    at_threshold = ["red grin blue block"]  # WER 0.5
    wrong = ["bread seen glue black"]  # WER 0.75
    assert gated_accuracy(near_miss, reference=ref) == [0.75]
    assert gated_accuracy(at_threshold, reference=ref) == [0.5]
    assert gated_accuracy(wrong, reference=ref) == [-1.0]
    assert gated_accuracy(wrong, reference=ref, threshold=0.8) == [0.25]


def test_gated_accuracy_sentence_level_failures():
    assert gated_accuracy([""], reference=["hello world"]) == [-1.0]  # empty
    loop = ["hello world world world world world"]
    assert gated_accuracy(loop, reference=["hello world"], failure_penalty=-0.3) == [-0.3]
    assert gated_accuracy(["thank you"], reference=["[noise]"]) == [-1.0]  # inf WER
    assert gated_accuracy([""], reference=[""]) == [1.0]


def test_gated_accuracy_rejects_a_penalty_that_pays_more_than_a_near_miss():
    with pytest.raises(ValueError, match="must be below"):
        gated_accuracy(["a"], reference=["a"], threshold=0.5, failure_penalty=0.6)
    with pytest.raises(ValueError, match="threshold"):
        gated_accuracy(["a"], reference=["a"], threshold=1.0)


# --------------------------------------------------------------------------- group weights


def test_worst_group_gets_the_largest_weight_and_the_mean_is_one():
    wer = {"us": 0.08, "indian": 0.15, "scottish": 0.25, "nigerian": 0.20}
    w = group_weights(wer)
    assert sorted(w, key=w.get) == sorted(wer, key=wer.get)
    assert max(w, key=w.get) == "scottish"
    assert sum(w.values()) / len(w) == pytest.approx(1.0, abs=1e-5)


def test_group_weights_are_clipped_and_still_average_one():
    w = group_weights({"a": 0.01, "b": 0.1, "c": 0.2, "d": 3.0}, floor=0.5, cap=2.0)
    assert w["a"] == 0.5 and w["d"] == 2.0
    assert all(0.5 <= v <= 2.0 for v in w.values())
    assert sum(w.values()) / 4 == pytest.approx(1.0, abs=1e-5)


def test_group_weights_clip_weighted_mean():
    wer = {"big": 0.1, "small": 0.4}
    sizes = {"big": 90, "small": 10}
    w = group_weights(wer, sizes=sizes)
    assert w["small"] > w["big"]
    assert (90 * w["big"] + 10 * w["small"]) / 100 == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="small"):
        group_weights(wer, sizes={"big": 90})


def test_group_weights_strength_and_degenerate_inputs():
    wer = {"a": 0.1, "b": 0.2}
    assert group_weights(wer, strength=0.0) == {"a": 1.0, "b": 1.0}
    soft, sharp = group_weights(wer, strength=0.5), group_weights(wer, strength=2.0)
    assert sharp["b"] - sharp["a"] > soft["b"] - soft["a"]
    assert group_weights({"a": 0.0, "b": 0.0}) == {"a": 1.0, "b": 1.0}
    assert group_weights({}) == {}
    with pytest.raises(ValueError, match="infinite"):
        group_weights({"a": 0.1, "silence": math.inf})
    with pytest.raises(ValueError, match="floor"):
        group_weights(wer, floor=1.5)


def test_weighted_uses_the_default_for_unseen_groups():
    weights = {"scottish": 2.0}
    assert weighted(0.5, "scottish", weights) == 1.0
    assert weighted(-1.0, "scottish", weights) == -2.0
    assert weighted(0.5, "unseen", weights, default=0.8) == 0.4


# --------------------------------------------------------------------------- combiner


def test_speech_rewards_logs_every_component_and_the_total():
    r = speech_rewards("call doctor smith today", "call doctor smith today", 2.0,
                       keywords="Dr Smith")
    assert set(reward_components("a", "a", 1.0)) < set(r)
    assert {"gated_accuracy", "keyword_recall", "language_match", "total"} <= set(r)
    assert r["total"] == pytest.approx(1.0 + 0.5 + 0.5)


def test_empty_hypothesis_is_penalised():
    r = speech_rewards("call doctor smith today", "", 2.0, keywords=["smith"])
    assert r["empty"] == 1.0 and r["gated_accuracy"] == -1.0 and r["keyword_recall"] == 0.0
    assert r["language_match"] == 1.0  # empty is the "empty" component's business
    assert r["total"] == pytest.approx(-1.0 - 1.0 + 0.5)


def test_repetition_loop_scores_below_a_near_miss():
    ref = "the meeting starts at nine"
    loop = speech_rewards(ref, "the meeting the meeting the meeting the meeting the meeting", 2.0)
    near = speech_rewards(ref, "the meeting starts at five", 2.0)
    assert loop["repetition"] > 0.5 and loop["gated_accuracy"] == -1.0
    assert near["gated_accuracy"] == 0.8
    assert loop["total"] < near["total"]


@pytest.mark.parametrize("lang", ["es", "ru"])
def test_wrong_language_output_loses_the_language_bonus(lang):
    r = speech_rewards(SENTENCES["en"], SENTENCES[lang], 4.0)
    assert r["language_match"] == 0.0
    assert r["total"] < speech_rewards(SENTENCES["en"], SENTENCES["en"], 4.0)["total"]


def test_plain_mapping_weights_and_unknown_names():
    components = {"accuracy_wer": 0.8, "repetition": 0.5, "wer": 0.2}
    assert combine(components, {"accuracy_wer": 1.0, "repetition": -0.5}) == pytest.approx(0.55)
    with pytest.raises(ValueError, match="known: .*accuracy_wer.*") as err:
        combine(components, {"acuracy_wer": 1.0})
    assert "acuracy_wer" in str(err.value)
    with pytest.raises(ValueError, match="known"):
        RewardWeights.from_mapping({"loops": -1.0})
    with pytest.raises(ValueError, match="unknown"):
        speech_rewards("a", "a", 1.0, weights={"bogus": 1.0})


def test_weight_on_a_component_that_was_not_computed():
    with pytest.raises(ValueError, match="voice="):
        speech_rewards("a b", "a b", 1.0, weights={"accuracy_per": 1.0})


def test_weight_on_a_non_finite_component():
    with pytest.raises(ValueError, match="length_ratio"):
        combine({"length_ratio": math.inf}, {"length_ratio": 1.0})


def test_reward_weights_defaults_penalise_hallucination():
    w = RewardWeights()
    for name in ("empty", "repetition", "overlong", "hallucination_ratio"):
        assert getattr(w, name) < 0
    assert set(REWARD_NAMES) == {f.name for f in dataclasses.fields(RewardWeights)}
    assert RewardWeights.from_mapping({"empty": -2}).empty == -2.0


@needs_espeak
def test_speech_rewards_with_phonemes():
    r = speech_rewards("their car is red", "there car is red", 2.0, voice="en-us",
                       weights=dataclasses.replace(RewardWeights(), accuracy_per=1.0))
    assert r["per"] == 0.0 and r["accuracy_per"] == 1.0
    assert r["total"] == pytest.approx(r["gated_accuracy"] + 0.5 + 0.5 + 1.0)
