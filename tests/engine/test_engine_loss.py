"""The training loss over plain and deeply supervised outputs."""

from __future__ import annotations

import pytest
import torch

from automl_seg.engine.loss import output_weights, segmentation_loss, training_loss


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 8, 8, 8, generator=g)
    label = torch.randint(0, 3, (2, 1, 8, 8, 8), generator=g)
    return logits, label


def test_weights_halve_per_output_and_sum_to_one() -> None:
    weights = output_weights(3)
    assert weights == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert output_weights(1) == [1.0]


def test_plain_logits_get_the_plain_loss() -> None:
    logits, label = _batch()
    loss_fn = segmentation_loss()
    assert torch.equal(training_loss(loss_fn, logits, label), loss_fn(logits, label))


def test_stacked_outputs_are_weighted_with_the_full_resolution_one_first() -> None:
    logits, label = _batch()
    worse, _ = _batch(seed=1)
    loss_fn = segmentation_loss()
    stacked = torch.stack([logits, worse], dim=1)
    expected = (2 / 3) * loss_fn(logits, label) + (1 / 3) * loss_fn(worse, label)
    assert torch.allclose(training_loss(loss_fn, stacked, label), expected)
    same = torch.stack([logits, logits, logits], dim=1)
    assert torch.allclose(training_loss(loss_fn, same, label), loss_fn(logits, label))


def test_every_output_gets_a_gradient() -> None:
    logits, label = _batch()
    stacked = torch.stack([logits, logits], dim=1).requires_grad_()
    training_loss(segmentation_loss(), stacked, label).backward()
    assert stacked.grad is not None and all(bool(g.abs().sum() > 0) for g in stacked.grad.unbind(dim=1))


def test_an_output_of_neither_shape_is_refused() -> None:
    logits, label = _batch()
    with pytest.raises(ValueError, match="fits neither"):
        training_loss(segmentation_loss(), logits[None, None], label)
