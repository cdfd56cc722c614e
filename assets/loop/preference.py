"""A TRL loop's preference stage: DPO or MPO from the SFT model, on pairs where verdicts give
them.

`<family>_preference_model` builds the pairs of the loop's training rows
(`training.trl_backend.pairs`; by default only where people gave a verdict: a point they
said no to in the image QC, a question they accepted), writes them to `pairs.jsonl` in its
report folder and trains on them like the other stages (`_run`: the training launcher,
MLflow, the registry). With no pair, it trains nothing and says why (the evaluation then
compares the models the loop did train), so a loop over data nobody has reviewed yet runs
through.
"""


import json
from collections import Counter

from dagster import AssetExecutionContext, AssetsDefinition, MaterializeResult, MetadataValue, asset

from assets.common import read
from assets.loop.config import PreferenceStageConfig
from assets.loop.models import TRAINER_VERSION, run_stage
from pipelines.partitions import loops
from resources.model_hub import ModelHub
from resources.registry import ModelRegistry
from resources.training_launcher import TrainingLauncher
from resources.warehouse import Warehouse
from training.tasks import TaskSpec
from training.trl_backend.data import read_rows
from training.trl_backend.pairs import build_pairs

POINT_VERDICTS_SQL = "queries/point_verdicts_for_batch"
REASONS = {"no_human_verdict": "without a human verdict", "not_multiple_choice":
           "not multiple choice", "contested_by_people": "whose verified point people rejected",
           "mirror_inside_a_mask": "whose mirrored point lands in a mask",
           "no_distractor": "without a distractor",
           "human_rejected_point": "against a point people said no to",
           "human_accepted_question": "from questions people accepted",
           "verified_distractor": "against a verified distractor",
           "verified_mirror_point": "against a mirrored point"}
HINTS = {"vlm": "Pull people's verdicts (image_qc_verdicts: points they said no to; "
                "video_qc_verdicts: questions they accepted), or set pairs_from: verified.",
         "alm": "Nobody reviews audio questions: set pairs_from: verified to train on the "
                "chain's verified answers against their distractors."}


def build_preference(spec: TaskSpec) -> AssetsDefinition:
    @asset(name=spec.models["preference"], group_name=f"{spec.family}_loop",
           partitions_def=loops, deps=[spec.training_set, spec.models["sft"]], pool="gpu",
           code_version=TRAINER_VERSION)
    def _preference(context: AssetExecutionContext, config: PreferenceStageConfig,
                    warehouse: Warehouse, model_hub: ModelHub,
                    training_launcher: TrainingLauncher, model_registry: ModelRegistry
                    ) -> MaterializeResult:
        """DPO/MPO from the SFT model on preference pairs: a verified answer against one
        people rejected (or, with pairs_from = verified, one the chain knows is wrong)."""
        loop = context.partition_key
        snap = warehouse.read_output(spec.training_set, loop)
        rejected = _rejected_points(warehouse, snap["train_batches"]) \
            if "pointing" in snap["tasks"] else {}
        pairs, skipped = build_pairs(read_rows([snap["train_data"]]),
                                     pairs_from=config.pairs_from, rejected_points=rejected,
                                     max_per_row=config.max_pairs_per_row, seed=config.seed)
        out = warehouse.report_dir(spec.models["preference"], loop)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "pairs.jsonl"
        path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
        sources = dict(Counter(p["pair_source"] for p in pairs))
        about = {"pairs": MetadataValue.int(len(pairs)),
                 "pair_sources": MetadataValue.text(counted(sources) or "none"),
                 "rows_without_pair": MetadataValue.text(counted(skipped) or "none"),
                 "objective": MetadataValue.text(config.objective),
                 "pairs_from": MetadataValue.text(config.pairs_from)}
        if not pairs:
            why = (f"no preference pair in the training rows (pairs_from: {config.pairs_from}; "
                   f"{counted(skipped)}): nothing trained. {HINTS[spec.family]}")
            context.log.info(why)
            warehouse.write_output(spec.models["preference"], loop,
                                   {"skipped": why, "pairs": 0})
            return MaterializeResult(metadata={"skipped": MetadataValue.text(why), **about})
        context.log.info(f"{len(pairs)} preference pairs ({counted(sources)}); "
                         f"{config.objective} from the SFT model")
        result = run_stage(context, spec, config.objective, config, warehouse, model_hub,
                           training_launcher, model_registry, data=str(path))
        about["pairs_file"] = MetadataValue.path(str(path))
        return MaterializeResult(metadata={**about, **(result.metadata or {})})

    return _preference


def counted(counts: dict[str, int]) -> str:
    """Counts by reason as words.

    >>> counted({"no_human_verdict": 17, "not_multiple_choice": 23})
    '17 without a human verdict, 23 not multiple choice'
    """
    return ", ".join(f"{n} {REASONS.get(k, k.replace('_', ' '))}" for k, n in counts.items())


def _rejected_points(warehouse: Warehouse, batches: list[str]) -> dict[tuple[str, str], list]:
    """(image_id, phrase) → the points people said no to, over the train batches."""
    out: dict[tuple[str, str], list] = {}
    for batch in batches:
        for v in read(warehouse, POINT_VERDICTS_SQL, batch):
            if v["verdict"] == "no":
                out.setdefault((v["image_id"], v["phrase"]), []).append((v["x"], v["y"]))
    return out
