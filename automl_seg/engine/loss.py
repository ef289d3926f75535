"""The training loss: Dice + cross-entropy, over every output of a deeply supervised network.

A network may offer deep supervision (nnU-Net's habit; MONAI's ``DynUNet(deep_supervision=True)``):
in training mode it returns ``(B, H, C, *patch)``, H outputs stacked along dim 1, the full-resolution
one first and then those of coarser decoder levels (brought to the patch size), and in eval mode only
``(B, C, *patch)``. The coarse outputs give the deep layers a direct gradient. Output ``k`` is weighted
by ``2**-k``, the weights normalised to sum to 1, as nnU-Net does, so the full-resolution output
counts most and the loss stays on the scale of a single output's.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn
from torch.nn.modules.loss import _Loss


def segmentation_loss() -> nn.Module:
    """Dice + cross-entropy on softmax logits against an integer label map (B, 1, *patch)."""
    from monai.losses import DiceCELoss

    return DiceCELoss(to_onehot_y=True, softmax=True)


def output_weights(count: int) -> list[float]:
    """The weights of ``count`` stacked outputs: ``2**-k``, normalised to sum to 1."""
    raw = [2.0**-k for k in range(count)]
    return [w / sum(raw) for w in raw]


def training_loss(loss_fn: nn.Module, output: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """``loss_fn`` of the logits against ``label``; for a deeply supervised ``output`` (one more
    dimension than ``label``: the stacked outputs) MONAI's ``DeepSupervisionLoss`` with ``output_weights``."""
    from monai.losses import DeepSupervisionLoss

    if output.ndim == label.ndim:
        return cast(torch.Tensor, loss_fn(output.float(), label))
    if output.ndim != label.ndim + 1:
        raise ValueError(
            f"network output of shape {tuple(output.shape)} fits neither logits (B, C, *patch) nor "
            f"deeply supervised logits (B, H, C, *patch) for labels of shape {tuple(label.shape)}"
        )
    heads = list(output.unbind(dim=1))
    weighted = DeepSupervisionLoss(cast(_Loss, loss_fn), weights=output_weights(len(heads)))
    return cast(torch.Tensor, weighted(heads, label))
