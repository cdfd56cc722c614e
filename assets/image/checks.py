"""The image chain's data contracts: masks decode at their image's size, and every point of
the pointing dataset is inside one of its masks (ERROR: the reward would be wrong)."""

import json

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, asset_check

from assets.common import read
from labeling.image.chain import rle_of
from labeling.image.masks import decode_rle
from pipelines.partitions import batches
from resources.warehouse import Warehouse


@asset_check(
    asset="image_masks", partitions_def=batches,
    description="Every mask's RLE decodes, is its image's size and holds as many pixels as its "
    "`area` says, which is at least one (ERROR: points and rewards would be wrong).",
)
def image_masks_well_formed(context: AssetCheckExecutionContext, warehouse: Warehouse):
    problems = {"undecodable": 0, "wrong_size": 0, "wrong_area": 0, "empty": 0}
    masks = read(warehouse, "queries/image_masks_for_batch", context.partition_key)
    for row in masks:
        try:
            mask = decode_rle(rle_of(row))
        except (ValueError, TypeError, UnicodeEncodeError):
            problems["undecodable"] += 1
            continue
        problems["wrong_size"] += mask.shape != (row["image_height"], row["image_width"])
        problems["wrong_area"] += int(mask.sum()) != row["area"]
        problems["empty"] += not mask.any()
    return AssetCheckResult(passed=not any(problems.values()), severity=AssetCheckSeverity.ERROR,
                            metadata={"masks": len(masks), **problems})


@asset_check(
    asset="pointing_dataset", partitions_def=batches,
    description="Every example's points fall inside their own mask, decoded independently "
    "of the chain, and its masks are its image's size (ERROR: the reward would be wrong).",
)
def pointing_dataset_points_in_masks(context: AssetCheckExecutionContext, warehouse: Warehouse):
    rows = warehouse.fetch_dicts("SELECT * FROM pointing_examples WHERE batch = $b",
                                 {"b": context.partition_key})
    outside = wrong_size = 0
    for row in rows:
        masks = [decode_rle(rle) for rle in json.loads(row["masks"])]
        wrong_size += any(m.shape != (row["height"], row["width"]) for m in masks)
        for mask, points in zip(masks, json.loads(row["points"]), strict=True):
            outside += sum(not (0 <= y < mask.shape[0] and 0 <= x < mask.shape[1]
                                and mask[int(y), int(x)]) for x, y in points)
    return AssetCheckResult(passed=not (outside or wrong_size), severity=AssetCheckSeverity.ERROR,
                            metadata={"examples": len(rows), "points_outside": outside,
                                      "masks_of_wrong_size": wrong_size})
