"""N-best labeling throughput: rlfoundry (transformers) against CTranslate2, same audio and CPU.

Run (from the repository root):

    .venv/bin/python benchmarks/nbest_throughput.py [--limit N]

Options: `--limit N` takes the first N clips of the manifest (default 40 of the
60 in `data/sample/audio/dev.jsonl`: all 60 took ~10 minutes on 2 shared cores,
more than the ~8 minutes this benchmark should take; `--limit 0` takes all);
`--manifest PATH` another NeMo-style JSONL manifest; `--batch-size B`
(default 8, rlfoundry's default);
`--threads T` (default 2: `torch.set_num_threads(T)` and CTranslate2
`intra_threads=T, inter_threads=1`); `--cache-dir DIR` where the bundled
CTranslate2 tiny.en is imported as a transformers model (default
`.rlfoundry/models`, imported once, ~10 s; rlfoundry's CTranslate2 backend
converts it once more into `<cache-dir>/ct2`, ~1 s); `--profile` also runs one batch of
the rlfoundry N-best under `torch.profiler` and records the top operators;
`--out PATH` (default `benchmarks/results/nbest_throughput.json`).
HF_HUB_OFFLINE=1 is set if unset. The default run (40 clips) takes 5-8
minutes on 2 shared cores depending on their load, most of it in the
rlfoundry (transformers) N-best row; `--limit 16 --threads 1` takes ~2 minutes.

What is compared. Every row labels the same clips, batched the same way
(`models.batching.batches_by_duration`, `--batch-size` clips of similar length
per batch), on the same threads, after an untimed 2-clip warm-up per backend:

* `rlfoundry nbest`: `WhisperASR.nbest(audios, num_beams=4, num_samples=4,
  temperature=0.7, include_greedy=True, batch_size=8)` on the transformers
  model imported from the bundled CTranslate2 weights (`resolve_model(
  "bundled:whisper-tiny.en", cache_dir)`), float32, SDPA attention: per batch
  the mel features and the encoder once, then greedy, 4-beam search and 4
  temperature-0.7 samples (three `generate` calls), then every hypothesis
  (9 per clip) re-scored teacher-forced for its `avg_logprob`.
* `ct2 nbest`: `ctranslate2.models.Whisper` on the original bundled folder
  (`bundled_whisper_dir()`), `compute_type` float32 and, as an extra row,
  int8. Per batch: the same `WhisperFeatureExtractor` features (the imported
  model's own feature extractor) as a `StorageView` [batch, 80, 3000],
  `Whisper.encode` once, then three `generate` calls on the encoded features
  with the prompt [<|startoftranscript|>, <|notimestamps|>]: greedy
  (`beam_size=1`), beams (`beam_size=4, num_hypotheses=4`) and samples
  (`beam_size=1, sampling_topk=0` = the full distribution,
  `sampling_temperature=0.7, num_hypotheses=4`), all with
  `return_scores=True`; ids are decoded to text with the same tokenizer.
  Token suppression is the same on both sides (the imported generation config
  carries CTranslate2's `suppress_ids` / `suppress_ids_begin`).
* `rlfoundry transcribe` vs `ct2 greedy`: plain greedy transcripts
  (`WhisperASR.transcribe`; `generate(features, beam_size=1)`, encoder
  inside).
* `rlfoundry ct2 nbest` / `rlfoundry ct2 transcribe`: rlfoundry's own
  CTranslate2 backend (`models.whisper.ct2_nbest.CT2WhisperASR`, what
  `asr_hypotheses` runs with `backend: ct2`) on the same imported transformers
  checkpoint, converted by CTranslate2's `TransformersConverter` into
  `<cache-dir>/ct2` (once; the conversion is timed and reported apart), float32,
  `intra_threads=T`. The same N-best set with the same `nbest` arguments:
  `avg_logprob` from the search scores (no re-scoring), per-clip token caps,
  and one model reload per call to seed its sampling (see that module). Its
  rows sit next to the reference `ct2 float32` rows: same clips, batches and
  threads, in the same process.

Token caps. rlfoundry lets a clip of d seconds emit at most
cap = ceil(8 d) + 16 text tokens, then forces end-of-text (at most cap + 1
decoder steps). CTranslate2 takes one `max_length` per call and, for Whisper,
halves it: `src/models/whisper.cc` sets the decoding limit to
min(max_length / 2, max_length - prompt prefix) (half the 448-token context
is reserved for previous-text prompts); checked here: max_length=40 allows 20
generated tokens. So a ct2 batch gets max_length = 2 (max cap in batch + 1),
the same cap + 1 decoder steps, and its hypotheses are then cut to each clip's
own cap. Batches hold clips of similar length, so the batch maximum is close.

What each side computes that the other does not. rlfoundry re-scores every
hypothesis teacher-forced (text re-tokenized with a leading space, plus
end-of-text, under the raw model: temperature 1, no suppression): one prompt
pass per clip plus one decoder pass over all 9 texts and the LM head over
their tokens; its samples use a seeded per-clip random stream (inverse-CDF
over a softmax of the full vocabulary per step, in Python logits processors).
CTranslate2 returns scores from the search itself (`return_scores`: summed
log-probabilities after token suppression, divided by the hypothesis length;
temperature-1 log-probabilities for samples too), and does no re-scoring;
its samples come from its own global random generator (seeded with
`ctranslate2.set_random_seed(0)`), not per clip. Beam stopping rules differ
too (transformers stops when no beam can beat the finished ones; ct2 stops
at `beam_size` finished hypotheses, patience 1). The JSON records how often
the texts agree, how far ct2's greedy score is from rlfoundry's
`avg_logprob` for identical greedy texts, and each backend's corpus WER
against the manifest's references (greedy, best beam, oracle of the 9).

Measured per row: wall seconds of the timed call(s) (feature extraction and
decoding ids to text included on both sides; model loading and audio
decoding excluded), process CPU seconds, clips/s, real-time factor
(processing seconds / audio seconds; < 1 is faster than real time) and
hypotheses/s. For rlfoundry N-best, a phase breakdown over the whole run
(features, encoder, greedy / beam / sample `generate`, each split into
decoder forward, LM head and the rest of `generate`; scoring) comes from
wrappers and forward hooks on the loaded instance (no project code is
changed; their overhead is microseconds per call). The box is shared: the
load average is recorded before and after; wall times include any wait for a
core. Process CPU seconds (all threads) are recorded too, but they count
OpenMP threads spin-waiting, so they overstate useful work. On a busy 2-core
box, 2 threads can be slower than 1 (every parallel op waits at a barrier for
a descheduled thread; a `torch.isin` over the vocabulary took 300 ms with 2
threads and 8 ms with 1 here): `--threads 1` gives steadier numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import math
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ctranslate2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from labeling.ingest.audio import load_audio  # noqa: E402
from models.batching import batches_by_duration  # noqa: E402
from models.bundled import BUNDLED_WHISPER, bundled_whisper_dir, resolve_model  # noqa: E402
from models.whisper.asr import WhisperASR  # noqa: E402
from models.whisper.ct2_nbest import CT2WhisperASR  # noqa: E402
from models.whisper.inputs import token_cap  # noqa: E402
from training.eval.metrics import error_counts  # noqa: E402

DEFAULT_MANIFEST = ROOT / "data" / "sample" / "audio" / "dev.jsonl"
DEFAULT_CACHE = ROOT / ".rlfoundry" / "models"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "nbest_throughput.json"
DEFAULT_LIMIT = 40  # all 60 dev clips took ~10 min on 2 shared cores; the budget is ~8 min
WARM_UP_CLIPS = 2
SAMPLE_RATE = 16_000
NUM_BEAMS, NUM_SAMPLES, TEMPERATURE = 4, 4, 0.7
HYPS_PER_CLIP = 1 + NUM_BEAMS + NUM_SAMPLES  # greedy + beams + samples


# ----------------------------------------------------------------------------- inputs


def read_clips(manifest: Path, limit: int | None) -> list[dict]:
    """The first `limit` audio entries of a JSONL manifest, decoded to 16 kHz float32 mono."""
    if not manifest.is_file():
        raise SystemExit(
            f"{manifest} does not exist; generate the sample data first "
            "(.venv/bin/python scripts/make_sample_data.py --seed 20261121 --out data/sample) "
            "or pass --manifest"
        )
    clips = []
    with open(manifest, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            entry = json.loads(line)
            if "audio_filepath" not in entry:
                continue
            path = Path(entry["audio_filepath"])
            path = path if path.is_absolute() else manifest.parent / path
            audio = load_audio(path)[0]
            clips.append({"path": str(path), "audio": audio, "seconds": audio.size / SAMPLE_RATE,
                          "snr_db": entry.get("snr_db"), "text": entry.get("text")})
            if limit is not None and len(clips) >= limit:
                break
    if not clips:
        raise SystemExit(f"{manifest} names no audio clips")
    return clips


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# ----------------------------------------------------------------------------- rlfoundry side


class PhaseTimer:
    """Wall seconds per phase of `WhisperASR.nbest`, from instance wrappers and forward hooks.

    Methods are wrapped on the instance only (the class is untouched). While a
    phase runs, forward hooks on the decoder and the LM head add their time to
    "<phase>.decoder" / "<phase>.lm_head"; the encoder hook to "encoder".
    """

    WRAPPED = {"_encode": "encode", "_greedy_drafts": "greedy", "_beam_drafts": "beam",
               "_sample_drafts": "sample", "_scored": "score"}

    def __init__(self, asr: WhisperASR):
        self.asr = asr
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.phase = "other"
        self.handles = []
        self.originals = {}

    def install(self) -> None:
        for attr, phase in self.WRAPPED.items():
            original = getattr(self.asr, attr)
            self.originals[attr] = original
            setattr(self.asr, attr, self._wrap(original, phase))
        model = self.asr.model
        for module, name in ((model.get_encoder(), "encoder_forward"),
                             (model.get_decoder(), "decoder_forward"),
                             (model.get_output_embeddings(), "lm_head")):
            self.handles.append(module.register_forward_pre_hook(self._pre(name)))
            self.handles.append(module.register_forward_hook(self._post(name)))

    def remove(self) -> None:
        for attr in self.originals:
            delattr(self.asr, attr)  # back to the class's method
        for handle in self.handles:
            handle.remove()

    def _wrap(self, fn, phase):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            outer, self.phase = self.phase, phase
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - start
                self.calls[phase] += 1
                self.phase = outer
        return timed

    def _pre(self, name):
        def hook(module, args):
            module._bench_start = time.perf_counter()
        return hook

    def _post(self, name):
        def hook(module, args, output):
            key = f"{self.phase}.{name}"
            self.seconds[key] += time.perf_counter() - module._bench_start
            self.calls[key] += 1
        return hook

    def breakdown(self, total: float) -> dict[str, dict[str, float]]:
        """Seconds and share of `total` per phase, with the generate phases split further."""
        s = self.seconds
        rows = {
            "features (WhisperFeatureExtractor)": s["encode"] - s["encode.encoder_forward"],
            "encoder": s["encode.encoder_forward"],
        }
        for phase in ("greedy", "beam", "sample"):
            dec, head = s[f"{phase}.decoder_forward"], s[f"{phase}.lm_head"]
            rows[f"{phase}: decoder forward"] = dec
            rows[f"{phase}: lm head"] = head
            rows[f"{phase}: rest of generate (search, processors, cache)"] = s[phase] - dec - head
        dec, head = s["score.decoder_forward"], s["score.lm_head"]
        rows["score: decoder (prompt + teacher-forced)"] = dec
        rows["score: lm head + log_softmax"] = head
        rows["score: rest (tokenize, gather, cat)"] = s["score"] - dec - head
        rows["outside phases (batching, digests, checks)"] = total - sum(
            s[p] for p in ("encode", "greedy", "beam", "sample", "score"))
        return {k: {"seconds": round(v, 3), "share": round(v / total, 4)} for k, v in rows.items()}


def profile_one_batch(asr: WhisperASR, audios: list[np.ndarray], top: int = 25) -> list[dict]:
    """Top operators by self CPU time for one `nbest` batch under torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        asr.nbest(audios, num_beams=NUM_BEAMS, num_samples=NUM_SAMPLES, temperature=TEMPERATURE,
                  include_greedy=True, batch_size=len(audios))
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [{"op": e.key, "calls": e.count, "self_cpu_s": round(e.self_cpu_time_total / 1e6, 3),
             "share": round(e.self_cpu_time_total / total, 4)} for e in events[:top]]


