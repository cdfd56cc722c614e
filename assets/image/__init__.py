"""The image pointing task's labeling chain: caption → noun phrases → boxes → masks → points →
verification → pointing dataset (TRL rows and COCO), and the human QC of the points in Label
Studio (`qc`).

`ASSETS` and `CHECKS` are what the root Definitions collect from this chain.
"""

from dagster import load_asset_checks_from_modules, load_assets_from_modules

from assets.image import captions, checks, dataset, detection, points, qc

LABELING = load_assets_from_modules([captions, detection, points, dataset])
"""The chain's own assets (no Label Studio needed); `ASSETS` adds its human QC."""
ASSETS = [*LABELING, *load_assets_from_modules([qc])]
CHECKS = load_asset_checks_from_modules([checks])
