"""The Whisper ASR adapter and duration batching: tiny random Whisper (fast), tiny.en (slow)."""

from __future__ import annotations

import doctest
import math
import re
import shutil
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import GenerationConfig, WhisperForConditionalGeneration, WhisperProcessor
from transformers.generation import logits_process

import models.batching
from models.batching import batches_by_duration
from models.whisper.asr import WhisperASR
from models.whisper.inputs import decoder_prompt, token_cap
from models.whisper.nbest import Hypothesis

SR = 16_000


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model's tensors are so small that extra threads only add contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def asr(tiny_whisper_dir) -> WhisperASR:
    return WhisperASR.from_pretrained(str(tiny_whisper_dir), device="cpu")


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    """Three noise clips of different lengths (so batching reorders them)."""
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(int(SR * s))).astype(np.float32) for s in (1.5, 0.5, 1.0)]


@pytest.fixture(scope="module")
def nbest(asr, clips) -> list[list[Hypothesis]]:
    return asr.nbest(clips, num_beams=2, num_samples=2, temperature=1.0, seed=0, batch_size=2)


def assert_same(got: list[list[Hypothesis]], expected: list[list[Hypothesis]]) -> None:
    """Same hypotheses; scores up to float rounding (batches pad the scoring pass differently)."""
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        assert [(h.text, h.kind, h.rank, h.temperature, h.num_tokens) for h in mine] == [
            (h.text, h.kind, h.rank, h.temperature, h.num_tokens) for h in theirs
        ]
        for a, b in zip(mine, theirs, strict=True):
            assert a.avg_logprob == pytest.approx(b.avg_logprob, abs=1e-5)


# ----------------------------------------------------------------------------- batching


@pytest.mark.parametrize("max_size, max_seconds", [(1, None), (3, None), (4, 10.0), (8, 2.5)])
def test_batches_by_duration_properties(max_size, max_seconds):
    durations = np.random.default_rng(1).choice([0.5, 1.0, 2.0, 3.0, 7.5], size=40).tolist()
    batches = batches_by_duration(durations, max_size, max_seconds)

    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(durations)))
    assert flat == sorted(flat, key=lambda i: (durations[i], i))
    for batch in batches:
        assert 1 <= len(batch) <= max_size
        padded = len(batch) * max(durations[i] for i in batch)
        assert max_seconds is None or padded <= max_seconds or len(batch) == 1
    assert batches == batches_by_duration(durations, max_size, max_seconds)


def test_batches_by_duration_edges_and_doctest():
    assert batches_by_duration([], 4) == []
    assert batches_by_duration([5.0, 1.0], 4, max_batch_seconds=2.0) == [[1], [0]]
    for bad in [dict(max_batch_size=0), dict(max_batch_size=2, max_batch_seconds=0.0)]:
        with pytest.raises(ValueError):
            batches_by_duration([1.0], **bad)
    with pytest.raises(ValueError, match="duration 1"):
        batches_by_duration([1.0, math.nan], 2)
    assert doctest.testmod(models.batching).failed == 0


# ----------------------------------------------------------------------------- n-best


def test_nbest_kinds_ranks_and_scores(asr, clips, nbest):
    assert len(nbest) == len(clips)
    for audio, hyps in zip(clips, nbest, strict=True):
        assert [(h.kind, h.rank) for h in hyps] == [
            ("beam", 0),
            ("beam", 1),
            ("sample", 0),
            ("sample", 1),
        ]
        assert [h.temperature for h in hyps] == [None, None, 1.0, 1.0]
        scores = asr.score(audio, [h.text for h in hyps])
        for hyp, (avg_logprob, num_tokens) in zip(hyps, scores, strict=True):
            assert math.isfinite(hyp.avg_logprob) and hyp.avg_logprob <= 0
            assert hyp.avg_logprob == pytest.approx(avg_logprob, abs=1e-4)
            assert hyp.num_tokens == num_tokens