# ----------------------------------------------------------------------------- ct2 side


class Ct2Labeler:
    """The same N-best set from `ctranslate2.models.Whisper`, one batch at a time."""

    def __init__(self, model_dir: Path, compute_type: str, threads: int, asr: WhisperASR):
        self.model = ctranslate2.models.Whisper(
            str(model_dir), device="cpu", compute_type=compute_type,
            intra_threads=threads, inter_threads=1)
        self.features = asr.processor.feature_extractor  # the very same feature extractor
        self.tokenizer = asr.processor.tokenizer
        self.prompt = list(asr.prompt_ids)  # [<|startoftranscript|>, <|notimestamps|>]
        self.window = asr.window
        self.seconds: dict[str, float] = defaultdict(float)

    def _features(self, audios: list[np.ndarray]) -> ctranslate2.StorageView:
        mel = self.features(audios, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(mel, dtype=np.float32))

    def _caps(self, seconds: list[float]) -> list[int]:
        return [token_cap(s, 8.0, 16, self.window) for s in seconds]

    def _texts(self, results, caps: list[int]) -> list[list[tuple[str, float]]]:
        """(text, search score) per hypothesis per clip, each cut to its clip's token cap."""
        out = []
        for result, cap in zip(results, caps, strict=True):
            scores = result.scores or [math.nan] * len(result.sequences_ids)
            texts = self.tokenizer.batch_decode([ids[:cap] for ids in result.sequences_ids],
                                                skip_special_tokens=True)
            out.append([(t.strip(), s) for t, s in zip(texts, scores, strict=True)])
        return out

    def _tick(self, key: str, start: float) -> float:
        now = time.perf_counter()
        self.seconds[key] += now - start
        return now

    def nbest(self, audios: list[np.ndarray], seconds: list[float]) -> list[list[dict]]:
        """greedy + 4 beams + 4 samples per clip, as dicts with kind, text and score."""
        t = time.perf_counter()
        features = self._features(audios)
        t = self._tick("features", t)
        encoded = self.model.encode(features, to_cpu=False)
        t = self._tick("encoder", t)
        caps = self._caps(seconds)
        max_length = 2 * (max(caps) + 1)  # ct2 halves it: cap + 1 decoding steps
        prompts = [self.prompt] * len(audios)
        common = {"max_length": max_length, "return_scores": True}
        greedy = self.model.generate(encoded, prompts, beam_size=1, **common)
        t = self._tick("greedy", t)
        beams = self.model.generate(encoded, prompts, beam_size=NUM_BEAMS,
                                    num_hypotheses=NUM_BEAMS, **common)
        t = self._tick("beam", t)
        samples = self.model.generate(encoded, prompts, beam_size=1, sampling_topk=0,
                                      sampling_temperature=TEMPERATURE,
                                      num_hypotheses=NUM_SAMPLES, **common)
        t = self._tick("sample", t)
        per_clip = [[] for _ in audios]
        for kind, results in (("greedy", greedy), ("beam", beams), ("sample", samples)):
            for clip, hyps in enumerate(self._texts(results, caps)):
                per_clip[clip] += [{"kind": kind, "text": text, "score": score}
                                   for text, score in hyps]
        self._tick("detokenize", t)
        return per_clip

    def transcribe(self, audios: list[np.ndarray], seconds: list[float]) -> list[str]:
        """Greedy transcripts, the encoder inside `generate` (one call)."""
        caps = self._caps(seconds)
        results = self.model.generate(self._features(audios), [self.prompt] * len(audios),
                                      beam_size=1, max_length=2 * (max(caps) + 1))
        return [hyps[0][0] for hyps in self._texts(results, caps)]


