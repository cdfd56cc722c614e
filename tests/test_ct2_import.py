"""Round trip HF Whisper → CTranslate2 → `import_ct2_whisper` → HF Whisper, and bad inputs.

The CTranslate2 side is made by ctranslate2's own converter
(`ctranslate2.converters.TransformersConverter`), which runs fine with
transformers 5.23 on the tiny model, so the import is checked against the
reference writer of the format, not against a writer of our own.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from models.testing import build_tiny_whisper
from models.whisper.ct2.importer import PROVENANCE_FILE, import_ct2_whisper
from models.whisper.ct2.reader import CT2ImportError, read_ct2_model

ctranslate2 = pytest.importorskip("ctranslate2")

SOT, NO_TIMESTAMPS = 50257, 50362


def _randomize(model: WhisperForConditionalGeneration, seed: int) -> None:
    """Give every parameter distinct random values (a fresh model has zero biases, unit norms)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            is_norm_scale = "layer_norm" in name and name.endswith("weight")
            param.copy_(1 + 0.1 * noise if is_norm_scale else 0.3 * noise)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random HF Whisper whose every weight is non-trivial."""
    path = build_tiny_whisper(tmp_path_factory.mktemp("hf") / "tiny")
    model = WhisperForConditionalGeneration.from_pretrained(path)
    _randomize(model, seed=1)
    model.save_pretrained(path)
    return path


def _convert(hf_dir: Path, out: Path, quantization: str | None = None) -> Path:
    """CTranslate2's own conversion of `hf_dir`, with tokenizer.json as faster-whisper has it."""
    converter = ctranslate2.converters.TransformersConverter(
        str(hf_dir), copy_files=["tokenizer.json"]
    )
    return Path(converter.convert(str(out), quantization=quantization, force=True))