def test_nbest_results_are_in_input_order(asr, clips, nbest):
    alone = asr.nbest([clips[1]], num_beams=2, num_samples=2, temperature=1.0, seed=0)
    assert_same(alone, [nbest[1]])


def test_nbest_include_greedy_matches_transcribe(asr, clips):
    hyps = asr.nbest(clips[:1], num_beams=1, num_samples=0, include_greedy=True)[0]
    assert [(h.kind, h.rank) for h in hyps] == [("greedy", 0), ("beam", 0)]
    assert hyps[0].text == asr.transcribe(clips[:1])[0]


def test_same_seed_same_hypotheses_whatever_the_batch_size(asr, clips, nbest):
    again = asr.nbest(clips, num_beams=2, num_samples=2, temperature=1.0, seed=0, batch_size=1)
    assert_same(again, nbest)


def test_other_seed_other_samples_same_beams(asr, clips, nbest):
    other = asr.nbest(clips, num_beams=2, num_samples=2, temperature=1.0, seed=1, batch_size=2)
    for mine, theirs in zip(nbest, other, strict=True):
        assert_same([mine[:2]], [theirs[:2]])
        assert [h.text for h in mine[2:]] != [h.text for h in theirs[2:]]


def test_results_follow_a_permutation_of_the_inputs(asr, clips, nbest):
    order = [2, 0, 1]
    permuted = [clips[i] for i in order]
    calls = []
    texts = asr.transcribe(clips, batch_size=2)
    permuted_texts = asr.transcribe(permuted, batch_size=2, progress=lambda *a: calls.append(a))
    assert permuted_texts == [texts[i] for i in order]
    assert calls == [(2, 3), (3, 3)]
    again = asr.nbest(permuted, num_beams=2, num_samples=2, temperature=1.0, seed=0, batch_size=2)
    assert_same(again, [nbest[i] for i in order])


def test_decoding_stops_at_the_duration_cap(asr, clips):
    cap = token_cap(0.5, asr.tokens_per_second, asr.extra_tokens, asr.window)
    assert cap == 4 + 16
    ids = asr._generate(asr._encode([clips[1]]), asr._caps([0.5]))
    assert ids.shape[1] <= cap + 1  # text tokens, then end-of-text at the latest
    if ids.shape[1] == cap + 1:
        assert int(ids[0, -1]) == asr.eos_id


@pytest.mark.parametrize("suppress", [False, True], ids=["begin-suppress-only", "suppress"])
def test_lean_generation_matches_transformers_stock_path(
    tiny_whisper_dir, clips, suppress, monkeypatch
):
    """No cross-attention reorder and prebuilt suppression masks change no hypothesis."""
    model = WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir).eval()
    processor = WhisperProcessor.from_pretrained(tiny_whisper_dir)
    if suppress:  # tiny.en suppresses ~90 tokens at every step; the random model none
        model.generation_config.suppress_tokens = list(range(1, model.config.vocab_size, 3))
        first = [t for t in range(model.config.vocab_size) if t % 11]  # all but multiples of 11
        model.generation_config.begin_suppress_tokens = first
    lean = WhisperASR(model, processor, name="lean")
    stock = WhisperASR(model, processor, name="stock")
    stock._stock_generate = True
    options = dict(num_beams=3, num_samples=2, temperature=1.0, include_greedy=True, batch_size=2)
    stock_calls = []  # transformers' own suppressors must not run on the lean path

    def counted(call):
        def wrapper(self, input_ids, scores):
            stock_calls.append(type(self).__name__)
            return call(self, input_ids, scores)

        return wrapper

    for name in ("SuppressTokensLogitsProcessor", "SuppressTokensAtBeginLogitsProcessor"):
        cls = getattr(logits_process, name)
        monkeypatch.setattr(cls, "__call__", counted(cls.__call__))
    got = lean.nbest(clips, **options)
    assert not stock_calls
    expected = stock.nbest(clips, **options)
    assert stock_calls
    assert_same(got, expected)
    if suppress:  # and the suppression did bite
        ids = lean._generate(
            lean._encode(clips), lean._caps([1.0] * 3), num_beams=3, rows_per_clip=3
        )
        assert not set(model.generation_config.suppress_tokens) & set(ids.flatten().tolist())
        assert (ids[:, 0] % 11 == 0).all()


