"""The video questions chain's data contracts (ERROR: a cut off by a frame puts the truth in
the model's input; a malformed question makes the reward score right answers as wrong)."""

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, asset_check

from assets.common import read
from labeling.questions.choices import LETTERS, normalize_text
from labeling.questions.validate import check_choice
from labeling.video_qa.chain import QC_STATES
from pipelines.partitions import batches
from resources.warehouse import Warehouse


@asset_check(
    asset="video_segments", partitions_def=batches,
    description="Every segment is cut exactly to a frame: each context frame's time before "
    "the cut, each truth frame's at or after it, the cut at `cut` × the duration, frame "
    "counts matching the files listed, at least one frame on each side (ERROR).",
)
def video_segments_cut_exact(context: AssetCheckExecutionContext, warehouse: Warehouse):
    rows = read(warehouse, "queries/video_segments_for_batch", context.partition_key)
    bad = [r["video_id"][:12] for r in rows if not _cut_exact(r)]
    return AssetCheckResult(passed=not bad, severity=AssetCheckSeverity.ERROR,
                            metadata={"segments": len(rows), "bad": len(bad),
                                      "bad_videos": ", ".join(bad[:20]) or "none"})


def _cut_exact(r: dict) -> bool:
    context, truth = r["context_times"], r["truth_times"]
    return (bool(context) and bool(truth)
            and len(context) == len(r["context_paths"]) == r["context_frames"]
            and len(truth) == len(r["truth_paths"]) == r["truth_frames"]
            and abs(r["cut_s"] - r["cut"] * r["duration_s"]) < 1e-6
            and max(context) < r["cut_s"] <= min(truth)
            and list(context) + list(truth) == sorted(list(context) + list(truth)))


@asset_check(
    asset="video_questions", partitions_def=batches,
    description="Multiple-choice rows re-checked by the model-output validator: four distinct "
    "options, exactly one of them the answer's text, the right letter naming it; right letters "
    "balanced over the batch (counts differ by at most one); open answers not empty; every "
    "`qc` a known state (ERROR: rewards would be wrong).",
)
def video_questions_well_formed(context: AssetCheckExecutionContext, warehouse: Warehouse):
    rows = read(warehouse, "queries/video_questions_for_batch", context.partition_key)
    bad_choice = bad_open = bad_qc = 0
    letters = dict.fromkeys(LETTERS, 0)
    for r in rows:
        bad_qc += r["qc"] not in QC_STATES
        if r["answer_type"] == "choice":
            checked = check_choice({"question": r["question"], "options": r["options"],
                                    "answer": r["answer"]})
            right = [o for o in r["options"] if normalize_text(o) == normalize_text(
                r["answer_text"])]
            bad_choice += not (checked.ok and checked.choice.answer_text == r["answer_text"]
                               and len(right) == 1)
            letters[r["answer"]] = letters.get(r["answer"], 0) + 1
        else:
            bad_open += not r["answer"].strip()
    balanced = max(letters.values()) - min(letters.values()) <= 1
    return AssetCheckResult(
        passed=not (bad_choice or bad_open or bad_qc) and balanced,
        severity=AssetCheckSeverity.ERROR,
        metadata={"rows": len(rows), "bad_choice": bad_choice, "bad_open": bad_open,
                  "bad_qc": bad_qc, "letters": letters})
