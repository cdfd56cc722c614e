"""Tests for training.data.pairs: preference pairs mined from N-best hypotheses by WER."""

from __future__ import annotations

import doctest
import itertools

import pytest

import training.data.pairs
from training.data.pairs import Pair, PairConfig, mine_pairs, score_hypotheses

REF = "alpha bravo charlie delta echo foxtrot golf hotel india juliet"  # 10 words

# Five hypotheses with known WERs against REF: 0.0, 0.1, 0.2, 0.5, 1.0.
H0 = {"text": "Alpha, bravo, charlie, delta, echo, foxtrot, golf, hotel, india, juliet.",
      "kind": "greedy", "rank": 0, "avg_logprob": -0.1}
H1 = {"text": "alpha bravo charlie delta echo foxtrot golf hotel india kilo",
      "kind": "beam", "rank": 1, "avg_logprob": -0.3}
H2 = {"text": "alpha bravo charlie delta echo foxtrot golf hotel lima kilo",
      "kind": "beam", "rank": 2, "avg_logprob": -0.5}
H3 = {"text": "alpha bravo charlie delta echo", "kind": "sample", "rank": 0, "avg_logprob": -0.8}
H4 = {"text": "", "kind": "sample", "rank": 1, "avg_logprob": -2.0}
FIVE = [H3, H1, H4, H0, H2]  # deliberately not in quality order


def texts(pairs: list[Pair]) -> list[tuple[str, str]]:
    name = {h["text"]: f"H{i}" for i, h in enumerate([H0, H1, H2, H3, H4])}
    return [(name[p.chosen], name[p.rejected]) for p in pairs]


def test_doctests():
    assert doctest.testmod(training.data.pairs).failed == 0


def test_score_hypotheses_known_wers_in_input_order():
    scored = score_hypotheses(REF, FIVE)
    assert [round(h.wer, 6) for h in scored] == [0.5, 0.1, 1.0, 0.0, 0.2]
    assert [h.index for h in scored] == [0, 1, 2, 3, 4]
    assert scored[3].normalized == REF and scored[3].cer == 0.0
    assert scored[2].cer == 1.0 and scored[2].normalized == ""
    assert (scored[1].kind, scored[1].rank, scored[1].avg_logprob) == ("beam", 1, -0.3)


def test_score_hypotheses_defaults_for_missing_fields():
    (h,) = score_hypotheses("hello world", [{"text": None}])
    assert (h.text, h.kind, h.rank, h.avg_logprob, h.wer) == ("", "unknown", 0, None, 1.0)


@pytest.mark.parametrize(
    ("strategy", "cap", "expected"),
    [
        ("best_vs_worst", 2, [("H0", "H4"), ("H0", "H3")]),
        ("best_vs_worst", None, [("H0", "H4"), ("H0", "H3"), ("H0", "H2"), ("H0", "H1")]),
        ("best_vs_each", 2, [("H0", "H1"), ("H0", "H2")]),
        ("best_vs_each", None, [("H0", "H1"), ("H0", "H2"), ("H0", "H3"), ("H0", "H4")]),
        ("adjacent", 2, [("H0", "H1"), ("H1", "H2")]),
        ("adjacent", None, [("H0", "H1"), ("H1", "H2"), ("H2", "H3"), ("H3", "H4")]),
        ("adjacent", 1, [("H0", "H1")]),
    ],
)
def test_strategies_on_five_hypotheses(strategy, cap, expected):
    config = PairConfig(strategy=strategy, max_pairs_per_clip=cap)
    assert texts(mine_pairs(REF, FIVE, config)) == expected


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        # margins 0.1 (H0-H1) and 0.1 (H1-H2) fail a 0.15 minimum; 0.2+ pass
        ("best_vs_worst", [("H0", "H4"), ("H0", "H3"), ("H0", "H2")]),
        ("best_vs_each", [("H0", "H2"), ("H0", "H3"), ("H0", "H4")]),
        ("adjacent", [("H2", "H3"), ("H3", "H4")]),
    ],
)
def test_min_margin_filters_pairs(strategy, expected):
    config = PairConfig(strategy=strategy, min_wer_margin=0.15, max_pairs_per_clip=None)
    assert texts(mine_pairs(REF, FIVE, config)) == expected


def test_margin_exactly_at_minimum_passes_despite_float_noise():
    # WER 0.3 - 0.2 is 0.09999999999999998 in floats; it must still pass 0.1.
    two_subs = {"text": "alpha bravo charlie delta echo foxtrot golf hotel lima kilo"}
    three_subs = {"text": "alpha bravo charlie delta echo foxtrot golf mike lima kilo"}
    (pair,) = mine_pairs(REF, [three_subs, two_subs], PairConfig(min_wer_margin=0.1))
    assert pair.chosen == two_subs["text"] and pair.rejected == three_subs["text"]
    assert pair.margin == pytest.approx(0.1)
    assert mine_pairs(REF, [three_subs, two_subs], PairConfig(min_wer_margin=0.11)) == []


