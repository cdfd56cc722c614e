"""The audio questions task's labeling chain: sound regions (given in the manifest, marked by
people, or detected: speech by silero-vad) → durations per class → templated temporal
questions (open and multiple choice) → the dataset (TRL rows); and the human QC of the
regions in Label Studio (`qc`).

`ASSETS` (the chain, no Label Studio needed), `QC` and `CHECKS` are what the root Definitions
collect from this chain.
"""

from dagster import load_asset_checks_from_modules, load_assets_from_modules

from assets.audio_qa import checks, dataset, qc, questions, regions

ASSETS = load_assets_from_modules([regions, questions, dataset])
QC = load_assets_from_modules([qc])
CHECKS = load_asset_checks_from_modules([checks])
