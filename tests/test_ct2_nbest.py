"""The CTranslate2 N-best backend: tiny random Whisper (fast), the bundled tiny.en (slow)."""

from __future__ import annotations

import doctest
import json
import math
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import torch

import models.whisper.ct2_convert as ct2_convert
import models.whisper.ct2_nbest as ct2_nbest
from models.whisper.asr import WhisperASR
from models.whisper.ct2_convert import PROVENANCE_FILE, converted_whisper
from models.whisper.ct2_nbest import CT2WhisperASR, search_avg_logprob
from models.whisper.inputs import token_cap

SR = 16_000
OPTIONS = {"num_beams": 2, "num_samples": 2, "temperature": 1.0, "seed": 0, "batch_size": 2,
           "include_greedy": True}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ct2-cache")


@pytest.fixture(scope="module")
def ct2(tiny_whisper_dir, cache) -> CT2WhisperASR:
    return CT2WhisperASR.from_pretrained(str(tiny_whisper_dir), cache_dir=cache, threads=1,
                                         device="cpu")


@pytest.fixture(scope="module")
def hf(tiny_whisper_dir) -> WhisperASR:
    return WhisperASR.from_pretrained(str(tiny_whisper_dir), device="cpu")


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    """Noise clips of different lengths (so batches mix token caps and reorder clips)."""
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(int(SR * s))).astype(np.float32)
            for s in (1.5, 0.5, 1.0, 3.0)]


@pytest.fixture(scope="module")
def nbest(ct2, clips):
    return ct2.nbest(clips, **OPTIONS)


def test_conversion_is_cached_by_content(tiny_whisper_dir, tmp_path, monkeypatch):
    first = converted_whisper(tiny_whisper_dir, tmp_path)
    assert json.loads((first / PROVENANCE_FILE).read_text())["source"] == str(tiny_whisper_dir)

    class NoConversion:
        def __init__(self, *args, **kwargs):
            raise AssertionError("the cached conversion should have been reused")

    monkeypatch.setattr("ctranslate2.converters.TransformersConverter", NoConversion)
    assert converted_whisper(tiny_whisper_dir, tmp_path) == first
    assert CT2WhisperASR.from_pretrained(str(tiny_whisper_dir), cache_dir=tmp_path,
                                         threads=1).ct2_dir == first
    monkeypatch.undo()

    # other weights under the same folder name: another key, so a fresh conversion
    changed = tmp_path / "copy" / tiny_whisper_dir.name
    shutil.copytree(tiny_whisper_dir, changed)
    config = json.loads((changed / "generation_config.json").read_text())
    (changed / "generation_config.json").write_text(json.dumps({**config, "max_length": 60}))
    other = converted_whisper(changed, tmp_path)
    assert other != first and other.name.startswith(tiny_whisper_dir.name)
    assert not list(tmp_path.glob(".*.tmp"))  # temp folders are renamed or removed


@pytest.mark.parametrize("module", [ct2_convert, ct2_nbest])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed


def test_a_conversion_that_suppresses_other_tokens_is_refused(ct2, tiny_whisper_dir, tmp_path):
    stale = tmp_path / "stale"
    shutil.copytree(ct2.ct2_dir, stale)
    config = json.loads((stale / "config.json").read_text())
    (stale / "config.json").write_text(json.dumps({**config, "suppress_ids_begin": [220]}))
    with pytest.raises(ValueError, match="delete .*stale"):
        CT2WhisperASR(stale, tiny_whisper_dir, name="x")


def test_a_folder_without_weights_is_refused_by_name(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="holds no weights"):
        ct2_convert.checkpoint_digest(tmp_path)


def test_nbest_has_the_transformers_backends_shape(ct2, hf, clips, nbest):
    expected = hf.nbest(clips, **OPTIONS)
    assert len(nbest) == len(expected) == len(clips)
    for mine, theirs in zip(nbest, expected, strict=True):
        assert [(h.kind, h.rank, h.temperature) for h in mine] == [
            (h.kind, h.rank, h.temperature) for h in theirs]
        assert mine[0].text == theirs[0].text  # greedy
        for h in mine:
            assert math.isfinite(h.avg_logprob) and h.avg_logprob <= 0 and h.num_tokens >= 1
    for include_greedy, beams, samples in [(False, 3, 0), (False, 0, 3), (True, 1, 1)]:
        options = {**OPTIONS, "include_greedy": include_greedy, "num_beams": beams,
                   "num_samples": samples}
        got, want = ct2.nbest(clips[:2], **options), hf.nbest(clips[:2], **options)
        assert [[(h.kind, h.rank) for h in c] for c in got] == [
            [(h.kind, h.rank) for h in c] for c in want]


