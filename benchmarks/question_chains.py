"""The question chains' throughput: clips (or videos) per second per stage, on the sample data.

Run (from the repository root; about a minute on 2 busy cores at the defaults):

    .venv/bin/python benchmarks/question_chains.py [--copies 4] [--repeat 3] [--threads 1]

What runs: the pure code each Dagster asset calls (`labeling.audio_qa.chain`,
`labeling.video_qa.*`, the datasets' export), without Dagster or the warehouse in the timed
part; the inputs are the sample ingested once through the real `audio_clips` and `videos`
assets into a temporary warehouse (not timed), then listed `--copies` times under new ids
(same files) so that each pass has more than a handful of items.

* Audio (`data/sample/audio_qa`: six scenes of 12.5-23 s): **regions** from the manifest
  only, and with **silero-vad** (REAL weights, `silero-vad` from PyPI: decoding the clip to
  16 kHz and the detector's pass included); **durations**; **questions** (every template,
  both forms, letters balanced); **dataset** (TRL rows, JSONL and `datasets` folder).
* Video (`data/sample/videos/video_qa.jsonl`: three clips of 2.4-2.5 s, 320x240 class):
  **segments** (PyAV decode, 2 fps, short side 224, the 70 % cut, JPEG frames written);
  **descriptions** given (the manifest's) and by the **tiny VLM** (every part described:
  context and truth, up to 8 frames each, 96 new tokens); **questions** by **template** and
  by the **tiny text LLM** (one round, 256 new tokens, checked); the **blind control** (the
  text LLM's letter probabilities); **dataset**.

TINY RANDOM MODELS: the VLM (LLaVA) and text LLM (Qwen2) are tiny random builds from
`models.tiny` (no weights install offline), so their stages measure the chain's own work
(frame loading, processors, chat templates, generation loops of a model whose compute is
negligible, parsing and checks), not a real model's speed: with real weights those stages
are orders of magnitude slower and need a GPU. Their output is garbage and refused, which
the figures include. silero-vad, PyAV, the templates and the checks are the real thing.

Each stage runs once to warm up, then `--repeat` times; the median pass gives the rate.
Torch (and OpenMP/MKL) threads are pinned to `--threads` before torch loads. The machine's
load average is read before and after each chain and reported beside the numbers: on a busy
2-core box the figures are lower bounds. Results go to
`benchmarks/results/question_chains.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _pin_threads(argv: list[str]) -> int:
    """Thread count from `--threads` (default 1), pinned before torch or numpy load."""
    threads = 1
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            threads = int(argv[i + 1])
        elif arg.startswith("--threads="):
            threads = int(arg.split("=", 1)[1])
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    return threads


THREADS = _pin_threads(sys.argv[1:])

import datasets  # noqa: E402
import torch  # noqa: E402
from dagster import DagsterInstance, materialize  # noqa: E402

from assets.audio_qa.questions import VOCABULARY  # noqa: E402
from assets.common import load_clips, read  # noqa: E402
from assets.ingest import audio_clips, videos  # noqa: E402
from labeling.audio_qa import dataset as audio_dataset  # noqa: E402
from labeling.audio_qa.chain import (  # noqa: E402
    detect_regions,
    duration_rows,
    question_rows,
    region_rows,
    timelines_of,
)
from labeling.ingest.audio import load_audio_16k  # noqa: E402
from labeling.video_qa import dataset as video_dataset  # noqa: E402
from labeling.video_qa.blind import blind_control  # noqa: E402
from labeling.video_qa.chain import (  # noqa: E402
    described_videos,
    shuffle_choices,
    template_drafts,
    video_inputs,
)
from labeling.video_qa.chain import question_rows as video_question_rows  # noqa: E402
from labeling.video_qa.descriptions import DescribeSettings, description_rows  # noqa: E402
from labeling.video_qa.questions import QuestionSettings, llm_questions  # noqa: E402
from labeling.video_qa.segments import SegmentSettings, segment_rows  # noqa: E402
from models.tiny import build_tiny_llava, build_tiny_qwen2  # noqa: E402
from pipelines.partitions import BATCHES  # noqa: E402
from resources.model_hub import ModelHub  # noqa: E402
from resources.warehouse import Warehouse  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "question_chains.json"
SCENES = ROOT / "data" / "sample" / "audio_qa" / "scenes.jsonl"
VIDEOS = ROOT / "data" / "sample" / "videos" / "video_qa.jsonl"
DESCRIPTION_KEYS = ("description", "truth_description", "description_cut")
AUDIO_CHAIN = ("regions (silero-vad)", "durations", "questions", "dataset")
VIDEO_CHAIN = ("segments", "descriptions (given)", "questions (tiny LLM)", "questions (template)",
               "blind control (tiny LLM)", "dataset")
"""The stages the demo runs (the sample's descriptions are given: the VLM is not loaded; the
LLM's questions are refused and templates stand in)."""
NOTE = ("REAL: silero-vad (PyPI weights), PyAV, templates, checks. TINY RANDOM: the VLM "
        "(LLaVA) and text LLM (Qwen2) from models.tiny: their stages measure the chain's own "
        "work around a model whose compute is negligible, not a real model's speed.")


# --------------------------------------------------------------------------- inputs


def ingest(warehouse: Warehouse, asset, source: Path, batch: str) -> None:
    """The sample through the real ingest asset (not timed)."""
    warehouse.register_batch(batch, source)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, [batch])
        result = materialize([asset], partition_key=batch, instance=instance,
                             resources={"warehouse": warehouse, "model_hub": ModelHub()})
    if not result.success:
        raise SystemExit(f"ingesting {source} failed")


