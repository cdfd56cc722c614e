"""The speech task: Whisper N-best labeling, preference pairs, and the ASR loop.

`ASSETS` and `CHECKS` are what the root Definitions collect from this task; its spec
(`spec.SPEECH`) is what the spine reads.
"""

from dagster import load_asset_checks_from_modules, load_assets_from_modules

from assets.speech import (
    checks,
    curriculum,
    evaluation,
    labeling,
    preferences,
    promotion,
    training,
)

ASSETS = load_assets_from_modules([labeling, evaluation, preferences, curriculum, training,
                                   promotion])
CHECKS = load_asset_checks_from_modules([checks])
