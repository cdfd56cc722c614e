"""The image chain's throughput per stage, model time shares, batch-size effects and memory.

Run (from the repository root; about a minute on 2 busy cores at the defaults):

    .venv/bin/python benchmarks/image_chain.py [--images 24] [--size 320x240] [--threads 1]
        [--captioner-batches 1,4,16] [--detector-batches 1,2,4]

TINY RANDOM MODELS: the captioner (BLIP), detector (Grounding DINO) and segmenter (SAM) are
tiny random builds from `models.tiny`, loaded through the model hub from folders like real
ones; no real weights install offline here. So the figures measure the chain's own work
(image decoding and resizing, processors, RLE, point sampling, verification, the dataset
export) around models whose compute is negligible: a lower bound on the real chain's time,
and an upper bound on the share outside the models. The output says so.

`--images` synthetic pictures of 2-4 coloured shapes (PNG, `--size`) go through the pure
chain (`labeling.image.chain`, `labeling.image.pointing`, the code the Dagster assets run,
without Dagster): captions (the captioner on every image), phrases (spaCy, over each
image's true caption so that downstream work is the same from run to run), detections
(thresholds 0: the random detector's boxes all count), masks, points (centroid), checks
(loose geometry, ambiguity off, so most points reach the dataset), and the dataset (the
TRL `datasets` folder, JSONL and COCO, written to a temp folder). Each stage's time is split
into the time inside the model's call and the rest. Models and spaCy are loaded and warmed
up on 2 images before anything is timed.

Batch sizes: the captions and detections stages are timed again at each of
`--captioner-batches` / `--detector-batches` (images per model call).

Memory: the chain runs on half the images, then on all; the growth of the process's peak
RSS (`ru_maxrss`) between the two, divided by the extra images, bounds what each image
adds to the peak. A third pass under `tracemalloc` gives each stage's peak of Python and
numpy allocations (torch's own buffers are not traced), per image.

Results go to `benchmarks/results/image_chain.json`, with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
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
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from labeling.image.chain import (  # noqa: E402
    DetectParams,
    by_image,
    caption_rows,
    check_rows,
    detection_rows,
    mask_rows,
    phrase_rows,
    point_rows,
    rle_of,
)
from labeling.image.phrases import load_english  # noqa: E402
from labeling.image.pointing import (  # noqa: E402
    VerifiedRegion,
    export_pointing,
    group_examples,
    load_coco,
    pointing_coco,
    provenance_of,
    rgb_file,
    trl_row,
)
from labeling.image.verify import VerifyConfig  # noqa: E402
from models.tiny import BUILDERS  # noqa: E402
from resources.model_hub import ModelHub  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "image_chain.json"
STAGES = ("captions", "phrases", "detections", "masks", "points", "checks", "dataset")
MODEL_OF = {"captions": "captioner", "detections": "detector", "masks": "segmenter"}
COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
           "yellow": (240, 210, 40), "purple": (140, 60, 180)}
SHAPES = ("circle", "square", "triangle")
LOOSE = VerifyConfig(margin=0.0, min_box_iou=0.0, min_area_share=0.0, max_area_share=1.0,
                     unambiguous=False)
NOTE = ("TINY RANDOM MODELS (models.tiny: BLIP, Grounding DINO, SAM, < 1 M parameters each): "
        "model compute is negligible, so these figures are the chain's own cost around the "
        "models, not the speed of real weights.")


# --------------------------------------------------------------------------- inputs


def make_images(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> list[dict]:
    """`count` PNGs of 2-4 shapes; rows as the chain reads them (no manifest caption) plus
    `truth`, a caption naming the shapes."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    rows = []
    for i in range(count):
        image = Image.new("RGB", size, (235, 235, 230))
        draw = ImageDraw.Draw(image)
        names = []
        for _ in range(int(rng.integers(2, 5))):
            shape, colour = SHAPES[rng.integers(3)], list(COLOURS)[rng.integers(len(COLOURS))]
            r = float(rng.uniform(0.08, 0.18) * min(size))
            cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
            box = (cx - r, cy - r, cx + r, cy + r)
            if shape == "circle":
                draw.ellipse(box, fill=COLOURS[colour])
            elif shape == "square":
                draw.rectangle(box, fill=COLOURS[colour])
            else:
                draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)],
                             fill=COLOURS[colour])
            names.append(f"a {colour} {shape}")
        path = folder / f"im{i:04d}.png"
        image.save(path)
        truth = ", ".join(names[:-1]) + f" and {names[-1]}."
        rows.append({"image_id": f"im{i:04d}", "source_path": str(path), "text": None,
                     "width": width, "height": height, "mode": "RGB",
                     "truth": truth[0].upper() + truth[1:]})
    return rows


