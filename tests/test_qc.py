"""Human QC as pure code: second-review routing, agreement, tasks out, verdicts in, merged pairs.

No Label Studio here: exports are written the way Label Studio 1.23 writes them
(`to_name` = the Pairwise tag, `completed_by` = a user id, predictions by id).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dagster import DagsterInstance, materialize

from assets.speech.preferences import preference_pairs
from labeling.qc.agreement import agreement_report, cohens_kappa, percent_agreement
from labeling.qc.pairwise import HumanPreference, votes_by_pair
from labeling.qc.review import second_review
from labeling.qc.tasks import batch_tasks, pairwise_result, qc_tasks, storage_dirs
from labeling.qc.verdicts import apply_verdicts, pull_verdicts
from pipelines.partitions import BATCHES

PAIRS = [{"pair_id": f"p{i}", "clip_id": f"c{i}", "audio": f"/media/b1/c{i}.wav",
          "chosen": f"good {i}", "rejected": f"bad {i}", "margin": 0.25} for i in range(6)]


# --------------------------------------------------------------------------- routing


def test_second_review_routes_the_share_deterministically_and_by_seed():
    keys = [f"clip-{i}:pair" for i in range(2000)]
    picked = {k for k in keys if second_review(k, 0.2)}
    assert 340 < len(picked) < 460
    assert picked == {k for k in keys if second_review(k, 0.2)}
    other_seed = {k for k in keys if second_review(k, 0.2, seed=1)}
    assert other_seed != picked and 340 < len(other_seed) < 460
    assert {k for k in keys if second_review(k, 0.1)} <= picked  # a smaller share is a subset
    with pytest.raises(ValueError, match=r"share must be within \[0, 1\], got 1.5"):
        second_review("k", 1.5)


# --------------------------------------------------------------------------- agreement


def test_kappa_matches_the_textbook_example():
    # 50 items: both yes 20, both no 15, yes/no 5, no/yes 10 -> p_o 0.7, p_e 0.5, kappa 0.4
    ratings = [("y", "y")] * 20 + [("n", "n")] * 15 + [("y", "n")] * 5 + [("n", "y")] * 10
    assert percent_agreement(ratings) == pytest.approx(0.7)
    assert cohens_kappa(ratings) == pytest.approx(0.4)
    assert cohens_kappa([]) is None and percent_agreement([]) is None


def vote(task_id, pair, who, chosen, other):
    return HumanPreference(task_id, f"c-{pair}", pair, None, chosen, other, who, "left")


def test_agreement_report_counts_double_labelled_pairs_and_lists_disagreements():
    prefs = [
        vote(1, "p1", "u1", "x", "y"), vote(1, "p1", "u2", "x", "y"),             # agree
        vote(2, "p2", "u1", "x", "y"), vote(2, "p2", "u2", "y", "x"),             # tie
        vote(3, "p3", "u1", "y", "x"), vote(3, "p3", "u2", "x", "y"),
        vote(3, "p3", "u3", "y", "x"),                                           # 2-1
        vote(4, "p4", "u1", "x", "y"),                                           # one vote
    ]
    report = agreement_report(votes_by_pair(prefs), {p: "x" for p in ("p1", "p2", "p3", "p4")},
                              flagged=["p1", "p2", "p9"])
    assert (report.n_pairs, report.n_double, report.n_flagged, report.n_flagged_done) == (
        4, 3, 3, 2)
    # raters = first two votes: p1 (T,T), p2 (T,F), p3 (F,T) -> 1/3 agree
    assert report.percent == pytest.approx(1 / 3)
    assert report.kappa == pytest.approx(cohens_kappa([(True, True), (True, False),
                                                       (False, True)]))
    assert [(d.pair_id, d.tied) for d in report.disagreements] == [("p2", True), ("p3", False)]
    assert report.disagreements[1].votes == {"u1": "y", "u2": "x", "u3": "y"}


# --------------------------------------------------------------------------- tasks


def test_tasks_carry_batch_routing_and_the_models_pick_on_its_shown_side():
    tasks = qc_tasks(PAIRS, batch="b1", media_url=lambda p: f"/data/local-files/?d={p[1:]}",
                     share=0.5)
    assert tasks == qc_tasks(PAIRS, batch="b1", media_url=lambda p: f"/data/local-files/?d={p[1:]}",
                             share=0.5)
    for pair, task in zip(PAIRS, tasks, strict=True):
        data, (pred,) = task["data"], task["predictions"]
        assert data["batch"] == "b1" and data["pair_id"] == pair["pair_id"]
        assert data["audio"] == f"/data/local-files/?d=media/b1/{pair['clip_id']}.wav"
        field = task["meta"]["model_choice"]
        assert data[field] == pair["chosen"]
        assert pred["result"] == [pairwise_result("left" if field == "a" else "right")]
        assert pred["score"] == 0.25 and pred["model_version"] == "rlfoundry-mined-pairs"
    assert {t["meta"]["model_choice"] for t in tasks} == {"a", "b"}  # sides are swapped
    assert 0 < sum(t["data"]["second_review"] for t in tasks) < len(tasks)
    assert batch_tasks(tasks + [{"data": {"batch": "b2"}}, "junk"], "b1") == tasks


def test_storage_dirs_stay_strictly_inside_the_document_root():
    assert storage_dirs(["/r/a/1.wav", "/r/a/b/2.wav"], "/r") == [storage_dirs(
        ["/r/a/1.wav"], "/r")[0]]
    assert [str(d) for d in storage_dirs(["/r/1.wav"], "/r")] == []  # the root itself: refused
    assert [str(d) for d in storage_dirs(["/r/a/1.wav", "/r/b/2.wav"], "/r")] == ["/r/a", "/r/b"]


# --------------------------------------------------------------------------- verdicts


def annotated(tasks: list[dict], votes: dict[str, list[tuple[int, str]]]) -> list[dict]:
    """The export after annotators voted: {pair_id: [(user id, 'model' | 'other'), ...]}."""
    out = []
    for i, task in enumerate(tasks):
        model_side = "left" if task["meta"]["model_choice"] == "a" else "right"
        other_side = "right" if model_side == "left" else "left"
        anns = [{"id": 100 * i + j, "completed_by": who, "was_cancelled": False,
                 "result": [pairwise_result(model_side if pick == "model" else other_side)]}
                for j, (who, pick) in enumerate(votes.get(task["data"]["pair_id"], []))]
        out.append({**task, "id": i + 1, "annotations": anns, "predictions": [i + 1]})
    return out


def test_pull_gives_one_verdict_per_majority_with_agreement_and_model_comparison():
    tasks = qc_tasks(PAIRS[:4], batch="b1", share=0.0)
    export = annotated(tasks, {"p0": [(1, "model")], "p1": [(1, "other"), (2, "other")],
                               "p2": [(1, "model"), (2, "other")], "p3": []})
    pulled = pull_verdicts(export, source="http://ls/projects/1")
    assert (pulled.n_tasks, pulled.n_votes) == (4, 5)
    assert pulled.summary.tied_pair_ids == ["p2"]
    by_pair = {r["pair_id"]: r for r in pulled.rows}
    assert set(by_pair) == {"p0", "p1"}
    p0, p1 = by_pair["p0"], by_pair["p1"]
    assert (p0["chosen"], p0["agrees_with_model"], p0["n_annotators"]) == ("good 0", True, 1)
    assert (p1["chosen"], p1["rejected"], p1["agrees_with_model"]) == ("bad 1", "good 1", False)
    assert p1["model_chosen"] == "good 1" and p1["annotators"] == ["1", "2"]
    assert p1["task_id"] == 2 and p1["agreement"] == 1.0 and p1["second_review"] is False
    assert pulled.n_agree_with_model == 1
    assert (pulled.report.n_double, pulled.report.percent) == (2, 0.5)


def test_apply_verdicts_replaces_the_mined_pair_in_either_direction():
    mined = [{"clip_id": "c", "chosen": "x", "rejected": "y", "source": "model"},
             {"clip_id": "d", "chosen": "x", "rejected": "y", "source": "model"}]
    human = [{"clip_id": "c", "chosen": "y", "rejected": "x", "source": "human"},
             {"clip_id": "e", "chosen": "u", "rejected": "v", "source": "human"}]
    rows, replaced = apply_verdicts(mined, human)
    assert replaced == 1
    assert [(r["clip_id"], r["chosen"], r["source"]) for r in rows] == [
        ("d", "x", "model"), ("c", "y", "human"), ("e", "u", "human")]


# --------------------------------------------------------------------------- preference_pairs


def test_preference_pairs_uses_the_pulled_verdicts(warehouse, registry):
    now = datetime.now(UTC)
    clip = "a" * 64
    warehouse.write_partition("audio_clips", "b1", [{
        "clip_id": clip, "source_path": "/audio/a.wav", "sample_rate": 16000, "channels": 1,
        "duration_s": 2.0, "rms_dbfs": -20.0, "peak_dbfs": -3.0, "text": "the cat sat",
        "tags": "{}", "ingested_at": now}])
    warehouse.write_partition("asr_hypotheses", "b1", [
        {"clip_id": clip, "model": "m", "kind": "beam", "rank": i, "seed": 0, "text": text,
         "avg_logprob": -0.1 * (i + 1), "num_tokens": 3, "created_at": now}
        for i, text in enumerate(["the cat sat", "the cat", "a cat sat on"])])

    def run():
        with DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions(BATCHES, ["b1"])
            assert materialize([preference_pairs], partition_key="b1", instance=instance,
                               resources={"warehouse": warehouse,
                                          "model_registry": registry}).success
        return warehouse.fetch_dicts("SELECT * FROM preference_pairs ORDER BY chosen, rejected")

    mined = run()
    assert {r["source"] for r in mined} == {"model"} and len(mined) == 2
    flipped = mined[0]  # humans prefer the mined pair's rejected transcript
    warehouse.write_partition("pairwise_verdicts", "b1", [{
        "pair_id": flipped["pair_id"], "clip_id": clip, "chosen": flipped["rejected"],
        "rejected": flipped["chosen"], "model_chosen": flipped["chosen"],
        "agrees_with_model": False, "n_annotators": 2, "n_agree": 2, "agreement": 1.0,
        "annotators": ["1", "2"], "second_review": True, "task_id": 7, "project_id": 1,
        "pulled_at": now}])
    rows = run()
    assert len(rows) == 2
    (human,) = [r for r in rows if r["source"] == "human"]
    assert (human["chosen"], human["rejected"]) == (flipped["rejected"], flipped["chosen"])
    assert human["annotators"] == ["1", "2"] and human["audio"] == "/audio/a.wav"
    (model,) = [r for r in rows if r["source"] == "model"]
    assert {k: v for k, v in model.items() if k != "created_at"} == {
        k: v for k, v in mined[1].items() if k != "created_at"}