def _plain_score(asr: WhisperASR, audio: np.ndarray, text: str) -> float:
    """Mean log-probability of " text" + end-of-text from one full forward pass, no cache."""
    target = asr.processor.tokenizer(" " + text, add_special_tokens=False).input_ids + [asr.eos_id]
    features = asr.processor.feature_extractor(audio, sampling_rate=SR, return_tensors="pt")
    inputs = torch.tensor([asr.prompt_ids + target[:-1]])
    with torch.no_grad():
        logits = asr.model(input_features=features.input_features, decoder_input_ids=inputs).logits
    logprobs = logits[0, len(asr.prompt_ids) - 1 :].log_softmax(-1)
    return float(logprobs.gather(1, torch.tensor(target)[:, None]).mean())


def test_scores_match_a_plain_forward_pass_across_clips(asr, clips):
    texts = ["hello world", "a", "the cat sat on the mat and looked at the dog", "hello world"]
    owners = [1, 0, 1, 2]
    scores = asr._score(asr._encode(clips), owners, texts)
    for clip, text, (avg_logprob, num_tokens) in zip(owners, texts, scores, strict=True):
        assert avg_logprob == pytest.approx(_plain_score(asr, clips[clip], text), abs=1e-4)
        text_ids = asr.processor.tokenizer(" " + text, add_special_tokens=False).input_ids
        assert num_tokens == len(text_ids) + 1
    assert scores[0] != scores[3]  # same text, other clip


def test_score_of_empty_text_is_end_of_text_alone(asr, clips):
    ((avg_logprob, num_tokens),) = asr.score(clips[0], [""])
    assert num_tokens == 1 and avg_logprob < 0


# ----------------------------------------------------------------------------- validation


def _bad_audio(kind: str) -> np.ndarray:
    return {
        "empty": np.zeros(0, dtype=np.float32),
        "float64": np.zeros(SR, dtype=np.float64),
        "stereo": np.zeros((2, SR), dtype=np.float32),
        "too long": np.zeros(31 * SR, dtype=np.float32),
        "nan": np.full(SR, np.nan, dtype=np.float32),
    }[kind]


@pytest.mark.parametrize("kind", ["empty", "float64", "stereo", "too long", "nan"])
def test_invalid_audio_is_refused_by_index(asr, clips, kind):
    batch = [clips[0], _bad_audio(kind)]
    with pytest.raises(ValueError, match="audio 1"):
        asr.transcribe(batch)
    with pytest.raises(ValueError, match="audio 1"):
        asr.nbest(batch, num_beams=1, num_samples=1)
    with pytest.raises(ValueError, match="audio 0"):
        asr.score(_bad_audio(kind), ["hello"])


def test_nbest_argument_checks(asr, clips):
    with pytest.raises(ValueError, match="temperature"):
        asr.nbest(clips[:1], num_samples=1, temperature=0.0)
    with pytest.raises(ValueError, match="num_beams"):
        asr.nbest(clips[:1], num_beams=-1)


# ----------------------------------------------------------------------------- prompt


def _fake_model(multilingual: bool | None, vocab_size: int = 51864) -> SimpleNamespace:
    generation = GenerationConfig(decoder_start_token_id=50257)
    generation.is_multilingual = multilingual
    config = SimpleNamespace(decoder_start_token_id=50257, vocab_size=vocab_size)
    return SimpleNamespace(generation_config=generation, config=config)


def test_english_only_models_get_no_language_or_task_tokens(asr):
    tokenizer = asr.processor.tokenizer
    assert asr.prompt_ids == [50257, 50362]
    assert decoder_prompt(_fake_model(False), tokenizer, "en") == [50257, 50362]
    with pytest.raises(ValueError, match="English-only"):
        decoder_prompt(_fake_model(False), tokenizer, "fr")