def copies(rows: list[dict], key: str, n: int) -> list[dict]:
    """`rows` listed `n` times, each copy under new ids (same files)."""
    return [{**r, key: f"c{i}{r[key]}"} for i in range(n) for r in rows]  # [:16] differ


def load_models(folder: Path) -> dict:
    hub = ModelHub(device="cpu", cache_dir=str(folder / "cache"))
    return {"vad": hub.load("region_detector"),
            "vlm": hub.load("vlm", str(build_tiny_llava(folder / "vlm"))),
            "llm": hub.load("text_llm", str(build_tiny_qwen2(folder / "llm")))}


# --------------------------------------------------------------------------- timing


def timed(name: str, count: int, fn: Callable[[], object], repeat: int, results: dict) -> object:
    """Run `fn` once to warm up, then `repeat` times; record the median pass."""
    out = fn()
    passes = []
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        passes.append(time.perf_counter() - started)
    median = statistics.median(passes)
    results[name] = {"items": count, "median_s": round(median, 4),
                     "items_per_s": round(count / median, 1) if median else None,
                     "passes_s": [round(p, 4) for p in passes]}
    print(f"  {name:<26}{results[name]['items_per_s']:>10} /s  ({count} in {median:.3f} s)",
          flush=True)
    return out


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# --------------------------------------------------------------------------- chains


def audio_chain(clips: list[dict], vad, out: Path, repeat: int) -> dict:
    stats: dict = {}
    n = len(clips)
    timed("regions (manifest)", n, lambda: region_rows(clips, {}, detector=""), repeat, stats)

    def with_vad():
        found, _ = detect_regions(vad, clips, load_audio_16k, threads=THREADS)
        return region_rows(clips, found, detector=vad.name)

    regions, _ = timed("regions (silero-vad)", n, with_vad, repeat, stats)
    durations = timed("durations", n, lambda: duration_rows(regions), repeat, stats)
    questions, _ = timed("questions", n, lambda: question_rows(
        clips, timelines_of(durations), vocabulary=VOCABULARY), repeat, stats)
    by_clip = {c["clip_id"]: c for c in clips}

    def dataset():
        rows = [audio_dataset.dataset_row(q, audio=by_clip[q["clip_id"]]["source_path"],
                                          duration_s=by_clip[q["clip_id"]]["duration_s"])
                for q in questions]
        return audio_dataset.export_dataset(rows, out / "audio")

    timed("dataset", n, dataset, repeat, stats)
    seconds = sum(c["duration_s"] for c in clips)
    for s in stats.values():  # how many seconds of audio each stage gets through per second
        s["audio_s_per_s"] = round(seconds / s["median_s"], 1) if s["median_s"] else None
    chain = chain_total(stats, AUDIO_CHAIN, n)
    chain["audio_s_per_s"] = round(seconds / chain["median_s"], 1)
    return {"clips": n, "questions": len(questions), "stages": stats, "chain": chain}