@pytest.fixture(scope="module")
def ct2_dir(hf_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _convert(hf_dir, tmp_path_factory.mktemp("ct2") / "tiny")


@pytest.fixture(scope="module")
def imported(ct2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_ct2_whisper(ct2_dir, tmp_path_factory.mktemp("imported") / "tiny")


def _load(path: Path) -> WhisperForConditionalGeneration:
    return WhisperForConditionalGeneration.from_pretrained(path).eval()


def _features(seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(seed))


def _ct2_greedy(ct2_dir: Path, features: torch.Tensor, max_length: int) -> list[int]:
    """CTranslate2's greedy decode (fp32) after the English no-timestamps prompt."""
    model = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32")
    storage = ctranslate2.StorageView.from_array(np.ascontiguousarray(features.numpy()))
    result = model.generate(storage, [[SOT, NO_TIMESTAMPS]], beam_size=1, max_length=max_length)
    return list(result[0].sequences_ids[0])


def _hf_greedy(model: WhisperForConditionalGeneration, features: torch.Tensor, n: int) -> list[int]:
    """transformers' greedy decode; Whisper's generate returns the tokens after the prompt."""
    with torch.no_grad():
        out = model.generate(features, do_sample=False, num_beams=1, max_new_tokens=n)
    return [t for t in out[0].tolist() if t != model.generation_config.eos_token_id]


# --------------------------------------------------------------------------- round trip


def test_every_weight_round_trips(hf_dir: Path, imported: Path) -> None:
    original, back = _load(hf_dir).state_dict(), _load(imported).state_dict()
    assert set(original) == set(back)
    worst = max((original[k] - back[k]).abs().max().item() for k in original)
    assert worst <= 1e-7, worst  # fp32 → fp32: bit-exact in practice


def test_logits_match(hf_dir: Path, imported: Path) -> None:
    features = _features()
    decoder_ids = torch.tensor([[SOT, NO_TIMESTAMPS, 100, 2000, 30000, 50256]])
    with torch.no_grad():
        want = _load(hf_dir)(input_features=features, decoder_input_ids=decoder_ids).logits
        got = _load(imported)(input_features=features, decoder_input_ids=decoder_ids).logits
    assert want.std() > 1.0  # spread-out logits, so the greedy test below means something
    assert torch.allclose(want, got, atol=1e-5, rtol=0), (want - got).abs().max()


def test_greedy_matches_ctranslate2(ct2_dir: Path, imported: Path) -> None:
    features = _features(seed=3)
    ct2_tokens = _ct2_greedy(ct2_dir, features, max_length=40)
    assert len(ct2_tokens) >= 10
    assert _hf_greedy(_load(imported), features, len(ct2_tokens)) == ct2_tokens


def test_configs_tokenizer_and_provenance(hf_dir: Path, ct2_dir: Path, imported: Path) -> None:
    want, got = _load(hf_dir), _load(imported)
    for key in (
        "vocab_size", "d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads",
        "decoder_attention_heads", "encoder_ffn_dim", "decoder_ffn_dim", "num_mel_bins",
        "max_source_positions", "max_target_positions", "decoder_start_token_id",
        "eos_token_id", "pad_token_id",
    ):  # fmt: skip
        assert getattr(got.config, key) == getattr(want.config, key), key
    gen = got.generation_config
    assert gen.is_multilingual is False
    assert gen.forced_decoder_ids == [[1, NO_TIMESTAMPS]]
    assert gen.no_timestamps_token_id == NO_TIMESTAMPS
    assert gen.begin_suppress_tokens == [220, 50256]
    ct2_config = json.loads((ct2_dir / "config.json").read_text())
    assert gen.alignment_heads == ct2_config["alignment_heads"]
    processor = WhisperProcessor.from_pretrained(imported)
    text = " Hello there, general Kenobi."
    ids = processor.tokenizer(text, add_special_tokens=False).input_ids
    assert processor.tokenizer.decode(ids) == text
    assert processor.feature_extractor.feature_size == 80
    record = json.loads((imported / PROVENANCE_FILE).read_text())
    sha = hashlib.sha256((ct2_dir / "model.bin").read_bytes()).hexdigest()
    assert record["source_model_bin_sha256"] == sha
    assert record["source"] == str(ct2_dir.resolve())


def test_int8_model_is_dequantized(hf_dir: Path, tmp_path: Path) -> None:
    ct2 = _convert(hf_dir, tmp_path / "int8", quantization="int8")
    assert "int8" in read_ct2_model(ct2 / "model.bin").stored_dtypes.values()
    original = _load(hf_dir).state_dict()
    back = _load(import_ct2_whisper(ct2, tmp_path / "imported")).state_dict()
    for key, value in original.items():
        # int8 is scaled per output row (per out channel for convs): error ≤ half a step
        rows = value.reshape(value.shape[0], -1)
        step = rows.abs().amax(dim=1, keepdim=True) / 127 if value.ndim > 1 else 0.0
        error = (back[key].reshape(rows.shape) - rows).abs()
        assert torch.all(error <= step / 2 + 1e-6), key


def test_float16_output(ct2_dir: Path, tmp_path: Path) -> None:
    dest = import_ct2_whisper(ct2_dir, tmp_path / "fp16", dtype=torch.float16)
    record = json.loads((dest / PROVENANCE_FILE).read_text())
    assert record["dtype"] == "float16"
    model = WhisperForConditionalGeneration.from_pretrained(dest, dtype=torch.float16)
    assert next(model.parameters()).dtype == torch.float16


# --------------------------------------------------------------------------- bad input


def _assert_nothing_written(dest: Path) -> None:
    assert not dest.exists()
    assert not dest.parent.exists() or not any(dest.parent.glob(f".{dest.name}*"))


def test_missing_model_bin(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    dest = tmp_path / "out" / "model"
    with pytest.raises(FileNotFoundError, match="model.bin"):
        import_ct2_whisper(tmp_path / "src", dest)
    _assert_nothing_written(dest)
    assert not dest.parent.exists()


def test_truncated_model_bin(ct2_dir: Path, tmp_path: Path) -> None:
    src = shutil.copytree(ct2_dir, tmp_path / "src")
    data = (src / "model.bin").read_bytes()
    (src / "model.bin").write_bytes(data[: len(data) // 2])
    dest = tmp_path / "model"
    with pytest.raises(CT2ImportError, match=r"model\.bin is truncated"):
        import_ct2_whisper(src, dest)
    _assert_nothing_written(dest)


def _ct2_header(version: int, spec: str) -> bytes:
    """A model.bin with no variables: just enough to reach the checks on its header."""
    name = spec.encode() + b"\0"
    return struct.pack("<IH", version, len(name)) + name + struct.pack("<III", 1, 0, 0)


@pytest.mark.parametrize(
    ("version", "spec", "message"),
    [(6, "TransformerSpec", "not 'WhisperSpec'"), (99, "WhisperSpec", "binary version 99")],
)
def test_rejects_foreign_models(tmp_path: Path, version: int, spec: str, message: str) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model.bin").write_bytes(_ct2_header(version, spec))
    with pytest.raises(CT2ImportError, match=message):
        import_ct2_whisper(tmp_path / "src", tmp_path / "model")
    _assert_nothing_written(tmp_path / "model")


def test_missing_tokenizer(ct2_dir: Path, tmp_path: Path) -> None:
    src = shutil.copytree(ct2_dir, tmp_path / "src")
    (src / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        import_ct2_whisper(src, tmp_path / "model")
    _assert_nothing_written(tmp_path / "model")


def test_tokenizer_that_does_not_match_the_vocabulary(ct2_dir: Path, tmp_path: Path) -> None:
    src = shutil.copytree(ct2_dir, tmp_path / "src")
    vocab = json.loads((src / "vocabulary.json").read_text())
    vocab[100], vocab[101] = vocab[101], vocab[100]
    (src / "vocabulary.json").write_text(json.dumps(vocab))
    with pytest.raises(CT2ImportError, match="id 100"):
        import_ct2_whisper(src, tmp_path / "model")
    _assert_nothing_written(tmp_path / "model")


def test_failure_while_writing_leaves_nothing(
    ct2_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(WhisperProcessor, "save_pretrained", boom)
    with pytest.raises(OSError, match="disk full"):
        import_ct2_whisper(ct2_dir, tmp_path / "model")
    _assert_nothing_written(tmp_path / "model")


def test_existing_destination(ct2_dir: Path, imported: Path, tmp_path: Path) -> None:
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        import_ct2_whisper(ct2_dir, dest)
    assert (dest / "keep.txt").read_text() == "mine"
    import_ct2_whisper(ct2_dir, dest, overwrite=True)
    assert not (dest / "keep.txt").exists() and (dest / "model.safetensors").exists()
    assert not list(tmp_path.glob(".model*"))


# --------------------------------------------------------------------------- real weights


def _speak(text: str, path: Path) -> np.ndarray:
    """`text` spoken by espeak-ng, as 16 kHz float32 mono."""
    sf = pytest.importorskip("soundfile")
    soxr = pytest.importorskip("soxr")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    audio, rate = sf.read(path, dtype="float32")
    return soxr.resample(audio, rate, 16000).astype(np.float32)


@pytest.mark.slow
def test_real_tiny_en(tmp_path: Path) -> None:
    from models.bundled import bundled_whisper_dir

    src = bundled_whisper_dir()
    start = time.perf_counter()
    dest = import_ct2_whisper(src, tmp_path / "tiny.en")
    print(f"imported the bundled tiny.en in {time.perf_counter() - start:.2f} s")
    text = "The quick brown fox jumps over the lazy dog."
    audio = _speak(text, tmp_path / "utterance.wav")
    processor = WhisperProcessor.from_pretrained(dest)
    assert len(processor.tokenizer) == 51864  # tokenizer.json + the 1501 timestamp tokens
    assert processor.tokenizer.convert_ids_to_tokens(50363) == "<|0.00|>"
    features = processor(audio, sampling_rate=16000, return_tensors="pt").input_features
    ct2_tokens = _ct2_greedy(src, features, max_length=448)
    hf_tokens = _hf_greedy(_load(dest), features, 440)
    assert hf_tokens == ct2_tokens
    heard = processor.tokenizer.decode(hf_tokens, skip_special_tokens=True).lower().split()
    words = [w.strip(".,") for w in heard]
    expected = text.lower().strip(".").split()
    assert sum(w in words for w in expected) >= 0.7 * len(expected), words
