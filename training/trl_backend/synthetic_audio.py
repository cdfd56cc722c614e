"""Synthetic audio question datasets and a tiny learnable Qwen2-Audio, for tests and the
learning check.

* :func:`chain_audio_questions` writes tone clips with manifest regions and runs them through
  the audio chain's own functions (:func:`labeling.audio_qa.chain.region_rows`,
  ``duration_rows``, ``timelines_of``, ``question_rows``, then
  :func:`labeling.audio_qa.dataset.dataset_row` / ``export_dataset``): every kind and form
  the chain asks (multiple choice, numbers, sound names), as ``audio_qa.jsonl``.
* :func:`two_tone_rows` writes the learning check's task: a low tone, a pause, a high tone, of
  lengths that differ by at least the chain's margin; "Which sound is longer?" with options
  A (the first) and B (the second), right letters balanced. The durations come from the
  chain's :func:`~labeling.audio_qa.durations.timeline`, the curriculum bucket from its
  :func:`~labeling.audio_qa.buckets.question_bucket` (a 0.15-0.3 s pause: easy from 0.2 s,
  else medium); without the clip the best guess is right half the time.
* :func:`build_learning_qwen2_audio` builds a Qwen2-Audio small enough for CPU: a 1-layer,
  32-wide audio encoder over a 3 s window (300 log-mel frames, 75 audio tokens at most) and a
  2-layer, 64-wide Qwen2 whose byte-level BPE was trained on the task's text.

Example:
    >>> import json, tempfile, pathlib
    >>> path = two_tone_rows(pathlib.Path(tempfile.mkdtemp()), n=4, seed=0)
    >>> rows = [json.loads(line) for line in path.read_text().splitlines()]
    >>> sorted(r["answer"] for r in rows), rows[0]["options"], rows[0]["kind"]
    (['A', 'A', 'B', 'B'], ['the first sound', 'the second sound'], 'longest')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

SAMPLE_RATE = 16_000
TONES = {"low tone": 440.0, "high tone": 1320.0, "dog": 300.0, "rain": 700.0,
         "horn": 1500.0, "bird": 2500.0}
"""The pitch (Hz) each synthetic sound class is played at."""
QUESTION = "Which sound is longer, the first or the second?"
OPTIONS = ("the first sound", "the second sound")
LETTERED = tuple(f"{x}. {o}" for x, o in zip("AB", OPTIONS, strict=True))
WINDOW_S = 3.0


def write_clip(path: Path, regions: Sequence[Mapping], seconds: float, seed: int = 0) -> Path:
    """A mono 16 kHz WAV of ``seconds``: each region ``{label, start, end}`` a tone of its
    class's pitch (10 ms ramps), over faint noise."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    audio = rng.normal(0.0, 0.003, int(seconds * SAMPLE_RATE))
    for region in regions:
        start, end = (int(region[k] * SAMPLE_RATE) for k in ("start", "end"))
        t = np.arange(end - start) / SAMPLE_RATE
        tone = 0.3 * np.sin(2 * np.pi * TONES[region["label"]] * t)
        ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
        audio[start:end] += tone * ramp
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
    return path


def chain_audio_questions(folder: str | Path, *, clips: int = 3, seed: int = 0,
                          seconds: float = 4.0) -> Path:
    """Tone clips with manifest regions, through the audio chain to ``audio_qa.jsonl``
    (every kind and both forms; returns its path)."""
    from labeling.audio_qa.buckets import question_buckets
    from labeling.audio_qa.chain import (
        duration_rows,
        question_rows,
        region_rows,
        timelines_of,
        used_regions,
    )
    from labeling.audio_qa.dataset import dataset_row, export_dataset

    folder = Path(folder).resolve()
    rng = np.random.default_rng(seed)
    labels = ["dog", "rain", "horn"]
    chain_clips = []
    for i in range(clips):
        # three sounds of clearly different lengths and onsets: every comparison is asked
        lengths = rng.permutation([0.6, 1.5, 2.6])
        starts = rng.permutation([0.0, 0.7, 1.3])
        regions = [{"label": label, "start": float(s), "end": float(min(s + n, seconds))}
                   for label, s, n in zip(labels, starts, lengths, strict=True)]
        path = write_clip(folder / "clips" / f"c{seed}-{i}.wav", regions, seconds, seed + i)
        chain_clips.append({"clip_id": f"c{seed}-{i}", "source_path": str(path),
                            "duration_s": seconds, "tags": {"regions": regions}})
    regions, _ = region_rows(chain_clips, {}, detector="")
    questions, _ = question_rows(chain_clips, timelines_of(duration_rows(regions)),
                                 vocabulary=["bird", "music"], seed=seed)
    by_clip = {c["clip_id"]: c for c in chain_clips}
    buckets = question_buckets(questions, used_regions(regions))
    rows = [dataset_row(q, audio=by_clip[q["clip_id"]]["source_path"], duration_s=seconds,
                        bucket=bucket) for q, bucket in zip(questions, buckets, strict=True)]
    return export_dataset(rows, folder)["jsonl"]