def over_batches(clips: list[dict], batch_size: int, run) -> list:
    """`run(audios, seconds)` on duration-sorted batches (as rlfoundry batches); input order."""
    seconds = [c["seconds"] for c in clips]
    results = [None] * len(clips)
    for batch in batches_by_duration(seconds, batch_size):
        outputs = run([clips[i]["audio"] for i in batch], [seconds[i] for i in batch])
        for index, output in zip(batch, outputs, strict=True):
            results[index] = output
    return results


# ----------------------------------------------------------------------------- measuring


def timed(fn):
    """(result, wall seconds, process CPU seconds) of fn()."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def row(name: str, what: str, wall: float, cpu: float, clips: int, audio_s: float,
        hyps: int) -> dict:
    return {"name": name, "computes": what, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "clips": clips, "hypotheses": hyps, "clips_per_s": round(clips / wall, 3),
            "rtf": round(wall / audio_s, 4), "hypotheses_per_s": round(hyps / wall, 2)}


def agreement(rlf: list[list], ct2: list[list[dict]]) -> dict:
    """How alike the two N-best sets are (same text per kind and rank; score gap on greedy)."""
    same_greedy, same_beam0, beam_overlap, gaps = 0, 0, [], []
    for hyps, other in zip(rlf, ct2, strict=True):
        g = next(h for h in hyps if h.kind == "greedy")
        og = next(h for h in other if h["kind"] == "greedy")
        if g.text == og["text"]:
            same_greedy += 1
            gaps.append(abs(g.avg_logprob - og["score"]))
        b = [h.text for h in hyps if h.kind == "beam"]
        ob = [h["text"] for h in other if h["kind"] == "beam"]
        same_beam0 += bool(b and ob and b[0] == ob[0])
        beam_overlap.append(len(set(b) & set(ob)) / max(len(set(b)), 1))
    n = len(rlf)
    return {
        "greedy_text_identical": round(same_greedy / n, 3),
        "best_beam_text_identical": round(same_beam0 / n, 3),
        "beam_set_overlap_mean": round(statistics.fmean(beam_overlap), 3),
        "greedy_score_abs_gap_median": round(statistics.median(gaps), 4) if gaps else None,
        "greedy_score_abs_gap_max": round(max(gaps), 4) if gaps else None,
        "note": "score gap: |rlfoundry teacher-forced avg_logprob - ct2 search score| "
                "on clips whose greedy texts are identical",
    }


def quality(refs: list[str | None], nbests: list[list[tuple[str, str]]]) -> dict | None:
    """Corpus WER of the greedy text, the best beam, the oracle (best of all 9) per clip, and of
    all samples pooled.

    `nbests` holds (kind, text) per hypothesis per clip; None without references.
    """
    if any(r is None for r in refs):
        return None
    picks = {"greedy": [], "best_beam": [], "oracle_of_9": [], "all_samples": []}
    for ref, hyps in zip(refs, nbests, strict=True):
        counts = [error_counts(ref, text) for _, text in hyps]
        picks["greedy"].append(counts[[k for k, _ in hyps].index("greedy")])
        picks["best_beam"].append(counts[[k for k, _ in hyps].index("beam")])
        picks["oracle_of_9"].append(min(counts, key=lambda c: c.errors))
        picks["all_samples"] += [c for (k, _), c in zip(hyps, counts, strict=True)
                                 if k == "sample"]
    return {k: round(sum(v).wer, 4) for k, v in picks.items()}


def print_table(rows: list[dict]) -> None:
    head = f"{'row':<34}{'wall s':>8}{'cpu s':>8}{'clips/s':>9}{'RTF':>8}{'hyps/s':>9}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['name']:<34}{r['wall_s']:>8.2f}{r['cpu_s']:>8.2f}{r['clips_per_s']:>9.2f}"
              f"{r['rtf']:>8.3f}{r['hypotheses_per_s']:>9.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help=f"first N clips (default {DEFAULT_LIMIT}; 0 = all)")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--profile", action="store_true",
                        help="also profile one rlfoundry N-best batch with torch.profiler")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    load_start = load_average()
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    ctranslate2.set_random_seed(0)

    clips = read_clips(args.manifest, args.limit or None)
    audio_s = sum(c["seconds"] for c in clips)
    audios = [c["audio"] for c in clips]
    print(f"{len(clips)} clips, {audio_s:.1f} s of audio, from {args.manifest}")

    model_dir = resolve_model(BUNDLED_WHISPER, args.cache_dir)
    asr = WhisperASR.from_pretrained(model_dir, device="cpu")
    ct2_dir = bundled_whisper_dir()
    ct2 = {ct: Ct2Labeler(ct2_dir, ct, args.threads, asr) for ct in ("float32", "int8")}
    print("converting / loading rlfoundry's ct2 backend ...", flush=True)
    _, convert_wall, convert_cpu = timed(lambda: CT2WhisperASR.from_pretrained(
        model_dir, cache_dir=args.cache_dir / "ct2", threads=args.threads, device="cpu"))
    ours = CT2WhisperASR.from_pretrained(model_dir, cache_dir=args.cache_dir / "ct2",
                                         threads=args.threads, device="cpu")

    # an untimed warm-up per backend (first-call allocations, oneDNN kernel selection)
    warm = clips[:WARM_UP_CLIPS]
    asr.nbest([c["audio"] for c in warm], num_beams=NUM_BEAMS, num_samples=NUM_SAMPLES,
              temperature=TEMPERATURE, include_greedy=True, batch_size=args.batch_size)
    for labeler in ct2.values():
        over_batches(warm, args.batch_size, labeler.nbest)
        labeler.seconds.clear()
    ours.nbest([c["audio"] for c in warm], num_beams=NUM_BEAMS, num_samples=NUM_SAMPLES,
               temperature=TEMPERATURE, include_greedy=True, batch_size=args.batch_size)

    rows, n = [], len(clips)
    n_words = "greedy + 4 beams + 4 samples"
    print("timing rlfoundry transcribe ...", flush=True)
    _, wall, cpu = timed(lambda: asr.transcribe(audios, batch_size=args.batch_size))
    rows.append(row("rlfoundry transcribe (greedy)", "features, encoder, greedy",
                    wall, cpu, n, audio_s, n))
    for ct, labeler in ct2.items():
        print(f"timing ct2 {ct} greedy ...", flush=True)
        _, wall, cpu = timed(lambda lab=labeler: over_batches(clips, args.batch_size,
                                                              lab.transcribe))
        rows.append(row(f"ct2 {ct} greedy", "features, encoder, greedy",
                        wall, cpu, n, audio_s, n))
    print("timing rlfoundry ct2 transcribe ...", flush=True)
    _, wall, cpu = timed(lambda: ours.transcribe(audios, batch_size=args.batch_size))
    rows.append(row("rlfoundry ct2 transcribe (greedy)", "features, encoder, greedy",
                    wall, cpu, n, audio_s, n))

    print("timing rlfoundry nbest ...", flush=True)
    phases = PhaseTimer(asr)
    phases.install()
    rlf, wall, cpu = timed(lambda: asr.nbest(
        audios, num_beams=NUM_BEAMS, num_samples=NUM_SAMPLES, temperature=TEMPERATURE,
        include_greedy=True, batch_size=args.batch_size))
    phases.remove()
    rlf_wall = wall
    rows.append(row("rlfoundry nbest (9/clip, rescored)", n_words + " + teacher-forced rescoring",
                    wall, cpu, n, audio_s, sum(len(h) for h in rlf)))
    ct2_results, ct2_phases = {}, {}
    for ct, labeler in ct2.items():
        print(f"timing ct2 {ct} nbest ...", flush=True)
        res, wall, cpu = timed(lambda lab=labeler: over_batches(clips, args.batch_size, lab.nbest))
        ct2_results[ct] = res
        ct2_phases[ct] = {k: {"seconds": round(v, 3), "share": round(v / wall, 4)}
                          for k, v in labeler.seconds.items()}
        rows.append(row(f"ct2 {ct} nbest (9/clip)", n_words + " (search scores)",
                        wall, cpu, n, audio_s, sum(len(h) for h in res)))
    print("timing rlfoundry ct2 nbest ...", flush=True)
    mine, wall, cpu = timed(lambda: ours.nbest(
        audios, num_beams=NUM_BEAMS, num_samples=NUM_SAMPLES, temperature=TEMPERATURE,
        include_greedy=True, batch_size=args.batch_size))
    rows.append(row("rlfoundry ct2 nbest (9/clip)", n_words + " (search scores, model reload)",
                    wall, cpu, n, audio_s, sum(len(h) for h in mine)))
    again = ours.nbest(audios, num_beams=NUM_BEAMS, num_samples=NUM_SAMPLES,
                       temperature=TEMPERATURE, include_greedy=True, batch_size=args.batch_size)

    profile = None
    if args.profile:
        print("profiling one rlfoundry nbest batch ...", flush=True)
        profile = profile_one_batch(asr, audios[: args.batch_size])
    load_end = load_average()

    by_name = {r["name"]: r for r in rows}

    def cpu_ratio(a: str, b: str) -> float:
        return round(by_name[a]["cpu_s"] / by_name[b]["cpu_s"], 2)

    ratios = {
        "nbest rlfoundry / ct2 float32 (cpu)": cpu_ratio(
            "rlfoundry nbest (9/clip, rescored)", "ct2 float32 nbest (9/clip)"),
        "nbest rlfoundry ct2 / ct2 float32 (cpu)": cpu_ratio(
            "rlfoundry ct2 nbest (9/clip)", "ct2 float32 nbest (9/clip)"),
        "nbest rlfoundry / rlfoundry ct2 (cpu)": cpu_ratio(
            "rlfoundry nbest (9/clip, rescored)", "rlfoundry ct2 nbest (9/clip)"),
        "greedy rlfoundry ct2 / ct2 float32 (cpu)": cpu_ratio(
            "rlfoundry ct2 transcribe (greedy)", "ct2 float32 greedy"),
        "nbest rlfoundry ct2 / ct2 float32 (wall)": round(
            by_name["rlfoundry ct2 nbest (9/clip)"]["wall_s"]
            / by_name["ct2 float32 nbest (9/clip)"]["wall_s"], 2),
        "nbest rlfoundry / ct2 float32 (wall)": round(
            rlf_wall / by_name["ct2 float32 nbest (9/clip)"]["wall_s"], 2),
        "nbest rlfoundry / ct2 int8 (wall)": round(
            rlf_wall / by_name["ct2 int8 nbest (9/clip)"]["wall_s"], 2),
        "greedy rlfoundry / ct2 float32 (wall)": round(
            by_name["rlfoundry transcribe (greedy)"]["wall_s"]
            / by_name["ct2 float32 greedy"]["wall_s"], 2),
        "greedy rlfoundry / ct2 int8 (wall)": round(
            by_name["rlfoundry transcribe (greedy)"]["wall_s"]
            / by_name["ct2 int8 greedy"]["wall_s"], 2),
    }

    print()
    print_table(rows)
    print()
    for k, v in ratios.items():
        print(f"{k}: {v}x")
    print("\nrlfoundry nbest phases (whole run):")
    breakdown = phases.breakdown(rlf_wall)
    for k, v in breakdown.items():
        print(f"  {k:<58}{v['seconds']:>8.2f} s {100 * v['share']:>5.1f} %")
    print("\nct2 float32 nbest phases:")
    for k, v in ct2_phases["float32"].items():
        print(f"  {k:<58}{v['seconds']:>8.2f} s {100 * v['share']:>5.1f} %")
    agree = {ct: agreement(rlf, res) for ct, res in ct2_results.items()}
    as_dicts = [[{"kind": h.kind, "text": h.text, "score": h.avg_logprob} for h in c]
                for c in mine]
    agree["rlfoundry ct2"] = {**agreement(rlf, as_dicts),
                              "same_hypotheses_on_a_second_call": again == mine}
    print("\nagreement with rlfoundry:", json.dumps(agree, indent=1))
    refs = [c["text"] for c in clips]
    wers = {"rlfoundry": quality(refs, [[(h.kind, h.text) for h in c] for c in rlf])}
    for ct, res in ct2_results.items():
        wers[f"ct2 {ct}"] = quality(refs, [[(h["kind"], h["text"]) for h in c] for c in res])
    wers["rlfoundry ct2"] = quality(refs, [[(h.kind, h.text) for h in c] for c in mine])
    print("corpus WER vs references (greedy / best beam / oracle of 9):", json.dumps(wers))
    print(f"\nload average (1/5/15 min) before {load_start}, after {load_end} "
          f"on {os.cpu_count()} CPUs: the box is shared, wall times include waiting for a core")

    snr = defaultdict(int)
    for c in clips:
        snr[str(c["snr_db"])] += 1
    result = {
        "benchmark": "nbest_throughput",
        "command": " ".join([".venv/bin/python", "benchmarks/nbest_throughput.py",
                             *(argv if argv is not None else sys.argv[1:])]),
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(), "processor": platform.processor() or None,
                    "torch": torch.__version__, "ctranslate2": ctranslate2.__version__,
                    "threads": args.threads, "shared": True},
        "load_average_before": load_start,
        "load_average_after": load_end,
        "manifest": str(args.manifest.relative_to(ROOT) if args.manifest.is_relative_to(ROOT)
                        else args.manifest),
        "clips": n,
        "clip_selection": f"first {n} audio lines of the manifest (default --limit "
                          f"{DEFAULT_LIMIT}: all 60 dev clips took ~10 min on 2 shared cores)",
        "audio_seconds": round(audio_s, 2),
        "clip_seconds": {"min": round(min(c["seconds"] for c in clips), 2),
                         "mean": round(audio_s / n, 2),
                         "max": round(max(c["seconds"] for c in clips), 2)},
        "snr_db_counts": dict(snr),
        "batch_size": args.batch_size,
        "settings": {"num_beams": NUM_BEAMS, "num_samples": NUM_SAMPLES,
                     "temperature": TEMPERATURE, "include_greedy": True,
                     "token_cap": "ceil(8 * seconds) + 16 text tokens (ct2: max_length = "
                                  "2 * (batch max cap + 1), hypotheses cut to each clip's cap)",
                     "ct2_sampling_topk": 0,
                     "warm_up": f"{WARM_UP_CLIPS} clips per backend, untimed"},
        "rows": rows,
        "rlfoundry_ct2_conversion": {"wall_s": round(convert_wall, 2),
                                     "cpu_s": round(convert_cpu, 2),
                                     "note": "first run converts; later runs hash the "
                                             "checkpoint and load the cached folder"},
        "ratios": ratios,
        "rlfoundry_nbest_phases": breakdown,
        "ct2_nbest_phases": ct2_phases,
        "agreement": agree,
        "wer_vs_reference": wers,
        "profile_one_batch_top_ops": profile,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