class Timed:
    """A role model whose one method (`caption`, `detect`, `segment`) is timed."""

    def __init__(self, model, method: str):
        self.inner, self.seconds, self.calls = model, 0.0, 0
        call = getattr(model, method)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1

        setattr(self, method, timed)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def load_models(folder: Path) -> dict[str, Timed]:
    """The tiny random models, built into `folder` and loaded through the model hub."""
    hub = ModelHub(device="cpu")
    methods = {"captioner": "caption", "detector": "detect", "segmenter": "segment"}
    return {role: Timed(hub.load(role, str(BUILDERS[role](folder / role))), method)
            for role, method in methods.items()}


# --------------------------------------------------------------------------- the chain


def run_chain(images: list[dict], models: dict[str, Timed], nlp, out: Path, *,
              captioner_batch: int = 16, detector_batch: int = 4,
              trace: bool = False) -> dict[str, dict]:
    """Every stage on `images`: its seconds, seconds inside its model, rows out, and (with
    `trace`) its peak traced allocation."""
    stats: dict[str, dict] = {}
    state: dict[str, list] = {}

    def stage(name: str, fn):
        model = models.get(MODEL_OF.get(name, ""))
        before = model.seconds if model else 0.0
        if trace:
            tracemalloc.reset_peak()
        started = time.perf_counter()
        rows = fn()
        seconds = time.perf_counter() - started
        stats[name] = {"seconds": seconds, "rows": rows,
                       "model_seconds": (model.seconds - before) if model else 0.0}
        if trace:
            stats[name]["peak_traced_bytes"] = tracemalloc.get_traced_memory()[1]

    def captions():
        models["captioner"].inner.batch_size = captioner_batch
        rows, _ = caption_rows(models["captioner"], images, batch_size=captioner_batch,
                               max_new_tokens=12)
        state["captions"] = rows
        return len(rows)

    def phrases():  # over the true captions: the same phrases whatever the random captioner says
        truth = [{"image_id": im["image_id"], "caption": im["truth"], "source": "manifest",
                  "source_path": im["source_path"]} for im in images]
        rows, _ = phrase_rows(truth, nlp)
        state["phrases"] = rows
        return len(rows)

    paths = {im["image_id"]: im["source_path"] for im in images}

    def detections():
        models["detector"].inner.batch_size = detector_batch
        items = [{"image_id": i, "source_path": paths[i], "phrases": [r["phrase"] for r in rows]}
                 for i, rows in by_image(state["phrases"]).items()]
        params = DetectParams(0.0, 0.0, 0.5, 5, detector_batch, 1333)
        rows, _ = detection_rows(models["detector"], items, params)
        state["detections"] = [{**r, "source_path": paths[r["image_id"]]} for r in rows]
        return len(rows)

    def masks():
        rows, _ = mask_rows(models["segmenter"], state["detections"])
        state["masks"] = rows
        return len(rows)

    def points():
        rows, _ = point_rows(state["masks"], strategy="centroid")
        state["points"] = rows
        return len(rows)

    def checks():
        rows, _ = check_rows(state["masks"], state["points"], LOOSE)
        state["checks"] = rows
        return len(rows)

    def dataset():
        return len(build_dataset(images, state, out))

    for name, fn in zip(STAGES, (captions, phrases, detections, masks, points, checks, dataset),
                        strict=True):
        stage(name, fn)
    return stats


def build_dataset(images: list[dict], state: dict[str, list], out: Path) -> list[dict]:
    """What the `pointing_dataset` asset does with its query's rows: examples, files, COCO."""
    verified = defaultdict(list)
    for row in state["checks"]:
        if row["verified"]:
            verified[(row["image_id"], row["region"])].append((row["x"], row["y"]))
    regions = [VerifiedRegion(m["image_id"], m["phrase"], m["region"], rle_of(m), m["score"],
                              tuple(verified[(m["image_id"], m["region"])]))
               for m in state["masks"]]
    examples, _ = group_examples(regions)
    by_id = {im["image_id"]: im for im in images}
    provenance = provenance_of({"caption_source": "manifest", "detector": "tiny",
                                "segmenter": "tiny", "point_strategy": "centroid",
                                "detector_weights": "random-tiny"})
    rows = [trl_row(e, image=by_id[e["image_id"]]["source_path"],
                    image_file=rgb_file(by_id[e["image_id"]]["source_path"], "RGB",
                                        e["image_id"], out / "images"),
                    width=by_id[e["image_id"]]["width"], height=by_id[e["image_id"]]["height"],
                    provenance={**provenance, "caption": by_id[e["image_id"]]["truth"]})
            for e in examples]
    paths = export_pointing(rows, pointing_coco(examples, by_id), out)
    load_coco(paths["coco"])
    return rows


# --------------------------------------------------------------------------- reporting