def two_tone_rows(folder: str | Path, *, n: int, seed: int = 0) -> Path:
    """``n`` two-tone clips and their "which is longer" rows (see the module docstring) as
    the chain's dataset rows; returns the ``audio_qa.jsonl`` path."""
    from labeling.audio_qa.buckets import question_bucket
    from labeling.audio_qa.dataset import dataset_row, export_dataset
    from labeling.audio_qa.durations import timeline
    from labeling.audio_qa.regions import SoundRegion
    from labeling.questions.choices import CHOICE_HINT
    from labeling.questions.guards import Margin

    folder = Path(folder).resolve()
    rng = np.random.default_rng(seed)
    first_longer = np.concatenate([rng.permutation([True, False]) for _ in range((n + 1) // 2)])
    rows = []
    for i in range(n):
        while True:  # lengths 0.3-1.3 s whose difference passes the chain's margin
            short, long_ = sorted(rng.uniform(0.3, 1.3, 2))
            if long_ - short >= Margin(abs=0.3, rel=0.1).of(long_, short):
                break
        first, second = (long_, short) if first_longer[i] else (short, long_)
        gap = rng.uniform(0.15, 0.3)
        spans = [SoundRegion("low tone", 0.1, 0.1 + first),
                 SoundRegion("high tone", 0.1 + first + gap, 0.1 + first + gap + second)]
        stats = timeline(spans).classes
        letter = "A" if stats["low tone"].total_s > stats["high tone"].total_s else "B"
        clip_id = f"t{seed}-{i:04d}"
        path = write_clip(folder / "clips" / f"{clip_id}.wav",
                          [{"label": r.label, "start": r.start_s, "end": r.end_s}
                           for r in spans], WINDOW_S, seed * 100_000 + i)
        prompt = "\n".join([QUESTION, *LETTERED, CHOICE_HINT])
        question = {"question_id": clip_id, "clip_id": clip_id, "kind": "longest",
                    "form": "choice", "subject": None, "question": QUESTION, "prompt": prompt,
                    "answer": letter, "answer_text": OPTIONS["AB".index(letter)],
                    "answer_type": "choice", "value": None, "tolerance": None,
                    "options": list(OPTIONS), "regions_source": "manifest", "seed": seed}
        rows.append(dataset_row(question, audio=str(path), duration_s=WINDOW_S,
                                bucket=question_bucket(spans)))
    return export_dataset(rows, folder)["jsonl"]


def learning_tokenizer():
    """A byte-level BPE (ChatML and Qwen2-Audio specials) trained on the two-tone task's text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from labeling.questions.choices import CHOICE_HINT
    from labeling.questions.reasoning import FORMAT_INSTRUCTION

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>",
                "<|audio_eos|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    answers = [f"<think>{o}</think><answer>{x}</answer>"
               for x, o in zip("AB", OPTIONS, strict=True)]
    corpus = ["system", "You are a helpful assistant.", "user", "assistant", "Audio 1: ",
              QUESTION, *LETTERED, CHOICE_HINT,
              FORMAT_INSTRUCTION, *answers]
    tok.train_from_iterator(corpus * 8, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>")


def build_learning_qwen2_audio(dest: str | Path, seed: int = 0, *, text_width: int = 64,
                               audio_width: int = 32, conv_std: float = 0.1) -> Path:
    """A Qwen2-Audio a CPU trains in minutes (see the module docstring); processor with
    Qwen2-Audio's own chat template, its feature extractor's window cut to 3 s.

    The encoder's two convolutions start at ``conv_std``: at Qwen2-Audio's init (0.02) what a
    frame sounds like is ~1/10 of the sinusoidal position the encoder adds to it, and 200 SFT
    steps do not learn the task (train accuracy stays at chance); at 0.1 80 steps fit it."""
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioEncoderConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        Qwen2Config,
        WhisperFeatureExtractor,
    )

    dest, tokenizer = Path(dest), learning_tokenizer()
    frames = int(WINDOW_S * 100)  # 10 ms hop
    audio = Qwen2AudioEncoderConfig(d_model=audio_width, encoder_layers=1,
                                    encoder_attention_heads=2, encoder_ffn_dim=2 * audio_width,
                                    num_mel_bins=128, max_source_positions=frames // 2)
    text = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=text_width, intermediate_size=2 * text_width,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=512, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=None, tie_word_embeddings=True)
    config = Qwen2AudioConfig(audio_config=audio, text_config=text,
                              audio_token_id=tokenizer.convert_tokens_to_ids("<|AUDIO|>"))
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config)
    with torch.no_grad():
        for conv in (model.model.audio_tower.conv1, model.model.audio_tower.conv2):
            conv.weight.normal_(std=conv_std)
    model.save_pretrained(dest)
    Qwen2AudioProcessor(feature_extractor=WhisperFeatureExtractor(
        feature_size=128, chunk_length=int(WINDOW_S)), tokenizer=tokenizer).save_pretrained(dest)
    return dest
