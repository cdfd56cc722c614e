"""The video questions task's labeling chain: videos cut at 70 % into standard frames →
descriptions of both parts (given, or by the VLM) → questions about what happens next (by the
text LLM, checked in code, or by a template from a given truth) with a blind control and a
curriculum bucket → the dataset (TRL rows); and the human validation of the questions in
Label Studio (`qc`: yes/no per question, only accepted ones reach the dataset).

`ASSETS` (the chain, no Label Studio needed), `QC` and `CHECKS` are what the root Definitions
collect from this chain.
"""

from dagster import load_asset_checks_from_modules, load_assets_from_modules

from assets.video_qa import checks, dataset, descriptions, qc, questions, segments

ASSETS = load_assets_from_modules([segments, descriptions, questions, dataset])
QC = load_assets_from_modules([qc])
CHECKS = load_asset_checks_from_modules([checks])