def video_chain(items: list[dict], vlm, llm, out: Path, repeat: int) -> dict:
    stats: dict = {}
    n = len(items)
    settings = SegmentSettings()
    rows, _ = timed("segments", n, lambda: segment_rows(items, out / "frames", settings),
                    repeat, stats)
    segments = {s["video_id"]: {**s, "source_path": v["source_path"]}
                for s, v in zip(rows, items, strict=True)}
    given, _ = timed("descriptions (given)", n,
                     lambda: description_rows(None, items, segments), repeat, stats)
    blank = [{**v, "tags": {k: t for k, t in v["tags"].items() if k not in DESCRIPTION_KEYS}}
             for v in items]
    timed("descriptions (tiny VLM)", n, lambda: description_rows(
        vlm, blank, segments, settings=DescribeSettings()), repeat, stats)
    paths = {v["video_id"]: v["source_path"] for v in items}
    inputs, _ = video_inputs(described_videos(given, paths))

    def templates():
        drafts = template_drafts(inputs, [], mode="always", seed=0)
        choices, _ = shuffle_choices(drafts, seed=0)
        return drafts, choices

    drafts, choices = timed("questions (template)", n, templates, repeat, stats)
    _, refused = timed("questions (tiny LLM)", n, lambda: llm_questions(
        llm, inputs, settings=QuestionSettings()), repeat, stats)
    blind = timed("blind control (tiny LLM)", len(choices),
                  lambda: blind_control(llm, list(choices.values())), repeat, stats)
    question_rows = video_question_rows(drafts, choices, dict(zip(choices, blind, strict=True)),
                                        inputs, seed=0)

    def dataset():
        rows = [video_dataset.dataset_row({**q, "qc": "unreviewed"},
                                          video=segments[q["video_id"]]["source_path"],
                                          frames=segments[q["video_id"]]["context_paths"],
                                          weights="random-tiny") for q in question_rows]
        return video_dataset.export_dataset(rows, out / "video")

    timed("dataset", n, dataset, repeat, stats)
    return {"videos": n, "template_questions": len(drafts),
            "llm_questions_refused": len(refused), "question_rows": len(question_rows),
            "stages": stats, "chain": chain_total(stats, VIDEO_CHAIN, n)}


def chain_total(stats: dict, stages: tuple[str, ...], count: int) -> dict:
    """The chain as `make demo-questions` runs it: the sum of those stages' medians."""
    seconds = sum(stats[name]["median_s"] for name in stages)
    return {"stages": list(stages), "median_s": round(seconds, 4),
            "items_per_s": round(count / seconds, 1) if seconds else None}


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4, help="times the sample is listed")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per stage")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads (pinned)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    datasets.disable_progress_bars()
    print(NOTE)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        warehouse = Warehouse(root=str(tmp / "warehouse"))
        ingest(warehouse, audio_clips, SCENES, "aq")
        ingest(warehouse, videos, VIDEOS, "vq")
        clips = copies(load_clips(warehouse, "aq"), "clip_id", args.copies)
        items = copies([{**v, "tags": json.loads(v["tags"])}
                        for v in read(warehouse, "queries/videos_for_batch", "vq")],
                       "video_id", args.copies)
        models = load_models(tmp / "models")
        load_audio = load()
        print(f"audio: {len(clips)} clips ({sum(c['duration_s'] for c in clips):.0f} s), "
              f"load {load_audio}")
        audio = {**audio_chain(clips, models["vad"], tmp / "out", args.repeat),
                 "load_average": {"before": load_audio, "after": load()}}
        load_video = load()
        print(f"video: {len(items)} videos, load {load_video}")
        video = {**video_chain(items, models["vlm"], models["llm"], tmp / "out", args.repeat),
                 "load_average": {"before": load_video, "after": load()}}
    result = {
        "note": NOTE, "copies": args.copies, "repeat": args.repeat, "threads": args.threads,
        "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "audio_seconds": round(sum(c["duration_s"] for c in clips), 2),
        "video_seconds": round(sum(v["duration_s"] for v in items), 2),
        "audio": audio, "video": video, "wall_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown_table(result))
    print(f"results: {args.out}")
    return result


def markdown_table(result: dict) -> str:
    """The README's table: one row per stage, with the load beside the numbers."""
    lines = ["| chain | stage | per second | items | median s | load (1 min) before → after |",
             "|---|---|---:|---:|---:|---|"]
    for chain, unit in (("audio", "clips"), ("video", "videos")):
        part = result[chain]
        load_ = f"{part['load_average']['before'][0]} → {part['load_average']['after'][0]}"
        for name, s in [*part["stages"].items(), ("whole chain, as the demo runs it",
                                                   part["chain"])]:
            rate = f"{_rate(s['items_per_s'])} {unit}"
            if s.get("audio_s_per_s") and name in ("regions (silero-vad)",
                                                   "whole chain, as the demo runs it"):
                rate += f" ({_rate(s['audio_s_per_s'])} s of audio)"
            lines.append(f"| {chain} | {name} | {rate} | {part[unit]} | {s['median_s']} "
                         f"| {load_} |")
    return "\n".join(lines)


def _rate(value: float | None) -> str:
    """Three significant figures at most (a rate of 50,000/s is not known to the unit)."""
    if value is None:
        return "-"
    return f"{value:.3g}" if value < 1000 else f"{float(f'{value:.3g}'):,.0f}"


if __name__ == "__main__":
    main()
