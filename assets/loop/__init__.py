"""The loops of the families trained through the TRL backend (`vlm`, `alm`), built from
their task specs (`assets.loop.specs`): training set → SFT → DPO/MPO (where pairs exist) and
GRPO → evaluation → promotion."""

from assets.loop.evaluation import build_evaluation
from assets.loop.models import build_models
from assets.loop.preference import build_preference
from assets.loop.specs import SPECS
from assets.loop.training_set import build_training_set
from training.tasks import TaskSpec


def build(spec: TaskSpec) -> tuple[list, list]:
    """The loop's assets and checks for one spec."""
    evaluation, checks = build_evaluation(spec)
    return [build_training_set(spec), *build_models(spec), build_preference(spec),
            *evaluation], checks


ASSETS: list = []
CHECKS: list = []
for _spec in SPECS:
    _assets, _checks = build(_spec)
    ASSETS += _assets
    CHECKS += _checks