def summarise(stats: dict[str, dict], images: int) -> dict[str, dict]:
    """Per stage: seconds, images/s, rows, and the share of its time inside its model."""
    total = sum(s["seconds"] for s in stats.values())
    return {name: {"seconds": round(s["seconds"], 3),
                   "images_per_s": round(images / s["seconds"], 1) if s["seconds"] else None,
                   "rows": s["rows"],
                   "share_of_chain": round(s["seconds"] / total, 3),
                   "model_share_of_stage": round(s["model_seconds"] / s["seconds"], 3)
                   if name in MODEL_OF else None}
            for name, s in stats.items()}


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT of each picture")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads (pinned)")
    parser.add_argument("--captioner-batches", default="1,4,16")
    parser.add_argument("--detector-batches", default="1,2,4")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    datasets.disable_progress_bars()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    load_before = os.getloadavg()
    print(NOTE)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images = make_images(tmp / "images", args.images, size)
        started = time.perf_counter()
        models, nlp = load_models(tmp / "models"), load_english()
        load_s = time.perf_counter() - started
        run_chain(images[:2], models, nlp, tmp / "warmup")  # first calls: lazy inits
        rss_start = max_rss_mb()
        half = images[: max(1, len(images) // 2)]
        run_chain(half, models, nlp, tmp / "half")
        rss_half = max_rss_mb()
        for model in models.values():
            model.seconds = 0.0
        stats = run_chain(images, models, nlp, tmp / "full")
        rss_full = max_rss_mb()
        stages = summarise(stats, len(images))
        chain_s = sum(s["seconds"] for s in stats.values())
        model_total = {role: round(m.seconds / chain_s, 3) for role, m in models.items()}
        sweeps = {"captioner": {}, "detector": {}}
        for batch in (int(b) for b in args.captioner_batches.split(",")):
            s = run_chain(images, models, nlp, tmp / "cb", captioner_batch=batch)["captions"]
            sweeps["captioner"][batch] = round(len(images) / s["seconds"], 1)
        for batch in (int(b) for b in args.detector_batches.split(",")):
            s = run_chain(images, models, nlp, tmp / "db", detector_batch=batch)["detections"]
            sweeps["detector"][batch] = round(len(images) / s["seconds"], 1)
        tracemalloc.start()
        traced = run_chain(images, models, nlp, tmp / "traced", trace=True)
        tracemalloc.stop()
    extra = len(images) - len(half)
    result = {
        "note": NOTE,
        "images": len(images), "image_size": list(size), "threads": args.threads,
        "torch_threads": torch.get_num_threads(),
        "model_and_spacy_load_s": round(load_s, 2),
        "chain_s": round(chain_s, 3), "chain_images_per_s": round(len(images) / chain_s, 1),
        "stages": stages,
        "model_share_of_chain": model_total,
        "outside_models_share": round(1 - sum(model_total.values()), 3),
        "images_per_s_by_batch": sweeps,
        "memory": {
            "max_rss_mb": {"after_warmup": round(rss_start, 1), "after_half": round(rss_half, 1),
                           "after_full": round(rss_full, 1)},
            "rss_growth_per_extra_image_kb": round((rss_full - rss_half) * 1024 / extra, 1)
            if extra else None,
            "peak_traced_kb_per_image": {name: round(s["peak_traced_bytes"] / 1024 / len(images),
                                                     1)
                                         for name, s in traced.items()},
        },
        "load_average": {"before": [round(v, 2) for v in load_before],
                         "after": [round(v, 2) for v in os.getloadavg()]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"results: {args.out}")
    return result


def print_table(result: dict) -> None:
    print(f"{result['images']} images {result['image_size'][0]}x{result['image_size'][1]}, "
          f"{result['threads']} thread(s); chain {result['chain_s']} s "
          f"({result['chain_images_per_s']} images/s)")
    print(f"{'stage':<11}{'images/s':>10}{'share':>8}{'in model':>10}{'rows':>7}"
          f"{'peak KB/img':>13}")
    peaks = result["memory"]["peak_traced_kb_per_image"]
    for name, s in result["stages"].items():
        model = f"{s['model_share_of_stage']:.0%}" if s["model_share_of_stage"] is not None else "-"
        print(f"{name:<11}{s['images_per_s']:>10}{s['share_of_chain']:>8.0%}{model:>10}"
              f"{s['rows']:>7}{peaks[name]:>13}")
    print(f"model share of the chain: {result['model_share_of_chain']}")
    print(f"images/s by batch size: {result['images_per_s_by_batch']}")
    print(f"max RSS (MB): {result['memory']['max_rss_mb']}; growth per extra image: "
          f"{result['memory']['rss_growth_per_extra_image_kb']} KB")
    print(f"load average: {result['load_average']}")


if __name__ == "__main__":
    main()
