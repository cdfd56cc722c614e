"""MWER: expected word errors over the N-best, mean-subtracted, plus a CE term."""

import pytest
import torch

from training.objectives.mwer import mwer_loss


def test_value_matches_the_formula_by_hand():
    logps = torch.tensor([[0.0, 0.0]])  # equal probabilities: 0.5 each
    errors = torch.tensor([[4.0, 0.0]])  # mean 2: relative +2 and -2
    assert mwer_loss(logps, errors).loss.item() == pytest.approx(0.0)
    logps = torch.log(torch.tensor([[0.75, 0.25]]))
    out = mwer_loss(logps, errors)
    assert out.loss.item() == pytest.approx(0.75 * 2 - 0.25 * 2)
    assert out.metrics()["mwer/expected_errors"] == pytest.approx(3.0)
    assert out.metrics()["mwer/oracle_errors"] == 0.0


def test_gradient_moves_mass_to_the_better_hypothesis():
    logps = torch.zeros(1, 3, requires_grad=True)
    mwer_loss(logps, torch.tensor([[3.0, 0.0, 1.0]])).loss.backward()
    grad = logps.grad[0]
    assert grad[1] < 0 < grad[0]  # gradient descent raises the error-free one, lowers the worst


def test_padding_and_single_hypothesis_clips_carry_no_signal():
    logps = torch.tensor([[-1.0, -2.0, -5.0], [-1.0, 0.0, 0.0]], requires_grad=True)
    errors = torch.tensor([[2.0, 0.0, 9.0], [3.0, 7.0, 7.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    out = mwer_loss(logps, errors, mask)
    ref = mwer_loss(logps[:1, :2], errors[:1, :2])
    assert out.loss.item() == pytest.approx(ref.loss.item())
    out.loss.backward()
    assert logps.grad[0, 2] == 0 and torch.all(logps.grad[1] == 0)


def test_ce_term_and_word_normalisation():
    logps = torch.log(torch.tensor([[0.75, 0.25]]))
    errors = torch.tensor([[4.0, 0.0]])
    ce = torch.tensor(2.0)
    out = mwer_loss(logps, errors, ce_loss=ce, ce_weight=0.5,
                    normalize_by_words=torch.tensor([8]))
    assert out.loss.item() == pytest.approx(0.75 * 0.25 - 0.25 * 0.25 + 1.0)
    assert out.metrics()["loss/ce"] == 2.0


def test_shapes_must_agree():
    with pytest.raises(ValueError, match=r"\[clips, N\]"):
        mwer_loss(torch.zeros(2, 3), torch.zeros(3, 2))
