"""Points inside each mask, and their geometric verification."""

import sys
from typing import Literal

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

import assets.label_sets
import labeling.image.chain
import labeling.image.masks
import labeling.image.overlay
import labeling.image.points
import labeling.image.verify
import sql
from assets.common import batches, png_markdown, read, reasons_md
from assets.image import common as image_common
from assets.label_sets import made_from, stamp
from labeling.image.chain import box_of, check_rows, pass_rates, point_rows, rle_of
from labeling.image.masks import decode_rle
from labeling.image.overlay import overlay
from labeling.image.pixels import open_rgb
from labeling.image.verify import VerifyConfig
from resources.warehouse import Warehouse

THIS = sys.modules[__name__]  # this module's source is part of its assets' code_version

MASKS_SQL = "queries/image_masks_for_batch"
POINTS_SQL = "queries/image_points_for_batch"


class PointsConfig(Config):
    strategy: Literal["centroid", "random", "edge_aware"] = Field(
        "centroid", description="centroid (the centre of mass, or the deepest point when it "
        "falls outside the mask) | random (drawn in proportion to the distance from the edge) "
        "| edge_aware (uniform among pixels at least `margin` px from the edge).")
    n: int = Field(1, ge=1, description="Points per mask (centroid gives one).")
    margin: float = Field(3.0, ge=0, description="edge_aware: least distance from the mask's "
                          "edge, px.")
    seed: int = Field(0, description="Seed; each mask's own is point_seed(image, phrase, "
                      "seed=seed), so a point does not depend on the order of rows.")


@asset(partitions_def=batches, group_name="image", deps=["image_masks"],
       code_version=sql.version(MASKS_SQL, "schema/image_points", THIS, image_common,
                                assets.label_sets, labeling.image.chain, labeling.image.points,
                                labeling.image.masks))
def image_points(
    context: AssetExecutionContext, config: PointsConfig, warehouse: Warehouse,
) -> MaterializeResult:
    """`n` points per mask by `strategy`; a mask with none (too thin for the margin) is
    quarantined with its measured depth."""
    batch = context.partition_key
    masks = read(warehouse, MASKS_SQL, batch)
    rows, failures = point_rows(masks, strategy=config.strategy, n=config.n,
                                margin=config.margin, seed=config.seed)
    warehouse.write_partition("image_points", batch, stamp(rows, made_from(masks)))
    warehouse.write_quarantine("image_points", batch, failures)
    return MaterializeResult(metadata={
        "masks": len(masks), "points": len(rows),
        "masks_with_points": len({(r["image_id"], r["region"]) for r in rows}),
        "strategy": MetadataValue.text(config.strategy),
        "quarantined": len(failures), "quarantine_reasons": reasons_md(failures),
    })


class PointChecksConfig(Config):
    margin: float = Field(3.0, ge=0, description="Least distance from a point to its mask's "
                          "edge, px.")
    min_box_iou: float = Field(0.5, ge=0, le=1, description="Least IoU between the mask's own "
                               "box and the detector's box.")
    min_area_share: float = Field(0.001, ge=0, le=1, description="Least share of the image a "
                                  "mask covers.")
    max_area_share: float = Field(0.9, ge=0, le=1, description="Largest share of the image a "
                                  "mask may cover.")
    unambiguous: bool = Field(True, description="Fail a point that another phrase's mask of "
                              "the same image also contains.")
    overlays: int = Field(4, ge=0, description="Pictures in the metadata (image, tinted mask, "
                          "box, point): half verified, half refused.")


@asset(partitions_def=batches, group_name="image", deps=["image_points", "image_masks"],
       code_version=sql.version(MASKS_SQL, POINTS_SQL, "schema/image_point_checks", THIS,
                                image_common, assets.label_sets, labeling.image.chain,
                                labeling.image.verify, labeling.image.overlay))
def image_point_checks(
    context: AssetExecutionContext, config: PointChecksConfig, warehouse: Warehouse,
) -> MaterializeResult:
    """Every point checked against its mask, its box and the other phrases' masks of its
    image; failures quarantined with the reason and what was measured."""
    batch = context.partition_key
    masks, points = read(warehouse, MASKS_SQL, batch), read(warehouse, POINTS_SQL, batch)
    verify = VerifyConfig(config.margin, config.min_box_iou, config.min_area_share,
                          config.max_area_share, config.unambiguous)
    rows, failures = check_rows(masks, points, verify)
    warehouse.write_partition("image_point_checks", batch, stamp(rows, made_from(points)))
    warehouse.write_quarantine("image_point_checks", batch, failures)
    rates = pass_rates(rows)
    metadata = {
        "points": len(rows), "verified": sum(r["verified"] for r in rows),
        "pass_rate": round(rates["all"], 4),
        "pass_rate_by_reason": MetadataValue.md(_rates_md(rates)),
        "quarantined": len(failures), "quarantine_reasons": reasons_md(failures),
    }
    folder = warehouse.report_dir("image_point_checks", batch) / "overlays"
    for i, path in enumerate(_overlays(rows, masks, config.overlays, folder), 1):
        metadata[f"example_{i}"] = png_markdown(path, path.stem)
    return MaterializeResult(metadata=metadata)


def _rates_md(rates: dict[str, float]) -> str:
    lines = ["| check (failure reason) | pass rate |", "|---|---|"]
    return "\n".join(lines + [f"| `{reason}` | {rate:.1%} |" for reason, rate in rates.items()])


def _overlays(rows: list[dict], masks: list[dict], count: int, folder):
    """Up to `count` overlay PNGs, verified and refused points alternating; their paths."""
    passed = [r for r in rows if r["verified"]]
    failed = [r for r in rows if not r["verified"]]
    picked = [r for pair in zip(passed, failed, strict=False) for r in pair]
    picked += passed[len(picked) // 2:] + failed[len(picked) // 2:]
    regions = {(m["image_id"], m["region"]): m for m in masks}
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    paths = []
    for i, row in enumerate(picked[:count], 1):
        mask = regions[(row["image_id"], row["region"])]
        label = f"{row['phrase']}: " + ("verified" if row["verified"] else row["reason"])
        try:
            image = open_rgb(mask["source_path"])
        except OSError:  # gone since; the rows are what matters
            continue
        picture = overlay(image, decode_rle(rle_of(mask)), box_of(mask), [(row["x"], row["y"])],
                          label, passed=bool(row["verified"]))
        path = folder / f"{i}-{'verified' if row['verified'] else row['reason']}.png"
        picture.save(path)
        paths.append(path)
    return paths
