"""A real Label Studio round trip: push a batch's pairs, annotate as two people would, pull back.

Starts Label Studio 1.23.2 from `.venv-labelstudio` (`make labelstudio-setup`;
`make test` builds it first) on 127.0.0.1, on a free port, with a fresh
database in a temporary folder (~30 s of migrations here), then runs the QC
assets in-process against it. Skipped only when that venv is missing and we
are not in CI: with CI=true a missing venv fails, so CI really runs this.
"""

from __future__ import annotations

import wave
from datetime import UTC, datetime

import requests
from dagster import DagsterInstance, materialize

from assets.qc import PROJECT, pairwise_qc_tasks, pairwise_qc_verdicts
from labeling.qc.review import second_review
from labeling.qc.tasks import batch_tasks, pairwise_result
from pipelines.partitions import BATCHES

PAIRS = 10
# Annotator 1 sides with the model except on pair-2 and pair-3; the second-review share
# (default 0.2: pair-0, pair-1, pair-3, pair-9 here) gets a second annotator, who agrees on
# pair-0, pair-3 (both "other") and pair-9, and disagrees on pair-1 (a tie: no verdict).
FIRST_OTHER = {"pair-2", "pair-3"}
SECOND = {"pair-0": "model", "pair-1": "other", "pair-3": "other", "pair-9": "model"}


def write_wav(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 1600)


def mined_pairs(warehouse, media, batch: str, n: int) -> None:
    now = datetime.now(UTC)
    rows = []
    for i in range(n):
        audio = media / batch / f"clip-{i}.wav"
        write_wav(audio)
        rows.append({"pair_id": f"pair-{i}", "clip_id": f"clip-{i}", "audio": str(audio),
                     "prompt": "", "chosen": f"the cat sat {i}", "rejected": f"the cap sat {i}",
                     "source": "model", "margin": 0.2, "created_at": now})
    warehouse.write_partition("preference_pairs", batch, rows)


def run(asset, warehouse, ls, batch: str) -> dict:
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(BATCHES, [batch])
        result = materialize([asset], partition_key=batch, instance=instance,
                             resources={"warehouse": warehouse, "label_studio": ls})
    assert result.success
    (mat,) = result.asset_materializations_for_node(asset.op.name)
    return {k: v.value for k, v in mat.metadata.items()}


def test_push_annotate_pull_through_a_real_label_studio(label_studio, warehouse):
    ls = label_studio.settings.resource()
    media = label_studio.settings.document_root / "media"
    mined_pairs(warehouse, media, "b1", PAIRS)
    mined_pairs(warehouse, media, "b2", 2)  # another batch in the same project

    pushed = run(pairwise_qc_tasks, warehouse, ls, "b1")
    flagged = {f"pair-{i}" for i in range(PAIRS) if second_review(f"pair-{i}", 0.2)}
    assert flagged == set(SECOND)
    assert (pushed["pushed"], pushed["second_review"], pushed["media_not_served"]) == (
        PAIRS, len(flagged), 0)
    again = run(pairwise_qc_tasks, warehouse, ls, "b1")  # idempotent per batch
    assert (again["pushed"], again["already_in_label_studio"]) == (0, PAIRS)
    assert run(pairwise_qc_tasks, warehouse, ls, "b2")["pushed"] == 2

    project = ls.find_project(PROJECT)
    tasks = {t["data"]["pair_id"]: t for t in batch_tasks(ls.export_tasks(project), "b1")}
    assert len(tasks) == PAIRS and len(ls.export_tasks(project)) == PAIRS + 2
    one = tasks["pair-0"]
    audio = requests.get(f"{label_studio.url}{one['data']['audio']}", timeout=30,
                         headers={"Authorization": f"Token {label_studio.settings.token}"})
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"  # the clip is served

    reviewer = ls.request("POST", "/api/users/", json={
        "email": "reviewer@rlfoundry.test", "username": "reviewer"})["id"]

    def annotate(pair_id: str, pick: str, **who) -> None:
        task = tasks[pair_id]
        model = "left" if task["meta"]["model_choice"] == "a" else "right"
        side = model if pick == "model" else {"left": "right", "right": "left"}[model]
        ls.create_annotation(task["id"], [pairwise_result(side)], **who)

    for pair_id in tasks:
        annotate(pair_id, "other" if pair_id in FIRST_OTHER else "model")
    waiting = ls.request("GET", f"/api/tasks/{tasks['pair-1']['id']}/")
    assert (waiting["overlap"], waiting["is_labeled"]) == (2, False)  # waits for a 2nd person
    assert ls.request("GET", f"/api/tasks/{tasks['pair-2']['id']}/")["is_labeled"] is True
    for pair_id, pick in SECOND.items():
        annotate(pair_id, pick, completed_by=reviewer)

    pulled = run(pairwise_qc_verdicts, warehouse, ls, "b1")
    assert (pulled["tasks"], pulled["votes"], pulled["verdicts"], pulled["tied"]) == (
        PAIRS, PAIRS + len(SECOND), PAIRS - 1, 1)
    assert (pulled["double_labelled"], pulled["second_review_flagged"],
            pulled["second_review_done"]) == (4, 4, 4)
    # sided with the model, (first, second): pair-0 TT, pair-1 TF, pair-3 FF, pair-9 TT
    assert pulled["percent_agreement"] == 0.75 and pulled["cohens_kappa"] == 0.5
    assert pulled["agree_with_model"] == PAIRS - 1 - len(FIRST_OTHER)
    assert "pair-1" in pulled["disagreements"] and "pair-3" not in pulled["disagreements"]

    rows = {r["pair_id"]: r for r in warehouse.fetch_dicts("SELECT * FROM pairwise_verdicts")}
    assert set(rows) == {f"pair-{i}" for i in range(PAIRS)} - {"pair-1"}
    assert (rows["pair-3"]["chosen"], rows["pair-3"]["agrees_with_model"]) == (
        "the cap sat 3", False)
    assert rows["pair-3"]["annotators"] == ["1", str(reviewer)]
    assert rows["pair-3"]["second_review"] and not rows["pair-2"]["second_review"]
    assert rows["pair-0"]["project_id"] == project and rows["pair-0"]["task_id"] == tasks[
        "pair-0"]["id"]