def test_greedy_text_and_order_match_transformers(ct2, hf, clips):
    assert ct2.transcribe(clips, batch_size=3) == hf.transcribe(clips, batch_size=3)
    calls = []
    ct2.transcribe(clips, batch_size=3, progress=lambda *a: calls.append(a))
    assert calls == [(3, 4), (4, 4)]


def test_seeded_samples_are_reproducible(ct2, tiny_whisper_dir, cache, clips, nbest):
    assert ct2.nbest(clips, **OPTIONS) == nbest  # the same call again
    fresh = CT2WhisperASR.from_pretrained(str(tiny_whisper_dir), cache_dir=cache, threads=1)
    assert fresh.nbest(clips, **OPTIONS) == nbest  # another instance (as another process)
    other = ct2.nbest(clips, **{**OPTIONS, "seed": 1})
    samples = [[h.text for c in run for h in c if h.kind == "sample"] for run in (nbest, other)]
    assert samples[0] != samples[1]
    assert [[h for h in c if h.kind != "sample"] for c in other] == [
        [h for h in c if h.kind != "sample"] for c in nbest]  # beams and greedy: no randomness


def test_each_clip_is_capped_even_beside_a_longer_clip(ct2, hf, clips, nbest):
    """The random model loops to the cap: the 0.5 s clip shares a batch with the 1.0 s one."""
    for audio, hyps in zip(clips, nbest, strict=True):
        cap = token_cap(audio.size / SR, ct2.tokens_per_second, ct2.extra_tokens, ct2.window)
        assert max(h.num_tokens for h in hyps) == cap + 1  # text tokens, then end-of-text
    assert nbest[1][0].num_tokens == hf.nbest(clips[1:2], num_beams=0, num_samples=0,
                                              include_greedy=True)[0][0].num_tokens


def test_avg_logprob_is_the_search_mean_or_teacher_forced_on_request(
    ct2, hf, tiny_whisper_dir, cache, clips, nbest
):
    # CTranslate2 reports sum / text tokens; the mean here also counts end-of-text
    assert search_avg_logprob(-1.5, 2, ended=True) == -1.0  # a sum of -3 over 3 tokens
    assert search_avg_logprob(-1.5, 2, ended=False) == -1.5  # stopped by the cap: 2 tokens
    assert math.isnan(search_avg_logprob(-math.inf, 0, ended=True))
    rescoring = CT2WhisperASR.from_pretrained(str(tiny_whisper_dir), cache_dir=cache, threads=1,
                                              rescore=True)
    rescored = rescoring.nbest(clips, **OPTIONS)
    for audio, mine, search in zip(clips, rescored, nbest, strict=True):
        assert [h.text for h in mine] == [h.text for h in search]
        expected = hf.score(audio, [h.text for h in mine])
        assert [h.num_tokens for h in mine] == [n for _, n in expected]
        assert [h.avg_logprob for h in mine] == pytest.approx([s for s, _ in expected], abs=1e-4)
        # the search's own mean is near the teacher-forced one (no suppression in this model)
        assert [h.avg_logprob for h in search] == pytest.approx(
            [h.avg_logprob for h in mine], abs=0.2)


def test_nbest_argument_checks(ct2, clips):
    with pytest.raises(ValueError, match="temperature must be positive"):
        ct2.nbest(clips[:1], num_samples=1, temperature=0.0)
    with pytest.raises(ValueError, match=">= 0"):
        ct2.nbest(clips[:1], num_beams=-1)
    with pytest.raises(ValueError, match="audio 0: expected float32"):
        ct2.nbest([clips[0].astype(np.float64)])
    assert ct2.nbest([]) == []


