"""The root Definitions: every asset, check, job, schedule, sensor and resource of rlfoundry."""

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from assets import audio_qa, checks, image, ingest, loop, qc, speech, video_qa
from pipelines.automation import (
    inbox_manifests,
    loop_after_nightly_relabel,
    nightly_alm_loop,
    nightly_retrain,
    nightly_vlm_loop,
)
from pipelines.jobs import JOBS
from resources.label_studio import LabelStudio
from resources.model_hub import ModelHub
from resources.registry import ModelRegistry
from resources.training_launcher import TrainingLauncher
from resources.warehouse import Warehouse

defs = Definitions(
    assets=[*load_assets_from_modules([ingest, qc]), *speech.ASSETS, *image.ASSETS,
            *audio_qa.ASSETS, *audio_qa.QC, *video_qa.ASSETS, *video_qa.QC, *loop.ASSETS],
    asset_checks=[*load_asset_checks_from_modules([checks]), *speech.CHECKS, *image.CHECKS,
                  *audio_qa.CHECKS, *video_qa.CHECKS, *loop.CHECKS],
    jobs=JOBS,
    schedules=[nightly_retrain, nightly_vlm_loop, nightly_alm_loop],
    sensors=[inbox_manifests, loop_after_nightly_relabel],
    resources={"warehouse": Warehouse(), "model_hub": ModelHub(),
               "training_launcher": TrainingLauncher(), "label_studio": LabelStudio(),
               "model_registry": ModelRegistry()},
)