def test_multilingual_models_get_language_and_task(asr):
    tokenizer = asr.processor.tokenizer
    en, fr, transcribe = 50258, 50264, 50358
    expected = [50257, en, transcribe, 50362]
    assert decoder_prompt(_fake_model(True), tokenizer, "en") == expected
    assert decoder_prompt(_fake_model(True), tokenizer, "English") == expected
    assert decoder_prompt(_fake_model(None, vocab_size=51865), tokenizer, None) == expected
    assert decoder_prompt(_fake_model(True), tokenizer, "fr")[1] == fr
    with pytest.raises(ValueError, match=re.escape("no <|xx|>")):
        decoder_prompt(_fake_model(True), tokenizer, "xx")


# ----------------------------------------------------------------------------- real weights


def _espeak(text: str, tmp_path) -> np.ndarray:
    """`text` spoken by espeak-ng, as float32 mono 16 kHz."""
    import soundfile
    import soxr

    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
    audio, rate = soundfile.read(wav, dtype="float32")
    return soxr.resample(audio, rate, SR).astype(np.float32)


def _share_of_words(reference: str, hypothesis: str) -> float:
    words = {w.strip(".,").lower() for w in hypothesis.split()}
    expected = [w.strip(".,").lower() for w in reference.split()]
    return sum(w in words for w in expected) / len(expected)


@pytest.mark.slow
def test_real_tiny_en_transcribes_synthetic_speech(tmp_path):
    ct2_import = pytest.importorskip("models.whisper.ct2.importer")
    if not hasattr(ct2_import, "import_ct2_whisper"):
        pytest.skip("models.whisper.ct2.importer has no import_ct2_whisper yet")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from models.bundled import bundled_whisper_dir

    model_dir = ct2_import.import_ct2_whisper(bundled_whisper_dir(), tmp_path / "tiny.en")
    sentence = "Please call me tomorrow morning about the meeting with the new team."
    audio = _espeak(sentence, tmp_path)
    asr = WhisperASR.from_pretrained(str(model_dir), device="cpu")

    greedy = asr.transcribe([audio])[0]
    hyps = asr.nbest([audio], num_beams=4, num_samples=2)[0]
    assert _share_of_words(sentence, greedy) >= 0.75, greedy
    assert _share_of_words(sentence, hyps[0].text) >= 0.75, hyps[0].text
    assert hyps[0].avg_logprob > -1.0

    # Whisper's own generate (prompt and token suppression from the model) agrees on greedy text
    features = asr.processor.feature_extractor(audio, sampling_rate=SR, return_tensors="pt")
    reference = asr.model.generate(features.input_features)
    assert asr.processor.tokenizer.decode(reference[0], skip_special_tokens=True).strip() == greedy

    # the lean beam search and suppression give exactly transformers' stock hypotheses
    asr._stock_generate = True
    assert_same([asr.nbest([audio], num_beams=4, num_samples=2)[0]], [hyps])


def test_labeling_skips_a_clip_longer_than_whisper_takes_with_its_reason(tiny_whisper_dir,
                                                                        tmp_path):
    """One long clip (ingested with a raised max_seconds) never aborts a labeling partition."""
    from labeling.asr_labels import NBestParams, hypothesis_rows
    from labeling.testing import write_tone
    from models.whisper.asr import WhisperASR

    clips = [{"clip_id": f"c{i}", "source_path": str(write_tone(tmp_path / f"{i}.wav",
                                                               seconds=s, seed=i))}
             for i, s in enumerate([1.0, 40.0])]
    import soundfile as sf

    def load(path):
        audio, _ = sf.read(path, dtype="float32")
        return audio

    asr = WhisperASR.from_pretrained(tiny_whisper_dir)
    rows, failures = hypothesis_rows(asr, clips, NBestParams(num_beams=2, num_samples=0), load)
    assert {r["clip_id"] for r in rows} == {"c0"}
    (failure,) = failures
    assert failure["reason"] == "too_long" and "is 40.0 s long" in failure["detail"]