def test_model_hub_picks_the_backend(tiny_whisper_dir, tmp_path):
    from resources.model_hub import ModelHub

    hub = ModelHub(cache_dir=str(tmp_path), baseline_asr=str(tiny_whisper_dir), device="cpu")
    asr = hub.load_asr(backend="ct2")
    assert isinstance(asr, CT2WhisperASR) and asr.name == str(tiny_whisper_dir)
    assert asr.ct2_dir.parent == tmp_path / "ct2"
    assert isinstance(hub.load_asr(), WhisperASR)
    with pytest.raises(ValueError, match="Unknown ASR backend 'onnx'"):
        hub.load_asr(backend="onnx")


class _NoPromotions:
    """The registry before any promotion (an MLflow store takes seconds to set up)."""

    def champion(self, family):
        return None

    def current_round(self, family):
        return 1


def test_asr_hypotheses_asset_runs_on_the_ct2_backend(warehouse, tiny_whisper_dir, tmp_path):
    from dagster import DagsterInstance, materialize

    from assets.speech.labeling import asr_hypotheses
    from labeling.testing import write_tone
    from pipelines.partitions import BATCHES
    from resources.model_hub import ModelHub

    now = datetime.now(UTC)
    warehouse.write_partition("audio_clips", "b", [
        {"clip_id": f"c{i}".ljust(64, "0"), "source_path": str(write_tone(
            tmp_path / f"{i}.wav", seconds=s, seed=i)), "sample_rate": SR, "channels": 1,
         "duration_s": s, "rms_dbfs": -20.0, "peak_dbfs": -3.0, "text": "a tone",
         "tags": "{}", "ingested_at": now} for i, s in enumerate([0.5, 1.0])])
    warehouse.register_batch("b", tmp_path)
    hub = ModelHub(cache_dir=str(tmp_path / "models"), baseline_asr=str(tiny_whisper_dir),
                   device="cpu")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, ["b"])
        result = materialize(
            [asr_hypotheses], partition_key="b", instance=instance,
            resources={"warehouse": warehouse, "model_hub": hub, "model_registry": _NoPromotions()},
            run_config={"ops": {"asr_hypotheses": {"config": {
                "backend": "ct2", "num_beams": 2, "num_samples": 1}}}})
    assert result.success
    (event,) = result.get_asset_materialization_events()
    assert event.materialization.metadata["backend"].value == "ct2"
    rows = warehouse.fetch("SELECT kind, count(*), min(num_tokens), max(avg_logprob), "
                           "any_value(model) FROM asr_hypotheses GROUP BY 1 ORDER BY 1")
    assert [r[:2] for r in rows] == [("beam", 4), ("greedy", 2), ("sample", 2)]
    assert all(r[2] >= 1 and r[3] <= 0 and r[4] == str(tiny_whisper_dir) for r in rows)


def _sample_clips(count: int) -> tuple[list[np.ndarray], list[str]]:
    from labeling.ingest.audio import load_audio

    manifest = Path(__file__).resolve().parents[1] / "data" / "sample" / "audio" / "dev.jsonl"
    if not manifest.is_file():
        pytest.skip("the sample data is not generated")
    entries = [json.loads(line) for line in manifest.read_text().splitlines()[:count]]
    return ([load_audio(manifest.parent / e["audio_filepath"])[0] for e in entries],
            [e["text"] for e in entries])


@pytest.mark.slow
def test_real_tiny_en_greedy_text_equals_transformers_on_sample_clips(tmp_path):
    from models.bundled import BUNDLED_WHISPER, resolve_model

    audios, _ = _sample_clips(6)
    model_dir = resolve_model(BUNDLED_WHISPER, tmp_path / "models")
    hf = WhisperASR.from_pretrained(model_dir, device="cpu")
    ct2 = CT2WhisperASR.from_pretrained(model_dir, cache_dir=tmp_path / "ct2", threads=1)
    assert ct2.transcribe(audios) == hf.transcribe(audios)
    mine = ct2.nbest(audios, num_beams=4, num_samples=2, include_greedy=True)
    theirs = hf.nbest(audios, num_beams=4, num_samples=2, include_greedy=True)
    for m, t in zip(mine, theirs, strict=True):
        assert [(h.kind, h.rank) for h in m] == [(h.kind, h.rank) for h in t]
        assert m[0].text == t[0].text
        # identical text: the search mean is within a few hundredths of the teacher-forced one
        assert m[0].avg_logprob == pytest.approx(t[0].avg_logprob, abs=0.05)
