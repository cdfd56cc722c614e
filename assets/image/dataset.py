"""The pointing dataset: verified "point at X" examples for TRL, and the same regions as COCO."""

import json
import sys
from collections import Counter
from typing import Literal

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import assets.label_sets
import labeling.image.chain
import labeling.image.coco
import labeling.image.pixels
import labeling.image.pointing
import labeling.qc.point_verdicts
import sql
from assets.common import batches, read, reasons_md
from assets.image import common as image_common
from assets.image.common import PRETRAINED, RANDOM_TINY
from assets.label_sets import made_from, stamp
from labeling.image.chain import bad, rle_of
from labeling.image.pointing import (
    VerifiedRegion,
    example_record,
    export_pointing,
    group_examples,
    load_coco,
    pointing_coco,
    provenance_of,
    rgb_file,
    trl_row,
)
from labeling.qc.point_verdicts import example_qc, filter_points, verdict_lookup
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

REGIONS_SQL = "queries/image_regions_verified"
VERDICTS_SQL = "queries/point_verdicts_for_batch"


class PointingDatasetConfig(Config):
    require_all_instances: bool = Field(
        True, description="Keep an (image, phrase) only when every instance of the phrase has "
        "a verified point (else it is quarantined as `unverified_instance`: pointing at the "
        "unverified one would score as a miss). False keeps the verified instances alone.")
    human_qc: Literal["require_yes", "drop_no", "ignore"] = Field(
        "require_yes", description="Human verdicts (image_qc_verdicts): require_yes keeps, once "
        "the batch has any, only points people said yes to; drop_no drops the points they said "
        "no to; ignore uses geometric verification alone. Rows record the verdicts either way.")


@asset(partitions_def=batches, group_name="image",
       deps=["image_point_checks", "image_points", "image_masks", "image_detections",
             "image_captions", "images", "image_qc_verdicts"],
       code_version=sql.version(REGIONS_SQL, VERDICTS_SQL, "schema/pointing_examples", THIS,
                                labeling.qc.point_verdicts,
                                image_common, assets.label_sets, labeling.image.pointing,
                                labeling.image.coco, labeling.image.chain, labeling.image.pixels))
def pointing_dataset(
    context: AssetExecutionContext, config: PointingDatasetConfig, warehouse: Warehouse,
) -> MaterializeResult:
    """One "Point at <phrase>." example per (image, phrase) whose instances verified: the
    `pointing_examples` table, JSONL and a `datasets` folder for TRL's GRPOTrainer (`prompt`
    conversational, `images`, `masks` as COCO RLE for the point-in-mask reward, `image_size`,
    provenance), and `coco.json` (checked to load with pycocotools)."""
    batch = context.partition_key
    verdicts = verdict_lookup(read(warehouse, VERDICTS_SQL, batch))
    regions, left_out = filter_points(read(warehouse, REGIONS_SQL, batch), verdicts,
                                      config.human_qc)
    examples, refused = group_examples(
        [VerifiedRegion(r["image_id"], r["phrase"], r["region"], rle_of(r), r["score"],
                        tuple(tuple(p) for p in r["points"])) for r in regions],
        require_all=config.require_all_instances)
    by_image = {r["image_id"]: r for r in regions}  # each image's file, size and provenance
    out = warehouse.report_dir("pointing_dataset", batch)
    files = {i: rgb_file(r["source_path"], r["mode"], i, out / "images")
             for i, r in by_image.items() if i in {e["image_id"] for e in examples}}
    rows = [_row(e, by_image[e["image_id"]], files[e["image_id"]]) for e in examples]
    paths = export_pointing(rows, pointing_coco(examples, by_image), out)
    coco = load_coco(paths["coco"])
    warehouse.write_partition("pointing_examples", batch,
                              stamp([{**example_record(r), **example_qc(
                                  r["image_id"], r["phrase"], r["points"], verdicts)}
                                  for r in rows], made_from(regions)))
    failures = [bad(by_image[f["image_id"]], f["reason"], f["detail"]) for f in refused
                + [o for o in left_out if o["reason"] == "qc_rejected"]]
    warehouse.write_quarantine("pointing_dataset", batch, failures)
    weights = RANDOM_TINY if any(r["weights"] == RANDOM_TINY for r in rows) else PRETRAINED
    if weights == RANDOM_TINY:
        context.log.warning("RANDOM TINY WEIGHTS: some labels of this dataset come from tiny "
                            "random models (see its `weights` column); they are meaningless "
                            "and for tests and demos only.")
    return MaterializeResult(metadata={
        "examples": len(rows), "images": len(files), "masks": sum(len(r["masks"]) for r in rows),
        "weights": MetadataValue.text(weights),
        "caption_sources": MetadataValue.json(dict(Counter(r["caption_source"] for r in rows))),
        "quarantined": len(failures), "quarantine_reasons": reasons_md(failures),
        "point_verdicts": len(verdicts),
        "points_left_out_by_qc": MetadataValue.json(dict(Counter(o["reason"] for o in left_out))),
        "coco": MetadataValue.json(coco),
        "sample": MetadataValue.md(_sample(rows)),
        "jsonl": MetadataValue.path(str(paths["jsonl"])),
        "dataset": MetadataValue.path(str(paths["dataset"])),
        "coco_json": MetadataValue.path(str(paths["coco"])),
    })


def _row(example: dict, region: dict, image_file: str) -> dict:
    return trl_row(example, image=region["source_path"], image_file=image_file,
                   width=region["width"], height=region["height"],
                   provenance=provenance_of(region))


def _sample(rows: list[dict], count: int = 5) -> str:
    lines = ["| image | prompt | masks | points | caption source | weights |",
             "|---|---|---|---|---|---|"]
    for r in rows[:count]:
        lines.append(f"| {r['image'].rsplit('/', 1)[-1]} | {r['prompt_text']} | {len(r['masks'])} "
                     f"| {json.dumps(r['points'])} | {r['caption_source']} | {r['weights']} |")
    return "\n".join(lines) if rows else "no example"
