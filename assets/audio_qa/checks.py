"""The audio questions chain's data contract: every question's answer is well formed (ERROR:
the reward would score right answers as wrong, or the reverse)."""

import math

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, asset_check

from assets.common import read
from labeling.questions.choices import LETTERS
from labeling.questions.validate import check_choice
from pipelines.partitions import batches
from resources.warehouse import Warehouse


@asset_check(
    asset="audio_questions", partitions_def=batches,
    description="Multiple-choice rows re-checked by the model-output validator (four distinct "
    "options, one right letter naming the answer's text) with the right letters balanced over "
    "the batch (counts differ by at most one); open numbers finite with a tolerance >= 0; "
    "open text answers not empty (ERROR: rewards would be wrong).",
)
def audio_questions_well_formed(context: AssetCheckExecutionContext, warehouse: Warehouse):
    rows = read(warehouse, "queries/audio_questions_for_batch", context.partition_key)
    bad_choice = bad_number = bad_text = 0
    letters = dict.fromkeys(LETTERS, 0)
    for r in rows:
        if r["answer_type"] == "choice":
            checked = check_choice({"question": r["question"], "options": r["options"],
                                    "answer": r["answer"]})
            bad_choice += not (checked.ok and checked.choice.answer_text == r["answer_text"])
            letters[r["answer"]] = letters.get(r["answer"], 0) + 1
        elif r["answer_type"] == "number":
            bad_number += not (r["value"] is not None and math.isfinite(r["value"])
                               and r["tolerance"] is not None and r["tolerance"] >= 0)
        else:
            bad_text += not r["answer"].strip()
    balanced = max(letters.values()) - min(letters.values()) <= 1
    return AssetCheckResult(
        passed=not (bad_choice or bad_number or bad_text) and balanced,
        severity=AssetCheckSeverity.ERROR,
        metadata={"questions": len(rows), "bad_choice": bad_choice, "bad_number": bad_number,
                  "bad_text": bad_text, "letters": letters})
