"""Choosing the loop's candidate among its trained models, and the guard batches' veto."""

import pytest

from training.eval.promotion import decide, with_choice
from training.eval.report import grouped_scores
from training.eval.selection import GuardResult, choose, guard_results


def _report(hyp):
    return grouped_scores([{"reference": "the cat sat on the mat", "hypothesis": hyp,
                            "tags": {}}])


def test_a_collapsed_later_stage_does_not_hide_a_better_sft_model():
    """DPO that deletes words is worse than its SFT start: the SFT model competes."""
    choice = choose({"sft-1": 0.481, "dpo-1": 0.586})
    assert choice.stage == "sft-1" and choice.regressions == []
    assert "lowest eval WER (48.1%) of sft-1 48.1%, dpo-1 58.6%" in choice.why


def test_a_model_that_regresses_on_a_guard_gives_way_to_one_that_does_not():
    guards = {"sft-1": guard_results({"real": 0.060, "clean": 0.02}, {"real": 0.037,
                                      "clean": 0.02}, tolerance=0.005),
              "dpo-1": guard_results({"real": 0.039, "clean": 0.021}, {"real": 0.037,
                                      "clean": 0.02}, tolerance=0.005)}
    choice = choose({"sft-1": 0.30, "dpo-1": 0.35}, guards)
    assert choice.stage == "dpo-1"
    assert "sft-1 (30.0%) regresses on real" in choice.why
    assert [g.batch for g in choice.guards] == ["clean", "real"]


def test_when_every_model_regresses_the_best_is_named_and_the_gate_refuses_it():
    incumbent, candidate = _report("the cat sat on a mat"), _report("the cat sat on the mat")
    guards = {"sft-1": [GuardResult("real", 0.08, 0.037, 0.005)],
              "dpo-1": [GuardResult("real", 0.06, 0.037, 0.005)]}
    choice = choose({"sft-1": 0.30, "dpo-1": 0.20}, guards)
    assert choice.stage == "dpo-1" and "every model regresses" in choice.why
    decision = with_choice(decide(candidate, incumbent), choice)
    assert not decision.passed and decide(candidate, incumbent).passed
    assert "refused: it regresses on guard real: WER 6.0% vs incumbent 3.7% (+2.3 points, " \
           "limit +0.5)" in decision.reason
    assert decision.to_dict()["guards"][0]["passed"] is False
    assert decision.stage == "dpo-1"


def test_guard_tolerances_are_per_batch_and_must_name_guard_batches():
    wers, incumbent = {"real": 0.05, "clean": 0.05}, {"real": 0.04, "clean": 0.04}
    results = {g.batch: g.passed for g in guard_results(wers, incumbent, 0.005, {"real": 0.02})}
    assert results == {"clean": False, "real": True}
    with pytest.raises(ValueError, match="not guards of this loop: typo"):
        guard_results(wers, incumbent, 0.005, {"typo": 0.1})


def test_a_tie_goes_to_the_earlier_stage_and_the_only_model_needs_no_contest():
    assert choose({"sft-1": 0.25, "dpo-1": 0.25}).stage == "sft-1"
    assert choose({"grpo-1": 0.4}).why == "grpo-1: the only model this loop trained"
    with pytest.raises(ValueError):
        choose({})