def test_exact_ties_are_never_pairs_even_with_zero_margin():
    one_sub_a = {"text": "alpha bravo charlie delta echo foxtrot golf hotel india kilo"}
    one_sub_b = {"text": "xray bravo charlie delta echo foxtrot golf hotel india juliet"}
    config = PairConfig(strategy="adjacent", min_wer_margin=0.0, max_pairs_per_clip=None)
    assert mine_pairs(REF, [one_sub_a, one_sub_b], config) == []
    # With a better hypothesis on top, only the non-tied pairs appear.
    pairs = mine_pairs(REF, [one_sub_a, H0, one_sub_b], config)
    assert [(p.chosen, p.rejected) for p in pairs] == [(H0["text"], one_sub_a["text"])]
    each = mine_pairs(REF, [one_sub_a, H0, one_sub_b], PairConfig(
        strategy="best_vs_each", min_wer_margin=0.0, max_pairs_per_clip=None))
    assert len(each) == 2 and {p.rejected for p in each} == {one_sub_a["text"], one_sub_b["text"]}


def test_secondary_metric_orders_but_never_makes_a_pair():
    ref = "alpha bravo"
    a = {"text": "alpha bravx", "kind": "a"}  # WER 1/2, CER 1/11
    b = {"text": "alpha", "kind": "b"}  # WER 1/2, CER 6/11
    c = {"text": "alphx bravx", "kind": "c"}  # WER 2/2, CER 2/11
    every = PairConfig(strategy="best_vs_each", min_wer_margin=0.0, max_pairs_per_clip=None)
    wer_pairs = mine_pairs(ref, [c, b, a], every)
    # a and b tie on WER: CER puts a first, but a-vs-b is not a pair.
    assert [(p.chosen_kind, p.rejected_kind) for p in wer_pairs] == [("a", "c")]
    assert wer_pairs[0].margin == pytest.approx(0.5)
    cer = PairConfig(strategy="best_vs_worst", metric="cer", max_pairs_per_clip=None)
    cer_pairs = mine_pairs(ref, [c, b, a], cer)
    assert [(p.chosen_kind, p.rejected_kind) for p in cer_pairs] == [("a", "b"), ("a", "c")]
    assert cer_pairs[0].margin == pytest.approx(5 / 11)
    assert cer_pairs[0].metric == "cer"


def test_avg_logprob_breaks_full_ties_for_the_chosen():
    low = {"text": "alpha bravo charlie delta echo foxtrot golf hotel india juliet",
           "kind": "beam", "rank": 3, "avg_logprob": -0.9}
    high = {**H0, "text": "alpha bravo charlie delta echo foxtrot golf hotel india juliet!"}
    config = PairConfig(dedupe=False, max_pairs_per_clip=1)
    (pair,) = mine_pairs(REF, [low, high, H4], config)
    assert (pair.chosen, pair.chosen_kind) == (high["text"], "greedy")


def test_dedupe_keeps_one_candidate_per_normalised_text_with_best_logprob():
    empty_none = {"text": None, "kind": "sample", "rank": 5, "avg_logprob": -0.4}
    blank = {"text": "  ", "kind": "sample", "rank": 6, "avg_logprob": -3.0}
    hyps = [H4, H0, empty_none, blank]
    every = PairConfig(strategy="best_vs_each", max_pairs_per_clip=None)
    (pair,) = mine_pairs(REF, hyps, every)
    assert (pair.rejected, pair.rejected_kind, pair.rejected_rank) == ("", "sample", 5)
    no_dedupe = mine_pairs(REF, hyps, PairConfig(
        strategy="best_vs_each", max_pairs_per_clip=None, dedupe=False))
    assert [p.rejected_rank for p in no_dedupe] == [5, 1, 6]  # ordered by avg_logprob


def test_empty_hypothesis_is_a_legit_rejected():
    (pair,) = mine_pairs(REF, [H0, H4], PairConfig())
    assert pair.rejected == "" and pair.rejected_wer == 1.0 and pair.rejected_cer == 1.0
    assert pair.to_row() == {
        "chosen": H0["text"], "rejected": "", "chosen_wer": 0.0, "chosen_cer": 0.0,
        "rejected_wer": 1.0, "rejected_cer": 1.0, "margin": 1.0, "metric": "wer",
        "strategy": "best_vs_worst", "chosen_kind": "greedy", "chosen_rank": 0,
        "rejected_kind": "sample", "rejected_rank": 1,
    }


@pytest.mark.parametrize("reference", [None, "", "   ", "[noise]", "Um."])
def test_no_reference_no_pairs(reference):
    assert mine_pairs(reference, FIVE, PairConfig()) == []


def test_no_or_single_hypothesis_no_pairs():
    assert mine_pairs(REF, [], PairConfig()) == []
    assert mine_pairs(REF, [H3], PairConfig()) == []


@pytest.mark.parametrize("strategy", ["best_vs_worst", "best_vs_each", "adjacent"])
def test_deterministic_whatever_the_input_order(strategy):
    config = PairConfig(strategy=strategy, max_pairs_per_clip=None)
    expected = mine_pairs(REF, FIVE, config)
    for perm in itertools.islice(itertools.permutations(FIVE), 0, 120, 7):
        assert mine_pairs(REF, list(perm), config) == expected


@pytest.mark.parametrize(
    "kwargs",
    [{"strategy": "random"}, {"metric": "bleu"}, {"min_wer_margin": -0.1},
     {"min_wer_margin": float("nan")}, {"max_pairs_per_clip": 0}],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        PairConfig(**kwargs)
