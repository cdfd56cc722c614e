"""The image pointing task's labeling chain: caption → noun phrases → boxes → masks → points →
verification → pointing dataset (TRL rows and COCO).

`ASSETS` and `CHECKS` are what the root Definitions collect from this chain.
"""

from dagster import load_asset_checks_from_modules, load_assets_from_modules

from assets.image import captions, checks, dataset, detection, points

ASSETS = load_assets_from_modules([captions, detection, points, dataset])
CHECKS = load_asset_checks_from_modules([checks])
