"""The image demo's two helpers (`make demo-image`): tiny random vision models, and a summary.

No captioner, Grounding DINO or SAM weights install offline (see ../shared/NOTES.md), so
the demo runs the chain on tiny random models built here from configs, and says so::

    .venv/bin/python scripts/image_demo.py models "$RLFOUNDRY_HOME/models/tiny-vision"
    .venv/bin/python scripts/image_demo.py summary --batch sample-images \\
        --truth data/sample/images/annotations.jsonl

`models DEST` writes `DEST/captioner`, `DEST/detector` and `DEST/segmenter` (BLIP, Grounding
DINO, SAM with random weights, each under 1 M parameters) once; a folder already built is
kept. Point the model hub at them with `$RLFOUNDRY_CAPTIONER_MODEL`, `$RLFOUNDRY_DETECTOR_MODEL`
and `$RLFOUNDRY_SEGMENTER_MODEL` (or the assets' `model` config).

`summary` prints, for one batch already run through `rlfoundry job image_labeling`, a banner
saying which models had random weights, where the pointing dataset, its JSONL and `coco.json`
are, what was quarantined, and, given the sample's truth (`annotations.jsonl`: each shape's
visible mask), how many of the dataset's verified points lie on a real object, against the
share of pixels that objects cover (what random points would score).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

ROLES = ("captioner", "detector", "segmenter")
RULE = "=" * 78


def build_models(dest: Path) -> dict[str, Path]:
    """Tiny random captioner, detector and segmenter under `dest`, built once each."""
    from models.tiny import BUILDERS

    paths = {}
    for role in ROLES:
        folder = dest / role
        if not (folder / "config.json").is_file():
            staging = dest / f".{role}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            BUILDERS[role](staging)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(staging, folder)
        paths[role] = folder
    return paths


def _weights(warehouse, batch: str) -> dict[str, tuple[str, str]]:
    """role -> (model, weights kind) as the chain's tables recorded them for `batch`."""
    found = {}
    for role, table in (("captioner", "image_captions"), ("detector", "image_detections"),
                        ("segmenter", "image_masks")):
        rows = warehouse.fetch(f"SELECT DISTINCT model, weights FROM {table} "
                               "WHERE batch = $b AND model IS NOT NULL", {"b": batch})
        if rows:
            found[role] = rows[0]
    return found


def truth_hits(examples: list[dict], truth_file: Path) -> dict[str, float | int]:
    """Verified points of `examples` that lie on a true object (any, or one whose shape
    name the phrase says), and the share of pixels objects cover (chance level)."""
    import numpy as np

    from labeling.image.masks import decode_rle

    truth = {}
    for line in truth_file.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if all("mask" in o for o in row["objects"]):
            truth[row["image"]] = row
    points = on_object = named = 0
    covered = []
    for ex in examples:
        row = truth.get(Path(ex["image"]).name)
        if row is None:
            continue
        masks = [(o, decode_rle(o["mask"])) for o in row["objects"]]
        union = np.logical_or.reduce([m for _, m in masks])
        covered.append(float(union.mean()))
        words = {w.removesuffix("s") for w in ex["phrase"].lower().split()}  # "circles"
        for instance in json.loads(ex["points"]):
            for x, y in instance:
                col, line_ = min(int(x), union.shape[1] - 1), min(int(y), union.shape[0] - 1)
                points += 1
                on_object += bool(union[line_, col])
                named += any(m[line_, col] and o["label"] in words for o, m in masks)
    return {"points": points, "on_object": on_object, "on_named_object": named,
            "object_pixel_share": sum(covered) / len(covered) if covered else 0.0}


def summary(batch: str, truth: Path | None) -> int:
    from resources.warehouse import Warehouse

    warehouse = Warehouse()
    out = warehouse.report_dir("pointing_dataset", batch)
    examples = warehouse.fetch_dicts("SELECT * FROM pointing_examples WHERE batch = $b",
                                     {"b": batch})
    models = _weights(warehouse, batch)
    tiny = [role for role, (_, kind) in models.items() if kind == "random-tiny"]
    print(RULE)
    if tiny:
        print(f" RANDOM TINY WEIGHTS: {', '.join(tiny)}: tiny random builds (< 1 M "
              "parameters).")
        print(" Their captions, boxes, masks and so this dataset's labels are MEANINGLESS: the")
        print(" demo shows the plumbing, not labeling quality. Real weights: see the Makefile's")
        print(" demo-image target (CAPTIONER=, DETECTOR=, SEGMENTER=, IMAGE_CONFIG=).")
    else:
        print(" Pretrained weights throughout.")
    print(RULE)
    for role, (model, kind) in models.items():
        print(f"{role:>10}: {model} ({kind})")
    print(f"   dataset: {out / 'pointing_dataset'}  (datasets.load_from_disk; TRL GRPOTrainer)")
    print(f"     jsonl: {out / 'pointing.jsonl'}")
    print(f" coco.json: {out / 'coco.json'}")
    images = len({e['image_id'] for e in examples})
    print(f"  examples: {len(examples)} ('Point at <phrase>.') over {images} images")
    refused = warehouse.fetch(
        "SELECT asset, reason, count(*) FROM quarantine WHERE batch = $b AND (asset LIKE "
        "'image_%' OR asset = 'pointing_dataset') GROUP BY ALL ORDER BY 1, 3 DESC", {"b": batch})
    for asset, reason, n in refused:
        print(f"quarantine: {asset} {reason} x{n}")
    if truth is not None and truth.is_file():
        hits = truth_hits(examples, truth)
        n = hits["points"] or 1
        print(f"     truth: {hits['on_object']}/{hits['points']} verified points "
              f"({hits['on_object'] / n:.0%}) lie on a real object, "
              f"{hits['on_named_object']} ({hits['on_named_object'] / n:.0%}) on one the "
              f"phrase names; objects cover {hits['object_pixel_share']:.0%} of the pixels "
              f"(random points' rate) [{truth}]")
    print(RULE)
    return 0 if (out / "coco.json").is_file() else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("models", help="build the tiny random vision models once")
    build.add_argument("dest", type=Path)
    report = sub.add_parser("summary", help="banner, paths and truth check of one batch")
    report.add_argument("--batch", required=True)
    report.add_argument("--truth", type=Path, help="annotations.jsonl with each object's mask")
    args = parser.parse_args(argv)
    if args.command == "models":
        for role, path in build_models(args.dest).items():
            print(f"tiny random {role}: {path}")
        return 0
    return summary(args.batch, args.truth)


if __name__ == "__main__":
    sys.exit(main())
