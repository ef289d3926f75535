"""The network's total stride: the constraint an exported model's dynamic spatial axes carry."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from automl_seg.data.models import Plan

log = logging.getLogger(__name__)


def network_stride(model: nn.Module, plan: Plan) -> int:
    """The smallest power of two ``m`` such that the network maps any input with sides multiple of ``m``
    onto logits of the same size: the constraint the dynamic spatial axes carry.

    Spaces do not declare their stride, so it is measured: a side ``3m`` is a multiple of a power-of-two
    stride ``s`` exactly when ``m`` is, so one forward pass per candidate decides. The patch works by
    construction, so the answer never exceeds the largest power of two dividing every patch side."""
    import torch

    upper = min(side & -side for side in plan.patch_size)
    device = next(model.parameters()).device
    candidate = 1
    with torch.inference_mode():
        while candidate < upper:
            probe = torch.zeros(1, plan.in_channels, *(3 * candidate,) * len(plan.patch_size), device=device)
            try:
                if tuple(model(probe).shape[2:]) == tuple(probe.shape[2:]):
                    return candidate
            except Exception as exc:  # any failure means "not a multiple of the stride"
                log.debug("stride probe %d failed: %s", candidate, exc)
            candidate *= 2
    return upper
